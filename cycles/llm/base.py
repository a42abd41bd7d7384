"""What every LLM provider shares: the draft type, the prompt, the answer's schema, the HTTP call.

A provider turns a report's field list into one AttributeDraft per field.
Providers never retry: the Temporal activity's LLM retry policy does, so a
provider only says whether a failure is worth retrying (LLMTransientError)
or not (LLMBadResponseError).
"""
from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass

import httpx
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from rest_framework import serializers

DATA_TYPES = ("string", "integer", "decimal", "date", "boolean")
RISK_MIN, RISK_MAX = 1, 10


class LLMError(Exception):
    """Drafting attributes with an LLM provider failed."""


class LLMTransientError(LLMError):
    """The provider could not answer now (network, rate limit, server error); retrying may help."""


class LLMBadResponseError(LLMError):
    """The provider refused the request or answered something unusable; retrying won't help."""


@dataclass(frozen=True)
class AttributeDraft:
    """One drafted attribute, already validated against the answer schema."""

    name: str
    description: str
    data_type: str
    mandatory: bool
    primary_key: bool
    cde: bool
    historical_issues: bool
    risk_score: int

    def as_fields(self) -> dict:
        """The values to store on cycles.models.Attribute."""
        return {
            "description": self.description,
            "data_type": self.data_type,
            "mandatory": self.mandatory,
            "primary_key": self.primary_key,
            "cde": self.cde,
            "historical_issues": self.historical_issues,
            "risk_score": self.risk_score,
        }


class LLMProvider(ABC):
    """Drafts a report's attributes from its field list."""

    name: str = ""
    model: str = ""

    @abstractmethod
    def draft_attributes(self, *, report_name: str, regulation: str, fields: list[dict]) -> list[AttributeDraft]:
        """Return one validated draft per field, in the order of `fields`."""

    def draft_rules(self, *, attributes: list[dict], profiles: dict[str, dict]) -> list:
        """Validation rules (cycles.llm.rules.RuleDraft) for the attributes, from their meaning and profile.

        Derived deterministically unless a provider asks its model.
        """
        from cycles.llm.rules import derive_rules

        return derive_rules(attributes, profiles)


def normalize_fields(fields: list) -> list[dict]:
    """Report.fields as [{"name", "description"}], unnamed entries dropped, first of duplicate names kept."""
    seen: set[str] = set()
    result = []
    for field in fields or []:
        if isinstance(field, dict):
            name = str(field.get("name") or "").strip()
            description = str(field.get("description") or "").strip()
        else:
            name, description = str(field).strip(), ""
        if name and name not in seen:
            seen.add(name)
            result.append({"name": name, "description": description})
    return result


SYSTEM_PROMPT = (
    "You are a data quality analyst in a bank's regulatory reporting test team. "
    "You draft the attributes to test for a regulatory report. Answer with JSON only."
)

ANSWER_SHAPE = (
    '{"attributes": [{"name": "<field name exactly as given>", "description": "<one sentence>", '
    '"data_type": "string" | "integer" | "decimal" | "date" | "boolean", "mandatory": true | false, '
    '"primary_key": true | false, "cde": true | false, "historical_issues": true | false, '
    '"risk_score": <integer 1 to 10>}]}'
)


def build_prompt(*, report_name: str, regulation: str, fields: list[dict]) -> tuple[str, str]:
    """Return (system prompt, user prompt) asking for a JSON object {"attributes": [...]}."""
    field_list = json.dumps(normalize_fields(fields), ensure_ascii=False, indent=1)
    user = (
        f'Draft the test attributes of the regulatory report "{report_name}" '
        f"({regulation or 'regulation not given'}).\n"
        f"Return exactly one attribute for every field below, with the field's name unchanged, "
        f"and no attribute for anything else.\n\n"
        f"Fields:\n{field_list}\n\n"
        f"Answer with one JSON object of this shape and nothing else:\n{ANSWER_SHAPE}\n\n"
        "Guidance: primary_key is true for fields that identify a record; mandatory is true when the "
        "report can't be correct with the field empty; cde (critical data element) is true for fields "
        "that drive the report's regulatory figures; historical_issues is true only if the field's "
        "description mentions past problems; risk_score 10 means most likely wrong with the highest "
        "regulatory impact, 1 the least."
    )
    return SYSTEM_PROMPT, user


class StrictBooleanField(serializers.BooleanField):
    """A JSON true/false only: a model answering "yes" or 1 has not followed the schema."""

    default_error_messages = {"invalid": "Must be true or false, not {input!r}."}

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class StrictIntegerField(serializers.IntegerField):
    """A JSON number with no fraction; strings and booleans are refused."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            self.fail("invalid")
        if isinstance(data, float) and not data.is_integer():
            self.fail("invalid")
        return int(data)


class AttributeDraftSerializer(serializers.Serializer):
    """The schema of one attribute in the model's answer."""

    name = serializers.CharField(max_length=200)
    description = serializers.CharField(allow_blank=True, allow_null=True, required=False, default="")
    data_type = serializers.ChoiceField(
        choices=DATA_TYPES,
        error_messages={"invalid_choice": f"{{input!r}} is not one of {', '.join(DATA_TYPES)}."},
    )
    mandatory = StrictBooleanField(required=False, default=False)
    primary_key = StrictBooleanField(required=False, default=False)
    cde = StrictBooleanField(required=False, default=False)
    historical_issues = StrictBooleanField(required=False, default=False)
    risk_score = StrictIntegerField(min_value=RISK_MIN, max_value=RISK_MAX)


class DraftAnswerSerializer(serializers.Serializer):
    """The schema of the whole answer: {"attributes": [...]}."""

    attributes = AttributeDraftSerializer(many=True, allow_empty=True)


_FENCED = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)


def _snippet(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


def extract_json(text: str):
    """The JSON value in a model's text: the whole text, a ```json fenced block, or the outermost {...}."""
    candidates = [text.strip()]
    candidates += [m.group(1).strip() for m in _FENCED.finditer(text)]
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        candidates.append(text[start : end + 1])
    for candidate in candidates:
        if not candidate:
            continue
        try:
            return json.loads(candidate)
        except ValueError:
            continue
    raise LLMBadResponseError(f"The model's answer is not JSON: {_snippet(text) or '(empty answer)'}")


def _flatten_errors(errors, prefix: str = "") -> list[str]:
    if isinstance(errors, dict):
        out = []
        for key, value in errors.items():
            label = prefix if key == "non_field_errors" else (f"{prefix}.{key}" if prefix else str(key))
            out += _flatten_errors(value, label)
        return out
    if isinstance(errors, list):
        if all(isinstance(e, str) for e in errors):
            return [f"{prefix}: {e}" if prefix else str(e) for e in errors]
        out = []
        for index, item in enumerate(errors):
            if item:
                out += _flatten_errors(item, f"{prefix}[{index}]")
        return out
    return [f"{prefix}: {errors}" if prefix else str(errors)]


def parse_attribute_drafts(text_or_obj, field_names: list[str]) -> list[AttributeDraft]:
    """Validate a model's answer and return one draft per field name, in field_names order.

    Accepts the model's raw text or an already-decoded value; a bare list is
    read as the "attributes" list. Raises LLMBadResponseError saying what was
    wrong: not JSON, wrong shape, wrong types or ranges, a field missing,
    repeated, or not in the report.
    """
    data = extract_json(text_or_obj) if isinstance(text_or_obj, str) else text_or_obj
    if isinstance(data, list):
        data = {"attributes": data}
    if not isinstance(data, dict) or "attributes" not in data:
        raise LLMBadResponseError('The model\'s answer has no "attributes" list.')
    serializer = DraftAnswerSerializer(data=data)
    if not serializer.is_valid():
        items = data.get("attributes")
        problems = _flatten_errors(serializer.errors)
        if isinstance(items, list):
            # Name the attribute, not only its index, so the tester can see which field was answered badly.
            named = []
            for problem in problems:
                match = re.match(r"attributes\[(\d+)\]", problem)
                index = int(match.group(1)) if match else None
                item = items[index] if index is not None and index < len(items) else None
                if isinstance(item, dict) and isinstance(item.get("name"), str):
                    problem = problem.replace(f"[{index}]", f"[{index}] ({item['name']})", 1)
                named.append(problem)
            problems = named
        raise LLMBadResponseError("The model's answer does not follow the schema: " + "; ".join(problems[:10]))

    expected = list(dict.fromkeys(field_names))
    by_name: dict[str, dict] = {}
    repeated, unknown = [], []
    for item in serializer.validated_data["attributes"]:
        name = item["name"].strip()
        if name not in expected:
            unknown.append(name)
        elif name in by_name:
            repeated.append(name)
        else:
            by_name[name] = item
    missing = [name for name in expected if name not in by_name]
    problems = []
    if missing:
        problems.append("missing " + ", ".join(missing))
    if repeated:
        problems.append("repeated " + ", ".join(sorted(set(repeated))))
    if unknown:
        problems.append("not in the report " + ", ".join(unknown))
    if problems:
        raise LLMBadResponseError("The model's answer does not match the report's fields: " + "; ".join(problems) + ".")
    return [
        AttributeDraft(
            name=name,
            description=by_name[name]["description"] or "",
            data_type=by_name[name]["data_type"],
            mandatory=by_name[name]["mandatory"],
            primary_key=by_name[name]["primary_key"],
            cde=by_name[name]["cde"],
            historical_issues=by_name[name]["historical_issues"],
            risk_score=by_name[name]["risk_score"],
        )
        for name in expected
    ]


class HTTPChatProvider(LLMProvider):
    """A provider reached over HTTP: prompts in batches of fields, validates each answer."""

    default_base_url = ""
    default_model = ""
    # Bounded batches keep each answer well under the output token limit on reports with hundreds of fields.
    batch_size = 40
    max_tokens = 8192

    def __init__(self, *, api_key: str, base_url: str = "", model: str = "", timeout: float = 60.0):
        self.api_key = api_key
        self.base_url = (base_url or self.default_base_url).rstrip("/")
        self.model = model or self.default_model
        self.timeout = timeout

    def draft_attributes(self, *, report_name: str, regulation: str, fields: list[dict]) -> list[AttributeDraft]:
        fields = normalize_fields(fields)
        drafts: list[AttributeDraft] = []
        for start in range(0, len(fields), self.batch_size):
            batch = fields[start : start + self.batch_size]
            system, prompt = build_prompt(report_name=report_name, regulation=regulation, fields=batch)
            text = self.complete(system=system, prompt=prompt)
            drafts += parse_attribute_drafts(text, [f["name"] for f in batch])
        return drafts

    def draft_rules(self, *, attributes: list[dict], profiles: dict[str, dict]) -> list:
        """The model drafts validation rules from each attribute's meaning and profile; the answer is checked.

        A rule of an unknown kind or attribute is an unusable answer
        (LLMBadResponseError); parameters are checked by the caller, which
        drops a rule whose parameters don't hold together.
        """
        from cycles.llm.rules import RULE_KINDS, RuleDraft, build_rules_prompt

        if not attributes:
            return []
        system, prompt = build_rules_prompt(attributes=attributes, profiles=profiles)
        answer = extract_json(self.complete(system=system, prompt=prompt))
        rules = answer.get("rules") if isinstance(answer, dict) else None
        if not isinstance(rules, list):
            raise LLMBadResponseError(f'{self.name}: the answer has no "rules" list.')
        names = {a["name"] for a in attributes}
        drafts = []
        for index, rule in enumerate(rules):
            if not isinstance(rule, dict) or rule.get("attribute") not in names or rule.get("kind") not in RULE_KINDS:
                raise LLMBadResponseError(
                    f"{self.name}: rule {index + 1} names no attribute of the report or no known kind of rule."
                )
            params = rule.get("params") if isinstance(rule.get("params"), dict) else {}
            why = str(rule.get("why") or "")[:120]
            drafts.append(RuleDraft(rule["attribute"], rule["kind"], params, f"{self.model}: {why}".strip()))
        return drafts

    @abstractmethod
    def complete(self, *, system: str, prompt: str) -> str:
        """Send one prompt; return the model's text answer."""

    def post_json(self, url: str, *, headers: dict, body: dict) -> dict:
        """POST body as JSON; return the decoded answer or raise the matching LLMError."""
        try:
            response = httpx.post(url, headers=headers, json=body, timeout=self.timeout)
        except httpx.TimeoutException as exc:
            raise LLMTransientError(f"{self.name}: no answer within {self.timeout:g}s ({type(exc).__name__}).") from exc
        except httpx.HTTPError as exc:
            raise LLMTransientError(f"{self.name}: could not reach {url}: {exc}") from exc
        status = response.status_code
        if status == 429 or status >= 500:
            raise LLMTransientError(f"{self.name}: HTTP {status}: {self._error_detail(response)}")
        if status >= 400:
            raise LLMBadResponseError(f"{self.name} refused the request: HTTP {status}: {self._error_detail(response)}")
        try:
            payload = response.json()
        except ValueError as exc:
            raise LLMBadResponseError(f"{self.name}: the answer is not JSON: {_snippet(response.text)}") from exc
        if not isinstance(payload, dict):
            raise LLMBadResponseError(f"{self.name}: the answer is not a JSON object: {_snippet(response.text)}")
        return payload

    @staticmethod
    def _error_detail(response: httpx.Response) -> str:
        try:
            error = response.json().get("error")
        except (ValueError, AttributeError):
            error = None
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if isinstance(error, str):
            return error
        return _snippet(response.text) or response.reason_phrase


def get_provider() -> LLMProvider:
    """The provider that settings.LLM_PROVIDER names, keyed and pointed by the other LLM_* settings."""
    from cycles.llm.anthropic_provider import AnthropicProvider
    from cycles.llm.offline import OfflineProvider
    from cycles.llm.openai_provider import OpenAIProvider

    name = (settings.LLM_PROVIDER or "").strip().lower()
    if name == "offline":
        return OfflineProvider()
    providers = {"anthropic": AnthropicProvider, "openai": OpenAIProvider}
    if name not in providers:
        raise ImproperlyConfigured(
            f"LLM_PROVIDER={settings.LLM_PROVIDER!r} is not a provider; use offline, anthropic or openai."
        )
    if not settings.LLM_API_KEY:
        raise ImproperlyConfigured(
            f"LLM_PROVIDER={name} needs LLM_API_KEY (a local OpenAI-compatible server accepts any non-empty key)."
        )
    return providers[name](
        api_key=settings.LLM_API_KEY,
        base_url=settings.LLM_BASE_URL,
        model=settings.LLM_MODEL,
        timeout=settings.LLM_TIMEOUT,
    )
