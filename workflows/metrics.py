"""The metrics service: phase durations, waiting time per role (now, and over reports' lives), bottlenecks, rates, weekly trends, cycle progress.

Read from the business records (PhaseState: when each phase of each report
started and ended) and the tracking tables (executions, steps, retries,
alerts), scoped to the cycles the user may see. The monitoring page, the API
and the Prometheus collector call the same functions; each runs a fixed number
of queries whatever the number of reports.
"""
from __future__ import annotations

import datetime
import statistics
from collections import defaultdict
from dataclasses import asdict, dataclass, field

from django.db.models import Count, Q
from django.db.models.functions import TruncWeek
from django.utils import timezone

from cycles.models import CycleReport, PhaseState
from cycles.selectors import cycles_visible_to
from workflows.models import WorkflowAlert, WorkflowExecution, WorkflowRetry, WorkflowStep, WorkflowWait
from workflows.temporal.contracts import PHASE_ORDER, REPORT_WORKFLOW_TYPE


@dataclass
class PhaseDuration:
    phase: str
    count: int
    p50_hours: float
    p90_hours: float
    p99_hours: float


@dataclass
class Waiting:
    who: str
    reports: int
    hours: float


@dataclass
class CycleProgress:
    cycle_id: int
    name: str
    status: str
    reports: int
    phases_done: int
    phases_total: int

    @property
    def percent(self) -> int:
        return round(100 * self.phases_done / self.phases_total) if self.phases_total else 0


@dataclass
class WorkflowMetrics:
    phase_durations: list[PhaseDuration]
    waiting_by_role: list[Waiting]
    waited_by_role: list[Waiting]
    bottleneck_phases: list[PhaseDuration]
    bottleneck_people: list[Waiting]
    completion_rate: float
    failure_rate: float
    retry_rate: float
    throughput_by_week: dict[str, int]
    sla_breaches_by_week: dict[str, int]
    open_alerts: int
    cycles: list[CycleProgress] = field(default_factory=list)

    def as_dict(self) -> dict:
        data = asdict(self)
        for cycle, progress in zip(data["cycles"], self.cycles):
            cycle["percent"] = progress.percent
        return data


def _quantile(values: list[float], q: float) -> float:
    if len(values) == 1:
        return values[0]
    # Inclusive quantiles: the p99 of a few values stays within them.
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[min(98, max(0, round(q * 100) - 1))]


def _hours(delta: datetime.timedelta) -> float:
    return round(delta.total_seconds() / 3600, 2)


def metrics_for(*, user, cycle=None, weeks: int = 12) -> WorkflowMetrics:
    """Every metric over the cycles `user` may see (or one of them)."""
    cycles = cycles_visible_to(user=user)
    if cycle is not None:
        cycles = cycles.filter(pk=cycle.pk)
    cycle_ids = list(cycles.values_list("pk", flat=True))
    now = timezone.now()

    # Phase durations: completed phases, per phase.
    durations: dict[str, list[float]] = defaultdict(list)
    for phase, started, completed in PhaseState.objects.filter(
        cycle_report__cycle_id__in=cycle_ids, status=PhaseState.Status.COMPLETED, completed_at__isnull=False
    ).values_list("phase", "started_at", "completed_at"):
        durations[phase].append(_hours(completed - started))
    phase_durations = [
        PhaseDuration(phase=p, count=len(durations[p]), p50_hours=_quantile(durations[p], 0.5),
                      p90_hours=_quantile(durations[p], 0.9), p99_hours=_quantile(durations[p], 0.99))
        for p in PHASE_ORDER if durations.get(p)
    ]

    # Who running reports wait on, and for how long (since their last progress).
    running = WorkflowExecution.objects.filter(
        cycle_id__in=cycle_ids, workflow_type=REPORT_WORKFLOW_TYPE, status=WorkflowExecution.Status.RUNNING,
    ).exclude(waiting_on="").select_related("cycle_report__tester", "cycle_report__report__owner",
                                              "cycle_report__report__lob__data_executive")
    by_role: dict[str, list[float]] = defaultdict(list)
    by_person: dict[str, list[float]] = defaultdict(list)
    for execution in running:
        waited = _hours(now - (execution.last_progress_at or execution.started_at))
        for role in execution.waiting_on.split(", "):
            by_role[role].append(waited)
            report = execution.cycle_report
            person = {
                "Tester": report and report.tester,
                "Report Owner": report and report.report.owner,
                "Data Executive": report and report.report.lob.data_executive,
            }.get(role)
            if person:
                by_person[f"{person.get_full_name() or person.username} ({role})"].append(waited)
    waiting_by_role = [Waiting(who=r, reports=len(v), hours=round(sum(v), 2)) for r, v in sorted(by_role.items())]
    people = sorted(by_person.items(), key=lambda item: -max(item[1]))[:5]

    # Time each role has kept reports waiting, over their whole lives (closed waits and those still open).
    waited: dict[str, list[float]] = defaultdict(list)
    waited_reports: dict[str, set[int]] = defaultdict(set)
    for role, execution_id, started, ended in WorkflowWait.objects.filter(
        execution__cycle_id__in=cycle_ids, execution__workflow_type=REPORT_WORKFLOW_TYPE,
    ).values_list("role", "execution_id", "started_at", "ended_at"):
        waited[role].append(_hours((ended or now) - started))
        waited_reports[role].add(execution_id)
    waited_by_role = [Waiting(who=r, reports=len(waited_reports[r]), hours=round(sum(v), 2))
                      for r, v in sorted(waited.items())]

    executions = WorkflowExecution.objects.filter(cycle_id__in=cycle_ids, workflow_type=REPORT_WORKFLOW_TYPE)
    counts = executions.aggregate(
        total=Count("pk"),
        completed=Count("pk", filter=Q(status=WorkflowExecution.Status.COMPLETED)),
        failed=Count("pk", filter=Q(status=WorkflowExecution.Status.FAILED) | Q(state="failed")),
    )
    steps = WorkflowStep.objects.filter(execution__in=executions).count()
    retries = WorkflowRetry.objects.filter(execution__in=executions).count()

    since = now - datetime.timedelta(weeks=weeks)
    throughput = {
        week.date().isoformat(): n
        for week, n in PhaseState.objects.filter(
            cycle_report__cycle_id__in=cycle_ids, status=PhaseState.Status.COMPLETED, completed_at__gte=since
        ).annotate(week=TruncWeek("completed_at")).values("week").annotate(n=Count("pk")).values_list("week", "n")
        .order_by("week")
    }
    alerts = WorkflowAlert.objects.filter(cycle_report__cycle_id__in=cycle_ids)
    breaches = {
        week.date().isoformat(): n
        for week, n in alerts.filter(created_at__gte=since, kind__in=("data_owner_sla", "request_overdue"))
        .annotate(week=TruncWeek("created_at")).values("week").annotate(n=Count("pk")).values_list("week", "n")
        .order_by("week")
    }

    progress_rows = (
        PhaseState.objects.filter(cycle_report__cycle_id__in=cycle_ids)
        .exclude(status=PhaseState.Status.ACTIVE).values("cycle_report__cycle_id").annotate(n=Count("pk"))
    )
    done = {row["cycle_report__cycle_id"]: row["n"] for row in progress_rows}
    reports = dict(CycleReport.objects.filter(cycle_id__in=cycle_ids).values("cycle_id").annotate(n=Count("pk"))
                   .values_list("cycle_id", "n"))
    return WorkflowMetrics(
        phase_durations=phase_durations,
        waiting_by_role=waiting_by_role,
        waited_by_role=waited_by_role,
        bottleneck_phases=sorted(phase_durations, key=lambda d: -d.p90_hours)[:3],
        bottleneck_people=[Waiting(who=who, reports=len(v), hours=round(max(v), 2)) for who, v in people],
        completion_rate=round(counts["completed"] / counts["total"], 3) if counts["total"] else 0.0,
        failure_rate=round(counts["failed"] / counts["total"], 3) if counts["total"] else 0.0,
        retry_rate=round(retries / steps, 3) if steps else 0.0,
        throughput_by_week=throughput,
        sla_breaches_by_week=breaches,
        open_alerts=alerts.filter(resolved_at__isnull=True).count(),
        cycles=[
            CycleProgress(cycle_id=c.pk, name=c.name, status=c.status, reports=reports.get(c.pk, 0),
                          phases_done=done.get(c.pk, 0), phases_total=reports.get(c.pk, 0) * len(PHASE_ORDER))
            for c in cycles.order_by("-created_at")
        ],
    )
