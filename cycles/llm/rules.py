"""Validation rules drafted for attributes from their names, descriptions, types and the file's profile.

derive_rules is deterministic: the same attributes and profile give the same
rules, so the offline provider uses it as is. Each draft says which heuristic
made it (source_detail), so the audit trail shows why a rule exists.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

US_STATES = (
    "AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM NY NC ND "
    "OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY PR GU VI AS MP"
).split()

# (name tokens, range, why): numbers whose meaning bounds them.
BOUNDED = (
    ({"fico", "credit_score", "creditscore"}, {"min": 300, "max": 850}, "FICO scores run from 300 to 850"),
    ({"ltv", "cltv", "loan_to_value"}, {"min": 0, "max": 200}, "a loan-to-value ratio is a percentage up to 200"),
    ({"dti", "debt_to_income"}, {"min": 0, "max": 100}, "a debt-to-income ratio is a percentage"),
    ({"rate", "interest_rate", "coupon"}, {"min": 0, "max": 100}, "a rate is a percentage"),
)
# "(300-850)" or "(0 to 150)" in a description: the attribute's own stated range.
DESCRIBED_RANGE = re.compile(r"\(\s*(-?\d+(?:\.\d+)?)\s*(?:-|–|to)\s*(-?\d+(?:\.\d+)?)\s*\)")
NON_NEGATIVE = {"balance", "amount", "amt", "principal", "upb", "payment", "price", "value", "limit", "term", "age"}


@dataclass(frozen=True)
class RuleDraft:
    attribute: str
    kind: str
    params: dict = field(default_factory=dict)
    source_detail: str = ""


def _tokens(name: str) -> list[str]:
    return [t for t in re.split(r"[^a-z0-9]+", re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()) if t]


def _joined(tokens: list[str]) -> set[str]:
    """Each token, and each run of two or three joined by "_" (so "credit_score" matches)."""
    found = set(tokens)
    for size in (2, 3):
        for i in range(len(tokens) - size + 1):
            found.add("_".join(tokens[i : i + size]))
    return found


def derive_rules(attributes: list[dict], profiles: dict[str, dict] | None = None) -> list[RuleDraft]:
    """Rules for each attribute ({"name", "description", "data_type", "mandatory", "primary_key"}).

    profiles maps an attribute's name to its column's profile ({"top_values",
    "distinct_count", "row_count"}), used to recognise a state column.
    """
    profiles = profiles or {}
    by_tokens = {a["name"]: _joined(_tokens(a["name"])) for a in attributes}
    drafts: list[RuleDraft] = []
    for attribute in attributes:
        name, data_type = attribute["name"], attribute.get("data_type", "string")
        tokens = by_tokens[name]
        text = f"{name} {attribute.get('description', '')}".lower()
        if attribute.get("mandatory"):
            drafts.append(RuleDraft(name, "not_null", {}, "mandatory attribute"))
        if attribute.get("primary_key"):
            drafts.append(RuleDraft(name, "unique", {}, "primary key"))
        if data_type in ("integer", "decimal"):
            bounded = next((b for b in BOUNDED if tokens & b[0]), None)
            stated = DESCRIBED_RANGE.search(attribute.get("description", ""))
            if stated:
                low, high = (float(v) if "." in v else int(v) for v in stated.groups())
                drafts.append(RuleDraft(name, "range", {"min": low, "max": high}, "the range its description gives"))
            elif bounded:
                drafts.append(RuleDraft(name, "range", dict(bounded[1]), bounded[2]))
            elif tokens & NON_NEGATIVE and not attribute.get("primary_key"):
                drafts.append(RuleDraft(name, "range", {"min": 0, "max": None}, "an amount is never negative"))
            # An unpaid or current balance can't exceed the original amount it came from.
            if tokens & {"unpaid", "current", "outstanding", "upb"} and tokens & {"balance", "principal", "upb", "amount"}:
                original = next(
                    (
                        other["name"] for other in attributes
                        if other["name"] != name and by_tokens[other["name"]] & {"original", "orig", "origination"}
                        and other.get("data_type") in ("integer", "decimal")
                        and by_tokens[other["name"]] & {"balance", "principal", "amount", "amt", "upb"}
                    ),
                    None,
                )
                if original:
                    drafts.append(
                        RuleDraft(name, "compare", {"op": "<=", "other": original},
                                  "an unpaid balance can't exceed the original amount")
                    )
        if data_type == "string" and (tokens & {"state", "st"} or "state code" in text):
            drafts.append(RuleDraft(name, "allowed_values", {"values": list(US_STATES)}, "US state codes"))
        elif data_type == "string" and tokens & {"zip", "zipcode", "postal"}:
            drafts.append(RuleDraft(name, "pattern", {"regex": r"\d{5}(-\d{4})?"}, "US ZIP code"))
    return drafts


RULE_KINDS = ("range", "allowed_values", "pattern", "not_null", "unique", "compare")
RULES_SYSTEM = (
    "You draft data validation rules for a bank's regulatory report testing. Answer with one JSON object "
    '{"rules": [{"attribute": name, "kind": kind, "params": {...}, "why": short reason}]} and nothing else. '
    'Kinds and params: range {"min": number or null, "max": number or null}; allowed_values {"values": [...]}; '
    'pattern {"regex": "..."} (the whole value must match); not_null {}; unique {}; '
    'compare {"op": "<", "<=", "=", ">=" or ">", "other": another attribute\'s name}. '
    "Only rules the attribute's meaning implies; none when unsure."
)


def build_rules_prompt(*, attributes: list[dict], profiles: dict[str, dict]) -> tuple[str, str]:
    """The system prompt and the attributes (with what profiling saw of their columns) as JSON."""
    import json

    listed = [
        {
            "name": a["name"], "description": a.get("description", ""), "data_type": a.get("data_type", "string"),
            "mandatory": bool(a.get("mandatory")), "primary_key": bool(a.get("primary_key")),
            **({"profile": profiles[a["name"]]} if a["name"] in profiles else {}),
        }
        for a in attributes
    ]
    return RULES_SYSTEM, "Attributes:\n" + json.dumps(listed, indent=1, default=str)
