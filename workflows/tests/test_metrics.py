"""The metrics service and the monitoring page: durations by percentile, waiting per role, rates, progress, scoping."""
from __future__ import annotations

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from cycles.models import CycleReport, PhaseState, Report, TestCycle
from workflows.metrics import metrics_for
from workflows.models import WorkflowAlert, WorkflowExecution, WorkflowRetry, WorkflowStep

pytestmark = pytest.mark.django_db


@pytest.fixture
def history(users, lob, cycle, cycle_report):
    """Three reports: Planning took 10, 20 and 30 hours; one report waits on its tester, one failed."""
    now = timezone.now()
    reports = [cycle_report]
    for name in ("FR Y-9C", "FFIEC 031"):
        report = Report.objects.create(name=name, regulation=name, owner=users["owner"], lob=lob,
                                       frequency="quarterly", fields=[])
        reports.append(CycleReport.objects.create(cycle=cycle, report=report, tester=users["tester"]))
    for hours, cr in zip((10, 20, 30), reports):
        state = PhaseState.objects.create(cycle_report=cr, phase="planning", status="completed",
                                          completed_at=now - datetime.timedelta(days=1))
        PhaseState.objects.filter(pk=state.pk).update(
            started_at=state.completed_at - datetime.timedelta(hours=hours))
    waiting = WorkflowExecution.objects.create(
        workflow_id="cycle-1-report-a", run_id="r1", workflow_type="ReportTestWorkflow", cycle=cycle,
        cycle_report=reports[0], waiting_on="Tester", state="awaiting_submission",
        last_progress_at=now - datetime.timedelta(hours=5))
    WorkflowExecution.objects.create(workflow_id="cycle-1-report-b", run_id="r2", workflow_type="ReportTestWorkflow",
                                     cycle=cycle, cycle_report=reports[1], status="failed")
    WorkflowExecution.objects.create(workflow_id="cycle-1-report-c", run_id="r3", workflow_type="ReportTestWorkflow",
                                     cycle=cycle, cycle_report=reports[2], status="completed")
    step = WorkflowStep.objects.create(execution=waiting, activity_id="1", activity_type="scoping_recommend",
                                       started_at=now)
    WorkflowStep.objects.create(execution=waiting, activity_id="2", activity_type="x", started_at=now)
    WorkflowRetry.objects.create(execution=waiting, step=step, activity_type="scoping_recommend", activity_id="1",
                                 attempt=1, error="boom", delay_seconds=1)
    WorkflowAlert.objects.create(key="k1", kind="request_overdue", message="late", cycle_report=reports[0])
    return reports


def test_metrics_percentiles_waiting_rates_and_progress(users, cycle, history):
    metrics = metrics_for(user=users["manager"])
    planning = metrics.phase_durations[0]
    assert (planning.phase, planning.count, planning.p50_hours) == ("planning", 3, 20.0)
    assert 27.9 < planning.p90_hours < 30.0 and planning.p90_hours <= planning.p99_hours <= 30.0
    assert [(w.who, w.reports) for w in metrics.waiting_by_role] == [("Tester", 1)]
    assert 4.9 < metrics.waiting_by_role[0].hours < 5.1
    assert metrics.bottleneck_people[0].who == "tester (Tester)"
    assert (metrics.completion_rate, metrics.failure_rate, metrics.retry_rate) == (0.333, 0.333, 0.5)
    assert sum(metrics.throughput_by_week.values()) == 3 and sum(metrics.sla_breaches_by_week.values()) == 1
    assert metrics.open_alerts == 1
    assert [(c.name, c.reports, c.phases_done, c.phases_total) for c in metrics.cycles] == [("Q3 2026", 3, 3, 27)]


def test_metrics_are_scoped_to_the_cycles_the_user_sees(users, cycle, history, make_user):
    other_manager = make_user("manager2", "Test Manager")
    TestCycle.objects.create(name="Q4", period_start=cycle.period_start, period_end=cycle.period_end,
                             test_manager=other_manager)
    metrics = metrics_for(user=other_manager)
    assert metrics.phase_durations == [] and [c.name for c in metrics.cycles] == ["Q4"]


def test_monitoring_page_charts_progress_and_refusal(client, users, cycle, history, django_assert_max_num_queries):
    client.force_login(users["manager"])
    with django_assert_max_num_queries(30):
        page = client.get(reverse("workflows:monitoring")).content.decode()
    assert 'id="chart-durations"' in page and "<svg" in page and "Phase durations (hours)" in page
    assert 'aria-valuenow="11"' in page  # 3 of 27 phases
    assert "late" in page  # the open alert
    assert "<script src" not in page and "kozea.github.io" not in page  # nothing loaded from a CDN
    assert client.get(reverse("workflows:monitoring"), {"cycle": cycle.pk}).status_code == 200
    assert client.get(reverse("workflows:monitoring"), {"cycle": 999}).status_code == 404

    client.force_login(users["tester"])
    refused = client.get(reverse("workflows:monitoring"))
    assert refused.status_code == 403 and "test managers and admins" in refused.content.decode()


def test_the_time_each_role_keeps_a_report_waiting_is_recorded_as_its_status_moves(
    users, cycle, cycle_report, monkeypatch,
):
    from temporalio.client import WorkflowExecutionStatus

    from workflows import operations
    from workflows.models import WorkflowWait
    from workflows.temporal.contracts import ReportStatus

    execution = WorkflowExecution.objects.create(
        workflow_id="cycle-1-report-1", run_id="r1", workflow_type="ReportTestWorkflow", cycle=cycle,
        cycle_report=cycle_report)
    answers = iter([
        ("planning", "awaiting_submission", "Tester"),
        ("planning", "awaiting_decision", "Report Owner"),
        ("sample_selection", "awaiting_submission", "Tester, Data Executive"),  # the parallel step
        ("sample_selection", "awaiting_submission", "Tester, Data Executive"),  # no change: nothing new
        ("request_for_information", "awaiting_evidence", "Data Owner"),
    ])

    def answer(ask):
        phase, state, waiting_on = next(answers)
        return WorkflowExecutionStatus.RUNNING, ReportStatus(cycle_report.pk, phase, state, waiting_on,
                                                             active={phase: state})

    monkeypatch.setattr(operations, "_call", answer)
    for _ in range(5):
        operations.execution_live_status(execution=execution)
    waits = list(WorkflowWait.objects.order_by("id").values_list("role", "phase", "ended_at"))
    assert [(role, phase, ended is not None) for role, phase, ended in waits] == [
        ("Tester", "planning", True), ("Report Owner", "planning", True),
        ("Data Executive", "sample_selection", True), ("Tester", "sample_selection", True),
        ("Data Owner", "request_for_information", False),
    ]

    # The monitoring metric sums them over the report's life: 2 h on the tester, 3 h on the owner, ...
    now = timezone.now()
    for wait, (start, end) in zip(WorkflowWait.objects.order_by("id"), [(10, 8), (8, 5), (5, 4), (5, 3), (3, None)]):
        WorkflowWait.objects.filter(pk=wait.pk).update(
            started_at=now - datetime.timedelta(hours=start),
            ended_at=None if end is None else now - datetime.timedelta(hours=end))
    waited = {w.who: (w.reports, round(w.hours)) for w in metrics_for(user=users["manager"]).waited_by_role}
    assert waited == {"Tester": (1, 4), "Report Owner": (1, 3), "Data Executive": (1, 1), "Data Owner": (1, 3)}

    # The run closes: its open wait ends with it.
    monkeypatch.setattr(operations, "_call", lambda ask: (WorkflowExecutionStatus.COMPLETED, None))
    operations.execution_live_status(execution=execution)
    assert not WorkflowWait.objects.filter(ended_at__isnull=True).exists()
