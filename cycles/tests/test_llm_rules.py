"""Validation rules drafted by a language model (against the local fake server), or derived offline."""
import json

import pytest

from cycles.llm import LLMBadResponseError
from cycles.llm.rules import derive_rules
from cycles.models import Attribute, ProfilingRule
from cycles.services.profiling_checks import rules_draft_for_report
from cycles.tests.test_llm import anthropic_body, configure, fake_server, openai_body  # noqa: F401
from synapse.models import AuditEvent

ATTRIBUTES = [
    {"name": "fico_score", "description": "Credit score at origination (300-850).", "data_type": "integer"},
    {"name": "property_state", "description": "Two-letter US state code.", "data_type": "string"},
    {"name": "unpaid_principal_balance", "description": "Never negative.", "data_type": "decimal"},
    {"name": "original_loan_amount", "description": "At origination.", "data_type": "decimal"},
]


def test_the_offline_derivation_is_deterministic_and_reads_the_attributes_meaning():
    drafts = derive_rules(ATTRIBUTES)

    assert drafts == derive_rules(ATTRIBUTES)
    found = {(d.attribute, d.kind): d.params for d in drafts}
    assert found[("fico_score", "range")] == {"min": 300, "max": 850}
    assert "XX" not in found[("property_state", "allowed_values")]["values"]
    assert found[("unpaid_principal_balance", "range")] == {"min": 0, "max": None}
    assert found[("unpaid_principal_balance", "compare")] == {"op": "<=", "other": "original_loan_amount"}


@pytest.mark.parametrize("name, body", [("openai", openai_body), ("anthropic", anthropic_body)])
def test_a_model_drafts_rules_through_the_provider(configure, fake_server, name, body):  # noqa: F811
    provider = configure(name)
    answer = {"rules": [
        {"attribute": "fico_score", "kind": "range", "params": {"min": 300, "max": 850}, "why": "FICO range"},
        {"attribute": "property_state", "kind": "pattern", "params": {"regex": "[A-Z]{2}"}, "why": "state code"},
    ]}
    fake_server.answers.append((200, body(json.dumps(answer))))

    drafts = provider.draft_rules(attributes=ATTRIBUTES, profiles={"fico_score": {"max": "999"}})

    assert [(d.attribute, d.kind, d.params) for d in drafts] == [
        ("fico_score", "range", {"min": 300, "max": 850}), ("property_state", "pattern", {"regex": "[A-Z]{2}"})]
    sent = json.dumps(fake_server.requests[0]["body"])
    assert "fico_score" in sent and "999" in sent and "allowed_values" in sent


def test_a_rule_for_an_unknown_attribute_is_an_unusable_answer(configure, fake_server):  # noqa: F811
    provider = configure("openai")
    fake_server.answers.append((200, openai_body(json.dumps({"rules": [{"attribute": "x", "kind": "range"}]}))))

    with pytest.raises(LLMBadResponseError, match="names no attribute of the report"):
        provider.draft_rules(attributes=ATTRIBUTES, profiles={})


def test_the_service_stores_the_models_rules_as_the_models_and_falls_back_offline_on_failure(
    configure, fake_server, cycle_report  # noqa: F811
):
    for a in ATTRIBUTES:
        Attribute.objects.create(cycle_report=cycle_report, **a)
    configure("openai")
    fake_server.answers.append((200, openai_body(json.dumps({"rules": [
        {"attribute": "fico_score", "kind": "range", "params": {"min": 300, "max": 850}, "why": "FICO"},
        {"attribute": "fico_score", "kind": "range", "params": {"min": 900, "max": 1}, "why": "nonsense"},
    ]}))))

    assert rules_draft_for_report(cycle_report=cycle_report) == 1
    [rule] = ProfilingRule.objects.all()
    assert (rule.source, rule.source_detail) == (ProfilingRule.Source.LLM, "openai: test-model: FICO")

    ProfilingRule.objects.all().delete()
    fake_server.answers.append((401, {"error": {"message": "bad key"}}))
    assert rules_draft_for_report(cycle_report=cycle_report) >= 4
    assert set(ProfilingRule.objects.values_list("source", flat=True)) == {ProfilingRule.Source.SYSTEM}
    event = AuditEvent.objects.filter(action="rules.draft").latest("pk")
    assert event.context["provider"] == "offline" and "the language model failed" in event.context["error"]
