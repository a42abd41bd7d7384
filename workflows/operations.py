"""Operations on running workflows, for admins: cancel, terminate, retry a failed phase, re-deliver a
stored decision, reset a report to the start of a phase (with compensation), read the event history.

The workflow admin and the API call these same functions. Each checks who may
do it, says why in the audit trail, and turns "Temporal can't be reached" into
a ServiceUnavailableError with a message a person can act on.
"""
from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from temporalio.api.common.v1 import WorkflowExecution as WorkflowExecutionRef
from temporalio.api.enums.v1 import EventType, ResetReapplyType
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
from temporalio.client import WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from cycles.models import CycleReport, PhaseState
from cycles.permissions import can_manage_cycle, is_admin
from cycles.services.compensation import phase_states_reopen
from synapse.audit import audit_record
from synapse.exceptions import ApplicationError, ConflictError, PermissionDeniedError, ServiceUnavailableError
from workflows import alerts
from workflows.compensation import compensation_run
from workflows.models import WorkflowDecision, WorkflowExecution, WorkflowWait
from workflows.temporal.client import TemporalUnavailable, bridge
from workflows.temporal.contracts import (
    PHASE_ORDER,
    QUERY_STATUS,
    REPORT_WORKFLOW_TYPE,
    STATE_FAILED,
    TRIGGER_ADMIN_RESET,
    UPDATE_RETRY_PHASE,
    ActivityName,
    ReportStatus,
    RetryPhaseInput,
    UpdateResult,
)

logger = logging.getLogger(__name__)

UNREACHABLE = "The workflow service can't be reached, so nothing was done. Try again in a minute."
TEMPORAL_STATUS = {
    WorkflowExecutionStatus.RUNNING: WorkflowExecution.Status.RUNNING,
    WorkflowExecutionStatus.COMPLETED: WorkflowExecution.Status.COMPLETED,
    WorkflowExecutionStatus.FAILED: WorkflowExecution.Status.FAILED,
    WorkflowExecutionStatus.CANCELED: WorkflowExecution.Status.CANCELLED,
    WorkflowExecutionStatus.TERMINATED: WorkflowExecution.Status.TERMINATED,
    WorkflowExecutionStatus.TIMED_OUT: WorkflowExecution.Status.FAILED,
}


@dataclass
class HistoryEvent:
    event_id: int
    time: datetime
    type: str
    detail: str


def _call(fn):
    """Run fn(client) on the Temporal bridge; unreachable becomes ServiceUnavailableError, not found a 409."""
    try:
        return bridge.run(fn)
    except TemporalUnavailable as err:
        raise ServiceUnavailableError(UNREACHABLE) from err
    except RPCError as err:
        if err.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
            raise ServiceUnavailableError(UNREACHABLE) from err
        if err.status == RPCStatusCode.NOT_FOUND:
            raise ConflictError("Temporal has no such workflow run (it may have been deleted by retention).") from err
        raise ConflictError(f"Temporal refused: {err.message}") from err


def _require_admin(user, what: str) -> None:
    if not is_admin(user):
        raise PermissionDeniedError(f"Only an admin can {what}.")


def _require_reason(reason: str, what: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError(f"Give a reason to {what}: it goes in the audit trail.")
    return reason


def _require_running(execution: WorkflowExecution) -> None:
    if execution.status != WorkflowExecution.Status.RUNNING:
        raise ConflictError(f"{execution.workflow_id} is {execution.get_status_display().lower()}, not running.")


def _close(execution: WorkflowExecution, status: str) -> None:
    now = timezone.now()
    WorkflowExecution.objects.filter(pk=execution.pk).update(status=status, closed_at=now)
    WorkflowWait.objects.filter(execution=execution, ended_at__isnull=True).update(ended_at=now)
    execution.status = status


def execution_cancel(*, user, execution: WorkflowExecution, reason: str) -> None:
    """Ask Temporal to cancel the run; the workflow winds down (its cancel handler records the report)."""
    cycle = execution.cycle or (execution.cycle_report.cycle if execution.cycle_report_id else None)
    if not (is_admin(user) or (cycle is not None and can_manage_cycle(user, cycle))):
        raise PermissionDeniedError("Only an admin or the cycle's Test Manager can cancel its workflows.")
    reason = _require_reason(reason, "cancel a workflow")
    _require_running(execution)
    _call(lambda client: client.get_workflow_handle(execution.workflow_id, run_id=execution.run_id or None).cancel())
    audit_record(actor=user, action="workflow.cancel", obj=execution, context={"reason": reason})


def execution_terminate(*, user, execution: WorkflowExecution, reason: str) -> None:
    """Stop the run at once (no cleanup in the workflow): for a run that cancelling can't stop."""
    _require_admin(user, "terminate a workflow")
    reason = _require_reason(reason, "terminate a workflow")
    _require_running(execution)
    _call(lambda client: client.get_workflow_handle(
        execution.workflow_id, run_id=execution.run_id or None).terminate(reason=f"{reason} (by {user.username})"))
    with transaction.atomic():
        _close(execution, WorkflowExecution.Status.TERMINATED)
        audit_record(actor=user, action="workflow.terminate", obj=execution, context={"reason": reason})


def execution_live_status(*, execution: WorkflowExecution) -> ReportStatus | None:
    """Ask a report workflow where it stands and store it on the row (state, waiting on, last error).

    None when it isn't running any more (the row is closed then, with Temporal's status).
    """
    if execution.workflow_type != REPORT_WORKFLOW_TYPE:
        return None

    async def ask(client):
        handle = client.get_workflow_handle(execution.workflow_id, run_id=execution.run_id or None)
        description = await handle.describe()
        if description.status != WorkflowExecutionStatus.RUNNING:
            return description.status, None
        return description.status, await handle.query(QUERY_STATUS, result_type=ReportStatus)

    status, live = _call(ask)
    if live is None:
        if execution.status == WorkflowExecution.Status.RUNNING:
            _close(execution, TEMPORAL_STATUS.get(status, WorkflowExecution.Status.COMPLETED))
        return None
    failed = [phase for phase, state in live.active.items() if state == STATE_FAILED]
    changes = {"state": STATE_FAILED if failed else live.state, "waiting_on": live.waiting_on,
               "last_error": live.last_error, "current_phase": live.phase or execution.current_phase}
    if any(getattr(execution, name) != value for name, value in changes.items()):
        now = changes["last_progress_at"] = timezone.now()
        with transaction.atomic():
            if execution.waiting_on != live.waiting_on:
                _waits_move(execution, live.waiting_on, phase=changes["current_phase"], at=now)
            WorkflowExecution.objects.filter(pk=execution.pk).update(**changes)
        for name, value in changes.items():
            setattr(execution, name, value)
    return live


def _waits_move(execution: WorkflowExecution, waiting_on: str, *, phase: str, at) -> None:
    """Close the waits of the roles the workflow no longer waits on; open one for each new role."""
    roles = {role for role in waiting_on.split(", ") if role}
    open_waits = WorkflowWait.objects.filter(execution=execution, ended_at__isnull=True)
    open_waits.exclude(role__in=roles).update(ended_at=at)
    still = set(open_waits.filter(role__in=roles).values_list("role", flat=True))
    WorkflowWait.objects.bulk_create(WorkflowWait(execution=execution, role=role, phase=phase, started_at=at)
                                     for role in sorted(roles - still))


def execution_retry_phase(*, user, execution: WorkflowExecution, reason: str, phase: str = "") -> UpdateResult:
    """Run a phase that failed beyond its retries (and was compensated) again from its start."""
    _require_admin(user, "retry a failed step")
    reason = _require_reason(reason, "retry a failed step")
    _require_running(execution)
    if not phase:
        live = execution_live_status(execution=execution)
        failed = [p for p, state in (live.active if live else {}).items() if state == STATE_FAILED]
        if not failed:
            raise ConflictError("No phase of this workflow has failed; there is nothing to retry.")
        phase = failed[0]

    async def send(client):
        handle = client.get_workflow_handle(execution.workflow_id, run_id=execution.run_id or None)
        return await handle.execute_update(
            UPDATE_RETRY_PHASE, RetryPhaseInput(phase=phase, user_id=user.pk, reason=reason),
            id=f"retry-{uuid.uuid4()}", result_type=UpdateResult,
        )

    try:
        result = _call(send)
    except WorkflowUpdateFailedError as err:
        raise ConflictError(getattr(err.cause, "message", None) or str(err.cause or err)) from err
    audit_record(actor=user, action="workflow.retry_phase", obj=execution, context={"reason": reason, "phase": phase})
    return result


def decision_redeliver(*, user, decision: WorkflowDecision, reason: str):
    """Send a stored decision again (pending: Temporal was away; rejected: the workflow wasn't ready then)."""
    from workflows.services import _send

    _require_admin(user, "re-deliver a decision")
    reason = _require_reason(reason, "re-deliver a decision")
    if decision.status == WorkflowDecision.Status.DELIVERED:
        raise ConflictError("That decision was already delivered; the same update id would change nothing.")
    before = decision.status
    outcome = _send(decision, deadline=settings.TEMPORAL_DECISION_TIMEOUT)
    if not outcome.delivered:
        raise ServiceUnavailableError(UNREACHABLE)
    audit_record(actor=user, action="decision.redeliver", obj=decision.cycle_report or decision.requested_by,
                 before={"status": before}, after={"status": outcome.decision.status},
                 context={"reason": reason, "decision_id": str(decision.pk)})
    return outcome


def _decode(payloads) -> dict:
    try:
        return json.loads(payloads.payloads[0].data) if payloads.payloads else {}
    except (ValueError, IndexError):
        return {}


# The marker the SDK records for a local activity: details "data" (its type, attempt...) and "result", or a failure.
LOCAL_ACTIVITY_MARKER = "core_local_activity"


def _local_activity(event) -> tuple[str, dict] | None:
    """(activity type, result) of a local activity that completed, from its marker; None for any other event."""
    if not event.HasField("marker_recorded_event_attributes"):
        return None
    attrs = event.marker_recorded_event_attributes
    if attrs.marker_name != LOCAL_ACTIVITY_MARKER or attrs.HasField("failure") or "data" not in attrs.details:
        return None
    kind = _decode(attrs.details["data"]).get("activity_type", "")
    result = _decode(attrs.details["result"]) if "result" in attrs.details else {}
    return (kind, result) if kind else None


def _entered(event) -> str:
    """The phase an event shows the workflow entering (not skipping), or "": an ordinary activity's scheduled
    event names it in its input; a local activity's marker (since patch local-phase-entry) in its result."""
    if event.HasField("activity_task_scheduled_event_attributes"):
        attrs = event.activity_task_scheduled_event_attributes
        if attrs.activity_type.name == ActivityName.ENTER_PHASE:
            inp = _decode(attrs.input)
            return "" if inp.get("skipped") else inp.get("phase", "")
        return ""
    local = _local_activity(event)
    if local and local[0] == ActivityName.ENTER_PHASE and not local[1].get("skipped"):
        return local[1].get("to_phase", "")
    return ""


def _fetch_history(execution: WorkflowExecution):
    async def fetch(client):
        handle = client.get_workflow_handle(execution.workflow_id, run_id=execution.run_id or None)
        return await handle.fetch_history()

    return _call(fetch)


def execution_history(*, user, execution: WorkflowExecution, limit: int = 500) -> list[HistoryEvent]:
    """The run's event history as Temporal keeps it, one line per event (newest last)."""
    _require_admin(user, "read workflow histories")
    events = []
    for event in _fetch_history(execution).events[:limit]:
        kind = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")
        detail = ""
        if event.HasField("activity_task_scheduled_event_attributes"):
            attrs = event.activity_task_scheduled_event_attributes
            phase = _decode(attrs.input).get("phase", "")
            detail = f"{attrs.activity_type.name}" + (f" ({phase})" if phase else "")
        elif (local := _local_activity(event)) is not None:
            phase = local[1].get("to_phase", "") if local[0] == ActivityName.ENTER_PHASE else ""
            detail = f"{local[0]} (local" + (f", {phase})" if phase else ")")
        elif event.HasField("activity_task_failed_event_attributes"):
            detail = event.activity_task_failed_event_attributes.failure.message
        elif event.HasField("workflow_execution_update_accepted_event_attributes"):
            detail = event.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
        elif event.HasField("start_child_workflow_execution_initiated_event_attributes"):
            detail = event.start_child_workflow_execution_initiated_event_attributes.workflow_id
        elif event.HasField("workflow_execution_terminated_event_attributes"):
            detail = event.workflow_execution_terminated_event_attributes.reason
        events.append(HistoryEvent(event_id=event.event_id, time=event.event_time.ToDatetime(),
                                   type=kind, detail=detail))
    return events


def _reset_point(history, phase: str) -> int:
    """The last workflow task completed before the workflow entered `phase` (the reset goes back to it)."""
    last_completed, point = 0, 0
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            last_completed = event.event_id
        elif _entered(event) == phase:
            # An ordinary activity is scheduled, and a local one's marker recorded, by the workflow task that
            # completed just before: resetting to it runs that task again, which enters the phase afresh.
            point = last_completed
    return point


def execution_reset(*, user, execution: WorkflowExecution, phase: str, reason: str) -> WorkflowExecution:
    """Take a report's workflow back to the start of `phase`: compensate what that phase and the later
    ones wrote (each by its strategy), forget their phase states, then reset the Temporal run to just
    before the phase was entered. The workflow goes on from there in a new run; decisions taken after
    that point are not replayed (they were about work that has been undone).
    """
    _require_admin(user, "reset a workflow")
    reason = _require_reason(reason, "reset a workflow")
    if execution.workflow_type != REPORT_WORKFLOW_TYPE or not execution.cycle_report_id:
        raise ApplicationError("Only a report's workflow can be reset to a phase.")
    if not phase:
        raise ApplicationError("Choose the phase to go back to.")
    if phase not in PHASE_ORDER:
        raise ApplicationError(f"Unknown phase {phase!r}.")
    _require_running(execution)
    point = _reset_point(_fetch_history(execution), phase)
    if not point:
        raise ConflictError(f"The workflow has not entered {phase.replace('_', ' ')} yet; it can't go back there.")
    cycle_report = CycleReport.objects.get(pk=execution.cycle_report_id)
    states = dict(cycle_report.phase_states.values_list("phase", "status"))
    later = [p for p in PHASE_ORDER[PHASE_ORDER.index(phase):] if p in states]
    reset_id = uuid.uuid4().hex[:12]
    entries = [
        compensation_run(cycle_report_id=cycle_report.pk, phase=p, trigger=TRIGGER_ADMIN_RESET, user=user,
                         key=f"{execution.workflow_id}/reset-{reset_id}/{p}", reason=reason)
        for p in reversed(later) if states[p] != PhaseState.Status.SKIPPED
    ]
    phase_states_reopen(cycle_report=cycle_report, phases=later)

    async def reset(client):
        return await client.workflow_service.reset_workflow_execution(
            ResetWorkflowExecutionRequest(
                namespace=settings.TEMPORAL_NAMESPACE,
                workflow_execution=WorkflowExecutionRef(workflow_id=execution.workflow_id, run_id=execution.run_id),
                reason=f"{reason} (by {user.username}, back to {phase})",
                workflow_task_finish_event_id=point,
                request_id=str(uuid.uuid4()),
                reset_reapply_type=ResetReapplyType.RESET_REAPPLY_TYPE_NONE,
            )
        )

    response = _call(reset)
    for p in later:
        # The failed phases were undone and run afresh: their failure is no longer the workflow's state.
        alerts.alerts_resolve(kind=alerts.PHASE_FAILED, key_prefix=alerts.phase_failed_key(execution.workflow_id, p))
    with transaction.atomic():
        _close(execution, WorkflowExecution.Status.TERMINATED)
        new = WorkflowExecution.objects.create(
            workflow_id=execution.workflow_id, run_id=response.run_id, workflow_type=execution.workflow_type,
            parent_workflow_id=execution.parent_workflow_id, cycle=execution.cycle, cycle_report=cycle_report,
            current_phase=phase, last_progress_at=timezone.now(),
        )
        audit_record(actor=user, action="workflow.reset", obj=new,
                     context={"reason": reason, "phase": phase, "from_run": execution.run_id,
                              "compensations": [e.pk for e in entries]})
    return new
