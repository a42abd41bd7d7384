"""Reconciliation of reviewed phases, the sample extension and sign-offs (workflows/reconciliation.py, issue 10).

The rows are written the way the workflow's own activities write them (keyed by the decision that asked),
as if the worker died after the activity committed and the workflow never took in its result; the
reconciliation sends the step again with that decision's id and the workflow moves on. What the
database can't settle raises an alert.
"""
from __future__ import annotations

import uuid

import pytest

from cycles.models import CycleReport, FinalReport, PhaseState, SampleExtension, SignOff
from cycles.services.artifacts import phase_artifact_items
from versioning.models import Approval, Version, VersionStatus
from versioning.services import version_create, version_decide
from workflows.models import WorkflowAlert, WorkflowDecision
from workflows.reconciliation import steps_reconcile
from workflows.services import workflow_start, workflow_submit_version, workflows_reconcile
from workflows.temporal.contracts import (
    FINALIZE,
    PHASE_ORDER,
    PLANNING,
    TEST_EXECUTION,
    UPDATE_DECIDE_EXTENSION,
    UPDATE_SIGN_OFF,
    ReportStatus,
    State,
)
from workflows.testing import wait_until
from workflows.tests.test_integration import wait_state

AFTER_PLANNING = [p for p in PHASE_ORDER if p != PLANNING]


def fresh(cycle_report) -> CycleReport:
    return CycleReport.objects.select_related("report__lob", "cycle", "tester").get(pk=cycle_report.pk)


@pytest.mark.temporal
@pytest.mark.django_db(transaction=True)
def test_a_version_submitted_then_approved_behind_the_workflows_back_is_repaired(temporal, users, cycle,
                                                                                  cycle_report):
    workflow_start(user=users["manager"], cycle=cycle, skip_phases=AFTER_PLANNING)
    cycle_report = fresh(cycle_report)
    wait_state(users["tester"], cycle_report, State.AWAITING_SUBMISSION, PLANNING)

    # create_version committed its version, the workflow never heard back.
    version = version_create(cycle_report=cycle_report, phase=PLANNING, author=users["tester"],
                             items=phase_artifact_items(cycle_report=cycle_report, phase=PLANNING),
                             request_id=uuid.uuid4())
    report = workflows_reconcile()
    assert [r.split(": ", 1)[1] for r in report.repaired] == [
        "planning version 1 submitted (Version 1 submitted for approval.)"], report
    status = wait_state(users["tester"], cycle_report, State.AWAITING_DECISION, PLANNING)
    assert status.current_version_id == version.pk

    # record_decision committed the approval, the workflow never heard back.
    version_decide(version=version, user=users["owner"], approve=True, request_id=uuid.uuid4())
    report = workflows_reconcile()
    assert [r.split(": ", 1)[1] for r in report.repaired] == [
        "planning version 1 approved (Version 1 approved.)"], report
    wait_until(lambda: PhaseState.objects.filter(cycle_report=cycle_report, phase=PLANNING,
                                                 status="completed").exists(), what="planning completed")
    # Nothing written twice: the activities found the rows the first time made.
    assert Version.objects.filter(cycle_report=cycle_report, phase=PLANNING).count() == 1
    assert Approval.objects.filter(version=version).count() == 1
    assert not WorkflowAlert.objects.exists()
    assert set(WorkflowDecision.objects.values_list("status", flat=True)) == {WorkflowDecision.Status.DELIVERED}


@pytest.mark.temporal
@pytest.mark.django_db(transaction=True)
def test_a_version_decided_outside_the_workflow_raises_an_alert(temporal, users, cycle, cycle_report):
    workflow_start(user=users["manager"], cycle=cycle, skip_phases=AFTER_PLANNING)
    cycle_report = fresh(cycle_report)
    wait_state(users["tester"], cycle_report, State.AWAITING_SUBMISSION, PLANNING)
    outcome = workflow_submit_version(user=users["tester"], cycle_report=cycle_report, phase=PLANNING)
    assert outcome.delivered, outcome.message
    version = Version.objects.get(pk=outcome.result.version_id)
    # Approved without any decision (no request id): nothing the workflow could be told that it would trust.
    version_decide(version=version, user=users["owner"], approve=True)

    report = workflows_reconcile()
    assert report.repaired == [] and len(report.alerts) == 1, report
    alert = WorkflowAlert.objects.get()
    assert alert.kind == "reconciliation" and "still waits for its decision" in alert.message
    assert wait_state(users["tester"], cycle_report, State.AWAITING_DECISION, PLANNING)
    # Once per key: the next round doesn't raise it again.
    workflows_reconcile()
    assert WorkflowAlert.objects.count() == 1


# --- the comparison on its own, for the steps at the end of a report's life ----------------------------------


def status(cycle_report, **fields) -> ReportStatus:
    return ReportStatus(cycle_report_id=cycle_report.pk, phase=fields.pop("phase"), state="", waiting_on="",
                        **fields)


@pytest.mark.django_db
def test_an_extension_decided_in_the_database_is_sent_again_with_its_decision(cycle_report, users):
    extension = SampleExtension.objects.create(cycle_report=cycle_report, number=1, allowed_deviations=0,
                                               current_size=5, new_size=8, sample_keys=["A1", "A2", "A3"])
    waiting = status(cycle_report, phase=TEST_EXECUTION, active={TEST_EXECUTION: State.AWAITING_EXTENSION_DECISION},
                     pending_extension_id=extension.pk)
    assert steps_reconcile(cycle_report=cycle_report, status=waiting).repairs == []  # still proposed: all agree

    decision_id = uuid.uuid4()
    SampleExtension.objects.filter(pk=extension.pk).update(
        status=SampleExtension.Status.REJECTED, decided_by=users["owner"], decision_note="Known timing difference",
        decision_id=decision_id)
    found = steps_reconcile(cycle_report=cycle_report, status=waiting)
    [repair] = found.repairs
    assert (repair.update_name, repair.user_id, found.alerts) == (UPDATE_DECIDE_EXTENSION, users["owner"].pk, [])
    inp = repair.make_input("new-decision")
    assert (inp.decision_id, inp.extension_id, inp.approve, inp.notes) == (
        str(decision_id), extension.pk, False, "Known timing difference")

    # Decided by a decision the workflow already applied: the database can't settle it, a person must.
    WorkflowDecision.objects.create(id=decision_id, workflow_id="wf", update_name=UPDATE_DECIDE_EXTENSION,
                                    payload={}, requested_by=users["owner"], status=WorkflowDecision.Status.DELIVERED)
    found = steps_reconcile(cycle_report=cycle_report, status=waiting)
    assert found.repairs == [] and [key for key, _ in found.alerts] == [f"extension-{extension.pk}-decided"]


@pytest.mark.django_db
def test_a_sign_off_recorded_in_the_database_is_sent_again_and_one_it_lacks_is_alerted(cycle_report, users):
    final = FinalReport.objects.create(cycle_report=cycle_report, number=1, data={}, html="", pdf_sha256="0" * 64,
                                       request_key="k:1")
    waiting = status(cycle_report, phase=FINALIZE, active={FINALIZE: State.AWAITING_REPORT_OWNER_SIGN_OFF},
                     final_report_id=final.pk, signatures=["test_manager"])
    SignOff.objects.create(final_report=final, role="test_manager", decision="signed", signer=users["manager"],
                           printed_name="Manager", meaning="Tested", request_id=uuid.uuid4())
    assert steps_reconcile(cycle_report=cycle_report, status=waiting).repairs == []

    decision_id = uuid.uuid4()
    SignOff.objects.create(final_report=final, role="report_owner", decision="signed", signer=users["owner"],
                           printed_name="Owner", meaning="Approved", request_id=decision_id)
    [repair] = steps_reconcile(cycle_report=cycle_report, status=waiting).repairs
    inp = repair.make_input("new-decision")
    assert (repair.update_name, inp.decision_id, inp.role, inp.user_id, inp.sign) == (
        UPDATE_SIGN_OFF, str(decision_id), "report_owner", users["owner"].pk, True)

    # The workflow has a signature the database doesn't: alert, no repair.
    ahead = status(cycle_report, phase=FINALIZE, active={FINALIZE: State.AWAITING_DATA_EXECUTIVE_SIGN_OFF},
                   final_report_id=final.pk, signatures=["test_manager", "report_owner", "data_executive"])
    found = steps_reconcile(cycle_report=cycle_report, status=ahead)
    assert found.repairs == [] and "data_executive" in found.alerts[0][1]


@pytest.mark.django_db
def test_a_submitted_version_the_workflow_already_had_is_left_alone(cycle_report, users):
    """After a send-back the workflow waits for a submission with the sent-back version known: no repair."""
    version = version_create(cycle_report=cycle_report, phase=PLANNING, author=users["tester"], items=[],
                             request_id=uuid.uuid4())
    waiting = status(cycle_report, phase=PLANNING, active={PLANNING: State.AWAITING_SUBMISSION},
                     versions={PLANNING: version.pk})
    assert steps_reconcile(cycle_report=cycle_report, status=waiting).repairs == []
    assert Version.objects.get(pk=version.pk).status == VersionStatus.SUBMITTED
