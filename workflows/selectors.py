"""Reads of the workflow tracking tables."""
from __future__ import annotations

from django.db.models import Count, QuerySet

from cycles.permissions import is_admin
from workflows.models import CycleSchedule, WorkflowAlert, WorkflowExecution


def alerts_open_for_cycle(*, cycle) -> QuerySet[WorkflowAlert]:
    """Unresolved alerts (SLA breaches, overdue requests) of the cycle's reports, newest first.

    The caller has already checked that the user may see the cycle.
    """
    return (
        WorkflowAlert.objects.filter(cycle_report__cycle=cycle, resolved_at__isnull=True)
        .select_related("cycle_report__report")
        .order_by("-created_at")
    )


def executions_visible_to(*, user) -> QuerySet[WorkflowExecution]:
    """Workflow runs of the cycles the user may see (all for an admin), newest first."""
    from cycles.selectors import cycles_visible_to

    executions = WorkflowExecution.objects.select_related("cycle", "cycle_report").order_by("-started_at", "-id")
    if is_admin(user):
        return executions
    return executions.filter(cycle__in=cycles_visible_to(user=user).values("pk"))


def schedules_visible_to(*, user) -> QuerySet[CycleSchedule]:
    """Recurring cycles the user manages: those whose template cycle is theirs (all for an admin)."""
    from synapse.roles import Role, has_role

    schedules = (CycleSchedule.objects.select_related("template", "created_by").annotate(cycles_made=Count("runs"))
                 .order_by("name", "pk"))
    if is_admin(user):
        return schedules
    if not has_role(user, Role.TEST_MANAGER):
        return schedules.none()
    return schedules.filter(template__test_manager=user)
