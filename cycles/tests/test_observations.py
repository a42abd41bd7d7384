"""Observation Management: drafting from failed cells, shaping, the version, the remediation lifecycle."""
import datetime as dt

import pytest
from django.utils import timezone

from cycles.exceptions import ApplicationError, ConflictError, PermissionDeniedError, PhaseLockedError
from cycles.models import (
    CycleReport,
    FailureKind,
    Observation,
    Phase,
    PhaseState,
    Sample,
    TestResult,
    TestResultValue as ResultValue,
)
from cycles.services.artifacts import phase_artifact_items
from cycles.services.observations import (
    observation_create,
    observation_merge,
    observation_remediation_move,
    observation_split,
    observation_update,
    observations_draft,
    observations_open,
    observations_visible,
)
from cycles.testing import artifact_refusal
from cycles.tests.test_requests import PDF, requests_ready, upload
from synapse.audit import audit_events_for
from versioning.services import version_create, version_decide

KEYS = ("S-001", "S-002", "S-003")
# (sample, attribute) -> failure kind; every other cell passes.
FAILURES = {("S-002", "balance"): FailureKind.MISMATCH, ("S-003", "balance"): FailureKind.MISMATCH,
            ("S-001", "customer_name"): FailureKind.MISSING}


# --- builders shared with test_final_report and test_package ----------------------------------------


def enter(cycle_report, phase):
    PhaseState.objects.filter(cycle_report=cycle_report, status=PhaseState.Status.ACTIVE).update(
        status=PhaseState.Status.COMPLETED, completed_at=timezone.now())
    PhaseState.objects.update_or_create(cycle_report=cycle_report, phase=phase,
                                        defaults={"status": PhaseState.Status.ACTIVE})
    CycleReport.objects.filter(pk=cycle_report.pk).update(phase=phase)
    cycle_report.phase = phase


def build_tested_report(cycle_report, users, failures=FAILURES):
    """Requests with evidence (two versions of one file), samples and a test matrix with some failures."""
    from cycles.services.requests import evidence_upload

    requests = requests_ready(cycle_report, users)
    request = requests[users["data_owner"].username]
    evidence_upload(user=users["data_owner"], request=request, files=[upload("ledger.pdf", PDF)])
    evidence_upload(user=users["data_owner"], request=request, files=[upload("ledger.pdf", PDF + b"% v2\n")])
    evidence_upload(user=users["data_owner2"], request=requests[users["data_owner2"].username],
                    files=[upload("names.pdf", PDF + b"% names\n")])
    attributes = {a.name: a for a in cycle_report.attributes.filter(scoping__in_scope=True)}
    for index, key in enumerate(KEYS):
        sample = Sample.objects.create(cycle_report=cycle_report, key=key, row_index=index,
                                       row_data={"account_id": key, "balance": str(100 * (index + 1))},
                                       method="random", seed=7, added_by=users["tester"])
        for name, attribute in attributes.items():
            kind = failures.get((key, name))
            TestResult.objects.create(
                cycle_report=cycle_report, sample=sample, attribute=attribute,
                expected_value=str(100 * (index + 1)), observed_value="0" if kind else str(100 * (index + 1)),
                result=ResultValue.FAIL if kind else ResultValue.PASS, failure_kind=kind or "",
                method="manual", attempt=1, tested_by=users["tester"], tested_at=timezone.now(),
            )
    enter(cycle_report, Phase.OBSERVATIONS)
    return requests


def fill_in(observation, users):
    observation_update(user=users["tester"], observation=observation, impact="Misstated balances.",
                       root_cause="Manual adjustments not posted.", remediation_owner=users["data_owner"].pk,
                       remediation_target_date="2026-12-31")


def approved_observations(cycle_report, users):
    """Drafted, filled in, versioned and approved, then opened (as the workflow does)."""
    observations_draft(cycle_report_id=cycle_report.pk)
    for observation in Observation.objects.filter(cycle_report=cycle_report):
        fill_in(observation, users)
    version = version_create(cycle_report=cycle_report, phase=Phase.OBSERVATIONS, author=users["tester"],
                             items=phase_artifact_items(cycle_report=cycle_report, phase=Phase.OBSERVATIONS))
    version_decide(version=version, user=users["owner"], approve=True)
    observations_open(cycle_report_id=cycle_report.pk)
    version.refresh_from_db()
    return version


@pytest.fixture
def tested(cycle_report, users, storage):
    build_tested_report(cycle_report, users)
    return cycle_report


def _by_title(cycle_report):
    return {o.title: o for o in Observation.objects.filter(cycle_report=cycle_report).prefetch_related("cells")}


# --- drafting ---------------------------------------------------------------------------------------


def test_failed_cells_are_grouped_by_attribute_and_kind_of_failure(tested):
    created, failed = observations_draft(cycle_report_id=tested.pk)
    assert (created, failed) == (2, 3)
    drafts = _by_title(tested)
    assert set(drafts) == {"balance: value differs from the source", "customer_name: value or evidence missing"}
    balance = drafts["balance: value differs from the source"]
    assert sorted(c.sample.key for c in balance.cells.all()) == ["S-002", "S-003"]
    assert (balance.type, balance.status, balance.drafted) == ("data_accuracy", "draft", True)
    assert "S-002, S-003" in balance.description
    assert drafts["customer_name: value or evidence missing"].type == "completeness"


def test_drafting_again_adds_only_new_failures_to_the_matching_observation(tested, users):
    observations_draft(cycle_report_id=tested.pk)
    assert observations_draft(cycle_report_id=tested.pk) == (0, 3)
    cell = TestResult.objects.get(sample__key="S-001", attribute__name="balance")
    TestResult.objects.filter(pk=cell.pk).update(result=ResultValue.FAIL, failure_kind=FailureKind.MISMATCH)
    assert observations_draft(cycle_report_id=tested.pk) == (0, 4)
    balance = _by_title(tested)["balance: value differs from the source"]
    assert sorted(c.sample.key for c in balance.cells.all()) == ["S-001", "S-002", "S-003"]
    assert Observation.objects.filter(cycle_report=tested).count() == 2


# --- shaping ----------------------------------------------------------------------------------------


def test_the_tester_edits_merges_and_splits_with_an_audit_trail(tested, users):
    observations_draft(cycle_report_id=tested.pk)
    drafts = _by_title(tested)
    balance = drafts["balance: value differs from the source"]
    names = drafts["customer_name: value or evidence missing"]
    observation_update(user=users["tester"], observation=balance, severity="critical", title="Balances wrong")
    balance.refresh_from_db()
    assert (balance.severity, balance.title) == ("critical", "Balances wrong")

    merged = observation_merge(user=users["tester"], observations=[names, balance])
    assert merged.pk == balance.pk  # the lowest number stays
    assert merged.cells.count() == 3 and merged.attribute is None
    assert not Observation.objects.filter(pk=names.pk).exists()

    s3 = merged.cells.get(sample__key="S-003").pk
    split = observation_split(user=users["tester"], observation=merged, cell_ids=[s3])
    assert [c.pk for c in split.cells.all()] == [s3] and merged.cells.count() == 2
    assert split.severity == "critical" and split.number > merged.number
    actions = [e.action for e in audit_events_for(merged)]
    assert {"observation.update", "observation.merge", "observation.split"} <= set(actions)


def test_a_number_an_observation_had_is_never_given_again(tested, users):
    """OBS-2 merged away must not come back as another finding: the audit trail names it."""
    observations_draft(cycle_report_id=tested.pk)
    first, second = Observation.objects.filter(cycle_report=tested).order_by("number")
    assert (first.number, second.number) == (1, 2)
    observation_merge(user=users["tester"], observations=[first, second])
    added = observation_create(user=users["tester"], cycle_report=tested, title="Found beside the cells")
    assert added.number == 3
    cell = first.cells.first().pk
    split = observation_split(user=users["tester"], observation=first, cell_ids=[cell])
    assert split.number == 4
    assert sorted(Observation.objects.filter(cycle_report=tested).values_list("number", flat=True)) == [1, 3, 4]


def test_bad_shaping_is_refused_with_a_clear_message(tested, users, make_user):
    observations_draft(cycle_report_id=tested.pk)
    balance = _by_title(tested)["balance: value differs from the source"]
    with pytest.raises(PermissionDeniedError):
        observation_update(user=users["tester2"], observation=balance, severity="low")
    with pytest.raises(ApplicationError, match="Severity must be one of"):
        observation_update(user=users["tester"], observation=balance, severity="urgent")
    passed = TestResult.objects.filter(cycle_report=tested, result=ResultValue.PASS).first()
    with pytest.raises(ApplicationError, match="only on failed cells"):
        observation_update(user=users["tester"], observation=balance, cell_ids=[passed.pk])
    with pytest.raises(ApplicationError, match="at least one cell"):
        observation_split(user=users["tester"], observation=balance,
                          cell_ids=list(balance.cells.values_list("pk", flat=True)))
    with pytest.raises(ApplicationError, match="at least two"):
        observation_merge(user=users["tester"], observations=[balance])
    with pytest.raises(ApplicationError, match="target date"):
        observation_update(user=users["tester"], observation=balance, remediation_target_date="31/12/2026")


def test_a_submission_needs_every_failed_cell_covered_and_every_observation_filled_in(tested, users):
    observations_draft(cycle_report_id=tested.pk)
    with pytest.raises(ApplicationError, match=r"OBS-1 needs impact, root cause, remediation owner, target date"):
        phase_artifact_items(cycle_report=tested, phase=Phase.OBSERVATIONS)
    assert artifact_refusal(tested, Phase.OBSERVATIONS)  # a submission is refused so before it is sent
    for observation in Observation.objects.filter(cycle_report=tested):
        fill_in(observation, users)
    balance = _by_title(tested)["balance: value differs from the source"]
    observation_update(user=users["tester"], observation=balance,
                       cell_ids=[balance.cells.filter(sample__key="S-002").get().pk])
    with pytest.raises(ApplicationError, match=r"1 failed cell\(s\) are in no observation: S-003 × balance"):
        phase_artifact_items(cycle_report=tested, phase=Phase.OBSERVATIONS)
    assert artifact_refusal(tested, Phase.OBSERVATIONS)  # a submission is refused so before it is sent
    manual = observation_create(user=users["tester"], cycle_report=tested, title="Late posting",
                                severity="low", description="d", impact="i", root_cause="r",
                                remediation_owner=users["data_owner"].pk, remediation_target_date="2027-01-31",
                                cell_ids=[TestResult.objects.get(sample__key="S-003", attribute__name="balance").pk])
    items = dict(phase_artifact_items(cycle_report=tested, phase=Phase.OBSERVATIONS))
    assert items[manual.code]["cells"] == ["S-003 × balance"]
    assert items["OBS-1"]["remediation_owner"] == users["data_owner"].username


def test_observations_are_locked_while_submitted_and_after_approval(tested, users):
    observations_draft(cycle_report_id=tested.pk)
    for observation in Observation.objects.filter(cycle_report=tested):
        fill_in(observation, users)
    version = version_create(cycle_report=tested, phase=Phase.OBSERVATIONS, author=users["tester"],
                             items=phase_artifact_items(cycle_report=tested, phase=Phase.OBSERVATIONS))
    balance = _by_title(tested)["balance: value differs from the source"]
    with pytest.raises(PhaseLockedError, match="submitted for approval"):
        observation_update(user=users["tester"], observation=balance, severity="low")
    version_decide(version=version, user=users["owner"], approve=True)
    with pytest.raises(PhaseLockedError, match="approved"):
        observation_update(user=users["tester"], observation=balance, severity="low")
    assert Observation.objects.get(pk=balance.pk).severity == balance.severity


# --- remediation lifecycle --------------------------------------------------------------------------


def test_after_approval_remediation_moves_open_in_progress_closed_with_who_and_when(tested, users):
    approved_observations(tested, users)
    balance = _by_title(tested)["balance: value differs from the source"]
    assert balance.status == Observation.Status.OPEN
    with pytest.raises(ConflictError, match="can't go from open to closed"):
        observation_remediation_move(user=users["data_owner"], observation=balance, to_status="closed", note="x")
    with pytest.raises(PermissionDeniedError):
        observation_remediation_move(user=users["data_owner2"], observation=balance, to_status="in_progress")
    observation_remediation_move(user=users["data_owner"], observation=balance, to_status="in_progress")
    with pytest.raises(ApplicationError, match="a note is required"):
        observation_remediation_move(user=users["data_owner"], observation=balance, to_status="closed")
    observation_remediation_move(user=users["data_owner"], observation=balance, to_status="closed",
                                 note="Adjustments posted and reconciled.")
    events = list(balance.remediation_events.values_list("from_status", "to_status", "actor__username"))
    assert events == [("draft", "open", None), ("open", "in_progress", "dataowner"),
                      ("in_progress", "closed", "dataowner")]
    assert balance.remediation_events.last().at.date() == dt.date.today()


def test_remediation_does_not_start_before_approval(tested, users):
    observations_draft(cycle_report_id=tested.pk)
    balance = _by_title(tested)["balance: value differs from the source"]
    with pytest.raises(ConflictError, match="not approved yet"):
        observation_remediation_move(user=users["tester"], observation=balance, to_status="in_progress")


def test_only_people_who_may_see_the_report_see_its_observations(tested, users):
    observations_draft(cycle_report_id=tested.pk)
    assert observations_visible(user=users["owner"], cycle_report=tested).count() == 2
    with pytest.raises(PermissionDeniedError):
        observations_visible(user=users["owner2"], cycle_report=tested)
