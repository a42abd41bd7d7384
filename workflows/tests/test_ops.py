"""Operations: the worker's heartbeat, /healthz, Prometheus from web and worker (Synapse's and the SDK's),
structured logs, and the monitor's alerts raised and resolved as their causes come and go."""
from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from workflows.logs import ContextFilter, JsonFormatter, log_context
from workflows.models import WorkerHeartbeat, WorkflowAlert, WorkflowDecision, WorkflowExecution
from workflows.monitor import monitor_sweep
from workflows.testing import point_settings_at, wait_until

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def subprocess_database_url() -> str:
    """The URL of the database this test runs on, for a process started by the test."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def scrape(port: int) -> str:
    return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()


@pytest.mark.temporal
@pytest.mark.django_db(transaction=True)
def test_worker_heartbeat_healthz_and_prometheus_from_worker_and_web(temporal_harness, settings, client, request):
    point_settings_at(temporal_harness, settings)
    assert client.get("/healthz").json()["checks"]["workers"] == "none alive"
    assert client.get("/healthz").status_code == 503

    synapse_port, sdk_port = free_port(), free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "synapse.settings", "DATABASE_URL": subprocess_database_url(),
           "TEMPORAL_ADDRESS": temporal_harness.address, "WORKER_HEARTBEAT_SECONDS": "1", "LOG_FORMAT": "json"}
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "run_temporal_worker", "--task-queue", "ops-check", "--metrics-port",
         str(synapse_port), "--sdk-metrics-address", f"127.0.0.1:{sdk_port}"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    request.addfinalizer(lambda: worker.poll() is None and worker.kill())
    wait_until(lambda: WorkerHeartbeat.objects.filter(stopped_at__isnull=True).exists(), what="worker heartbeat")

    health = client.get("/healthz")
    assert health.status_code == 200, health.content
    assert health.json() == {"status": "ok", "checks": {"database": "ok", "temporal": "ok", "workers": "1 alive"}}
    assert "# TYPE synapse_activity_total counter" in wait_until(lambda: scrape(synapse_port), what="worker metrics")
    assert "temporal_" in wait_until(lambda: scrape(sdk_port), what="SDK runtime metrics")
    web = client.get("/metrics").content.decode()
    assert "synapse_workers_alive 1.0" in web and "synapse_decisions_pending 0.0" in web

    worker.send_signal(signal.SIGTERM)
    out, err = worker.communicate(timeout=60)
    assert worker.returncode == 0, err
    beat = WorkerHeartbeat.objects.get()
    assert beat.stopped_at is not None and beat.task_queue == "ops-check" and len(beat.build_id) == 12
    assert client.get("/healthz").status_code == 503


def test_structured_log_lines_carry_workflow_run_and_user():
    record = logging.LogRecord("workflows.activity", logging.INFO, __file__, 1, "activity %s ok", ("x",), None)
    with log_context(workflow_id="cycle-1-report-2", run_id="abc", user="admin"):
        ContextFilter().filter(record)
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "activity x ok" and line["level"] == "INFO"
    assert (line["workflow_id"], line["run_id"], line["user"]) == ("cycle-1-report-2", "abc", "admin")


@pytest.mark.django_db
def test_web_request_logs_name_the_user(rf, users, caplog):
    from django.http import HttpResponse

    from workflows.logs import LogContextMiddleware

    def view(request):
        logging.getLogger("cycles").warning("something the user did")
        return HttpResponse()

    request = rf.get("/")
    request.user = users["manager"]
    with caplog.at_level(logging.WARNING, logger="cycles"):
        LogContextMiddleware(view)(request)
    assert [getattr(r, "user", None) for r in caplog.records] == ["manager"]


@pytest.mark.django_db
def test_monitor_raises_and_resolves_stuck_and_undelivered_alerts(
    users, cycle, cycle_report, mailoutbox, settings, django_capture_on_commit_callbacks,
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    long_ago = timezone.now() - timedelta(hours=3)
    execution = WorkflowExecution.objects.create(
        workflow_id="cycle-1-report-1", run_id="r", workflow_type="ReportTestWorkflow", cycle=cycle,
        cycle_report=cycle_report, state="profiling", waiting_on="System", last_progress_at=long_ago)
    waiting_on_person = WorkflowExecution.objects.create(
        workflow_id="cycle-1-report-9", run_id="r", workflow_type="ReportTestWorkflow", cycle=cycle,
        state="awaiting_submission", waiting_on="Tester", last_progress_at=long_ago)
    decision = WorkflowDecision.objects.create(workflow_id="cycle-1-report-1", update_name="submit_version",
                                               payload={}, requested_by=users["tester"], error="connection refused")
    WorkflowDecision.objects.filter(pk=decision.pk).update(created_at=long_ago)

    with django_capture_on_commit_callbacks(execute=True):  # the admins' emails go after the commit
        counts = monitor_sweep(stuck_after=timedelta(hours=1), undelivered_after=timedelta(minutes=10),
                               refresh=False)
    assert counts["workflow_stuck"] == 1 and counts["decision_undelivered"] == 1
    stuck = WorkflowAlert.objects.get(kind="workflow_stuck")
    assert stuck.workflow_id == execution.workflow_id and "profiling" in stuck.message
    assert not WorkflowAlert.objects.filter(workflow_id=waiting_on_person.workflow_id).exists()
    assert len([m for m in mailoutbox if "[Synapse alert]" in m.subject]) == 2
    with django_capture_on_commit_callbacks(execute=True):
        monitor_sweep(stuck_after=timedelta(hours=1), refresh=False)
    assert len([m for m in mailoutbox if "[Synapse alert]" in m.subject]) == 2  # once per alert, not per sweep

    # The causes go away: the workflow moves on, the decision is delivered.
    WorkflowExecution.objects.filter(pk=execution.pk).update(last_progress_at=timezone.now())
    WorkflowDecision.objects.filter(pk=decision.pk).update(status="delivered")
    counts = monitor_sweep(stuck_after=timedelta(hours=1), refresh=False)
    assert counts["workflow_stuck"] == 0 and counts["decision_undelivered"] == 0
    assert WorkflowAlert.objects.filter(resolved_at__isnull=False).count() == 2


@pytest.mark.django_db
def test_each_running_workflow_is_asked_for_its_live_state_once_an_interval_by_one_monitor(
        cycle, cycle_report, settings, monkeypatch):
    """Every worker's monitor sweeps every heartbeat; a workflow is queried by one of them, once every
    WORKFLOW_LIVE_REFRESH_SECONDS (asking every workflow at every heartbeat, by every worker, was two Temporal
    calls and a query task per workflow and worker every ten seconds)."""
    from django.test.utils import CaptureQueriesContext

    from synapse.exceptions import ApplicationError
    from workflows import operations

    settings.WORKFLOW_LIVE_REFRESH_SECONDS = 60
    executions = [WorkflowExecution.objects.create(
        workflow_id=f"cycle-1-report-{n}", run_id="r", workflow_type="ReportTestWorkflow", cycle=cycle,
        cycle_report=cycle_report if n == 1 else None, last_progress_at=timezone.now()) for n in (1, 2)]
    asked = []
    monkeypatch.setattr(operations, "execution_live_status", lambda *, execution: asked.append(execution.pk))
    start = timezone.now()

    def sweep(at):
        monkeypatch.setattr("workflows.monitor.timezone.now", lambda: at)
        monitor_sweep()

    sweep(start)
    assert sorted(asked) == sorted(e.pk for e in executions)
    sweep(start)  # another worker's monitor, at the same moment
    with CaptureQueriesContext(connection) as captured:
        sweep(start + timedelta(seconds=10))  # the next heartbeat
    assert len(asked) == 2
    # What is not due is seen from the rows the sweep reads: no write to find it out.
    assert not [q for q in captured.captured_queries if "live_checked_at" in q["sql"] and "UPDATE" in q["sql"]]
    sweep(start + timedelta(seconds=61))
    assert len(asked) == 4

    # Temporal away: the workflow not asked stays due, for the next sweep.
    def away(*, execution):
        raise ApplicationError("Temporal can't be reached.")

    monkeypatch.setattr(operations, "execution_live_status", away)
    sweep(start + timedelta(seconds=130))
    assert WorkflowExecution.objects.filter(live_checked_at__isnull=True).count() == 1
    monkeypatch.setattr(operations, "execution_live_status", lambda *, execution: asked.append(execution.pk))
    sweep(start + timedelta(seconds=131))
    assert len(asked) == 6


@pytest.mark.django_db
def test_each_report_workflow_is_reconciled_once_an_interval_by_one_worker(cycle, cycle_report, monkeypatch):
    """Every worker reconciles every TEMPORAL_RECONCILE_INTERVAL; a workflow is compared by one of them (each
    worker asked every running workflow, and two comparing one at once could both send it a repair)."""
    from django.test.utils import CaptureQueriesContext

    from cycles.models import CycleReport, TestCycle
    from workflows import services
    from workflows.temporal.client import TemporalUnavailable

    TestCycle.objects.filter(pk=cycle.pk).update(status=TestCycle.Status.RUNNING)
    CycleReport.objects.filter(pk=cycle_report.pk).update(workflow_id="cycle-1-report-1", status="completed")
    WorkflowExecution.objects.create(workflow_id="cycle-1-report-1", run_id="r", workflow_type="ReportTestWorkflow",
                                     cycle=cycle, cycle_report=cycle_report, last_progress_at=timezone.now())
    asked = []
    monkeypatch.setattr(services, "_query_status", lambda cr: asked.append(cr.workflow_id))  # "not running"
    start, every = timezone.now(), timedelta(seconds=150)

    def run(at, **kwargs):
        monkeypatch.setattr("workflows.services.timezone.now", lambda: at)
        return services.workflows_reconcile(**kwargs)

    assert run(start, claim_every=every).checked == 1
    assert run(start, claim_every=every).checked == 0  # another worker, at the same moment
    with CaptureQueriesContext(connection) as captured:
        assert run(start + timedelta(seconds=60), claim_every=every).checked == 0
    # What is not due is seen from one read: no write to find it out.
    assert not [q for q in captured.captured_queries if "reconciled_at" in q["sql"] and "UPDATE" in q["sql"]]
    assert run(start + timedelta(seconds=151), claim_every=every).checked == 1
    # The command and the admin's action compare every running report's workflow, claimed lately or not.
    assert run(start + timedelta(seconds=152)).checked == 1
    assert len(asked) == 3

    # Temporal away: the workflow not compared is due again at the next run.
    def away(cycle_report):
        raise TemporalUnavailable(reason="unreachable")

    monkeypatch.setattr(services, "_query_status", away)
    assert run(start + timedelta(seconds=400), claim_every=every).unavailable
    assert WorkflowExecution.objects.get().reconciled_at is None
    monkeypatch.setattr(services, "_query_status", lambda cr: asked.append(cr.workflow_id))
    assert run(start + timedelta(seconds=401), claim_every=every).checked == 1
    assert len(asked) == 4


@pytest.mark.django_db
def test_monitor_resolves_an_overdue_request_alert_once_answered(users, cycle_report):
    from cycles.models import InformationRequest

    request = InformationRequest.objects.create(cycle_report=cycle_report, data_owner=users["data_owner"],
                                                due_date=timezone.now().date())
    WorkflowAlert.objects.create(key=f"request-overdue-{request.pk}", kind="request_overdue", message="late",
                                 cycle_report=cycle_report)
    monitor_sweep(refresh=False)
    assert WorkflowAlert.objects.get().resolved_at is None
    InformationRequest.objects.filter(pk=request.pk).update(status=InformationRequest.Status.SUBMITTED)
    monitor_sweep(refresh=False)
    assert WorkflowAlert.objects.get().resolved_at is not None
