"""Reads of the cycles domain, scoped to what the user may see."""
from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet

from cycles.models import LOB, CycleReport, Phase, PopulationFile, Report, TestCycle
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


# --- progress: which phase each report is in, and who it waits on ------------------------------


@dataclass(frozen=True)
class Progress:
    """Where a cycle report stands, derived from the database (no Temporal call)."""

    phase: str
    phase_label: str
    state_label: str
    waiting_on_role: str
    waiting_on_people: tuple[str, ...] = ()
    finished: bool = False

    @property
    def waiting_on(self) -> str:
        if not self.waiting_on_role:
            return ""
        if self.waiting_on_people:
            return f"{self.waiting_on_role} ({', '.join(self.waiting_on_people)})"
        return self.waiting_on_role


FINISHED_STATUSES = {
    CycleReport.Status.SCOPED,
    CycleReport.Status.AWAITING_TEST_EXECUTION,
    CycleReport.Status.COMPLETED,
    CycleReport.Status.CANCELLED,
    CycleReport.Status.FAILED,
}


def _person(user) -> tuple[str, ...]:
    return (str(user),) if user is not None else ()


def _approvers(cycle_report: CycleReport, phase: str) -> tuple[str, ...]:
    configured = ((cycle_report.cycle.configuration or {}).get("approvers") or {}).get(phase, [])
    names = [str(cycle_report.report.owner)]
    names += [u for u in configured if u != cycle_report.report.owner.username]
    return tuple(names)


def _progress_of(cycle_report: CycleReport, *, latest_version, latest_population, pending_decision: bool) -> Progress:
    from versioning.models import VersionStatus
    from workflows.temporal.contracts import REVIEWED_PHASES, WaitingOn

    phase = cycle_report.phase
    phase_label = cycle_report.get_phase_display() if phase else "—"
    tester = _person(cycle_report.tester)

    if cycle_report.status in FINISHED_STATUSES:
        return Progress(phase, phase_label, cycle_report.get_status_display(), WaitingOn.NOBODY, finished=True)
    if not phase:
        if cycle_report.tester_id is None:
            return Progress(phase, phase_label, "Needs a tester", "Test Manager",
                            _person(cycle_report.cycle.test_manager))
        if cycle_report.cycle.status == cycle_report.cycle.Status.DRAFT:
            return Progress(phase, phase_label, "Not started", "Test Manager",
                            _person(cycle_report.cycle.test_manager))
        return Progress(phase, phase_label, "Starting", WaitingOn.SYSTEM)
    if pending_decision:
        return Progress(phase, phase_label, "Decision queued for the workflow service", WaitingOn.SYSTEM)

    if phase in REVIEWED_PHASES:
        if latest_version is None:
            return Progress(phase, phase_label, "Being prepared", WaitingOn.TESTER, tester)
        number, status = latest_version
        if status == VersionStatus.SUBMITTED:
            return Progress(phase, phase_label, f"Version {number} awaits approval", WaitingOn.REPORT_OWNER,
                            _approvers(cycle_report, phase))
        if status == VersionStatus.CHANGES_REQUESTED:
            return Progress(phase, phase_label, f"Changes requested on version {number}", WaitingOn.TESTER, tester)
        if status == VersionStatus.APPROVED:
            return Progress(phase, phase_label, f"Version {number} approved", WaitingOn.SYSTEM)
        return Progress(phase, phase_label, "Being prepared", WaitingOn.TESTER, tester)

    if phase == Phase.DATA_PROFILING:
        if latest_population is None:
            return Progress(phase, phase_label, "Awaiting the population file", WaitingOn.TESTER, tester)
        status = latest_population
        if status == PopulationFile.Status.PROFILED:
            return Progress(phase, phase_label, "Population profiled", WaitingOn.SYSTEM)
        if status == PopulationFile.Status.FAILED:
            return Progress(phase, phase_label, "Profiling failed: upload a corrected file", WaitingOn.TESTER,
                            tester)
        return Progress(phase, phase_label, "Profiling the population", WaitingOn.SYSTEM)

    return Progress(phase, phase_label, "In progress", WaitingOn.TESTER, tester)


def cycle_reports_progress(cycle_reports) -> dict[int, Progress]:
    """Progress of many cycle reports in three queries, whatever their number.

    Pass cycle reports loaded with cycle, cycle__test_manager, report__owner and tester.
    """
    from versioning.models import Version
    from workflows.models import WorkflowDecision

    cycle_reports = list(cycle_reports)
    ids = [cr.pk for cr in cycle_reports]
    if not ids:
        return {}
    latest_versions: dict[tuple[int, str], tuple[int, str]] = {}
    for cr_id, phase, number, status in (
        Version.objects.filter(cycle_report_id__in=ids)
        .order_by("cycle_report_id", "phase", "-number")
        .values_list("cycle_report_id", "phase", "number", "status")
    ):
        latest_versions.setdefault((cr_id, phase), (number, status))
    latest_populations: dict[int, str] = {}
    for cr_id, status in (
        PopulationFile.objects.filter(cycle_report_id__in=ids)
        .order_by("cycle_report_id", "-uploaded_at", "-id")
        .values_list("cycle_report_id", "status")
    ):
        latest_populations.setdefault(cr_id, status)
    pending = set(
        WorkflowDecision.objects.filter(cycle_report_id__in=ids, status=WorkflowDecision.Status.PENDING)
        .values_list("cycle_report_id", flat=True)
    )
    return {
        cr.pk: _progress_of(
            cr,
            latest_version=latest_versions.get((cr.pk, cr.phase)),
            latest_population=latest_populations.get(cr.pk),
            pending_decision=cr.pk in pending,
        )
        for cr in cycle_reports
    }


def cycle_report_progress(cycle_report: CycleReport) -> Progress:
    return cycle_reports_progress([cycle_report])[cycle_report.pk]
