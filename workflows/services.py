"""The workflow service: start, status, decide, cancel. Pages, the API and the admin call these.

Every call checks permission on the object first. A human decision is stored
(WorkflowDecision) before it is sent; when Temporal can't be reached it stays
pending and the worker's outbox loop delivers it later with the same update id.
"""
from __future__ import annotations

import dataclasses
import datetime
import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from temporalio.client import (
    WorkflowExecutionStatus,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
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
from workflows.models import WorkflowAlert, WorkflowDecision
from workflows.temporal.client import TemporalUnavailable, bridge
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
    RequestEventInput,
    RequestSchedule,
    SignOffInput,
    SubmitVersionInput,
    UpdateResult,
    cycle_workflow_id,
    report_workflow_id,
)

logger = logging.getLogger(__name__)

UNAVAILABLE_MESSAGE = (
    "The workflow service can't be reached right now. Your decision is saved and will be "
    "delivered as soon as it is back."
)
UPDATE_INPUTS = {
    UPDATE_SUBMIT_VERSION: SubmitVersionInput,
    UPDATE_DECIDE_VERSION: DecideVersionInput,
    UPDATE_REGISTER_POPULATION: RegisterPopulationInput,
    UPDATE_COMPLETE_DATA_OWNERS: CompleteDataOwnersInput,
    UPDATE_REQUEST_SUBMITTED: RequestEventInput,
    UPDATE_REQUEST_REVIEWED: RequestEventInput,
    UPDATE_DECIDE_EXTENSION: DecideExtensionInput,
    UPDATE_SIGN_OFF: SignOffInput,
    UPDATE_REMOVE_REPORT: RemoveReportInput,
}
# RPC failures that mean "not reachable now", as opposed to "refused".
UNAVAILABLE_CODES = {RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED}


def _unavailable(err: BaseException) -> bool:
    return isinstance(err, TemporalUnavailable) or (isinstance(err, RPCError) and err.status in UNAVAILABLE_CODES)


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


def workflow_status(*, user, cycle_report: CycleReport) -> ReportStatus | None:
    """The report workflow's live status (None if it never started or has finished)."""
    if not can_view_cycle_report(user, cycle_report):
        raise PermissionDeniedError("You can't see this report.")
    if not cycle_report.workflow_id:
        return None

    async def query(client):
        handle = client.get_workflow_handle(cycle_report.workflow_id)
        description = await handle.describe()
        if description.status != WorkflowExecutionStatus.RUNNING:
            return None
        return await handle.query(QUERY_STATUS, result_type=ReportStatus)

    try:
        return bridge.run(query)
    except WorkflowQueryFailedError as err:
        raise ConflictError(f"The workflow could not answer: {err}") from err
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return None
        if _unavailable(err):
            raise ServiceUnavailableError("The workflow service can't be reached right now.") from err
        raise
    except TemporalUnavailable as err:
        raise ServiceUnavailableError("The workflow service can't be reached right now.") from err


# --- decisions ----------------------------------------------------------------


def _deliver(decision: WorkflowDecision) -> DecisionOutcome:
    """Send a stored decision as a Temporal update (its id is the update id)."""
    inp = UPDATE_INPUTS[decision.update_name](**decision.payload)

    async def update(client):
        handle = client.get_workflow_handle(decision.workflow_id)
        return await handle.execute_update(
            decision.update_name, inp, id=str(decision.id), result_type=UpdateResult
        )

    WorkflowDecision.objects.filter(pk=decision.pk).update(attempts=decision.attempts + 1)
    decision.attempts += 1
    try:
        result = bridge.run(update)
    except WorkflowUpdateFailedError as err:
        message = getattr(err.cause, "message", None) or str(err.cause or err)
        decision.status = WorkflowDecision.Status.REJECTED
        decision.error = message
        decision.delivered_at = timezone.now()
        decision.save(update_fields=["status", "error", "delivered_at"])
        return DecisionOutcome(decision=decision, delivered=True, message=message)
    except (RPCError, TemporalUnavailable) as err:
        if isinstance(err, RPCError) and err.status == RPCStatusCode.NOT_FOUND:
            message = "The report's workflow is not running."
            decision.status = WorkflowDecision.Status.REJECTED
            decision.error = message
            decision.save(update_fields=["status", "error"])
            return DecisionOutcome(decision=decision, delivered=True, message=message)
        if not _unavailable(err):
            raise
        decision.error = str(err)[:2000]
        decision.save(update_fields=["error"])
        return DecisionOutcome(decision=decision, delivered=False, message=UNAVAILABLE_MESSAGE)
    decision.status = WorkflowDecision.Status.DELIVERED
    decision.result = dataclasses.asdict(result)
    decision.error = ""
    decision.delivered_at = timezone.now()
    decision.save(update_fields=["status", "result", "error", "delivered_at"])
    return DecisionOutcome(decision=decision, delivered=True, message=result.message, result=result)


def _decide(*, user, cycle_report: CycleReport, update_name: str, make_input, workflow_id: str = "",
            store=None) -> DecisionOutcome:
    """Store the decision (and, through `store`, the business change it stands for) in one transaction, then
    deliver it to the report's workflow (or to `workflow_id`)."""
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
        )
        decision.payload = dataclasses.asdict(make_input(str(decision.id)))
        decision.save()
        audit_record(actor=user, action=f"decision.{update_name}", obj=cycle_report,
                     after=decision.payload, context={"decision_id": str(decision.id)})
    outcome = _deliver(decision)
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
    from cycles.services.artifacts import phase_artifact_items

    if cycle_report.workflow_id:
        phase_artifact_items(cycle_report=cycle_report, phase=phase)
    return _decide(
        user=user,
        cycle_report=cycle_report,
        update_name=UPDATE_SUBMIT_VERSION,
        make_input=lambda decision_id: SubmitVersionInput(
            decision_id=decision_id, phase=phase, user_id=user.pk, notes=notes
        ),
    )


def workflow_decide_version(*, user, version: Version, approve: bool, notes: str = "") -> DecisionOutcome:
    """The report owner approves a submitted version or sends it back with notes."""
    cycle_report = version.cycle_report
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


def workflow_request_submitted(*, user, request) -> DecisionOutcome:
    """The data owner submitted the evidence of their request (stored by the service first)."""
    if request.data_owner_id != user.pk:
        raise PermissionDeniedError("Only the request's data owner can submit it.")
    return _decide(
        user=user,
        cycle_report=request.cycle_report,
        update_name=UPDATE_REQUEST_SUBMITTED,
        make_input=lambda decision_id: RequestEventInput(
            decision_id=decision_id, request_id=request.pk, user_id=user.pk
        ),
    )


def workflow_request_reviewed(*, user, request) -> DecisionOutcome:
    """The tester finished reviewing a request: accepted, or returned to the data owner."""
    if not can_work_on(user, request.cycle_report):
        raise PermissionDeniedError("Only the report's assigned tester reviews its evidence.")
    return _decide(
        user=user,
        cycle_report=request.cycle_report,
        update_name=UPDATE_REQUEST_REVIEWED,
        make_input=lambda decision_id: RequestEventInput(
            decision_id=decision_id, request_id=request.pk, user_id=user.pk
        ),
    )


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

    final_report = final_report_latest(cycle_report=cycle_report)
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


def decisions_deliver_pending(*, limit: int = 100) -> int:
    """Deliver decisions stored while Temporal was unreachable (oldest first); returns how many went out."""
    delivered = 0
    for decision in WorkflowDecision.objects.filter(status=WorkflowDecision.Status.PENDING)[:limit]:
        outcome = _deliver(decision)
        if not outcome.delivered:
            break  # still unreachable: keep the order, try again later
        delivered += 1
        logger.info("delivered decision %s (%s): %s", decision.pk, decision.update_name, outcome.message)
    return delivered
