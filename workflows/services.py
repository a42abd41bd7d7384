"""The workflow service: start, status, decide, cancel. Pages, the API and the admin call these.

Every call checks permission on the object first. A human decision is stored
(WorkflowDecision) before it is sent; when Temporal can't be reached it stays
pending and the worker's outbox loop delivers it later with the same update id.
"""
from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from django.conf import settings
from django.db import close_old_connections, transaction
from django.db.models import F, Q
from django.utils import timezone
from temporalio.client import (
    RPCTimeoutOrCancelledError,
    WorkflowExecutionStatus,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateStage,
)
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from cycles.models import CycleReport, PopulationFile, TestCycle
from cycles.permissions import can_approve, can_manage_cycle, can_view_cycle_report, can_work_on
from cycles.services.cycles import cycle_mark_started
from synapse.audit import audit_record
from synapse.exceptions import ApplicationError, ConflictError, PermissionDeniedError, ServiceUnavailableError
from versioning.models import Version
from workflows.models import WorkflowAlert, WorkflowDecision, WorkflowExecution, WorkflowStatusSnapshot
from workflows.temporal.client import (
    BUSY,
    NO_WORKER,
    REASONS,
    UNREACHABLE,
    TemporalUnavailable,
    bridge,
    unavailable_reason,
)
from workflows.temporal.contracts import (
    CYCLE_WORKFLOW_TYPE,
    FINALIZE,
    PHASE_ORDER,
    QUERY_STATUS,
    REVIEWED_PHASES,
    UPDATE_COMPLETE_DATA_OWNERS,
    UPDATE_DECIDE_EXTENSION,
    UPDATE_DECIDE_VERSION,
    UPDATE_REGISTER_POPULATION,
    UPDATE_REMOVE_REPORT,
    UPDATE_SIGN_OFF,
    UPDATE_REQUEST_ADDED,
    UPDATE_REQUEST_REVIEWED,
    UPDATE_REQUEST_SUBMITTED,
    UPDATE_SUBMIT_VERSION,
    CompleteDataOwnersInput,
    CycleReportRef,
    CycleWorkflowInput,
    DecideExtensionInput,
    DecideVersionInput,
    PhaseSettings,
    RegisterPopulationInput,
    RemoveReportInput,
    ReportStatus,
    RequestAddedInput,
    RequestEventInput,
    RequestSchedule,
    SignOffInput,
    SubmitVersionInput,
    UpdateResult,
    cycle_workflow_id,
    report_workflow_id,
)

logger = logging.getLogger(__name__)

UPDATE_INPUTS = {
    UPDATE_SUBMIT_VERSION: SubmitVersionInput,
    UPDATE_DECIDE_VERSION: DecideVersionInput,
    UPDATE_REGISTER_POPULATION: RegisterPopulationInput,
    UPDATE_COMPLETE_DATA_OWNERS: CompleteDataOwnersInput,
    UPDATE_REQUEST_SUBMITTED: RequestEventInput,
    UPDATE_REQUEST_REVIEWED: RequestEventInput,
    UPDATE_REQUEST_ADDED: RequestAddedInput,
    UPDATE_DECIDE_EXTENSION: DecideExtensionInput,
    UPDATE_SIGN_OFF: SignOffInput,
    UPDATE_REMOVE_REPORT: RemoveReportInput,
}


def _unavailable(err: BaseException) -> bool:
    return unavailable_reason(err) is not None


@dataclass
class StartResult:
    workflow_id: str
    report_workflow_ids: dict[int, str]


@dataclass
class DecisionOutcome:
    decision: WorkflowDecision
    delivered: bool
    message: str
    result: UpdateResult | None = None
    # Why it was not delivered (client.UNREACHABLE, NO_WORKER, BUSY); empty when it was.
    reason: str = ""


# --- start ------------------------------------------------------------------


def _phase_settings(cycle: TestCycle) -> dict[str, PhaseSettings]:
    config = cycle.configuration or {}
    slas = config.get("slas") or {}
    from django.contrib.auth import get_user_model

    approvers = config.get("approvers") or {}
    users = dict(
        get_user_model().objects.filter(
            username__in=[u for names in approvers.values() for u in names]
        ).values_list("username", "pk")
    )
    return {
        phase: PhaseSettings(approvers=[users[u] for u in approvers.get(phase, []) if u in users],
                             sla_days=slas.get(phase))
        for phase in PHASE_ORDER
        if phase in slas or phase in approvers
    }


def _schedule(cycle: TestCycle) -> RequestSchedule:
    config = cycle.configuration or {}
    default = RequestSchedule()
    return RequestSchedule(
        due_days=int(config.get("rfi_due_days", default.due_days)),
        reminder_days_before=[int(d) for d in config.get("reminder_days_before", default.reminder_days_before)],
        escalation_days_after=int(config.get("escalation_days_after", default.escalation_days_after)),
        data_owner_sla_days=int(config.get("data_owner_sla_days", default.data_owner_sla_days)),
    )


def workflow_start(
    *, user, cycle: TestCycle, report_ids: list[int] | None = None, skip_phases: list[str] | None = None
) -> StartResult:
    """Start the cycle's workflow (one child per report). Starting twice is a clear ConflictError."""
    if not can_manage_cycle(user, cycle):
        raise PermissionDeniedError("Only the cycle's Test Manager can start its workflow.")
    cycle_reports = list(cycle.cycle_reports.select_related("report", "tester"))
    if report_ids is not None:
        unknown = set(report_ids) - {cr.report_id for cr in cycle_reports}
        if unknown:
            raise ApplicationError(f"Reports not in this cycle: {', '.join(map(str, sorted(unknown)))}.")
        cycle_reports = [cr for cr in cycle_reports if cr.report_id in set(report_ids)]
    if not cycle_reports:
        raise ApplicationError("Add at least one report to the cycle before starting its workflow.")
    untested = [str(cr.report) for cr in cycle_reports if cr.tester_id is None]
    if untested:
        raise ApplicationError(f"Assign a tester first: {', '.join(untested)}.")
    skip = list(dict.fromkeys([*(cycle.configuration or {}).get("skip_phases", []), *(skip_phases or [])]))
    unknown_phases = set(skip) - set(PHASE_ORDER)
    if unknown_phases:
        raise ApplicationError(f"Unknown phases to skip: {', '.join(sorted(unknown_phases))}.")
    if cycle.workflow_id and cycle.status == TestCycle.Status.RUNNING:
        raise ConflictError(f"The workflow of {cycle} is already running ({cycle.workflow_id}).")

    workflow_id = cycle_workflow_id(cycle.pk)
    inp = CycleWorkflowInput(
        cycle_id=cycle.pk,
        cycle_reports=[CycleReportRef(cycle_report_id=cr.pk, report_id=cr.report_id) for cr in cycle_reports],
        skip_phases=skip,
        phase_settings=_phase_settings(cycle),
        started_by=user.pk,
        last_phase=FINALIZE,
        activity_timeout_seconds=settings.TEMPORAL_ACTIVITY_TIMEOUT,
        schedule=_schedule(cycle),
    )

    async def start(client):
        from workflows.temporal.cycle_workflow import TestCycleWorkflow

        timeout = settings.TEMPORAL_WORKFLOW_TIMEOUT
        return await client.start_workflow(
            TestCycleWorkflow.run,
            inp,
            id=workflow_id,
            task_queue=settings.TEMPORAL_TASK_QUEUE,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            execution_timeout=datetime.timedelta(seconds=timeout) if timeout else None,
        )

    try:
        handle = bridge.run(start)
    except WorkflowAlreadyStartedError:
        raise ConflictError(f"The workflow of {cycle} was already started ({workflow_id}).") from None
    except Exception as err:
        if _unavailable(err):
            raise ServiceUnavailableError(
                "The workflow service can't be reached, so the cycle was not started. Try again in a minute."
            ) from err
        raise
    report_workflow_ids = {cr.pk: report_workflow_id(cycle.pk, cr.report_id) for cr in cycle_reports}
    cycle_mark_started(user=user, cycle=cycle, workflow_id=workflow_id, report_workflow_ids=report_workflow_ids)
    from workflows.tracking import execution_started  # issue 9: the cycle's own row in the workflow admin

    execution_started(workflow_id=workflow_id, run_id=handle.result_run_id or "", workflow_type=CYCLE_WORKFLOW_TYPE,
                      cycle_id=cycle.pk)
    return StartResult(workflow_id=workflow_id, report_workflow_ids=report_workflow_ids)


def workflow_cancel(*, user, cycle: TestCycle, reason: str = "") -> None:
    if not can_manage_cycle(user, cycle):
        raise PermissionDeniedError("Only the cycle's Test Manager can cancel its workflow.")
    if not cycle.workflow_id:
        raise ConflictError("The cycle's workflow was never started.")

    async def cancel(client):
        await client.get_workflow_handle(cycle.workflow_id).cancel()

    try:
        bridge.run(cancel)
    except Exception as err:
        if _unavailable(err):
            raise ServiceUnavailableError("The workflow service can't be reached; nothing was cancelled.") from err
        raise
    audit_record(actor=user, action="cycle.cancel_workflow", obj=cycle, context={"reason": reason})


# --- status -----------------------------------------------------------------


def _snapshot_status(snapshot: WorkflowStatusSnapshot, reason: str) -> ReportStatus:
    fields = {f.name for f in dataclasses.fields(ReportStatus)}
    status = ReportStatus(**{k: v for k, v in snapshot.status.items() if k in fields})
    status.as_of = snapshot.read_at.isoformat()
    status.unavailable = reason
    return status


def status_age(status: ReportStatus) -> str:
    """'3 min' for a status read from the snapshot (as_of), '' for a live one."""
    if not status.as_of:
        return ""
    seconds = max(0, int((timezone.now() - datetime.datetime.fromisoformat(status.as_of)).total_seconds()))
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 90 * 60:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"


def workflow_status(*, user, cycle_report: CycleReport) -> ReportStatus | None:
    """The report workflow's status (None if it never started or has finished).

    Every live answer is stored; while Temporal or the worker is away the last stored one is
    returned at once, with `as_of` (when it was read) and `unavailable` (why it isn't live).
    """
    if not can_view_cycle_report(user, cycle_report):
        raise PermissionDeniedError("You can't see this report.")
    if not cycle_report.workflow_id:
        return None
    try:
        return _query_status(cycle_report)
    except TemporalUnavailable as err:
        message = f"{err.explanation}."
        snapshot = WorkflowStatusSnapshot.objects.filter(
            cycle_report=cycle_report, workflow_id=cycle_report.workflow_id
        ).first()
        if snapshot is not None:
            return _snapshot_status(snapshot, message)
        raise ServiceUnavailableError(f"{message} The report's workflow status is not known yet.") from err


def _query_status(cycle_report: CycleReport) -> ReportStatus | None:
    """Ask the workflow (no permission check: callers check); store the answer. Raises TemporalUnavailable."""
    timeout = settings.TEMPORAL_STATUS_TIMEOUT

    async def query(client):
        handle = client.get_workflow_handle(cycle_report.workflow_id)
        rpc = datetime.timedelta(seconds=timeout)
        description = await handle.describe(rpc_timeout=rpc)
        if description.status != WorkflowExecutionStatus.RUNNING:
            return None
        return await handle.query(QUERY_STATUS, result_type=ReportStatus, rpc_timeout=rpc)

    try:
        status = bridge.run(query, timeout=timeout)
    except WorkflowQueryFailedError as err:
        raise ConflictError(f"The workflow could not answer: {err}") from err
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return None
        reason = unavailable_reason(err)
        if reason is None:
            raise
        raise TemporalUnavailable(str(err), reason=reason) from err
    if status is None:
        WorkflowStatusSnapshot.objects.filter(cycle_report=cycle_report).delete()
    else:
        WorkflowStatusSnapshot.objects.update_or_create(
            cycle_report=cycle_report,
            defaults={"workflow_id": cycle_report.workflow_id, "status": dataclasses.asdict(status),
                      "read_at": timezone.now()},
        )
    return status


# --- decisions ----------------------------------------------------------------
#
# The protocol for a person's step (issue 10):
# 1. The service that makes the business change calls decision_store() inside its own
#    transaction: the change and the message commit together or not at all. The message says
#    what happened (e.g. the request's new status), so the workflow never re-reads the database.
#    "asked" goes to the audit trail then.
# 2. Right after the commit the caller delivers it (decision_deliver, with a deadline of
#    TEMPORAL_DECISION_TIMEOUT seconds); whatever is not answered then, the worker's outbox
#    delivers later. An earlier unanswered decision of the same workflow always goes first.
# 3. The workflow's answer is stored once: accepted, already applied (duplicate), or refused,
#    each with its own audit entry.


def _outcome_message(reason: str) -> str:
    return f"{REASONS[reason]}. Your step is saved and will be delivered as soon as it can be."


UNAVAILABLE_MESSAGE = _outcome_message(UNREACHABLE)
ANSWER_AUDIT = {
    WorkflowDecision.Status.ACCEPTED: "accepted",
    WorkflowDecision.Status.DELIVERED: "accepted",
    WorkflowDecision.Status.DUPLICATE: "already_applied",
    WorkflowDecision.Status.REJECTED: "refused",
}


def decision_store(
    *, user, cycle_report: CycleReport, update_name: str, make_input, subject: str = "", workflow_id: str = "",
    store=None, sending: bool = False,
) -> WorkflowDecision:
    """Store a person's step for the report's workflow (or `workflow_id`), in the caller's transaction, with
    the business change `store()` makes if given; deliver it after the commit.

    `sending`: the caller delivers it right away (decision_deliver with leased=True). It is stored as its
    first attempt, leased to the caller as _send would lease it, so the outbox leaves it alone meanwhile
    and sending it costs no read and no write before the update goes out.
    """
    if not (workflow_id or cycle_report.workflow_id):
        raise ConflictError("The cycle's workflow has not been started for this report.")
    with transaction.atomic():
        if store is not None:
            store()
        decision = WorkflowDecision(
            workflow_id=workflow_id or cycle_report.workflow_id,
            update_name=update_name,
            requested_by=user,
            cycle_report=cycle_report,
            payload={},
            subject=subject,
        )
        if sending:
            decision.attempts, decision.last_attempt_at = 1, timezone.now()
            decision.sending_until = decision.last_attempt_at + _lease(settings.TEMPORAL_DECISION_TIMEOUT, None)
        decision.payload = dataclasses.asdict(make_input(str(decision.id)))
        decision.save()
        audit_record(actor=user, action=f"decision.{update_name}", obj=cycle_report,
                     after=decision.payload, context={"decision_id": str(decision.id), "stage": "asked"})
    return decision


# What storing a decision's answer names in its audit entry (the person, the report in its cycle): read with the
# decision, else one query each when the answer is stored.
DECISION_NAMED = ("requested_by", "cycle_report__report", "cycle_report__cycle")


def _answer(decision: WorkflowDecision, status: str, *, message: str, result: UpdateResult | None = None) -> bool:
    """Store the workflow's answer once, with its audit entry (a concurrent sender may have stored it).

    The write is conditional on the status it replaces (open, and not this answer already): of two senders
    storing at once, the second waits on the row and then matches nothing. Storing it also ends the sender's
    lease on the decision.
    """
    fields = {"status": status, "error": message if status == WorkflowDecision.Status.REJECTED else "",
              "result": dataclasses.asdict(result) if result else None}
    if status != WorkflowDecision.Status.ACCEPTED:
        fields["delivered_at"] = timezone.now()
    for name, value in fields.items():
        setattr(decision, name, value)
    with transaction.atomic():
        previous = None
        for replaced in WorkflowDecision.OPEN:
            if replaced != status and WorkflowDecision.objects.filter(pk=decision.pk, status=replaced).update(
                    **fields, sending_until=None):
                previous = replaced
                break
        if previous is None:
            return False
        decision.sending_until = None
        # "accepted" is recorded when the workflow takes the step; finishing it later is "completed".
        stage = ANSWER_AUDIT[status]
        if previous == WorkflowDecision.Status.ACCEPTED and status != WorkflowDecision.Status.REJECTED:
            stage = "completed"
        audit_record(
            actor=decision.requested_by, action=f"decision.{decision.update_name}.{stage}",
            obj=decision.cycle_report or decision, after=fields["result"],
            context={"decision_id": str(decision.id), "message": message},
        )
    return True


def _lease(deadline: float, finish: float | None) -> datetime.timedelta:
    """How long a sender holds a decision: the deadline to be accepted, the time to finish, a second more."""
    finish = settings.TEMPORAL_UPDATE_RESULT_TIMEOUT if finish is None else finish
    return datetime.timedelta(seconds=deadline + finish + 1)


async def _start_update(client, decision: WorkflowDecision, deadline: float):
    """Send the decision as its workflow's update (its id is the update id) and return once the workflow has
    accepted it (or raise why not) within `deadline` seconds."""
    inp = UPDATE_INPUTS[decision.update_name](**decision.payload)
    rpc = datetime.timedelta(seconds=max(0.5, deadline - 0.3))
    # The SDK asks again while the update is only admitted: bound the whole of it, not each call.
    return await asyncio.wait_for(
        client.get_workflow_handle(decision.workflow_id).start_update(
            decision.update_name, inp, id=str(decision.id), result_type=UpdateResult,
            wait_for_stage=WorkflowUpdateStage.ACCEPTED, rpc_timeout=rpc,
        ),
        timeout=deadline,
    )


def _taken(decision: WorkflowDecision, *, deadline: float) -> str | None:
    """Have the workflow take (accept) an earlier decision of a step being delivered: None once it has (or
    refused it, or is gone), else why not (a reason of workflows.temporal.client).

    Writes nothing: the decision's answer is its own sender's to store (a person's request waiting for it,
    or the outbox, which collects it as from any decision not answered yet); taking over its lease made
    the outbox wait for that answer beside the request that still waited for it.
    """
    async def accept(client):
        await _start_update(client, decision, deadline)

    try:
        bridge.run(accept, timeout=deadline, connect_timeout=deadline)
    except WorkflowUpdateFailedError:
        return None  # refused: nothing for a later step to wait for
    except (RPCError, TemporalUnavailable) as err:
        if isinstance(err, RPCError) and err.status == RPCStatusCode.NOT_FOUND:
            return None  # the workflow is gone: the later step learns it for itself
        return _not_taken_reason(decision, err, trip=True)
    return None


def _not_taken_reason(decision: WorkflowDecision, err: BaseException, *, trip: bool) -> str:
    """Why the workflow did not take the decision's update (a reason of workflows.temporal.client); `err` is
    raised again when it is none of them. A busy workflow with no live worker is said to have none, and with
    `trip` the web's requests stop paying the deadline (the outbox keeps trying each workflow)."""
    reason = unavailable_reason(err)
    if reason is None:
        raise err
    if reason == BUSY and _no_worker(decision):
        reason = NO_WORKER
        if trip:
            bridge.trip(NO_WORKER)
    return reason


def _send(decision: WorkflowDecision, *, deadline: float, trip: bool = True, finish: float | None = None,
          leased: bool = False) -> DecisionOutcome:
    """Send one stored decision as a Temporal update (its id is the update id) and store the answer.

    The workflow has `deadline` seconds to accept it, then `finish` more to carry it out; past that
    it is ACCEPTED and the outbox collects the answer later. `leased`: it was stored leased to this
    sender, its attempt counted (decision_store's `sending`).
    """
    finish = datetime.timedelta(seconds=settings.TEMPORAL_UPDATE_RESULT_TIMEOUT if finish is None else finish)

    async def update(client):
        started = await _start_update(client, decision, deadline)
        # Accepted: the workflow is alive, so its answer is worth waiting a little longer for.
        try:
            return await asyncio.wait_for(started.result(rpc_timeout=finish), timeout=finish.total_seconds())
        except (asyncio.TimeoutError, RPCTimeoutOrCancelledError):
            return None  # still carrying it out: the outbox collects the answer

    # Leased while this sender waits for the answer: the outbox sending it too would only wait beside it.
    if leased and decision.sending_until is not None:
        lease = decision.sending_until
    else:
        now = timezone.now()
        lease = now + _lease(deadline, finish.total_seconds())
        WorkflowDecision.objects.filter(pk=decision.pk).update(attempts=F("attempts") + 1, last_attempt_at=now,
                                                               sending_until=lease)
        decision.attempts += 1
        decision.last_attempt_at, decision.sending_until = now, lease
    try:
        return _sent(decision, update, deadline, finish, trip)
    finally:
        if decision.sending_until == lease:  # not ended by storing the answer
            WorkflowDecision.objects.filter(pk=decision.pk, sending_until=lease).update(sending_until=None)
            decision.sending_until = None


def _sent(decision: WorkflowDecision, update, deadline: float, finish: datetime.timedelta, trip: bool
          ) -> DecisionOutcome:
    """_send's answer, stored."""
    try:
        result = bridge.run(update, timeout=deadline + finish.total_seconds(), connect_timeout=deadline)
    except WorkflowUpdateFailedError as err:
        message = getattr(err.cause, "message", None) or str(err.cause or err)
        _answer(decision, WorkflowDecision.Status.REJECTED, message=message)
        return DecisionOutcome(decision=decision, delivered=True, message=message)
    except (RPCError, TemporalUnavailable) as err:
        if isinstance(err, RPCError) and err.status == RPCStatusCode.NOT_FOUND:
            message = "The report's workflow is not running."
            _answer(decision, WorkflowDecision.Status.REJECTED, message=message)
            return DecisionOutcome(decision=decision, delivered=True, message=message)
        reason = _not_taken_reason(decision, err, trip=trip)
        decision.error = f"{REASONS[reason]} ({err})"[:2000]
        # The lease ends with it: the outbox tries again from now on.
        WorkflowDecision.objects.filter(pk=decision.pk).update(
            error=decision.error, **({"sending_until": None} if decision.sending_until is not None else {}))
        decision.sending_until = None
        logger.info("decision %s (%s) not delivered: %s", decision.pk, decision.update_name, decision.error)
        return DecisionOutcome(decision=decision, delivered=False, message=_outcome_message(reason), reason=reason)
    if result is None:
        _answer(decision, WorkflowDecision.Status.ACCEPTED, message="accepted")
        return DecisionOutcome(decision=decision, delivered=True,
                               message="The workflow accepted your step and is carrying it out.")
    status = WorkflowDecision.Status.DUPLICATE if result.duplicate else WorkflowDecision.Status.DELIVERED
    _answer(decision, status, message=result.message, result=result)
    return DecisionOutcome(decision=decision, delivered=True, message=result.message, result=result)


def _no_worker(decision: WorkflowDecision) -> bool:
    """After an update went unanswered: is it because no worker takes the workflow's tasks (else: busy)?

    A workflow task scheduled for a while and not started means nobody polls its queue. So does a queue
    nobody polled since the update was sent: a live worker that takes the update's task polls again once it
    has handled it, and a busy one polls all the time; an idle one would have answered. A worker that stopped
    with a poll still open may be handed the task and never answer (its task shows started): that is the
    case this catches. Without the time of sending, over a minute without a poll (a live worker long-polls
    within 60 s).

    Asked first: does a worker process on the queue say it is alive (its heartbeat, workflows.monitor)? Then
    it takes the tasks, however busy. Under load its tasks come by its sticky queue and its poll of the
    queue described can stay open for a minute; taken for "no worker", that stopped every person's step
    from being sent at all (the breaker) while the worker worked through a queue of them.
    """
    from temporalio.api.enums.v1 import PendingWorkflowTaskState, TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

    from workflows.monitor import workers_alive

    if workers_alive().filter(task_queue=settings.TEMPORAL_TASK_QUEUE).exists():
        return False

    rpc = datetime.timedelta(seconds=1)

    async def describe(client):
        raw = (await client.get_workflow_handle(decision.workflow_id).describe(rpc_timeout=rpc)).raw_description
        task = raw.pending_workflow_task if raw.HasField("pending_workflow_task") else None
        queue = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(namespace=client.namespace,
                                     task_queue=TaskQueue(name=raw.execution_config.task_queue.name),
                                     task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW),
            timeout=rpc,
        )
        return task, queue.pollers

    try:
        task, pollers = bridge.run(describe, timeout=2, breaker=False)
    except Exception:  # noqa: BLE001 - a guess at the reason must never fail the step
        return False
    now = timezone.now()
    if task is not None and task.state == PendingWorkflowTaskState.PENDING_WORKFLOW_TASK_STATE_SCHEDULED:
        if now - task.scheduled_time.ToDatetime(tzinfo=datetime.timezone.utc) > datetime.timedelta(seconds=1):
            return True
    since = now - datetime.timedelta(seconds=70)
    if decision.last_attempt_at is not None:
        since = max(since, decision.last_attempt_at)
    return not any(p.last_access_time.ToDatetime(tzinfo=datetime.timezone.utc) > since for p in pollers)


def decision_deliver(*, decision: WorkflowDecision, deadline: float | None = None, leased: bool = False
                     ) -> DecisionOutcome:
    """Deliver a stored decision after its transaction committed, once its workflow has accepted the earlier ones.

    `leased`: the caller stored it just now with decision_store(sending=True); nobody else has sent it.
    """
    deadline = deadline or settings.TEMPORAL_DECISION_TIMEOUT
    ends = time.monotonic() + deadline
    if not leased:
        # Only what a sender may have changed: a whole refresh would also drop the person and report the
        # caller loaded with it, and storing the answer would read them again.
        decision.refresh_from_db(fields=["status", "result", "error", "attempts", "delivered_at",
                                         "last_attempt_at", "sending_until"])
        if decision.status not in WorkflowDecision.OPEN:
            return _stored_outcome(decision)
    # The earlier steps the workflow has not accepted yet (one it accepted is ahead of this one already), read
    # without the people and reports they name: nothing of them is written here (_taken), and selecting every
    # column of four tables, each matched against the ordering, cost milliseconds on every step.
    earlier = WorkflowDecision.objects.filter(
        workflow_id=decision.workflow_id, status=WorkflowDecision.Status.PENDING, created_at__lt=decision.created_at
    ).order_by("created_at")
    for previous in earlier:
        # Its acceptance is enough: once the workflow has taken it, this step is taken after it. Its answer is
        # its own sender's to wait for (a data executive's completion of Data Owner Identification held the
        # tester's submission of Sample Selection, the phase beside it, until it was carried out).
        reason = _taken(previous, deadline=max(0.5, ends - time.monotonic()))
        if reason is not None:
            message = _outcome_message(reason)
            if leased and decision.sending_until is not None:  # not sent now: the outbox sends it after
                WorkflowDecision.objects.filter(pk=decision.pk, sending_until=decision.sending_until).update(
                    sending_until=None)
                decision.sending_until = None
            return DecisionOutcome(decision=decision, delivered=False, message=message, reason=reason)
    return _send(decision, deadline=max(0.5, ends - time.monotonic()), leased=leased)


def _stored_outcome(decision: WorkflowDecision) -> DecisionOutcome:
    result = UpdateResult(**decision.result) if decision.result else None
    if decision.status == WorkflowDecision.Status.PENDING:
        return DecisionOutcome(decision=decision, delivered=False, message=_outcome_message(UNREACHABLE))
    message = result.message if result else (decision.error or "The workflow accepted your step.")
    return DecisionOutcome(decision=decision, delivered=True, message=message, result=result)


def _decide(*, user, cycle_report: CycleReport, update_name: str, make_input, subject: str = "",
            workflow_id: str = "", store=None) -> DecisionOutcome:
    """Store the decision (and, through `store`, the business change it stands for) in one transaction, then
    deliver it to the report's workflow (or to `workflow_id`)."""
    decision = decision_store(user=user, cycle_report=cycle_report, update_name=update_name,
                              make_input=make_input, subject=subject, workflow_id=workflow_id, store=store,
                              sending=True)
    return _raise_refusal(decision_deliver(decision=decision, leased=True))


def _raise_refusal(outcome: DecisionOutcome) -> DecisionOutcome:
    if outcome.decision.status == WorkflowDecision.Status.REJECTED:
        raise ConflictError(outcome.message)
    return outcome


def workflow_submit_version(*, user, cycle_report: CycleReport, phase: str, notes: str = "") -> DecisionOutcome:
    """The tester submits the phase's working data for approval."""
    if not can_work_on(user, cycle_report):
        raise PermissionDeniedError("Only the report's assigned tester can submit it.")
    if phase not in REVIEWED_PHASES:
        raise ApplicationError(f"{phase} has no version to submit.")
    # Data that isn't ready ("Decide the scope of every attribute first") is said here, before anything is sent.
    from cycles.services.artifacts import phase_artifact_check

    if cycle_report.workflow_id:
        phase_artifact_check(cycle_report=cycle_report, phase=phase)
    return _decide(
        user=user,
        cycle_report=cycle_report,
        update_name=UPDATE_SUBMIT_VERSION,
        make_input=lambda decision_id: SubmitVersionInput(
            decision_id=decision_id, phase=phase, user_id=user.pk, notes=notes
        ),
    )


def _named_report(owner) -> CycleReport:
    """The cycle report `owner` (a version, a request) belongs to, with the report and the cycle that its
    name in the audit trail is made of: as `owner` was loaded with it, else read in one query."""
    if type(owner).cycle_report.is_cached(owner):
        return owner.cycle_report
    owner.cycle_report = CycleReport.objects.select_related("report", "cycle").get(pk=owner.cycle_report_id)
    return owner.cycle_report


def workflow_decide_version(*, user, version: Version, approve: bool, notes: str = "") -> DecisionOutcome:
    """The report owner approves a submitted version or sends it back with notes."""
    cycle_report = _named_report(version)
    if not can_approve(user, cycle_report, version.phase):
        raise PermissionDeniedError("Only the report's owner can approve or send back its versions.")
    if version.author_id == user.pk:
        raise PermissionDeniedError("Nobody approves their own version.")
    if not approve and not notes.strip():
        raise ApplicationError("Say what needs to change: notes are required when sending a version back.")
    # A decision the worker would refuse (approving with a rejected sample) is refused here, stored nowhere.
    from versioning.services import version_decide_check

    version_decide_check(version=version, approve=approve)
    return _decide(
        user=user,
        cycle_report=cycle_report,
        update_name=UPDATE_DECIDE_VERSION,
        make_input=lambda decision_id: DecideVersionInput(
            decision_id=decision_id, phase=version.phase, version_id=version.pk,
            user_id=user.pk, approve=approve, notes=notes,
        ),
    )


def workflow_register_population(*, user, population_file: PopulationFile) -> DecisionOutcome:
    """Ask the workflow to profile an uploaded population file."""
    cycle_report = population_file.cycle_report
    if not can_work_on(user, cycle_report):
        raise PermissionDeniedError("Only the report's assigned tester can register its population.")
    return _decide(
        user=user,
        cycle_report=cycle_report,
        update_name=UPDATE_REGISTER_POPULATION,
        make_input=lambda decision_id: RegisterPopulationInput(
            decision_id=decision_id, population_file_id=population_file.pk, user_id=user.pk
        ),
    )


def workflow_complete_data_owners(*, user, cycle_report: CycleReport) -> DecisionOutcome:
    """The data executive has assigned an owner to every in-scope attribute."""
    from cycles.permissions import is_admin
    from synapse.roles import Role, has_role

    if not (has_role(user, Role.DATA_EXECUTIVE) and cycle_report.report.lob.data_executive_id == user.pk) and not (
        is_admin(user)
    ):
        raise PermissionDeniedError("Only the LOB's data executive can complete data owner identification.")
    return _decide(
        user=user,
        cycle_report=cycle_report,
        update_name=UPDATE_COMPLETE_DATA_OWNERS,
        make_input=lambda decision_id: CompleteDataOwnersInput(decision_id=decision_id, user_id=user.pk),
    )


def request_subject(request) -> str:
    return f"information_request:{request.pk}"


def request_decision_store(*, user, request, update_name: str) -> WorkflowDecision | None:
    """Store the message of a request's step inside the service's transaction that changed the request.

    The message carries the request's new status, so the workflow takes it as it is; None when the
    report's workflow was never started (nothing to tell).
    """
    cycle_report = _named_report(request)
    if not cycle_report.workflow_id:
        return None
    return decision_store(
        user=user, cycle_report=cycle_report, update_name=update_name, subject=request_subject(request),
        make_input=lambda decision_id: RequestEventInput(
            decision_id=decision_id, request_id=request.pk, user_id=user.pk, status=request.status
        ),
    )


def request_added_decision_store(*, user, request, from_request) -> WorkflowDecision | None:
    """Store, inside the reassignment's transaction, the message that a request was split off
    `from_request` for another data owner: the workflow starts chasing it. None when the report's
    workflow was never started."""
    cycle_report = request.cycle_report
    if not cycle_report.workflow_id:
        return None
    return decision_store(
        user=user, cycle_report=cycle_report, update_name=UPDATE_REQUEST_ADDED, subject=request_subject(request),
        make_input=lambda decision_id: RequestAddedInput(
            decision_id=decision_id, request_id=request.pk, user_id=user.pk, status=request.status,
            from_request_id=from_request.pk,
        ),
    )


def workflow_request_added(*, decision: WorkflowDecision) -> DecisionOutcome:
    """Deliver the request_added message a reassignment stored with its split (after the commit)."""
    return _raise_refusal(decision_deliver(decision=decision))


def _request_event(*, user, request, update_name: str) -> DecisionOutcome:
    """Deliver the message the service stored with the request's change (or store one, for older callers)."""
    decision = (
        WorkflowDecision.objects.filter(subject=request_subject(request), update_name=update_name)
        .select_related(*DECISION_NAMED).order_by("-created_at").first()
    )
    if decision is None:
        return _decide(
            user=user, cycle_report=request.cycle_report, update_name=update_name, subject=request_subject(request),
            make_input=lambda decision_id: RequestEventInput(
                decision_id=decision_id, request_id=request.pk, user_id=user.pk, status=request.status
            ),
        )
    return _raise_refusal(decision_deliver(decision=decision))


def workflow_request_submitted(*, user, request) -> DecisionOutcome:
    """Tell the workflow the data owner submitted the evidence (stored with the change by the service)."""
    if request.data_owner_id != user.pk:
        raise PermissionDeniedError("Only the request's data owner can submit it.")
    return _request_event(user=user, request=request, update_name=UPDATE_REQUEST_SUBMITTED)


def workflow_request_reviewed(*, user, request) -> DecisionOutcome:
    """Tell the workflow the tester finished reviewing a request: accepted, or returned to the data owner."""
    if not can_work_on(user, request.cycle_report):
        raise PermissionDeniedError("Only the report's assigned tester reviews its evidence.")
    return _request_event(user=user, request=request, update_name=UPDATE_REQUEST_REVIEWED)


def workflow_decide_extension(*, user, extension, approve: bool, notes: str = "") -> DecisionOutcome:
    """The report owner approves or rejects more samples proposed on Test Execution failures."""
    cycle_report = extension.cycle_report
    if not can_approve(user, cycle_report, "test_execution"):
        raise PermissionDeniedError("Only the report's owner approves or rejects a sample extension.")
    if extension.status != extension.Status.PROPOSED:
        raise ConflictError(f"Extension {extension.number} is already {extension.get_status_display().lower()}.")
    if not approve and not notes.strip():
        raise ApplicationError("Say why the failures don't call for more samples: notes are required to reject.")
    return _decide(
        user=user,
        cycle_report=cycle_report,
        update_name=UPDATE_DECIDE_EXTENSION,
        make_input=lambda decision_id: DecideExtensionInput(
            decision_id=decision_id, extension_id=extension.pk, user_id=user.pk, approve=approve, notes=notes,
        ),
    )


def workflow_sign_off(*, user, cycle_report: CycleReport, role: str, sign: bool = True, send_back_to: str = "",
                      notes: str = "") -> DecisionOutcome:
    """Sign the report's final test report in `role` (in order), or send it back naming what reopens."""
    from cycles.services.final_report import final_report_latest, sign_off_check

    final_report = final_report_latest(cycle_report=cycle_report, figures=False)
    if final_report is None:
        raise ConflictError("The final test report has not been generated yet.")
    # Checked here for a clear message at once; the workflow's validator and its activity check again.
    sign_off_check(user=user, final_report=final_report, role=role, sign=sign, send_back_to=send_back_to,
                   notes=notes)
    return _decide(
        user=user,
        cycle_report=cycle_report,
        update_name=UPDATE_SIGN_OFF,
        make_input=lambda decision_id: SignOffInput(
            decision_id=decision_id, role=role, user_id=user.pk, sign=sign,
            send_back_to="" if sign else send_back_to, notes=notes.strip(),
        ),
    )


def workflow_remove_report(*, user, cycle_report: CycleReport, reason: str) -> DecisionOutcome:
    """Take a report out of its running cycle, with a reason: the cycle completes without it."""
    from cycles.models import CycleReportRemoval

    cycle = cycle_report.cycle
    if not can_manage_cycle(user, cycle):
        raise PermissionDeniedError("Only the cycle's Test Manager can remove a report from it.")
    if not reason.strip():
        raise ApplicationError("Say why the report is removed from the cycle.")
    if not cycle.workflow_id or cycle.status != TestCycle.Status.RUNNING:
        raise ConflictError("Reports are removed from a running cycle only.")
    if CycleReportRemoval.objects.filter(cycle_report=cycle_report).exists():
        raise ConflictError(f"{cycle_report.report} was already removed from the cycle.")

    def store():
        removal = CycleReportRemoval.objects.create(cycle_report=cycle_report, reason=reason.strip(), removed_by=user)
        audit_record(actor=user, action="cycle_report.remove", obj=cycle_report, after={"reason": removal.reason})

    try:
        return _decide(
            user=user,
            cycle_report=cycle_report,
            update_name=UPDATE_REMOVE_REPORT,
            workflow_id=cycle.workflow_id,
            store=store,
            make_input=lambda decision_id: RemoveReportInput(
                decision_id=decision_id, cycle_report_id=cycle_report.pk, user_id=user.pk),
        )
    except ConflictError as err:
        # The cycle's workflow refused (the report's workflow had already finished): it was not removed.
        with transaction.atomic():
            CycleReportRemoval.objects.filter(cycle_report=cycle_report).delete()
            audit_record(actor=user, action="cycle_report.remove_refused", obj=cycle_report,
                         after={"reason": err.message})
        raise


def alert_raise(
    *, key: str, kind: str, message: str, cycle_report_id: int | None = None, severity: str = "warning"
) -> WorkflowAlert:
    """Record an alert once per key (activities call it; a retry doesn't duplicate it)."""
    workflow_id = ""
    if cycle_report_id:
        workflow_id = CycleReport.objects.filter(pk=cycle_report_id).values_list("workflow_id", flat=True).first()
    alert, _ = WorkflowAlert.objects.get_or_create(
        key=key,
        defaults={"kind": kind, "message": message, "severity": severity,
                  "cycle_report_id": cycle_report_id, "workflow_id": workflow_id or ""},
    )
    return alert


OUTBOX_THREADS = 8
_outbox_pool: ThreadPoolExecutor | None = None


def _outbox_threads() -> ThreadPoolExecutor:
    """The outbox's threads, made once per process: a pool made for each round started threads, and with
    them database connections, afresh every few seconds (half the connections PostgreSQL saw over twenty
    reports). Each thread keeps its connection as long as the process allows (CONN_MAX_AGE: the worker
    sets it; elsewhere it is 0, and the connection is closed after each workflow's turn)."""
    global _outbox_pool
    if _outbox_pool is None:
        _outbox_pool = ThreadPoolExecutor(max_workers=OUTBOX_THREADS, thread_name_prefix="outbox")
    return _outbox_pool


def _deliver_workflow_queue(decision_ids: list, deadline: float) -> int:
    """Deliver one workflow's open decisions in order; stop at the first one the workflow has not accepted."""
    delivered = 0
    try:
        for pk in decision_ids:
            decision = WorkflowDecision.objects.select_related(*DECISION_NAMED).get(pk=pk)
            if decision.status not in WorkflowDecision.OPEN:
                continue
            outcome = _send(decision, deadline=deadline, trip=False, finish=deadline)
            if decision.status == WorkflowDecision.Status.PENDING:
                break  # not taken by the workflow: its successors wait; next round
            if decision.status == WorkflowDecision.Status.ACCEPTED:
                continue  # taken, still being carried out (its answer is collected next round): the next goes
            delivered += 1
            logger.info("delivered decision %s (%s): %s", decision.pk, decision.update_name, outcome.message)
    finally:
        close_old_connections()  # this thread's, unless CONN_MAX_AGE keeps them
    return delivered


def decisions_deliver_pending(*, limit: int = 500, deadline: float | None = None) -> int:
    """Deliver the decisions not answered yet (the outbox); returns how many were answered.

    Workflows are served concurrently, each in its own order, each message with a short deadline,
    so one stuck workflow never holds up another's messages.
    """
    deadline = deadline or settings.TEMPORAL_OUTBOX_MESSAGE_TIMEOUT
    queues: dict[str, list] = {}
    being_sent: set[str] = set()
    now = timezone.now()
    for pk, workflow_id, sending_until in (
        WorkflowDecision.objects.filter(status__in=WorkflowDecision.OPEN)
        .order_by("created_at").values_list("pk", "workflow_id", "sending_until")[:limit]
    ):
        # A decision its sender still waits on is theirs to answer (until their wait is over); the
        # workflow's later ones wait behind it, as they would behind one not answered.
        if sending_until is not None and sending_until > now:
            being_sent.add(workflow_id)
        if workflow_id not in being_sent:
            queues.setdefault(workflow_id, []).append(pk)
    if not queues:
        return 0
    if bridge.open_reason():
        logger.info("outbox: %d workflows wait; %s", len(queues), REASONS[bridge.open_reason()])
        return 0  # Temporal or the worker is away: the breaker says so without a call per workflow
    logger.info("outbox: %d decisions waiting for %d workflows", sum(map(len, queues.values())), len(queues))
    return sum(_outbox_threads().map(lambda ids: _deliver_workflow_queue(ids, deadline), queues.values()))


# --- reconciliation -------------------------------------------------------------


@dataclass
class ReconcileReport:
    checked: int = 0
    delivered: int = 0
    repaired: list[str] = dataclasses.field(default_factory=list)
    alerts: list[str] = dataclasses.field(default_factory=list)
    unavailable: str = ""

    def __str__(self) -> str:
        text = (f"{self.checked} report workflows checked, {self.delivered} waiting decisions delivered, "
                f"{len(self.repaired)} repaired, {len(self.alerts)} alerts")
        return f"{text}; stopped: {self.unavailable}" if self.unavailable else text


# A request's status in the database -> the step that tells the workflow so, and who took it.
REPAIR_STEPS = {
    "submitted": (UPDATE_REQUEST_SUBMITTED, lambda request: request.data_owner),
    "accepted": (UPDATE_REQUEST_REVIEWED, lambda request: request.cycle_report.tester),
    "returned": (UPDATE_REQUEST_REVIEWED, lambda request: request.cycle_report.tester),
}


def _reconcile_claims(cycle_reports, now, every: datetime.timedelta) -> set[str]:
    """The workflow ids of `cycle_reports` that no worker reconciled in the last `every`, claimed for this one.

    One read says which were reconciled lately (skipped without a write); each of the others is taken by a
    conditional write, which one worker of several wins. A workflow with no execution row yet (never started
    by a worker's activity) is nobody's to claim: it is reconciled.
    """
    ids = {cr.workflow_id for cr in cycle_reports}
    since = now - every
    rows = list(WorkflowExecution.objects.filter(workflow_id__in=ids).values_list("workflow_id", "reconciled_at"))
    lately = {wid for wid, at in rows if at is not None and at > since}
    tracked = {wid for wid, _ in rows}
    claimed = ids - tracked
    due = Q(reconciled_at__isnull=True) | Q(reconciled_at__lte=since)
    for workflow_id in tracked - lately:
        if WorkflowExecution.objects.filter(due, workflow_id=workflow_id).update(reconciled_at=now):
            claimed.add(workflow_id)
    return claimed


def workflows_reconcile(*, cycle_report_ids: list[int] | None = None,
                        claim_every: datetime.timedelta | None = None) -> ReconcileReport:
    """Compare every running report's workflow with the database; repair what can be, alert the rest.

    With `claim_every` (the workers' periodic runs), a workflow is compared by one worker of several, at
    most once in that time: each claims the workflows it compares (`_reconcile_claims`); one it could not
    ask Temporal about is due again at the next run. Without it (the command, the admin's action), every
    running report's workflow is compared.

    Repairs: decisions not answered yet are delivered (in each workflow's order); a request whose
    status the workflow doesn't have, with no message on its way, gets a message carrying the
    database's status; a version submitted or decided, a sample extension decided or a sign-off
    recorded by the workflow's activity whose result the workflow never took in gets its step sent
    again with the original decision's id (workflows.reconciliation). Alerts (once per key): a
    workflow that is gone while its cycle runs, a request the workflow doesn't know, a request the
    workflow has ahead of the database, and a reviewed phase, extension or sign-off on which the
    workflow and the database disagree in a way the database can't settle.
    """
    from cycles.models import InformationRequest

    report = ReconcileReport()
    cycle_reports = (CycleReport.objects.exclude(workflow_id="").filter(cycle__status=TestCycle.Status.RUNNING)
                     .select_related("cycle", "report", "tester"))
    if cycle_report_ids is not None:
        cycle_reports = cycle_reports.filter(pk__in=cycle_report_ids)
    now = timezone.now()
    if claim_every is not None:
        cycle_reports = list(cycle_reports)
        claimed = _reconcile_claims(cycle_reports, now, claim_every)
        cycle_reports = [cr for cr in cycle_reports if cr.workflow_id in claimed]
    reached = 0
    for reached, cycle_report in enumerate(cycle_reports):
        open_ids = list(WorkflowDecision.objects.filter(workflow_id=cycle_report.workflow_id,
                                                        status__in=WorkflowDecision.OPEN)
                        .order_by("created_at").values_list("pk", flat=True))
        try:
            if open_ids:
                report.delivered += _deliver_workflow_queue(open_ids, settings.TEMPORAL_OUTBOX_MESSAGE_TIMEOUT)
            status = _query_status(cycle_report)
        except TemporalUnavailable as err:
            report.unavailable = f"{err.explanation}."
            break
        except ConflictError as err:
            report.alerts.append(_reconcile_alert(cycle_report, "query", str(err)))
            continue
        report.checked += 1
        if status is None:
            if cycle_report.status not in ("completed", "cancelled", "failed", "scoped"):
                report.alerts.append(_reconcile_alert(
                    cycle_report, "not-running", f"The workflow of {cycle_report.report} is not running, "
                    f"but its cycle is (report status: {cycle_report.status})."))
            continue
        waiting = set(WorkflowDecision.objects.filter(workflow_id=cycle_report.workflow_id,
                                                      status__in=WorkflowDecision.OPEN)
                      .values_list("subject", flat=True))
        requests = {r.pk: r for r in InformationRequest.objects.filter(cycle_report=cycle_report)
                    .select_related("data_owner", "cycle_report__tester")}
        for request_id, known in status.requests.items():
            request = requests.get(int(request_id))
            if request is None:
                report.alerts.append(_reconcile_alert(
                    cycle_report, f"request-{request_id}-unknown",
                    f"The workflow of {cycle_report.report} waits on request {request_id}, which the database "
                    "doesn't have."))
                continue
            if request.status == known or request_subject(request) in waiting:
                continue
            step = REPAIR_STEPS.get(request.status)
            if step is None:
                report.alerts.append(_reconcile_alert(
                    cycle_report, f"request-{request.pk}-{known}-{request.status}",
                    f"The workflow has the request to {request.data_owner} as {known}, the database as "
                    f"{request.status}: a person must look at it."))
                continue
            update_name, who = step
            with transaction.atomic():
                decision = request_decision_store(user=who(request), request=request, update_name=update_name)
            outcome = _deliver_repair(decision)
            report.repaired.append(f"{cycle_report.workflow_id}: request {request.pk} {known} -> "
                                   f"{request.status} ({outcome})")
        try:
            _reconcile_steps(cycle_report, status, report)
        except TemporalUnavailable as err:
            report.unavailable = f"{err.explanation}."
            break
    if report.unavailable and claim_every is not None:
        # Not compared after all: due again at the next run, whichever worker's.
        WorkflowExecution.objects.filter(workflow_id__in=[cr.workflow_id for cr in cycle_reports[reached:]],
                                         reconciled_at=now).update(reconciled_at=None)
    logger.info("reconciliation: %s", report)
    return report


def _reconcile_steps(cycle_report: CycleReport, status: ReportStatus, report: ReconcileReport) -> None:
    """Reviewed phases, the sample extension and sign-offs (workflows.reconciliation), once no message of the
    report is on its way. A finding counts only if a second look at the workflow still shows it, so a step
    carried out between the status query and the database read is not taken for a disagreement."""
    from django.contrib.auth import get_user_model

    from workflows.reconciliation import steps_reconcile

    def quiet() -> bool:
        return not WorkflowDecision.objects.filter(workflow_id=cycle_report.workflow_id,
                                                   status__in=WorkflowDecision.OPEN).exists()

    if not quiet():
        return
    found = steps_reconcile(cycle_report=cycle_report, status=status)
    if not (found.repairs or found.alerts):
        return
    try:
        again = _query_status(cycle_report)
    except ConflictError:
        return  # the workflow could not answer now; the next round looks again
    if again is None or not quiet():
        return
    confirmed = steps_reconcile(cycle_report=cycle_report, status=again)
    first_repairs = {r.what for r in found.repairs}
    first_alerts = {key for key, _ in found.alerts}
    for key, message in confirmed.alerts:
        if key in first_alerts:
            report.alerts.append(_reconcile_alert(cycle_report, key, message))
    users = get_user_model().objects.in_bulk([r.user_id for r in confirmed.repairs])
    for repair in confirmed.repairs:
        if repair.what not in first_repairs:
            continue
        decision = decision_store(user=users[repair.user_id], cycle_report=cycle_report,
                                  update_name=repair.update_name, make_input=repair.make_input,
                                  subject=repair.subject)
        outcome = _deliver_repair(decision)
        report.repaired.append(f"{cycle_report.workflow_id}: {repair.what} ({outcome})")


def _deliver_repair(decision: WorkflowDecision) -> str:
    try:
        return decision_deliver(decision=decision, deadline=settings.TEMPORAL_OUTBOX_MESSAGE_TIMEOUT).message
    except Exception as err:  # noqa: BLE001 - stored: the outbox delivers it later
        return f"stored, not delivered yet: {err}"


def _reconcile_alert(cycle_report: CycleReport, key: str, message: str) -> str:
    alert_raise(key=f"reconcile-{cycle_report.workflow_id}-{key}", kind="reconciliation", message=message,
                cycle_report_id=cycle_report.pk, severity="critical")
    return message
