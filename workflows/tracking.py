"""Writes to the tracking tables, called by the worker's interceptor (never by workflow code)."""
from __future__ import annotations

import contextlib
import functools
import logging

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from workflows.models import WorkflowExecution, WorkflowRetry, WorkflowStep, WorkflowTransition
from workflows.temporal.contracts import (
    COMPENSATE_PHASE_ACTIVITY,
    REPORT_WORKFLOW_TYPE,
    ActivityName,
    PhaseTransitionResult,
    WorkflowFinishedResult,
    cycle_workflow_id,
)

logger = logging.getLogger("workflows.activity")


def _report_of(workflow_id: str):
    """(cycle_report_id, cycle_id) of a report workflow, from the id it runs under."""
    from cycles.models import CycleReport

    return CycleReport.objects.filter(workflow_id=workflow_id).values_list("pk", "cycle_id").first() or (None, None)


# Report runs whose row has its report and cycle, by (workflow id, run id): the later activities of the run
# need no lookup (those fields never change once set; the phase, which does, is read afresh when needed).
# Bounded: a long-lived worker forgets the oldest runs first.
_executions: dict[tuple[str, str], WorkflowExecution] = {}
EXECUTIONS_REMEMBERED = 5000


def _execution(info, inp) -> WorkflowExecution:
    known = _executions.get((info.workflow_id, info.workflow_run_id))
    if known is not None:
        return known
    defaults = {"workflow_type": info.workflow_type}
    cycle_report_id = getattr(inp, "cycle_report_id", None)
    cycle_id = getattr(inp, "cycle_id", None)
    if info.workflow_type == REPORT_WORKFLOW_TYPE and not (cycle_report_id and cycle_id):
        # Activities of a report name the cycle report at most (a request's activity not even that):
        # the cycle and the parent come from the report the workflow runs for.
        found_report, found_cycle = _report_of(info.workflow_id)
        cycle_report_id = cycle_report_id or found_report
        cycle_id = cycle_id or found_cycle
    if cycle_report_id:
        defaults["cycle_report_id"] = cycle_report_id
    if cycle_id:
        defaults["cycle_id"] = cycle_id
        if info.workflow_type == REPORT_WORKFLOW_TYPE:
            defaults["parent_workflow_id"] = cycle_workflow_id(cycle_id)
    try:
        execution, created = WorkflowExecution.objects.get_or_create(
            workflow_id=info.workflow_id, run_id=info.workflow_run_id, defaults=defaults
        )
    except IntegrityError:  # another activity of the same run created it first
        execution = WorkflowExecution.objects.get(workflow_id=info.workflow_id, run_id=info.workflow_run_id)
        created = False
    if not created:
        missing = {name: value for name, value in defaults.items() if value and not getattr(execution, name)}
        if missing:
            WorkflowExecution.objects.filter(pk=execution.pk).update(**missing)
            for name, value in missing.items():
                setattr(execution, name, value)
    if info.workflow_type == REPORT_WORKFLOW_TYPE and execution.cycle_report_id and execution.cycle_id:
        if len(_executions) >= EXECUTIONS_REMEMBERED:
            try:
                del _executions[next(iter(_executions))]
            except (KeyError, RuntimeError, StopIteration):  # another activity thread changed it meanwhile
                pass
        _executions[(info.workflow_id, info.workflow_run_id)] = execution
    return execution


def _forget(info) -> None:
    _executions.pop((info.workflow_id, info.workflow_run_id), None)


def execution_started(*, workflow_id: str, run_id: str, workflow_type: str, cycle_id: int | None = None,
                      cycle_report_id: int | None = None, parent_workflow_id: str = "") -> WorkflowExecution:
    """Record a run the moment Temporal accepted it (the cycle workflow runs no activity until it ends)."""
    execution, _ = WorkflowExecution.objects.get_or_create(
        workflow_id=workflow_id, run_id=run_id,
        defaults={"workflow_type": workflow_type, "cycle_id": cycle_id, "cycle_report_id": cycle_report_id,
                  "parent_workflow_id": parent_workflow_id, "last_progress_at": timezone.now()},
    )
    return execution


_versions_seen: set[tuple[int, str]] = set()


def _record_version(execution: WorkflowExecution) -> None:
    """Migration history: the build of this worker ran the execution (once per process and execution)."""
    from workflows.models import WorkflowVersion
    from workflows.temporal.worker import KNOWN_PATCHES, build_id

    seen = (execution.pk, build_id())
    if seen in _versions_seen:
        return
    WorkflowVersion.objects.get_or_create(execution=execution, build_id=seen[1],
                                          defaults={"patches": list(KNOWN_PATCHES)})
    _versions_seen.add(seen)


def step_started(info, inp) -> WorkflowStep:
    execution = _execution(info, inp)
    try:
        return _step_started(info, inp, execution)
    except Exception:
        _forget(info)  # the remembered row may be gone (deleted by an admin): look it up afresh next time
        raise


def _current_phase(execution: WorkflowExecution) -> str:
    """The run's phase as the database has it now (a remembered row's may be older; another worker moves it)."""
    return WorkflowExecution.objects.filter(pk=execution.pk).values_list("current_phase", flat=True).first() or ""


# Local activities whose end moves the run (a phase entered, the report finished): their step is written when
# they start, as an ordinary activity's, so that the move is one transaction with an UPDATE of it.
_MOVES = {ActivityName.ENTER_PHASE, ActivityName.FINISH_REPORT}


def _step_started(info, inp, execution: WorkflowExecution) -> WorkflowStep:
    _record_version(execution)
    fields = {"activity_type": info.activity_type, "phase": getattr(inp, "phase", "") or _current_phase(execution),
              "attempt": info.attempt, "started_at": timezone.now()}
    if getattr(info, "is_local", False) and info.activity_type not in _MOVES:
        # It runs within a workflow task, for milliseconds: nobody would see it running. Its row is written
        # once, when it ends (_save), instead of an INSERT now and an UPDATE then.
        return WorkflowStep(execution=execution, activity_id=info.activity_id, **fields)
    step, created = None, False
    if info.attempt == 1:
        # Nearly always a new step: one INSERT instead of a SELECT first. (A local activity runs attempt 1
        # again after its workflow task was lost, so the row may exist; then it is read below.)
        try:
            # Outside a transaction (the worker) a refused INSERT harms nothing; inside one, a savepoint.
            with transaction.atomic() if connection.in_atomic_block else contextlib.nullcontext():
                step, created = WorkflowStep.objects.create(execution=execution, activity_id=info.activity_id,
                                                            **fields), True
        except IntegrityError:
            pass
    if step is None:
        step, created = WorkflowStep.objects.get_or_create(execution=execution, activity_id=info.activity_id,
                                                           defaults=fields)
    step.execution = execution
    if not created:
        step.attempt = info.attempt
        step.status = WorkflowStep.Status.RUNNING
        step.save(update_fields=["attempt", "status"])
    return step


_ENDED = ["attempt", "status", "finished_at", "duration_ms", "error"]


def _end(step: WorkflowStep, *, status: str, now, error: str = "") -> None:
    """How the step ended, on the object (its row is written by the caller)."""
    step.status, step.finished_at, step.error = status, now, error
    step.duration_ms = int((now - step.started_at).total_seconds() * 1000)


def _save(step: WorkflowStep, *, status: str, now, error: str = "") -> None:
    """Write how the step ended: an UPDATE of its row, or the row itself for a step not written yet (a local
    activity's; its row exists already only if a lost workflow task ran it before, then it is updated)."""
    _end(step, status=status, now=now, error=error)
    if step.pk is not None:
        WorkflowStep.objects.filter(pk=step.pk).update(**{name: getattr(step, name) for name in _ENDED})
        return
    try:
        # Outside a transaction (the worker) a refused INSERT harms nothing; inside one, a savepoint.
        with transaction.atomic() if connection.in_atomic_block else contextlib.nullcontext():
            step.save(force_insert=True)
    except IntegrityError:
        step.pk = None
        step.pk = WorkflowStep.objects.filter(execution_id=step.execution_id, activity_id=step.activity_id
                                              ).values_list("pk", flat=True).get()
        WorkflowStep.objects.filter(pk=step.pk).update(**{name: getattr(step, name) for name in _ENDED})


# What a step's end writes when its row may not exist yet (a local activity's): the row whole.
_WRITTEN = ["execution_id", "activity_id", "activity_type", "phase", "started_at", *_ENDED]


# What a move records of itself (WorkflowTransition's columns but its id), in the one-statement end.
_TRANSITION = ["execution_id", "activity_id", "from_phase", "to_phase", "skipped", "created_at"]


@functools.cache
def _ended_and_stamped_sql(*, written: bool, moved: bool = False, progress: tuple[str, ...] = ()) -> str:
    """PostgreSQL: a step's end and its run's progress stamp in one statement (a data-modifying WITH) that
    returns the step's id. `written`: the step's row exists, by its id (an UPDATE of how it ended); else the
    row is written whole, or brought up to date if a lost workflow task wrote it before (an upsert). `moved`:
    the step moved the run, and its transition is recorded too (once per activity, and only while the run
    exists); `progress` names the run's columns the move sets beside its stamp (its phase, its end).

    The SQL is made from the models' own table and column names."""
    quote = connection.ops.quote_name
    column = {f.attname: quote(f.column) for f in WorkflowStep._meta.concrete_fields}
    run = {f.attname: quote(f.column) for f in WorkflowExecution._meta.concrete_fields}
    steps, runs = quote(WorkflowStep._meta.db_table), quote(WorkflowExecution._meta.db_table)
    if written:
        ended = (f"UPDATE {steps} SET {', '.join(f'{column[name]} = %s' for name in _ENDED)} "
                 f"WHERE {column['id']} = %s RETURNING {column['id']}")
    else:
        ended = (f"INSERT INTO {steps} ({', '.join(column[name] for name in _WRITTEN)}) "
                 f"VALUES ({', '.join(['%s'] * len(_WRITTEN))}) "
                 f"ON CONFLICT ({column['execution_id']}, {column['activity_id']}) DO UPDATE SET "
                 f"{', '.join(f'{column[name]} = EXCLUDED.{column[name]}' for name in _ENDED)} "
                 f"RETURNING {column['id']}")
    recorded = ""
    if moved:
        transition = {f.attname: quote(f.column) for f in WorkflowTransition._meta.concrete_fields}
        recorded = (f", moved AS (INSERT INTO {quote(WorkflowTransition._meta.db_table)} "
                    f"({', '.join(transition[name] for name in _TRANSITION)}) "
                    f"SELECT {', '.join(['%s'] * len(_TRANSITION))} "
                    f"WHERE EXISTS (SELECT 1 FROM {runs} WHERE {run['id']} = %s) ON CONFLICT DO NOTHING)")
    sets = ", ".join(f"{run[name]} = %s" for name in ("last_progress_at", *progress))
    return (f"WITH ended AS ({ended}){recorded} UPDATE {runs} SET {sets} WHERE {run['id']} = %s "
            f"RETURNING (SELECT {column['id']} FROM ended)")


def _progress(result, now) -> dict:
    """What the step's end writes on its run: the progress stamp, and for a move the run's phase or its end."""
    progress = {"last_progress_at": now}
    if isinstance(result, PhaseTransitionResult):
        if not result.skipped:
            progress["current_phase"] = result.to_phase
    elif isinstance(result, WorkflowFinishedResult):
        progress["status"] = (result.status if result.status in WorkflowExecution.Status.values
                              else WorkflowExecution.Status.COMPLETED)
        progress["closed_at"] = now
    return progress


def _end_and_stamp(step: WorkflowStep, result, *, now) -> bool:
    """Write how the step ended and stamp its run's progress in one round trip, on PostgreSQL (the two writes
    every activity makes: a thousand pairs over twenty reports; a move's transition and the run's new phase
    with them, in the same statement instead of a transaction of four). False elsewhere, with nothing
    written."""
    if connection.vendor != "postgresql":
        return False
    _end(step, status=WorkflowStep.Status.COMPLETED, now=now)
    progress = _progress(result, now)
    moved = isinstance(result, PhaseTransitionResult)
    if step.pk is not None:
        values = [*(getattr(step, name) for name in _ENDED), step.pk]
    else:
        values = [getattr(step, name) for name in _WRITTEN]
    if moved:
        transition = {"execution_id": step.execution_id, "activity_id": step.activity_id,
                      "from_phase": result.from_phase, "to_phase": result.to_phase, "skipped": result.skipped,
                      "created_at": now}
        values += [*(transition[name] for name in _TRANSITION), step.execution_id]
    sql = _ended_and_stamped_sql(written=step.pk is not None, moved=moved, progress=tuple(progress)[1:])
    with connection.cursor() as cursor:
        cursor.execute(sql, [*values, *progress.values(), step.execution_id])
        row = cursor.fetchone()
    if row is not None and row[0] is not None:  # no row: the run's is gone (an admin deleted it), and its steps
        step.pk = row[0]
    return True


def step_finished(step: WorkflowStep, result) -> None:
    now = timezone.now()
    # On PostgreSQL one statement. Elsewhere a step that moves the run (a phase, its end) is one transaction
    # with that move; any other is two independent writes, which need no transaction of their own.
    if _end_and_stamp(step, result, now=now):
        _after_step(step, result)
        return
    moves = isinstance(result, (PhaseTransitionResult, WorkflowFinishedResult))
    with transaction.atomic() if moves else contextlib.nullcontext():
        _save(step, status=WorkflowStep.Status.COMPLETED, now=now)
        run_there = WorkflowExecution.objects.filter(pk=step.execution_id).update(**_progress(result, now))
        if run_there and isinstance(result, PhaseTransitionResult):
            # Recorded once per activity: a retried step finds its row there and adds nothing (no read first).
            WorkflowTransition.objects.bulk_create([WorkflowTransition(
                execution_id=step.execution_id, activity_id=step.activity_id, from_phase=result.from_phase,
                to_phase=result.to_phase, skipped=result.skipped,
            )], ignore_conflicts=True)
    _after_step(step, result)


def _after_step(step: WorkflowStep, result) -> None:
    """What a finished step tells others: a failed phase's alert resolved, the pages watching the cycle."""
    if step.phase and step.activity_type != COMPENSATE_PHASE_ACTIVITY:
        # A step of a phase that had failed beyond its retries went through: the cause is gone. The phase's
        # completion always looks in the database; other steps look when an alert may be open.
        from workflows import alerts

        alerts.phase_failed_resolve(workflow_id=step.execution.workflow_id, phase=step.phase,
                                    look=step.activity_type == ActivityName.COMPLETE_PHASE)
    if isinstance(result, PhaseTransitionResult):
        _publish_progress(step.execution, result.to_phase if not result.skipped else None)


def step_failed(step: WorkflowStep, error: BaseException, *, final: bool) -> None:
    _save(step, status=WorkflowStep.Status.FAILED if final else WorkflowStep.Status.RETRYING, now=timezone.now(),
          error=f"{type(error).__name__}: {error}"[:4000])


def retry_logged(step: WorkflowStep, info, error: BaseException, *, delay_seconds: float) -> WorkflowRetry:
    """Log a failed attempt that Temporal retries after `delay_seconds` (once per attempt)."""
    from workflows.temporal.retry import policy_of

    policy = policy_of(info.activity_type, info.retry_policy)
    retry, _ = WorkflowRetry.objects.get_or_create(
        execution_id=step.execution_id,
        activity_id=info.activity_id,
        attempt=info.attempt,
        defaults={
            "step": step,
            "activity_type": info.activity_type,
            "max_attempts": policy.maximum_attempts,
            "error": f"{type(error).__name__}: {error}"[:4000],
            "delay_seconds": delay_seconds,
        },
    )
    return retry


def _publish_progress(execution: WorkflowExecution, phase: str | None) -> None:
    """Tell pages watching the cycle that a report moved (best effort): `phase` is the report's phase now
    (None: unchanged, as the database has it)."""
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    if not execution.cycle_report_id:
        return
    layer = get_channel_layer()
    if layer is None:
        return
    cycle_id = execution.cycle_id or execution.cycle_report.cycle_id
    if phase is None:
        phase = _current_phase(execution)
    try:
        async_to_sync(layer.group_send)(
            f"cycle-{cycle_id}",
            {
                "type": "cycle.progress",
                "payload": {"cycle_report_id": execution.cycle_report_id, "phase": phase},
            },
        )
    except Exception:  # progress pushes are a convenience; pages also poll
        logger.warning("could not publish progress for %s", execution.workflow_id, exc_info=True)
