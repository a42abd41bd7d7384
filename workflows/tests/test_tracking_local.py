"""A local activity's step is one row written when it ends (it runs for milliseconds within a workflow task);
one that moves the run, and every ordinary activity's, is written when it starts and shown running."""
from __future__ import annotations

import types

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from workflows import tracking
from workflows.models import WorkflowExecution, WorkflowRetry, WorkflowStep, WorkflowTransition
from workflows.temporal.contracts import ActivityName, PhaseTransitionResult, WorkflowFinishedResult

pytestmark = pytest.mark.django_db


def info(activity_type: str, activity_id: str = "1", *, local: bool = True, attempt: int = 1):
    return types.SimpleNamespace(activity_type=activity_type, activity_id=activity_id, attempt=attempt,
                                 is_local=local, workflow_id="wf-local", workflow_run_id="run-1",
                                 workflow_type="Probe", retry_policy=None)


def _named(sql: str) -> str:
    """"INSERT table", "UPDATE table"; a data-modifying WITH (PostgreSQL) names both of its writes."""
    if sql.startswith("WITH"):
        inner, outer = sql.split(" AS (", 1)[1].split(") UPDATE ", 1)
        return f"{_named(inner)} + {_named('UPDATE ' + outer)}"
    words = sql.split()
    return f"{words[0]} {words[2 if words[0] == 'INSERT' else 1]}".replace('"', "")


def statements(captured) -> list[str]:
    return [_named(q["sql"]) for q in captured.captured_queries
            if "workflowstep" in q["sql"] or "workflowexecution" in q["sql"]]


# The writes of a step's end and its run's progress stamp: one round trip on PostgreSQL, two on SQLite.
ENDED = {
    "postgresql": ["INSERT workflows_workflowstep + UPDATE workflows_workflowexecution"],
    "sqlite": ["INSERT workflows_workflowstep", "UPDATE workflows_workflowexecution"],
}


def test_a_local_step_is_written_once_when_it_ends():
    step = tracking.step_started(info(ActivityName.COMPLETE_PHASE), types.SimpleNamespace(phase="scoping"))
    assert not WorkflowStep.objects.exists()  # nothing written while it runs
    with CaptureQueriesContext(connection) as captured:
        tracking.step_finished(step, None)
    assert statements(captured) == ENDED[connection.vendor]
    row = WorkflowStep.objects.get()
    assert (row.activity_type, row.phase, row.status, row.attempt) == (
        ActivityName.COMPLETE_PHASE, "scoping", WorkflowStep.Status.COMPLETED, 1)
    assert row.finished_at is not None and row.duration_ms is not None
    assert WorkflowExecution.objects.get(workflow_id="wf-local").last_progress_at == row.finished_at

    # Run again after its workflow task was lost (the same activity id): the row is brought up to date.
    again = tracking.step_started(info(ActivityName.COMPLETE_PHASE), types.SimpleNamespace(phase="scoping"))
    tracking.step_finished(again, None)
    assert WorkflowStep.objects.count() == 1 and again.pk == row.pk


def test_a_local_step_that_fails_is_written_with_its_error_and_its_retry_logged():
    step = tracking.step_started(info(ActivityName.RECORD_DECISION, "7"), types.SimpleNamespace(phase="planning"))
    tracking.step_failed(step, RuntimeError("database unavailable"), final=False)
    tracking.retry_logged(step, info(ActivityName.RECORD_DECISION, "7"), RuntimeError("database unavailable"),
                          delay_seconds=1.0)
    row = WorkflowStep.objects.get()
    assert row.status == WorkflowStep.Status.RETRYING and "database unavailable" in row.error
    assert WorkflowRetry.objects.get().step_id == row.pk


@pytest.mark.parametrize("activity_type, local", [(ActivityName.ENTER_PHASE, True),
                                                  (ActivityName.CREATE_VERSION, False)])
def test_a_move_and_an_ordinary_activity_are_shown_running_from_their_start(activity_type, local):
    step = tracking.step_started(info(activity_type, local=local), types.SimpleNamespace(phase="planning"))
    assert WorkflowStep.objects.get().status == WorkflowStep.Status.RUNNING
    result = PhaseTransitionResult(1, "", "planning", False) if activity_type == ActivityName.ENTER_PHASE else None
    tracking.step_finished(step, result)
    assert WorkflowStep.objects.get().status == WorkflowStep.Status.COMPLETED


def test_an_ordinary_step_s_end_and_its_run_s_stamp_are_one_write_on_postgresql():
    step = tracking.step_started(info(ActivityName.CREATE_VERSION, "4", local=False),
                                 types.SimpleNamespace(phase="scoping"))
    with CaptureQueriesContext(connection) as captured:
        tracking.step_finished(step, None)
    assert statements(captured) == {
        "postgresql": ["UPDATE workflows_workflowstep + UPDATE workflows_workflowexecution"],
        "sqlite": ["UPDATE workflows_workflowstep", "UPDATE workflows_workflowexecution"],
    }[connection.vendor]
    row = WorkflowStep.objects.get()
    assert (row.pk, row.status, row.attempt, row.error) == (step.pk, WorkflowStep.Status.COMPLETED, 1, "")
    assert row.finished_at is not None and row.duration_ms == step.duration_ms
    assert WorkflowExecution.objects.get(workflow_id="wf-local").last_progress_at == row.finished_at


def test_a_step_whose_run_was_deleted_meanwhile_ends_without_an_error():
    step = tracking.step_started(info(ActivityName.CREATE_VERSION, "5", local=False),
                                 types.SimpleNamespace(phase="scoping"))
    WorkflowExecution.objects.all().delete()  # an admin deleted the run (and its steps) while the step ran
    tracking.step_finished(step, None)
    assert not WorkflowStep.objects.exists() and not WorkflowExecution.objects.exists()


def test_a_retried_attempt_is_shown_running_and_keeps_its_first_start():
    first = tracking.step_started(info(ActivityName.CREATE_VERSION, "9", local=False),
                                  types.SimpleNamespace(phase="scoping"))
    tracking.step_failed(first, RuntimeError("database unavailable"), final=False)
    second = tracking.step_started(info(ActivityName.CREATE_VERSION, "9", local=False, attempt=2),
                                   types.SimpleNamespace(phase="scoping"))
    row = WorkflowStep.objects.get()
    assert (row.status, row.attempt, row.started_at) == (WorkflowStep.Status.RUNNING, 2, first.started_at)
    assert (second.pk, second.started_at, second.attempt) == (row.pk, first.started_at, 2)
    tracking.step_finished(second, None)
    row.refresh_from_db()
    assert (row.status, row.attempt) == (WorkflowStep.Status.COMPLETED, 2)
    assert row.duration_ms == int((row.finished_at - first.started_at).total_seconds() * 1000)


def test_the_one_statement_end_writes_every_column_of_a_step():
    """A local step's row is written whole by the PostgreSQL statement: a column it left out would be NULL
    (or refused) there, while SQLite's save() writes it."""
    assert set(tracking._WRITTEN) == {f.attname for f in WorkflowStep._meta.concrete_fields} - {"id"}


def test_a_move_is_one_write_on_postgresql_with_its_transition_and_the_run_s_phase():
    step = tracking.step_started(info(ActivityName.ENTER_PHASE, "3"), types.SimpleNamespace(phase="scoping"))
    result = PhaseTransitionResult(1, "data_profiling", "scoping", False)
    with CaptureQueriesContext(connection) as captured:
        tracking.step_finished(step, result)
    writes = [q["sql"] for q in captured.captured_queries if q["sql"].startswith(("WITH", "INSERT", "UPDATE"))]
    assert len(writes) == {"postgresql": 1, "sqlite": 3}[connection.vendor]
    run = WorkflowExecution.objects.get(workflow_id="wf-local")
    row = WorkflowStep.objects.get()
    assert (row.pk, row.status) == (step.pk, WorkflowStep.Status.COMPLETED)
    assert (run.current_phase, run.last_progress_at) == ("scoping", row.finished_at)
    transition = WorkflowTransition.objects.get()
    assert (transition.execution_id, transition.activity_id, transition.from_phase, transition.to_phase,
            transition.skipped) == (run.pk, "3", "data_profiling", "scoping", False)
    assert transition.created_at is not None

    # The same activity ended again (a lost workflow task ran it twice): one transition still.
    tracking.step_finished(step, result)
    assert WorkflowTransition.objects.count() == 1


def test_a_skipped_phase_is_recorded_and_leaves_the_run_s_phase():
    tracking.step_finished(tracking.step_started(info(ActivityName.ENTER_PHASE, "1"),
                                                 types.SimpleNamespace(phase="planning")),
                           PhaseTransitionResult(1, "", "planning", False))
    tracking.step_finished(tracking.step_started(info(ActivityName.ENTER_PHASE, "2"),
                                                 types.SimpleNamespace(phase="data_profiling")),
                           PhaseTransitionResult(1, "planning", "data_profiling", True))
    assert WorkflowExecution.objects.get().current_phase == "planning"
    assert list(WorkflowTransition.objects.values_list("to_phase", "skipped")) == [
        ("planning", False), ("data_profiling", True)]


def test_the_report_s_end_closes_its_run():
    step = tracking.step_started(info(ActivityName.FINISH_REPORT, "8"), types.SimpleNamespace(phase="finalize"))
    tracking.step_finished(step, WorkflowFinishedResult(status="completed"))
    run = WorkflowExecution.objects.get()
    assert (run.status, run.closed_at) == (WorkflowExecution.Status.COMPLETED, WorkflowStep.objects.get().finished_at)
    assert not WorkflowTransition.objects.exists()


def test_a_move_whose_run_was_deleted_meanwhile_ends_without_an_error():
    step = tracking.step_started(info(ActivityName.ENTER_PHASE, "6"), types.SimpleNamespace(phase="scoping"))
    WorkflowExecution.objects.all().delete()
    tracking.step_finished(step, PhaseTransitionResult(1, "data_profiling", "scoping", False))
    assert not WorkflowStep.objects.exists() and not WorkflowTransition.objects.exists()


def test_the_one_statement_move_writes_every_column_of_a_transition():
    assert set(tracking._TRANSITION) == {f.attname for f in WorkflowTransition._meta.concrete_fields} - {"id"}
