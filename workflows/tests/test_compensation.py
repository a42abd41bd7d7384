"""Compensation by each phase's strategy, the retry log and alert auto-resolution, with failures injected
into the real activities on the time-skipping server (the real worker, workflows and database)."""
from __future__ import annotations

import typing
from datetime import timedelta

import pytest
from django.core import mail
from rest_framework.test import APIClient
from temporalio import activity
from temporalio.service import RPCError

from cycles.models import (
    Attribute,
    CycleReport,
    PhaseState,
    Sample,
    SamplingPlan,
    ScopingDecision,
)
from synapse.exceptions import ServiceUnavailableError
from synapse.testing import problem
from workflows.models import (
    CompensationEntry,
    WorkflowAlert,
    WorkflowRetry,
    WorkflowStep,
)
from workflows.services import workflow_remove_report, workflow_start, workflow_status
from workflows.temporal import retry
from workflows.temporal.activities import ALL_ACTIVITIES
from workflows.temporal.contracts import PHASE_ORDER, ActivityName, State
from workflows.testing import TemporalHarness, as_time_runs, point_settings_at, wait_until

pytestmark = [pytest.mark.temporal, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def time_skipping_harness():
    """A time-skipping server of this module's own: workflows left waiting for an admin here (with timers,
    retries and updates in flight) must not hold the clock of the session's shared server."""
    harness = TemporalHarness(time_skipping=True)
    harness.start()
    yield harness
    harness.stop()


DB_ATTEMPTS = retry.DATABASE.maximum_attempts
DB_DELAYS = [1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0, 10.0, 10.0]  # 1 s doubling, at most 10 s apart


class InjectedFault(RuntimeError):
    """A retryable failure, as a dropped connection or a refused mail server would give."""


def failing(name: str, times: int):
    """The real activity `name`, failing its first `times` calls with a retryable error."""
    real = next(a for a in ALL_ACTIVITIES if activity._Definition.from_callable(a).name == name)
    calls = {"n": 0}

    def run(inp):
        calls["n"] += 1
        if calls["n"] <= times:
            raise InjectedFault(f"injected failure {calls['n']} of {name}")
        return real(inp)

    run.__annotations__ = typing.get_type_hints(real)
    return activity.defn(name=name)(run), calls


@pytest.fixture
def run_with_fault(time_skipping_harness, settings, request, cycle):
    """Start a worker whose activity `name` fails `times` times; end the cycle's workflows afterwards."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

    def start(name: str, times: int = 3):
        queue = point_settings_at(time_skipping_harness, settings)
        fault, calls = failing(name, times)
        activities = [fault if activity._Definition.from_callable(a).name == name else a for a in ALL_ACTIVITIES]
        worker = time_skipping_harness.worker(queue, activities=activities)
        worker.__enter__()
        request.addfinalizer(lambda: worker.__exit__(None, None, None))
        return calls

    yield start

    async def terminate():
        try:
            await time_skipping_harness.client.get_workflow_handle(f"cycle-{cycle.pk}").terminate("test over")
        except RPCError:
            pass

    time_skipping_harness.call(terminate())


def status_wf(cycle_report) -> str:
    return CycleReport.objects.get(pk=cycle_report.pk).workflow_id


def skip_all_but(*phases):
    return [p for p in PHASE_ORDER if p not in phases]


def live(user, cycle_report):
    """The report's status as its page shows it; None while the workflow is too busy to answer the query in time
    (the page says "not known yet" then; a wait asks again)."""
    try:
        return workflow_status(user=user, cycle_report=CycleReport.objects.get(pk=cycle_report.pk))
    except ServiceUnavailableError:
        return None


def wait_failed(user, cycle_report, phase, *, harness: TemporalHarness | None = None):
    """The phase failed and waits for an admin; with `harness`, the server's clock runs meanwhile (as_time_runs)."""
    def failed():
        return (s := live(user, cycle_report)) and s.active.get(phase) == "failed" and s

    return wait_until(as_time_runs(harness, failed) if harness else failed, timeout=60,
                      what=f"{phase} failed and waiting for an admin")


def test_rollback_scoping_logs_retries_alerts_admins_and_retry_moves_on(
    time_skipping_harness, users, cycle, cycle_report, run_with_fault,
):
    for name in ("account_id", "balance"):
        attribute = Attribute.objects.create(cycle_report=cycle_report, name=name, risk_score=8)
        ScopingDecision.objects.create(attribute=attribute, in_scope=True, rationale="earlier", decided_by=users["tester"])
    calls = run_with_fault(ActivityName.RECOMMEND_SCOPE, times=DB_ATTEMPTS)
    workflow_start(user=users["manager"], cycle=cycle, skip_phases=skip_all_but("scoping"))

    status = wait_failed(users["tester"], cycle_report, "scoping", harness=time_skipping_harness)
    assert status.waiting_on == "Admin" and f"injected failure {DB_ATTEMPTS}" in status.last_error
    entry = CompensationEntry.objects.get(cycle_report=cycle_report)
    assert (entry.phase, entry.strategy, entry.trigger, entry.outcome) == ("scoping", "rollback", "phase_failed", "done")
    assert entry.undone == {"scoping_decisions": 2}
    assert not ScopingDecision.objects.filter(attribute__cycle_report=cycle_report).exists()

    # The retry log: every attempt but the last was retried, after the database policy's delay.
    retries = list(WorkflowRetry.objects.filter(activity_type=ActivityName.RECOMMEND_SCOPE).order_by("attempt"))
    assert [(r.attempt, r.delay_seconds, r.max_attempts) for r in retries] == [
        (a, DB_DELAYS[a - 1], DB_ATTEMPTS) for a in range(1, DB_ATTEMPTS)]
    assert "injected failure 1" in retries[0].error
    step = WorkflowStep.objects.get(activity_type=ActivityName.RECOMMEND_SCOPE)
    assert step.status == WorkflowStep.Status.FAILED and step.attempt == DB_ATTEMPTS

    alert = WorkflowAlert.objects.get(kind="phase_failed", cycle_report=cycle_report)
    assert alert.resolved_at is None and alert.severity == "critical"
    assert any("[Synapse alert] phase_failed" in m.subject and users["admin"].email in m.to for m in mail.outbox)

    # The cause is gone (the fault only fired three times): the admin retries and the phase goes on.
    # The API shows the retry log and the compensation log, and retries for an admin only.
    api = APIClient()
    api.force_login(users["manager"])
    logged = api.get("/api/v1/workflow/retries/", {"workflow_id": status_wf(cycle_report)}).json()["results"]
    assert [(r["attempt"], r["delay_seconds"]) for r in logged] == [
        (a, DB_DELAYS[a - 1]) for a in range(DB_ATTEMPTS - 1, 0, -1)]
    assert api.get("/api/v1/workflow-compensation/").json()["results"][0]["strategy"] == "rollback"
    refused = api.post(f"/api/v1/workflow/retry/{status_wf(cycle_report)}", {"reason": "try"}, format="json")
    problem(refused, 403, "permission_denied")
    api.force_login(users["admin"])
    assert api.post(f"/api/v1/workflow/retry/{status_wf(cycle_report)}", {}, format="json").status_code == 400
    retried = api.post(f"/api/v1/workflow/retry/{status_wf(cycle_report)}", {"reason": "database back"},
                       format="json")
    assert retried.status_code == 200, retried.content
    assert retried.json()["message"] == "scoping runs again from its start."
    wait_until(lambda: (s := live(users["tester"], cycle_report))
               and s.active.get("scoping") == State.AWAITING_SUBMISSION, what="scoping waiting for the tester again")
    assert calls["n"] == DB_ATTEMPTS + 1  # every failed attempt, then the retry that worked
    assert ScopingDecision.objects.filter(attribute__cycle_report=cycle_report).count() == 2
    alert.refresh_from_db()
    assert alert.resolved_at is not None


def test_partial_rollback_sampling_keeps_hand_picked_samples(
    time_skipping_harness, users, cycle, cycle_report, run_with_fault,
):
    for key, method in (("A1", "random"), ("A2", "random"), ("A3", SamplingPlan.Method.MANUAL)):
        Sample.objects.create(cycle_report=cycle_report, key=key, row_index=int(key[1:]), row_data={}, method=method,
                              added_by=users["tester"], reason="picked" if method == "manual" else "")
    run_with_fault(ActivityName.PREPARE_SAMPLING, times=DB_ATTEMPTS)
    workflow_start(user=users["manager"], cycle=cycle, skip_phases=skip_all_but("sample_selection"))

    wait_failed(users["tester"], cycle_report, "sample_selection", harness=time_skipping_harness)
    entry = CompensationEntry.objects.get(cycle_report=cycle_report)
    assert (entry.strategy, entry.outcome, entry.undone) == ("partial_rollback", "done", {"drawn_samples": 2})
    assert list(Sample.objects.filter(cycle_report=cycle_report).values_list("key", flat=True)) == ["A3"]


def test_notify_data_owner_identification_tells_the_people_involved(
    time_skipping_harness, users, cycle, cycle_report, run_with_fault,
):
    run_with_fault(ActivityName.NOTIFY_DATA_EXECUTIVE, times=3)
    workflow_start(user=users["manager"], cycle=cycle, skip_phases=skip_all_but("data_owner_identification"))
    # The email policy waits 10 s between attempts: let the server's clock run.
    wait_until(lambda: WorkflowRetry.objects.filter(activity_type=ActivityName.NOTIFY_DATA_EXECUTIVE).exists(),
               what="first retry logged")
    time_skipping_harness.sleep(timedelta(seconds=30))

    wait_failed(users["tester"], cycle_report, "data_owner_identification")
    entry = CompensationEntry.objects.get(cycle_report=cycle_report)
    assert (entry.strategy, entry.outcome, entry.undone) == ("notify", "done", {"notified": 4})
    notice = next(m for m in mail.outbox if "was compensated" in m.subject)
    assert users["executive"].email in notice.to and users["tester"].email in notice.to
    assert [r.delay_seconds for r in WorkflowRetry.objects.order_by("attempt")] == [10.0, 10.0]


def test_skip_test_execution_records_manual_intervention_and_finishes(
    time_skipping_harness, users, cycle, cycle_report, run_with_fault,
):
    run_with_fault(ActivityName.SET_REPORT_STATUS, times=DB_ATTEMPTS)
    workflow_start(user=users["manager"], cycle=cycle, skip_phases=skip_all_but("test_execution"))

    wait_until(as_time_runs(time_skipping_harness, lambda: CycleReport.objects.get(pk=cycle_report.pk).status
                            == CycleReport.Status.COMPLETED),
               timeout=60, what="the report workflow finished past the skipped failure")
    entry = CompensationEntry.objects.get(cycle_report=cycle_report)
    assert (entry.phase, entry.strategy, entry.outcome) == ("test_execution", "skip", "manual")
    assert PhaseState.objects.get(cycle_report=cycle_report, phase="test_execution").status == "completed"
    assert not WorkflowAlert.objects.filter(kind="phase_failed").exists()


def test_removing_a_report_from_the_running_cycle_compensates_the_phase_it_was_in(
    users, cycle, cycle_report, run_with_fault,
):
    for name in ("account_id", "balance"):
        attribute = Attribute.objects.create(cycle_report=cycle_report, name=name, risk_score=8)
        ScopingDecision.objects.create(attribute=attribute, in_scope=True, rationale="earlier", decided_by=users["tester"])
    run_with_fault(ActivityName.RECOMMEND_SCOPE, times=0)  # the real worker, nothing failing
    workflow_start(user=users["manager"], cycle=cycle, skip_phases=skip_all_but("scoping"))
    wait_until(lambda: (s := live(users["tester"], cycle_report)) and s.active.get("scoping") == State.AWAITING_SUBMISSION,
               timeout=60, what="scoping waiting for the tester")
    assert not CompensationEntry.objects.exists()

    removed = workflow_remove_report(user=users["manager"], cycle_report=CycleReport.objects.get(pk=cycle_report.pk),
                                     reason="Moved to the Q4 cycle")
    assert removed.delivered, removed.message
    entry = wait_until(lambda: CompensationEntry.objects.filter(cycle_report=cycle_report).first(), timeout=60,
                       what="the removed report's phase compensated")
    assert (entry.phase, entry.strategy, entry.trigger, entry.outcome) == (
        "scoping", "rollback", "report_removed", "done")
    assert entry.triggered_by == users["manager"] and entry.undone == {"scoping_decisions": 2, "notified": 3}
    assert not ScopingDecision.objects.filter(attribute__cycle_report=cycle_report).exists()
    assert CycleReport.objects.get(pk=cycle_report.pk).status == CycleReport.Status.CANCELLED


def test_a_local_database_step_that_fails_once_is_retried_through_the_server(users, cycle, cycle_report, run_with_fault):
    """Setting the report's status runs as a local activity (one attempt inside the workflow task); when that
    attempt fails, the policy's other attempts run as an ordinary activity, and the phase goes on uncompensated."""
    calls = run_with_fault(ActivityName.SET_REPORT_STATUS, times=1)
    workflow_start(user=users["manager"], cycle=cycle, skip_phases=skip_all_but("test_execution"))

    wait_until(lambda: WorkflowStep.objects.filter(activity_type=ActivityName.SET_REPORT_STATUS,
                                                   status=WorkflowStep.Status.COMPLETED).exists(),
               timeout=60, what="the report's status set on the second attempt")
    assert calls["n"] == 2  # the failed local attempt, then the ordinary activity that worked
    assert not CompensationEntry.objects.filter(cycle_report=cycle_report).exists()
    steps = list(WorkflowStep.objects.filter(execution__cycle_report=cycle_report,
                                             activity_type=ActivityName.SET_REPORT_STATUS)
                 .order_by("started_at").values_list("status", "attempt"))
    assert steps == [(WorkflowStep.Status.FAILED, 1), (WorkflowStep.Status.COMPLETED, 1)]
