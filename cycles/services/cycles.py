"""Services for LOBs, reports, cycles and the reports inside a cycle."""
from __future__ import annotations

import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from cycles.exceptions import ApplicationError, ConflictError, PermissionDeniedError
from cycles.models import LOB, CycleReport, Phase, PhaseState, Report, TestCycle
from cycles.permissions import can_create_cycle, can_manage_cycle
from synapse.audit import audit_record, snapshot
from synapse.roles import Role, has_role

PHASE_VALUES = [p.value for p in Phase]


def lob_create(*, name: str, code: str, data_executive, actor=None) -> LOB:
    if not has_role(data_executive, Role.DATA_EXECUTIVE):
        raise ApplicationError(f"{data_executive} is not a Data Executive.")
    try:
        with transaction.atomic():
            lob = LOB.objects.create(name=name, code=code, data_executive=data_executive)
            audit_record(actor=actor, action="lob.create", obj=lob, after=snapshot(lob))
    except IntegrityError:
        # Two creates at once: the check before passed for both, the unique constraint stopped one.
        raise ConflictError(f"An LOB named {name!r} or coded {code!r} exists.") from None
    return lob


def report_create(
    *, name: str, regulation: str, owner, lob: LOB, frequency: str, fields: list, description: str = "", actor=None
) -> Report:
    if not has_role(owner, Role.REPORT_OWNER):
        raise ApplicationError(f"{owner} is not a Report Owner.")
    names = [f.get("name") if isinstance(f, dict) else f for f in fields]
    if any(not n for n in names) or len(set(names)) != len(names):
        raise ApplicationError("Every field needs a name, and names must be unique.")
    try:
        with transaction.atomic():
            report = Report.objects.create(
                name=name, regulation=regulation, owner=owner, lob=lob, frequency=frequency,
                fields=fields, description=description,
            )
            audit_record(actor=actor, action="report.create", obj=report, after=snapshot(report))
    except IntegrityError:
        raise ConflictError(f"A report named {name!r} exists.") from None
    return report


def _validate_configuration(configuration: dict) -> dict:
    """The configuration typed and bounded (cycles.configuration), so the workflow can always decode it."""
    from cycles.configuration import cycle_configuration_clean

    return cycle_configuration_clean(configuration)


def cycle_create(
    *, user, name: str, period_start: datetime.date, period_end: datetime.date, configuration: dict | None = None
) -> TestCycle:
    if not can_create_cycle(user):
        raise PermissionDeniedError("Only a Test Manager can create a cycle.")
    if period_end < period_start:
        raise ApplicationError("The period ends before it starts.")
    with transaction.atomic():
        cycle = TestCycle.objects.create(
            name=name,
            period_start=period_start,
            period_end=period_end,
            test_manager=user,
            configuration=_validate_configuration(configuration or {}),
        )
        audit_record(actor=user, action="cycle.create", obj=cycle, after=snapshot(cycle))
    return cycle


def cycle_update_configuration(*, user, cycle: TestCycle, configuration: dict) -> TestCycle:
    if not can_manage_cycle(user, cycle):
        raise PermissionDeniedError("Only the cycle's Test Manager can change its configuration.")
    if cycle.status != TestCycle.Status.DRAFT:
        raise ConflictError("The configuration is given to the workflow at start; it can't change once started.")
    with transaction.atomic():
        before = snapshot(cycle, ["configuration"])
        cycle.configuration = _validate_configuration(configuration)
        cycle.save(update_fields=["configuration"])
        audit_record(actor=user, action="cycle.configure", obj=cycle, before=before,
                     after=snapshot(cycle, ["configuration"]))
    return cycle


def cycle_add_report(*, user, cycle: TestCycle, report: Report, tester=None) -> CycleReport:
    if not can_manage_cycle(user, cycle):
        raise PermissionDeniedError("Only the cycle's Test Manager can add reports.")
    if cycle.status != TestCycle.Status.DRAFT:
        raise ConflictError("Reports can be added only before the cycle's workflow starts.")
    if tester is not None and not has_role(tester, Role.TESTER):
        raise ApplicationError(f"{tester} is not a Tester.")
    if CycleReport.objects.filter(cycle=cycle, report=report).exists():
        raise ConflictError(f"{report} is already in {cycle}.")
    try:
        with transaction.atomic():
            cycle_report = CycleReport.objects.create(cycle=cycle, report=report, tester=tester)
            audit_record(actor=user, action="cycle.add_report", obj=cycle_report, after=snapshot(cycle_report))
    except IntegrityError:
        raise ConflictError(f"{report} is already in {cycle}.") from None
    return cycle_report


def cycle_report_assign_tester(*, user, cycle_report: CycleReport, tester) -> CycleReport:
    if not can_manage_cycle(user, cycle_report.cycle):
        raise PermissionDeniedError("Only the cycle's Test Manager can assign testers.")
    if not has_role(tester, Role.TESTER):
        raise ApplicationError(f"{tester} is not a Tester.")
    if (cycle_report.cycle.status == TestCycle.Status.RUNNING and cycle_report.tester_id
            and cycle_report.tester_id != tester.pk):
        # Work is under way: moving it is a reassignment, with a reason and both testers told (issue 7).
        raise ConflictError(
            f"{cycle_report.report} is being tested by {cycle_report.tester}: reassign it with a reason instead."
        )
    with transaction.atomic():
        before = snapshot(cycle_report, ["tester_id"])
        cycle_report.tester = tester
        cycle_report.save(update_fields=["tester", "updated_at"])
        audit_record(actor=user, action="cycle_report.assign_tester", obj=cycle_report, before=before,
                     after=snapshot(cycle_report, ["tester_id"]))
    return cycle_report


def cycle_mark_started(*, user, cycle: TestCycle, workflow_id: str, report_workflow_ids: dict[int, str]) -> TestCycle:
    """Record that the cycle's workflow was started (called by WorkflowService after Temporal accepted it)."""
    with transaction.atomic():
        cycle = TestCycle.objects.select_for_update().get(pk=cycle.pk)
        before = snapshot(cycle, ["status", "workflow_id"])
        cycle.status = TestCycle.Status.RUNNING
        cycle.workflow_id = workflow_id
        cycle.started_at = cycle.started_at or timezone.now()
        cycle.save(update_fields=["status", "workflow_id", "started_at"])
        for cycle_report_id, wf_id in report_workflow_ids.items():
            CycleReport.objects.filter(pk=cycle_report_id, cycle=cycle).update(
                workflow_id=wf_id, status=CycleReport.Status.IN_PROGRESS
            )
        audit_record(actor=user, action="cycle.start_workflow", obj=cycle, before=before,
                     after=snapshot(cycle, ["status", "workflow_id"]))
    return cycle


def cycle_set_status(*, cycle_id: int, status: str, context: dict | None = None) -> TestCycle:
    """Set the cycle's status from the workflow (completed, failed, cancelled); idempotent."""
    if status not in TestCycle.Status.values:
        raise ApplicationError(f"Unknown cycle status {status!r}.")
    with transaction.atomic():
        cycle = TestCycle.objects.select_for_update().get(pk=cycle_id)
        if cycle.status == status:
            return cycle
        before = snapshot(cycle, ["status"])
        cycle.status = status
        fields = ["status"]
        if status in (TestCycle.Status.COMPLETED, TestCycle.Status.CANCELLED, TestCycle.Status.FAILED):
            cycle.completed_at = timezone.now()
            fields.append("completed_at")
        cycle.save(update_fields=fields)
        audit_record(actor=None, action=f"cycle.{status}", obj=cycle, before=before,
                     after=snapshot(cycle, ["status"]), context=context)
    return cycle


def cycle_report_enter_phase(
    *, cycle_report_id: int, phase: str, skipped: bool = False, set_current: bool = True,
    workflow_id: str = "", context: dict | None = None,
) -> tuple[str, CycleReport]:
    """Move a cycle report into `phase` (or record it skipped). Returns (previous phase, cycle report).

    With set_current=False (the second phase of a parallel step) the phase
    becomes active but the report's current phase stays. Idempotent: entering
    a phase again changes nothing.
    """
    if phase not in PHASE_VALUES:
        raise ApplicationError(f"Unknown phase {phase!r}.")
    with transaction.atomic():
        # With its report and cycle, which the audit entry names (only the report's row is locked).
        cycle_report = (CycleReport.objects.select_for_update(no_key=True, of=("self",))
                        .select_related("report", "cycle")
                        .get(pk=cycle_report_id))
        previous = cycle_report.phase
        if workflow_id and not cycle_report.workflow_id:
            # The web process records it after Temporal accepts the start; if that write was
            # lost, the report's own workflow fills it in so decisions can reach it.
            cycle_report.workflow_id = workflow_id
            cycle_report.save(update_fields=["workflow_id", "updated_at"])
        # Entering again keeps the row there (one INSERT that does nothing on conflict: no read, no savepoint).
        PhaseState.objects.bulk_create([PhaseState(
            cycle_report=cycle_report, phase=phase,
            status=PhaseState.Status.SKIPPED if skipped else PhaseState.Status.ACTIVE,
        )], ignore_conflicts=True)
        if skipped:
            if phase in cycle_report.skipped_phases:
                return previous, cycle_report
            cycle_report.skipped_phases = [*cycle_report.skipped_phases, phase]
            cycle_report.save(update_fields=["skipped_phases", "updated_at"])
            audit_record(actor=None, action="cycle_report.skip_phase", obj=cycle_report,
                         after={"phase": phase}, context=context)
            return previous, cycle_report
        if previous == phase or not set_current:
            return previous, cycle_report
        cycle_report.phase = phase
        cycle_report.status = CycleReport.Status.IN_PROGRESS
        cycle_report.save(update_fields=["phase", "status", "updated_at"])
        audit_record(actor=None, action="cycle_report.enter_phase", obj=cycle_report,
                     before={"phase": previous}, after={"phase": phase}, context=context)
    return previous, cycle_report


def cycle_report_complete_phase(*, cycle_report_id: int, phase: str, context: dict | None = None) -> PhaseState:
    """Mark a phase of the cycle report completed (idempotent)."""
    with transaction.atomic():
        state, _ = (PhaseState.objects.select_for_update(of=("self",))
                    .select_related("cycle_report__report", "cycle_report__cycle")
                    .get_or_create(cycle_report_id=cycle_report_id, phase=phase))
        if state.status == PhaseState.Status.COMPLETED:
            return state
        state.status = PhaseState.Status.COMPLETED
        state.completed_at = timezone.now()
        state.save(update_fields=["status", "completed_at"])
        audit_record(actor=None, action="cycle_report.complete_phase", obj=state.cycle_report,
                     after={"phase": phase}, context=context)
    return state


def cycle_report_finish(*, cycle_report_id: int, status: str, context: dict | None = None) -> CycleReport:
    """Set the report's end status for this run of the workflow (e.g. scoped); idempotent."""
    if status not in CycleReport.Status.values:
        raise ApplicationError(f"Unknown cycle report status {status!r}.")
    with transaction.atomic():
        # With its report and cycle, which the audit entry names (only the report's row is locked).
        cycle_report = (CycleReport.objects.select_for_update(no_key=True, of=("self",))
                        .select_related("report", "cycle")
                        .get(pk=cycle_report_id))
        if cycle_report.status == status:
            return cycle_report
        before = snapshot(cycle_report, ["status"])
        cycle_report.status = status
        cycle_report.save(update_fields=["status", "updated_at"])
        audit_record(actor=None, action="cycle_report.finish", obj=cycle_report, before=before,
                     after=snapshot(cycle_report, ["status"]), context=context)
    return cycle_report
