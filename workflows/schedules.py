"""Recurring cycles: a Temporal Schedule per CycleSchedule creates a cycle like its template and starts it.

The schedule's action starts RecurringCycleWorkflow, whose one activity calls
schedule_run: a new cycle (reports, testers and settings copied), keyed by the
scheduled run so that nothing is created twice, then workflow_start as the
schedule's owner. Pause, resume and trigger go to Temporal and the audit trail.
"""
from __future__ import annotations

import datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from temporalio.client import (
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleCalendarSpec,
    ScheduleRange,
    ScheduleSpec,
    ScheduleState,
)

from cycles.models import TestCycle
from cycles.permissions import can_manage_cycle, is_admin
from cycles.services.cycles import cycle_add_report, cycle_create
from synapse.audit import audit_record
from synapse.exceptions import ApplicationError, ConflictError, PermissionDeniedError
from workflows.models import CycleSchedule, ScheduledCycleRun
from workflows.operations import _call
from workflows.temporal.contracts import RECURRING_CYCLE_WORKFLOW_TYPE, ScheduledCycleInput, cycle_schedule_id

# The calendar: 06:00 UTC (Temporal's calendar zone by default) on the 1st of these months.
MONTHS = {
    CycleSchedule.Frequency.MONTHLY: tuple(range(1, 13)),
    CycleSchedule.Frequency.QUARTERLY: (1, 4, 7, 10),
}
RUN_HOUR = 6


def _spec(frequency: str) -> ScheduleSpec:
    return ScheduleSpec(calendars=[ScheduleCalendarSpec(
        month=[ScheduleRange(m) for m in MONTHS[frequency]], day_of_month=[ScheduleRange(1)],
        hour=[ScheduleRange(RUN_HOUR)], minute=[ScheduleRange(0)], second=[ScheduleRange(0)],
    )])


def schedule_next_run(frequency: str, *, after: datetime.datetime | None = None) -> datetime.datetime:
    """When the schedule's calendar fires next, computed from the same calendar (pages need no RPC for it)."""
    after = after or timezone.now()
    for ahead in range(13):
        index = after.month - 1 + ahead
        year, month = after.year + index // 12, index % 12 + 1
        at = datetime.datetime(year, month, 1, RUN_HOUR, tzinfo=datetime.timezone.utc)
        if month in MONTHS[frequency] and at > after:
            return at
    raise AssertionError(f"no month of {frequency!r} within a year")  # every frequency has one


def _may_manage(user, schedule: CycleSchedule) -> bool:
    return is_admin(user) or can_manage_cycle(user, schedule.template)


def schedule_create(*, user, template: TestCycle, frequency: str, name: str = "") -> CycleSchedule:
    """Make `template` recur (monthly or quarterly) through a Temporal Schedule."""
    if not (is_admin(user) or can_manage_cycle(user, template)):
        raise PermissionDeniedError("Only the template cycle's Test Manager or an admin can schedule it.")
    if frequency not in CycleSchedule.Frequency.values:
        raise ApplicationError(f"Choose monthly or quarterly, not {frequency!r}.")
    if not template.cycle_reports.exists():
        raise ApplicationError("The template cycle has no reports: add them first, they are what recurs.")
    with transaction.atomic():
        schedule = CycleSchedule.objects.create(name=name or template.name, template=template, frequency=frequency,
                                                created_by=user)
        schedule.schedule_id = cycle_schedule_id(schedule.pk)
        schedule.save(update_fields=["schedule_id"])

        async def create(client):
            await client.create_schedule(schedule.schedule_id, Schedule(
                action=ScheduleActionStartWorkflow(
                    RECURRING_CYCLE_WORKFLOW_TYPE, ScheduledCycleInput(schedule_pk=schedule.pk),
                    id=f"{schedule.schedule_id}-run", task_queue=settings.TEMPORAL_TASK_QUEUE,
                ),
                spec=_spec(frequency),
                state=ScheduleState(note=f"Created by {user.username}"),
            ))

        # Inside the transaction: if Temporal refuses or is away, the row goes too.
        _call(create)
        audit_record(actor=user, action="schedule.create", obj=schedule,
                     after={"template": template.pk, "frequency": frequency, "schedule_id": schedule.schedule_id})
    return schedule


def _handle_call(schedule: CycleSchedule, fn):
    async def call(client):
        return await fn(client.get_schedule_handle(schedule.schedule_id))

    return _call(call)


def schedule_pause(*, user, schedule: CycleSchedule, reason: str = "") -> None:
    if not _may_manage(user, schedule):
        raise PermissionDeniedError("Only the schedule's Test Manager or an admin can pause it.")
    _handle_call(schedule, lambda handle: handle.pause(note=reason or f"Paused by {user.username}"))
    CycleSchedule.objects.filter(pk=schedule.pk).update(paused=True)
    audit_record(actor=user, action="schedule.pause", obj=schedule, context={"reason": reason})


def schedule_resume(*, user, schedule: CycleSchedule, reason: str = "") -> None:
    if not _may_manage(user, schedule):
        raise PermissionDeniedError("Only the schedule's Test Manager or an admin can resume it.")
    _handle_call(schedule, lambda handle: handle.unpause(note=reason or f"Resumed by {user.username}"))
    CycleSchedule.objects.filter(pk=schedule.pk).update(paused=False)
    audit_record(actor=user, action="schedule.resume", obj=schedule, context={"reason": reason})


def schedule_trigger(*, user, schedule: CycleSchedule, reason: str = "") -> None:
    """Run the schedule's action now (a cycle is created and started), whatever its calendar says."""
    if not _may_manage(user, schedule):
        raise PermissionDeniedError("Only the schedule's Test Manager or an admin can trigger it.")
    _handle_call(schedule, lambda handle: handle.trigger())
    audit_record(actor=user, action="schedule.trigger", obj=schedule, context={"reason": reason})


def schedule_describe(*, schedule: CycleSchedule) -> dict:
    """What Temporal says of the schedule: paused, next runs, recent runs."""
    async def describe(handle):
        d = await handle.describe()
        return {"paused": d.schedule.state.paused, "note": d.schedule.state.note,
                "next_runs": list(d.info.next_action_times[:3]),
                "recent_runs": [a.scheduled_at for a in d.info.recent_actions[-3:]]}

    return _handle_call(schedule, describe)


def schedule_run(*, schedule_pk: int, run_key: str) -> TestCycle:
    """Create the scheduled cycle like the template and start its workflow (called by the activity).

    Idempotent: a second call with the same run key returns the cycle the first one made, and
    starts its workflow if that step was what failed.
    """
    from workflows.services import workflow_start

    schedule = CycleSchedule.objects.select_related("template", "created_by").get(pk=schedule_pk)
    run = ScheduledCycleRun.objects.filter(run_key=run_key).select_related("cycle").first()
    if run is None:
        template, today = schedule.template, timezone.localdate()
        months = 1 if schedule.frequency == CycleSchedule.Frequency.MONTHLY else 3
        start = today.replace(day=1)
        end_month = start.month + months
        end = datetime.date(start.year + (end_month - 1) // 12, (end_month - 1) % 12 + 1, 1) - datetime.timedelta(1)
        try:
            with transaction.atomic():
                cycle = cycle_create(user=schedule.created_by, name=f"{schedule.name} {start:%Y-%m}",
                                     period_start=start, period_end=end, configuration=template.configuration)
                for cycle_report in template.cycle_reports.select_related("report", "tester"):
                    cycle_add_report(user=schedule.created_by, cycle=cycle, report=cycle_report.report,
                                     tester=cycle_report.tester)
                run = ScheduledCycleRun.objects.create(schedule=schedule, run_key=run_key, cycle=cycle)
        except IntegrityError:  # a concurrent attempt of the same run made it
            run = ScheduledCycleRun.objects.select_related("cycle").get(run_key=run_key)
    cycle = TestCycle.objects.get(pk=run.cycle_id)
    if cycle.status == TestCycle.Status.DRAFT:
        try:
            workflow_start(user=schedule.created_by, cycle=cycle)
        except ConflictError:
            pass  # started by an earlier attempt whose answer was lost
        cycle.refresh_from_db()
    return cycle
