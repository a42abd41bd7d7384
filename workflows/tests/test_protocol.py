"""The protocol for a person's step (issue 10), with the real dev server, worker and database.

Each test reproduces one sequence the issue saw fail: the worker away while a data owner submits
and the tester accepts; the web process dying between the business change and the message; a
step delivered twice; one stuck workflow holding up another's messages; Temporal unreachable.
"""
from __future__ import annotations

import gc
import logging
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from cycles.models import Attribute, CycleReport, InformationRequest, PopulationFile, ScopingDecision
from cycles.services.requests import (
    data_owners_assign_bulk,
    evidence_review,
    evidence_upload,
    information_request_review,
    information_request_submit,
)
from synapse.models import AuditEvent
from workflows.models import WorkflowDecision, WorkflowStatusSnapshot, WorkflowStep
from workflows.services import (
    decision_deliver,
    decisions_deliver_pending,
    request_decision_store,
    workflow_complete_data_owners,
    workflow_request_reviewed,
    workflow_request_submitted,
    workflow_start,
    workflow_status,
    workflows_reconcile,
)
from workflows.temporal.client import BUSY, NO_WORKER, UNREACHABLE, bridge
from workflows.temporal.contracts import (
    DATA_OWNER_IDENTIFICATION,
    REQUEST_FOR_INFORMATION,
    TEST_EXECUTION,
    UPDATE_REQUEST_REVIEWED,
    State,
)
from workflows.testing import point_settings_at, wait_until

pytestmark = [pytest.mark.temporal, pytest.mark.django_db(transaction=True)]
SKIP = ["planning", "data_profiling", "scoping", "sample_selection"]


def fresh(cycle_report) -> CycleReport:
    return CycleReport.objects.select_related("report__lob", "cycle", "tester").get(pk=cycle_report.pk)


def scope(cycle_report, users) -> None:
    """What Planning, Profiling and Scoping leave behind (the workflow skips them)."""
    PopulationFile.objects.create(
        cycle_report=cycle_report, file="population.csv", original_name="population.csv", format="csv",
        size_bytes=1, sha256="0" * 64, row_count=10, columns=["account_id", "balance"],
        status=PopulationFile.Status.PROFILED, uploaded_by=users["tester"],
    )
    for name in ("account_id", "balance"):
        attribute = Attribute.objects.create(cycle_report=cycle_report, name=name)
        ScopingDecision.objects.create(attribute=attribute, in_scope=True, rationale="Scoped",
                                       decided_by=users["tester"])


def live(user, cycle_report):
    status = workflow_status(user=user, cycle_report=fresh(cycle_report))
    return status if status and not status.unavailable else None


def reach_requests(users, cycle, cycle_report) -> InformationRequest:
    """Start the workflow and take the report to Requests for Information; return its one request."""
    scope(cycle_report, users)
    workflow_start(user=users["manager"], cycle=cycle, skip_phases=SKIP)
    wait_until(lambda: (s := live(users["tester"], cycle_report))
               and s.active.get(DATA_OWNER_IDENTIFICATION) == State.AWAITING_ASSIGNMENT, what="data owners asked")
    data_owners_assign_bulk(user=users["executive"], cycle_report=fresh(cycle_report), data_owner=users["data_owner"],
                            attribute_ids=list(Attribute.objects.filter(cycle_report=cycle_report)
                                               .values_list("pk", flat=True)))
    workflow_complete_data_owners(user=users["executive"], cycle_report=fresh(cycle_report))
    wait_until(lambda: (s := live(users["tester"], cycle_report))
               and s.active.get(REQUEST_FOR_INFORMATION) == State.AWAITING_EVIDENCE, what="requests sent")
    # The request's notice is sent too: the workflow waits on the data owner alone, no activity of it left
    # running for the worker that the tests stop next to cancel (its retry would wait for a worker instead).
    wait_until(lambda: WorkflowStep.objects.filter(execution__cycle_report=cycle_report, activity_type="request_notify",
                                                   status=WorkflowStep.Status.COMPLETED).exists(),
               what="the data owner notified")
    return InformationRequest.objects.get(cycle_report=cycle_report)


def upload(users, request) -> None:
    evidence_upload(user=users["data_owner"], request=request,
                    files=[SimpleUploadedFile(f"ledger-{uuid.uuid4().hex[:6]}.csv", b"account_id\nA1\n")])


def accept_all(users, request) -> InformationRequest:
    for evidence in request.evidence.filter(status="pending"):
        evidence_review(user=users["tester"], evidence=evidence, accept=True)
    return information_request_review(user=users["tester"], request=request)


def at_test_execution(users, cycle_report):
    return wait_until(lambda: (s := live(users["tester"], cycle_report)) and s.phase == TEST_EXECUTION
                      and s.state == State.AWAITING_SUBMISSION and s, what="Test Execution", timeout=60)


@pytest.fixture
def harness(temporal_harness, settings, transactional_db, cycle, request):
    """The dev server with settings pointed at it and no worker yet (tests start and stop their own)."""
    point_settings_at(temporal_harness, settings)
    settings.MEDIA_ROOT = str(request.getfixturevalue("tmp_path"))
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    bridge.reset()
    yield temporal_harness
    bridge.reset()

    async def terminate():
        try:
            await temporal_harness.client.get_workflow_handle(f"cycle-{cycle.pk}").terminate("test over")
        except Exception:  # noqa: BLE001 - never started, or already closed
            pass

    temporal_harness.call(terminate())


def test_worker_away_while_the_data_owner_submits_and_the_tester_accepts(harness, settings, users, cycle,
                                                                         cycle_report):
    with harness.worker(settings.TEMPORAL_TASK_QUEUE):
        request = reach_requests(users, cycle, cycle_report)

    # The worker is gone: people keep working; each step answers "saved" with the true reason.
    upload(users, request)
    request = information_request_submit(user=users["data_owner"], request=request)
    submitted = workflow_request_submitted(user=users["data_owner"], request=request)
    assert not submitted.delivered and submitted.reason == NO_WORKER
    assert "No workflow worker is running" in submitted.message and "saved" in submitted.message
    # The status pages show the last known status, with its age, instead of failing.
    stale = workflow_status(user=users["tester"], cycle_report=fresh(cycle_report))
    assert stale.active[REQUEST_FOR_INFORMATION] == State.AWAITING_EVIDENCE and stale.as_of and stale.unavailable
    request = accept_all(users, request)
    reviewed = workflow_request_reviewed(user=users["tester"], request=request)
    assert not reviewed.delivered
    assert WorkflowDecision.objects.filter(status=WorkflowDecision.Status.PENDING).count() == 2

    # The worker returns; the outbox delivers both in order, and the workflow takes what they say.
    with harness.worker(settings.TEMPORAL_TASK_QUEUE):
        bridge.reset()
        assert decisions_deliver_pending() == 2
        at_test_execution(users, cycle_report)
    decisions = WorkflowDecision.objects.filter(subject=f"information_request:{request.pk}").order_by("created_at")
    assert [(d.update_name, d.status) for d in decisions] == [
        ("request_submitted", WorkflowDecision.Status.DELIVERED),
        ("request_reviewed", WorkflowDecision.Status.DELIVERED),
    ]
    assert [d.payload["status"] for d in decisions] == ["submitted", "accepted"]
    # The audit trail says what was asked, and separately what the workflow accepted.
    for name in ("request_submitted", "request_reviewed"):
        assert AuditEvent.objects.filter(action=f"decision.{name}").count() == 1
        assert AuditEvent.objects.filter(action=f"decision.{name}.accepted").count() == 1
    assert not AuditEvent.objects.filter(action__endswith=".refused").exists()


def test_web_dies_after_the_commit_and_the_outbox_delivers_the_step(harness, settings, users, cycle, cycle_report):
    with harness.worker(settings.TEMPORAL_TASK_QUEUE):
        request = reach_requests(users, cycle, cycle_report)
        upload(users, request)
        # The web process commits the submission and dies before telling the workflow anything.
        request = information_request_submit(user=users["data_owner"], request=request)
        stored = WorkflowDecision.objects.get(update_name="request_submitted")
        assert stored.status == WorkflowDecision.Status.PENDING and stored.payload["status"] == "submitted"
        # The worker's outbox delivers it; the tester's review then goes through.
        assert decisions_deliver_pending() == 1
        request = accept_all(users, request)
        outcome = workflow_request_reviewed(user=users["tester"], request=request)
        assert outcome.delivered and outcome.decision.status == WorkflowDecision.Status.DELIVERED
        at_test_execution(users, cycle_report)


def test_a_step_already_applied_is_recognised_not_refused(harness, settings, users, cycle, cycle_report):
    with harness.worker(settings.TEMPORAL_TASK_QUEUE):
        request = reach_requests(users, cycle, cycle_report)
        upload(users, request)
        request = information_request_submit(user=users["data_owner"], request=request)
        first = workflow_request_submitted(user=users["data_owner"], request=request)
        assert first.decision.status == WorkflowDecision.Status.DELIVERED
        # The same step again under another id (a retry after a lost answer, a repair): already applied.
        again = request_decision_store(user=users["data_owner"], request=request, update_name="request_submitted")
        outcome = decision_deliver(decision=again)
        assert outcome.delivered and outcome.result.duplicate
        assert WorkflowDecision.objects.get(pk=again.pk).status == WorkflowDecision.Status.DUPLICATE
        assert AuditEvent.objects.filter(action="decision.request_submitted.already_applied").count() == 1
        # Delivering a decision that was answered again changes nothing (same update id).
        assert decision_deliver(decision=first.decision).decision.status == WorkflowDecision.Status.DELIVERED
        assert not WorkflowDecision.objects.filter(status=WorkflowDecision.Status.REJECTED).exists()


def test_earlier_steps_of_a_workflow_go_first(harness, settings, users, cycle, cycle_report):
    with harness.worker(settings.TEMPORAL_TASK_QUEUE):
        request = reach_requests(users, cycle, cycle_report)
    upload(users, request)
    request = information_request_submit(user=users["data_owner"], request=request)  # stored, not delivered
    request = accept_all(users, request)
    reviewed = WorkflowDecision.objects.get(update_name=UPDATE_REQUEST_REVIEWED)
    with harness.worker(settings.TEMPORAL_TASK_QUEUE):
        # Delivering the review first has the workflow take the submission it follows; the submission's answer
        # is its own sender's to wait for (here the outbox's), not the review's. The workflow's task may first
        # go to the stopped worker's sticky queue and reach this worker only when that times out (the SDK's
        # sticky_queue_schedule_to_start_timeout, 10 s): the deadline leaves room for it.
        outcome = decision_deliver(decision=reviewed, deadline=40)
        assert outcome.delivered, outcome.message
        submitted = WorkflowDecision.objects.get(update_name="request_submitted")
        workflow_id = WorkflowDecision.objects.get(pk=reviewed.pk).workflow_id

        async def accepted_in_order():
            history = await harness.client.get_workflow_handle(workflow_id).fetch_history()
            return [e.workflow_execution_update_accepted_event_attributes.accepted_request.meta.update_id
                    for e in history.events if e.HasField("workflow_execution_update_accepted_event_attributes")]

        accepted = harness.call(accepted_in_order())
        assert accepted.index(str(submitted.pk)) < accepted.index(str(reviewed.pk))

        def answered() -> bool:
            decisions_deliver_pending(deadline=5)  # the outbox collects the submission's answer
            return WorkflowDecision.objects.get(pk=submitted.pk).status == WorkflowDecision.Status.DELIVERED

        wait_until(answered, what="the submission's answer")
        at_test_execution(users, cycle_report)


def test_one_stuck_workflow_does_not_hold_up_another(harness, settings, users, cycle, cycle_report, lob):
    from cycles.models import Report, TestCycle

    stuck_queue = settings.TEMPORAL_TASK_QUEUE
    with harness.worker(stuck_queue):
        stuck_request = reach_requests(users, cycle, cycle_report)
    # A second cycle on a queue whose worker runs.
    other_cycle = TestCycle.objects.create(name="Q2 2026", period_start=cycle.period_start,
                                           period_end=cycle.period_end, test_manager=users["manager"])
    other_report = Report.objects.create(name="Other report", regulation="FR Y-9C", lob=lob, owner=users["owner"],
                                         frequency="quarterly", fields=cycle_report.report.fields)
    other = CycleReport.objects.create(cycle=other_cycle, report=other_report, tester=users["tester"])
    settings.TEMPORAL_TASK_QUEUE = f"test-{uuid.uuid4().hex[:12]}"
    with harness.worker(settings.TEMPORAL_TASK_QUEUE):
        other_request = reach_requests(users, other_cycle, other)
        # The stuck workflow's message is older; the healthy one's is delivered in the same round.
        upload(users, stuck_request)
        information_request_submit(user=users["data_owner"], request=stuck_request)
        upload(users, other_request)
        information_request_submit(user=users["data_owner"], request=other_request)
        assert decisions_deliver_pending(deadline=2) == 1
        assert WorkflowDecision.objects.get(subject=f"information_request:{other_request.pk}").status == (
            WorkflowDecision.Status.DELIVERED)
        assert WorkflowDecision.objects.get(subject=f"information_request:{stuck_request.pk}").status == (
            WorkflowDecision.Status.PENDING)

    async def terminate():
        await harness.client.get_workflow_handle(f"cycle-{other_cycle.pk}").terminate("test over")

    harness.call(terminate())


def test_temporal_unreachable_answers_at_once_with_the_stored_status(harness, settings, users, cycle, cycle_report,
                                                                     caplog):
    with harness.worker(settings.TEMPORAL_TASK_QUEUE):
        request = reach_requests(users, cycle, cycle_report)
    assert WorkflowStatusSnapshot.objects.filter(cycle_report=cycle_report).exists()
    settings.TEMPORAL_ADDRESS = "127.0.0.1:9"  # nothing listens there
    upload(users, request)
    request = information_request_submit(user=users["data_owner"], request=request)
    outcome = workflow_request_submitted(user=users["data_owner"], request=request)
    assert not outcome.delivered and outcome.reason == UNREACHABLE
    assert "can't be reached" in outcome.message
    # The breaker is open: the next call doesn't try (and so doesn't wait) again.
    assert bridge.open_reason() == UNREACHABLE
    status = workflow_status(user=users["tester"], cycle_report=fresh(cycle_report))
    assert status.unavailable.startswith("The workflow service (Temporal) can't be reached")
    assert status.active[REQUEST_FOR_INFORMATION] == State.AWAITING_EVIDENCE
    # Reconciliation can't ask Temporal either: it says so and changes nothing.
    report = workflows_reconcile()
    assert report.unavailable and not report.repaired
    gc.collect()
    assert "never retrieved" not in caplog.text


def test_update_timeouts_leave_no_unretrieved_task(harness, settings, users, cycle, cycle_report, caplog):
    with harness.worker(settings.TEMPORAL_TASK_QUEUE):
        request = reach_requests(users, cycle, cycle_report)
    upload(users, request)
    caplog.set_level(logging.ERROR, logger="asyncio")
    request = information_request_submit(user=users["data_owner"], request=request)
    outcome = workflow_request_submitted(user=users["data_owner"], request=request)
    assert not outcome.delivered and outcome.reason in (NO_WORKER, BUSY)
    gc.collect()
    assert "never retrieved" not in caplog.text


def test_reconciliation_repairs_a_workflow_that_missed_a_step(harness, settings, users, cycle, cycle_report):
    with harness.worker(settings.TEMPORAL_TASK_QUEUE):
        request = reach_requests(users, cycle, cycle_report)
        upload(users, request)
        request = information_request_submit(user=users["data_owner"], request=request)
        # As left by the code before issue 10: the message was refused, the database moved on.
        WorkflowDecision.objects.filter(update_name="request_submitted").update(
            status=WorkflowDecision.Status.REJECTED, error="The request is accepted.")
        request = accept_all(users, request)
        WorkflowDecision.objects.filter(update_name="request_reviewed").update(
            status=WorkflowDecision.Status.REJECTED, error="The request is open, not waiting for review.")
        assert live(users["tester"], cycle_report).requests == {str(request.pk): "open"}

        report = workflows_reconcile()
        assert report.checked == 1 and len(report.repaired) == 1, report
        at_test_execution(users, cycle_report)
