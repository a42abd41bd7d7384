"""Planning services: the attribute draft and the tester's edits, with their permission and phase lock."""
import pytest

from cycles.exceptions import ApplicationError, ConflictError, PermissionDeniedError, PhaseLockedError
from cycles.llm import LLMBadResponseError, LLMProvider, parse_attribute_drafts
from cycles.models import Attribute, Phase
from cycles.services.planning import (
    attribute_create,
    attribute_delete,
    attribute_update,
    attributes_draft,
    planning_is_editable,
)
from cycles.testing import artifact_refusal
from synapse.audit import audit_events_for
from synapse.models import AuditEvent
from versioning.models import Version, VersionStatus

pytestmark = pytest.mark.django_db

FIELD_NAMES = ["account_id", "customer_name", "balance", "origination_date", "is_delinquent"]


@pytest.fixture
def planning(cycle_report):
    cycle_report.phase = Phase.PLANNING
    cycle_report.save(update_fields=["phase"])
    return cycle_report


class ScriptedProvider(LLMProvider):
    """Stands in for a remote model: answers each call with the next scripted answer."""

    name = "scripted"

    def __init__(self, *answers):
        self.answers = list(answers)
        self.calls = 0

    def draft_attributes(self, *, report_name, regulation, fields):
        self.calls += 1
        return parse_attribute_drafts(self.answers.pop(0), [f["name"] for f in fields])


def answer(risk=3, **overrides):
    return {"attributes": [
        {"name": n, "description": f"d {n}", "data_type": "string", "risk_score": risk, **overrides.get(n, {})}
        for n in FIELD_NAMES
    ]}


def rows(cycle_report):
    return list(Attribute.objects.filter(cycle_report=cycle_report).order_by("name").values())


def make_version(cycle_report, user, status, number=1):
    return Version.objects.create(cycle_report=cycle_report, phase=Phase.PLANNING, number=number,
                                  status=status, author=user)


# --- attributes_draft -------------------------------------------------------------------------


def test_draft_creates_one_llm_attribute_per_field(planning, settings):
    settings.LLM_PROVIDER = "offline"

    assert attributes_draft(cycle_report_id=planning.pk) == ("offline", 5, 0)

    attributes = Attribute.objects.filter(cycle_report=planning)
    assert sorted(a.name for a in attributes) == sorted(FIELD_NAMES)
    assert {a.source for a in attributes} == {Attribute.Source.LLM}
    balance = attributes.get(name="balance")
    assert (balance.data_type, balance.cde) == ("decimal", True)
    (event,) = AuditEvent.objects.filter(action="attributes.draft")
    assert event.object_id == str(planning.pk)
    assert event.context["provider"] == "offline"
    assert sorted(event.context["created"]) == sorted(FIELD_NAMES)


def test_draft_twice_gives_the_same_rows(planning):
    attributes_draft(cycle_report_id=planning.pk)
    first = rows(planning)

    assert attributes_draft(cycle_report_id=planning.pk) == ("offline", 0, 0)

    assert rows(planning) == first
    assert AuditEvent.objects.filter(action="attributes.draft").count() == 1


def test_redraft_updates_llm_rows_but_never_manual_edits(planning, users):
    attributes_draft(cycle_report_id=planning.pk, provider=ScriptedProvider(answer(risk=3)))
    balance = Attribute.objects.get(cycle_report=planning, name="balance")
    attribute_update(user=users["tester"], attribute=balance, risk_score=9, description="Checked by hand")

    provider = ScriptedProvider(answer(risk=5))
    assert attributes_draft(cycle_report_id=planning.pk, provider=provider) == ("scripted", 0, 4)

    balance.refresh_from_db()
    assert (balance.risk_score, balance.description, balance.source) == (9, "Checked by hand", "manual")
    others = Attribute.objects.filter(cycle_report=planning).exclude(name="balance")
    assert {a.risk_score for a in others} == {5}
    event = AuditEvent.objects.filter(action="attributes.draft").first()
    assert event.context["kept_manual"] == ["balance"]
    assert {u["name"] for u in event.context["updated"]} == set(FIELD_NAMES) - {"balance"}


def test_draft_keeps_an_attribute_the_tester_entered_first(planning, users):
    attribute_create(user=users["tester"], cycle_report=planning, name="balance", data_type="integer",
                     risk_score=4)

    assert attributes_draft(cycle_report_id=planning.pk) == ("offline", 4, 0)

    balance = Attribute.objects.get(cycle_report=planning, name="balance")
    assert (balance.data_type, balance.source) == ("integer", "manual")


def test_draft_only_in_planning(cycle_report):
    cycle_report.phase = Phase.SCOPING
    cycle_report.save(update_fields=["phase"])
    with pytest.raises(PhaseLockedError, match="only while Planning is running"):
        attributes_draft(cycle_report_id=cycle_report.pk)
    assert not Attribute.objects.exists()


def test_draft_refused_while_planning_is_submitted(planning, users):
    make_version(planning, users["tester"], VersionStatus.SUBMITTED)
    provider = ScriptedProvider(answer())
    with pytest.raises(PhaseLockedError, match="submitted"):
        attributes_draft(cycle_report_id=planning.pk, provider=provider)
    assert provider.calls == 0
    assert not Attribute.objects.exists()


def test_bad_llm_answer_writes_nothing_and_the_tester_can_still_enter_attributes(planning, users):
    bad = answer(balance={"risk_score": 42})
    with pytest.raises(LLMBadResponseError, match="risk_score"):
        attributes_draft(cycle_report_id=planning.pk, provider=ScriptedProvider(bad))
    assert not Attribute.objects.exists()

    attribute = attribute_create(user=users["tester"], cycle_report=planning, name="balance", data_type="decimal",
                                 risk_score=7, cde=True)
    assert attribute.source == Attribute.Source.MANUAL


# --- planning_is_editable ---------------------------------------------------------------------


def test_planning_is_editable(cycle_report, users):
    assert not planning_is_editable(cycle_report)  # not started
    cycle_report.phase = Phase.PLANNING
    assert planning_is_editable(cycle_report)
    version = make_version(cycle_report, users["tester"], VersionStatus.CHANGES_REQUESTED)
    assert planning_is_editable(cycle_report)
    make_version(cycle_report, users["tester"], VersionStatus.SUBMITTED, number=2)
    assert not planning_is_editable(cycle_report)
    # Only the planning phase's own versions count.
    version.phase = Phase.SCOPING
    version.number = 1
    version.save()
    Version.objects.filter(cycle_report=cycle_report, phase=Phase.PLANNING).update(status=VersionStatus.APPROVED)
    assert not planning_is_editable(cycle_report)
    cycle_report.phase = Phase.DATA_PROFILING
    assert not planning_is_editable(cycle_report)


# --- attribute_create -------------------------------------------------------------------------


def test_create_by_the_assigned_tester(planning, users):
    attribute = attribute_create(user=users["tester"], cycle_report=planning, name="  branch_code ",
                                 description="Branch", data_type="string", mandatory=True, risk_score=4)

    assert (attribute.name, attribute.source, attribute.mandatory, attribute.risk_score) == (
        "branch_code", "manual", True, 4)
    (event,) = audit_events_for(attribute)
    assert (event.action, event.actor, event.before) == ("attribute.create", users["tester"], None)
    assert event.after["name"] == "branch_code"


@pytest.mark.parametrize("who", ["tester2", "owner", "manager", "admin"])
def test_create_refused_to_anyone_but_the_assigned_tester(planning, users, who):
    with pytest.raises(PermissionDeniedError, match="assigned to this report"):
        attribute_create(user=users[who], cycle_report=planning, name="branch_code")
    assert not Attribute.objects.exists()


def test_create_refused_outside_planning(cycle_report, users):
    with pytest.raises(PhaseLockedError, match="not started"):
        attribute_create(user=users["tester"], cycle_report=cycle_report, name="branch_code")
    cycle_report.phase = Phase.SCOPING
    cycle_report.save(update_fields=["phase"])
    with pytest.raises(PhaseLockedError, match="Scoping"):
        attribute_create(user=users["tester"], cycle_report=cycle_report, name="branch_code")
    assert not Attribute.objects.exists()


@pytest.mark.parametrize("status, message", [(VersionStatus.SUBMITTED, "submitted for approval"),
                                             (VersionStatus.APPROVED, "is approved")])
def test_create_refused_while_the_version_is_under_review_or_approved(planning, users, status, message):
    make_version(planning, users["tester"], status)
    with pytest.raises(PhaseLockedError, match=message):
        attribute_create(user=users["tester"], cycle_report=planning, name="branch_code")
    assert not Attribute.objects.exists()


def test_create_allowed_again_after_changes_requested(planning, users):
    make_version(planning, users["tester"], VersionStatus.CHANGES_REQUESTED)
    attribute_create(user=users["tester"], cycle_report=planning, name="branch_code")
    assert Attribute.objects.filter(name="branch_code").exists()


@pytest.mark.parametrize(
    "fields, error, message",
    [
        ({"name": "   "}, ApplicationError, "needs a name"),
        ({}, ApplicationError, "needs a name"),
        ({"name": "x" * 201}, ApplicationError, "at most 200"),
        ({"name": "a", "data_type": "float"}, ApplicationError, "'float' is not one of string"),
        ({"name": "a", "risk_score": 0}, ApplicationError, "from 1 to 10"),
        ({"name": "a", "risk_score": 11}, ApplicationError, "from 1 to 10"),
        ({"name": "a", "risk_score": True}, ApplicationError, "from 1 to 10"),
        ({"name": "a", "cde": "yes"}, ApplicationError, "Critical data element must be yes or no"),
        ({"name": "a", "colour": "red"}, ApplicationError, "Unknown attribute fields: colour"),
    ],
)
def test_create_validates_fields(planning, users, fields, error, message):
    with pytest.raises(error, match=message):
        attribute_create(user=users["tester"], cycle_report=planning, **fields)
    assert not Attribute.objects.exists()


def test_create_refuses_a_name_already_used_in_the_report(planning, users):
    attribute_create(user=users["tester"], cycle_report=planning, name="balance")
    with pytest.raises(ConflictError, match="already has an attribute named 'balance'"):
        attribute_create(user=users["tester"], cycle_report=planning, name="balance")
    assert Attribute.objects.count() == 1


# --- attribute_update -------------------------------------------------------------------------


def test_update_makes_the_attribute_manual_and_audits_before_after(planning, users):
    attributes_draft(cycle_report_id=planning.pk)
    balance = Attribute.objects.get(cycle_report=planning, name="balance")
    old_score = balance.risk_score

    updated = attribute_update(user=users["tester"], attribute=balance, risk_score=10, historical_issues=True)

    assert (updated.risk_score, updated.historical_issues, updated.source) == (10, True, "manual")
    balance.refresh_from_db()
    assert balance.risk_score == 10
    (event,) = audit_events_for(balance).filter(action="attribute.update")
    assert (event.before["risk_score"], event.before["source"]) == (old_score, "llm")
    assert (event.after["risk_score"], event.after["source"]) == (10, "manual")


def test_update_without_change_writes_nothing(planning, users):
    attribute = attribute_create(user=users["tester"], cycle_report=planning, name="balance", risk_score=5)
    attribute_update(user=users["tester"], attribute=attribute, risk_score=5)
    assert not audit_events_for(attribute).filter(action="attribute.update").exists()


def test_update_rename_checks_the_name_is_free(planning, users):
    attribute_create(user=users["tester"], cycle_report=planning, name="balance")
    other = attribute_create(user=users["tester"], cycle_report=planning, name="amount")
    with pytest.raises(ConflictError, match="'balance'"):
        attribute_update(user=users["tester"], attribute=other, name="balance")
    renamed = attribute_update(user=users["tester"], attribute=other, name="principal")
    assert renamed.name == "principal"


def test_update_validates(planning, users):
    attribute = attribute_create(user=users["tester"], cycle_report=planning, name="balance")
    with pytest.raises(ApplicationError, match="from 1 to 10"):
        attribute_update(user=users["tester"], attribute=attribute, risk_score=12)
    with pytest.raises(ApplicationError, match="needs a name"):
        attribute_update(user=users["tester"], attribute=attribute, name="")
    attribute.refresh_from_db()
    assert (attribute.name, attribute.risk_score) == ("balance", 1)


def test_update_permission_and_lock(planning, users):
    attribute = attribute_create(user=users["tester"], cycle_report=planning, name="balance", risk_score=2)
    with pytest.raises(PermissionDeniedError):
        attribute_update(user=users["tester2"], attribute=attribute, risk_score=8)
    make_version(planning, users["tester"], VersionStatus.SUBMITTED)
    with pytest.raises(PhaseLockedError, match="submitted for approval"):
        attribute_update(user=users["tester"], attribute=attribute, risk_score=8)
    attribute.refresh_from_db()
    assert attribute.risk_score == 2


# --- attribute_delete -------------------------------------------------------------------------


def test_delete_removes_and_audits(planning, users):
    attribute = attribute_create(user=users["tester"], cycle_report=planning, name="balance", risk_score=6)
    pk = attribute.pk

    attribute_delete(user=users["tester"], attribute=attribute)

    assert not Attribute.objects.filter(pk=pk).exists()
    event = AuditEvent.objects.get(action="attribute.delete")
    assert (event.object_id, event.before["name"], event.before["risk_score"], event.after) == (
        str(pk), "balance", 6, None)


def test_delete_permission_and_lock(planning, users):
    attribute = attribute_create(user=users["tester"], cycle_report=planning, name="balance")
    with pytest.raises(PermissionDeniedError):
        attribute_delete(user=users["owner"], attribute=attribute)
    make_version(planning, users["tester"], VersionStatus.APPROVED)
    with pytest.raises(PhaseLockedError, match="is approved"):
        attribute_delete(user=users["tester"], attribute=attribute)
    planning.phase = Phase.DATA_PROFILING
    planning.save(update_fields=["phase"])
    with pytest.raises(PhaseLockedError, match="Data Profiling"):
        attribute_delete(user=users["tester"], attribute=attribute)
    assert Attribute.objects.filter(pk=attribute.pk).exists()


def test_planning_without_attributes_is_refused_before_it_is_sent(planning):
    assert not Attribute.objects.filter(cycle_report=planning).exists()
    assert "Add at least one attribute" in artifact_refusal(planning, Phase.PLANNING)
