"""Writes to the tracking tables, called by the worker's interceptor (never by workflow code)."""
from __future__ import annotations

import logging

from django.db import IntegrityError, transaction
from django.utils import timezone

from workflows.models import WorkflowExecution, WorkflowStep, WorkflowTransition
from workflows.temporal.contracts import PhaseTransitionResult, WorkflowFinishedResult

logger = logging.getLogger("workflows.activity")


def _execution(info, inp) -> WorkflowExecution:
    defaults = {"workflow_type": info.workflow_type}
    cycle_report_id = getattr(inp, "cycle_report_id", None)
    cycle_id = getattr(inp, "cycle_id", None)
    if cycle_report_id:
        defaults["cycle_report_id"] = cycle_report_id
    if cycle_id:
        defaults["cycle_id"] = cycle_id
    try:
        execution, created = WorkflowExecution.objects.get_or_create(
            workflow_id=info.workflow_id, run_id=info.workflow_run_id, defaults=defaults
        )
    except IntegrityError:  # another activity of the same run created it first
        execution = WorkflowExecution.objects.get(workflow_id=info.workflow_id, run_id=info.workflow_run_id)
        created = False
    if not created and cycle_report_id and not execution.cycle_report_id:
        WorkflowExecution.objects.filter(pk=execution.pk).update(cycle_report_id=cycle_report_id)
    return execution


def step_started(info, inp) -> WorkflowStep:
    execution = _execution(info, inp)
    step, created = WorkflowStep.objects.get_or_create(
        execution=execution,
        activity_id=info.activity_id,
        defaults={
            "activity_type": info.activity_type,
            "phase": getattr(inp, "phase", "") or execution.current_phase,
            "attempt": info.attempt,
            "started_at": timezone.now(),
        },
    )
    if not created:
        step.attempt = info.attempt
        step.status = WorkflowStep.Status.RUNNING
        step.save(update_fields=["attempt", "status"])
    return step


def step_finished(step: WorkflowStep, result) -> None:
    now = timezone.now()
    with transaction.atomic():
        WorkflowStep.objects.filter(pk=step.pk).update(
            status=WorkflowStep.Status.COMPLETED,
            finished_at=now,
            duration_ms=int((now - step.started_at).total_seconds() * 1000),
            error="",
        )
        if isinstance(result, PhaseTransitionResult):
            _, created = WorkflowTransition.objects.get_or_create(
                execution_id=step.execution_id,
                activity_id=step.activity_id,
                defaults={"from_phase": result.from_phase, "to_phase": result.to_phase, "skipped": result.skipped},
            )
            if not result.skipped:
                WorkflowExecution.objects.filter(pk=step.execution_id).update(current_phase=result.to_phase)
        elif isinstance(result, WorkflowFinishedResult):
            WorkflowExecution.objects.filter(pk=step.execution_id).update(
                status=result.status if result.status in WorkflowExecution.Status.values
                else WorkflowExecution.Status.COMPLETED,
                closed_at=now,
            )
    if isinstance(result, PhaseTransitionResult):
        _publish_progress(step.execution_id)


def step_failed(step: WorkflowStep, error: BaseException, *, final: bool) -> None:
    now = timezone.now()
    WorkflowStep.objects.filter(pk=step.pk).update(
        status=WorkflowStep.Status.FAILED if final else WorkflowStep.Status.RETRYING,
        finished_at=now,
        duration_ms=int((now - step.started_at).total_seconds() * 1000),
        error=f"{type(error).__name__}: {error}"[:4000],
    )


def _publish_progress(execution_id: int) -> None:
    """Tell pages watching the cycle that a report moved (best effort)."""
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    execution = WorkflowExecution.objects.select_related("cycle_report").get(pk=execution_id)
    if not execution.cycle_report_id:
        return
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(
            f"cycle-{execution.cycle_report.cycle_id}",
            {
                "type": "cycle.progress",
                "payload": {"cycle_report_id": execution.cycle_report_id, "phase": execution.current_phase},
            },
        )
    except Exception:  # progress pushes are a convenience; pages also poll
        logger.warning("could not publish progress for %s", execution.workflow_id, exc_info=True)
