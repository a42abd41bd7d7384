"""The offline provider: a deterministic draft from field names and descriptions, no network.

It is the embedded default and what tests and demos run on. Its heuristics
are the ones a tester applies at first sight of a field list; the tester
edits the rest.
"""
from __future__ import annotations

import re

from cycles.llm.base import RISK_MAX, RISK_MIN, AttributeDraft, LLMProvider, normalize_fields, parse_attribute_drafts

KEY_TOKENS = {"id", "key", "identifier", "uid", "uuid", "pk"}
KEY_OWNERS = {"account", "acct", "loan", "customer", "cust", "contract", "facility", "transaction", "txn", "record"}
NUMBER_TOKENS = {"number", "num", "no", "nbr"}
DATE_TOKENS = {"date", "dt", "dob", "timestamp", "ts"}
BOOLEAN_PREFIXES = {"is", "has", "was", "can", "should"}
BOOLEAN_TOKENS = {"flag", "flg", "ind", "indicator", "yn"}
AMOUNT_TOKENS = {
    "amount", "amt", "balance", "bal", "rate", "pct", "percent", "percentage", "ratio", "principal",
    "exposure", "price", "fee", "fees", "interest", "payment", "pmt", "limit", "ltv", "apr", "value", "income",
}
COUNT_TOKENS = {"count", "cnt", "days", "months", "years", "term", "score", "age", "qty", "quantity", "dpd"}
# Words that point at figures regulators look at first: wrong values here cost the most.
RISK_WORDS = (
    "delinquen", "default", "charge", "impair", "loss", "rating", "fico", "collateral", "past due",
    "past_due", "provision", "capital", "risk", "exposure",
)
NUMERIC_ID_WORDS = ("numeric", "integer", "sequence", "surrogate", "auto-increment", "autoincrement")


def _tokens(name: str) -> list[str]:
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name)
    return [t for t in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if t]


def _humanize(name: str) -> str:
    words = " ".join(_tokens(name)) or name
    return words[:1].upper() + words[1:]


def _is_key(tokens: list[str], description: str) -> bool:
    if not tokens:
        return False
    if tokens[-1] in KEY_TOKENS:
        return True
    if tokens[-1] in NUMBER_TOKENS and len(tokens) > 1 and tokens[-2] in KEY_OWNERS:
        return True
    return "unique identifier" in description or "primary key" in description


def draft_field(field: dict, *, report_name: str) -> dict:
    """One attribute drafted from one {"name", "description"} field, as the answer schema's dict."""
    name, given = field["name"], field.get("description") or ""
    description = given.lower()
    tokens = _tokens(name)
    token_set = set(tokens)
    haystack = f"{' '.join(tokens)} {description}"

    primary_key = False
    amount = False
    if tokens and (tokens[0] in BOOLEAN_PREFIXES or tokens[-1] in BOOLEAN_TOKENS or description.startswith("whether")):
        data_type = "boolean"
    elif _is_key(tokens, description):
        primary_key = True
        data_type = "integer" if any(w in description for w in NUMERIC_ID_WORDS) else "string"
    elif token_set & DATE_TOKENS or "date" in description.split()[:3]:
        data_type = "date"
    elif token_set & AMOUNT_TOKENS:
        data_type, amount = "decimal", True
    elif token_set & COUNT_TOKENS or (tokens and tokens[0] in NUMBER_TOKENS and len(tokens) > 1):
        data_type = "integer"
    else:
        data_type = "string"

    risky = any(word in haystack for word in RISK_WORDS)
    cde = primary_key or amount or risky
    mandatory = primary_key or cde or "required" in description or "mandatory" in description

    score = 2
    score += 3 if primary_key else 0
    score += 3 if amount else 0
    score += 2 if risky else 0
    score += 1 if data_type == "date" else 0
    score += 1 if mandatory else 0

    text = given.strip() or f"{_humanize(name)} as reported in {report_name}."
    return {
        "name": name,
        "description": text,
        "data_type": data_type,
        "mandatory": mandatory,
        "primary_key": primary_key,
        "cde": cde,
        # Past issues come from prior cycles' observations, which a field list can't show.
        "historical_issues": False,
        "risk_score": max(RISK_MIN, min(RISK_MAX, score)),
    }


class OfflineProvider(LLMProvider):
    """Same fields in, same drafts out; never leaves the machine."""

    name = "offline"
    model = "heuristics"

    def draft_attributes(self, *, report_name: str, regulation: str, fields: list[dict]) -> list[AttributeDraft]:
        fields = normalize_fields(fields)
        answer = {"attributes": [draft_field(f, report_name=report_name) for f in fields]}
        # The same schema check as a real model's answer, so a heuristic slip can't store a bad row.
        return parse_attribute_drafts(answer, [f["name"] for f in fields])
