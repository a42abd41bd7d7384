"""Reads of the cycles domain, scoped to what the user may see."""
from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from cycles.models import LOB, CycleReport, Report, TestCycle
from cycles.permissions import is_admin
from synapse.roles import Role, has_role


def cycle_reports_visible_to(*, user) -> QuerySet[CycleReport]:
    qs = CycleReport.objects.select_related(
        "cycle", "cycle__test_manager", "report", "report__owner", "report__lob", "tester"
    )
    if is_admin(user):
        return qs
    q = Q(pk__in=[])
    if has_role(user, Role.TEST_MANAGER):
        q |= Q(cycle__test_manager=user)
    if has_role(user, Role.TESTER):
        q |= Q(tester=user)
    if has_role(user, Role.REPORT_OWNER):
        q |= Q(report__owner=user)
    if has_role(user, Role.DATA_EXECUTIVE):
        q |= Q(report__lob__data_executive=user)
    return qs.filter(q)


def cycles_visible_to(*, user) -> QuerySet[TestCycle]:
    qs = TestCycle.objects.select_related("test_manager").annotate(report_count=Count("cycle_reports"))
    if is_admin(user):
        return qs
    visible = cycle_reports_visible_to(user=user).values("cycle_id")
    return qs.filter(Q(test_manager=user) | Q(pk__in=visible)).distinct()


def reports_visible_to(*, user) -> QuerySet[Report]:
    qs = Report.objects.select_related("owner", "lob", "lob__data_executive")
    if is_admin(user) or has_role(user, Role.TEST_MANAGER):
        return qs
    visible = cycle_reports_visible_to(user=user).values("report_id")
    return qs.filter(Q(owner=user) | Q(lob__data_executive=user) | Q(pk__in=visible)).distinct()


def lobs_visible_to(*, user) -> QuerySet[LOB]:
    return LOB.objects.select_related("data_executive")


def cycle_report_get(*, user, pk: int) -> CycleReport:
    """The cycle report if the user may see it; NotFoundError otherwise (no existence leak)."""
    from cycles.exceptions import NotFoundError

    try:
        return cycle_reports_visible_to(user=user).get(pk=pk)
    except CycleReport.DoesNotExist:
        raise NotFoundError("No such report in a cycle you can see.") from None
