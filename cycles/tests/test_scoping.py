import pytest

from cycles.exceptions import ApplicationError, PermissionDeniedError, PhaseLockedError
from cycles.models import Attribute, PopulationFile, ProfileResult, ScopingDecision
from cycles.services.artifacts import phase_artifact_items
from cycles.services.scoping import scoping_decide, scoping_recommend
from cycles.testing import artifact_refusal
from synapse.models import AuditEvent
from versioning.services import version_create


@pytest.fixture
def scoping(cycle_report):
    cycle_report.phase = "scoping"
    cycle_report.save(update_fields=["phase"])
    return cycle_report


def attr(cycle_report, name, **fields):
    return Attribute.objects.create(cycle_report=cycle_report, name=name, **fields)


def test_recommend_scopes_keys_cdes_risky_and_failing_attributes(scoping, users):
    attr(scoping, "account_id", primary_key=True, risk_score=2)
    attr(scoping, "balance", cde=True, risk_score=3)
    attr(scoping, "rate", risk_score=6)
    attr(scoping, "branch", risk_score=1)
    attr(scoping, "region", risk_score=1)
    attr(scoping, "notes", risk_score=1)
    population = PopulationFile.objects.create(
        cycle_report=scoping, file="p.csv", original_name="p.csv", format="csv", size_bytes=1, sha256="0" * 64,
        uploaded_by=users["tester"], status="profiled",
    )
    for name, violations, rules in [("region", 0, {"mandatory": 4}), ("branch", 0, {"mandatory": 0}),
                                    ("notes", 0, {})]:
        ProfileResult.objects.create(
            population_file=population, column_name=name, attribute=Attribute.objects.get(name=name),
            dtype="str", row_count=10, null_count=0, distinct_count=3, format_violations=violations,
            rule_failures=rules,
        )

    assert scoping_recommend(cycle_report_id=scoping.pk) == 6
    decisions = {d.attribute.name: d for d in ScopingDecision.objects.select_related("attribute")}
    assert {n for n, d in decisions.items() if d.in_scope} == {"account_id", "balance", "rate", "region"}
    assert "profiling found failures" in decisions["region"].rationale
    # A rule checked with zero failures is not a failure.
    assert not decisions["branch"].in_scope and "clean profile" in decisions["branch"].rationale
    # Idempotent: a retried activity changes nothing, and keeps the tester's edits.
    scoping_decide(user=users["tester"], attribute=decisions["notes"].attribute, in_scope=True, rationale="Asked")
    assert scoping_recommend(cycle_report_id=scoping.pk) == 0
    assert ScopingDecision.objects.get(attribute__name="notes").in_scope


def test_decide_checks_permission_rationale_and_lock(scoping, users):
    key = attr(scoping, "account_id", primary_key=True)
    with pytest.raises(PermissionDeniedError):
        scoping_decide(user=users["tester2"], attribute=key, in_scope=True, rationale="")
    with pytest.raises(ApplicationError, match="Say why"):
        scoping_decide(user=users["tester"], attribute=key, in_scope=False, rationale=" ")
    with pytest.raises(ApplicationError, match="explain its exclusion"):
        scoping_decide(user=users["tester"], attribute=key, in_scope=False, rationale="not needed")
    assert not ScopingDecision.objects.exists()

    decision = scoping_decide(user=users["tester"], attribute=key, in_scope=True, rationale="Key of the report")
    event = AuditEvent.objects.for_object(decision).get()
    assert event.action == "scoping.decide" and event.after == {"in_scope": True, "rationale": "Key of the report"}

    version_create(cycle_report=scoping, phase="scoping", author=users["tester"],
                   items=phase_artifact_items(cycle_report=scoping, phase="scoping"))
    with pytest.raises(PhaseLockedError, match="submitted for approval"):
        scoping_decide(user=users["tester"], attribute=key, in_scope=False, rationale="A long enough reason, really")


def test_scoping_artifact_needs_a_decision_for_every_attribute_and_one_in_scope(scoping, users):
    a = attr(scoping, "account_id")
    b = attr(scoping, "balance")
    scoping_decide(user=users["tester"], attribute=a, in_scope=False, rationale="Out")
    with pytest.raises(ApplicationError, match="balance"):
        phase_artifact_items(cycle_report=scoping, phase="scoping")
    assert artifact_refusal(scoping, "scoping")  # a submission is refused so before it is sent
    scoping_decide(user=users["tester"], attribute=b, in_scope=False, rationale="Out")
    with pytest.raises(ApplicationError, match="At least one attribute"):
        phase_artifact_items(cycle_report=scoping, phase="scoping")
    assert artifact_refusal(scoping, "scoping")  # a submission is refused so before it is sent
    scoping_decide(user=users["tester"], attribute=b, in_scope=True, rationale="CDE")
    items = dict(phase_artifact_items(cycle_report=scoping, phase="scoping"))
    assert items["balance"]["in_scope"] is True and items["account_id"]["rationale"] == "Out"
