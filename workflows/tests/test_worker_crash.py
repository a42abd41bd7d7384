"""A worker process killed (SIGKILL) in the middle of an activity: another worker finishes the work,
and nothing is written twice.

The activity is the Planning draft, held in the middle of its HTTP call by a local
fake LLM server, so the kill lands inside the activity every time, without sleeps.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.db import connection

from conftest import REPORT_FIELDS
from cycles.models import Attribute, CycleReport
from workflows.models import WorkflowStep
from synapse.exceptions import ServiceUnavailableError
from workflows.services import workflow_start, workflow_status
from workflows.temporal.contracts import State
from workflows.testing import point_settings_at, wait_until

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.temporal, pytest.mark.django_db(transaction=True)]
LATER_PHASES = ["data_profiling", "scoping", "sample_selection", "data_owner_identification",
                "request_for_information", "test_execution",
                "observations", "finalize"]


class FakeLLM:
    """An OpenAI-compatible server that holds its first request open until released."""

    def __init__(self):
        self.requests = 0
        self.first_arrived = threading.Event()
        self.release = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers["Content-Length"]))
                fake.requests += 1
                if fake.requests == 1:
                    fake.first_arrived.set()
                    fake.release.wait(60)  # the worker is killed while we wait
                attributes = [
                    {"name": f["name"], "description": f["description"], "data_type": "string",
                     "mandatory": False, "primary_key": f["name"] == "account_id", "cde": False,
                     "historical_issues": False, "risk_score": 3}
                    for f in REPORT_FIELDS
                ]
                body = json.dumps({"choices": [{"message": {"content": json.dumps({"attributes": attributes})}}]})
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(body.encode())
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the killed worker's connection is gone

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.release.set()
        self.server.shutdown()


def _database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def _worker(env: dict, log) -> subprocess.Popen:
    # Its output goes to a file: a pipe nobody reads would fill up and stall the worker.
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "run_temporal_worker", "--outbox-interval", "3600"],
            cwd=ROOT, env={**env, "PYTHONUNBUFFERED": "1"}, stdout=out, stderr=subprocess.STDOUT, text=True,
        )
    wait_until(lambda: "task_queue=" in log.read_text(), timeout=60, what="the worker to poll")
    return proc


def _status_or_none(user, report):
    try:
        return workflow_status(user=user, cycle_report=report)
    except ServiceUnavailableError:
        return None  # no status stored yet and the workflow can't answer now


def test_worker_killed_mid_activity_is_replaced_without_duplicates(
    temporal_harness, settings, transactional_db, users, cycle, cycle_report, tmp_path
):
    queue = point_settings_at(temporal_harness, settings)
    # The default start-to-close timeout (300 s) stays: the draft heartbeats, so the killed attempt
    # is retried once its heartbeat timeout (10 s) passes (issue 10), well within the wait below.
    settings.TEMPORAL_ACTIVITY_TIMEOUT = 300
    llm = FakeLLM()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "synapse.settings",
        "DATABASE_URL": _database_url(),
        "TEMPORAL_ADDRESS": temporal_harness.address,
        "TEMPORAL_TASK_QUEUE": queue,
        "LLM_PROVIDER": "openai",
        "LLM_API_KEY": "test-key",
        "LLM_BASE_URL": llm.url,
    }
    first = _worker(env, tmp_path / "first.log")
    second = None
    try:
        workflow_start(user=users["manager"], cycle=cycle, skip_phases=LATER_PHASES)
        assert llm.first_arrived.wait(60), "the draft activity never called the LLM"
        first.kill()  # SIGKILL: no graceful shutdown, the activity dies mid-call
        first.wait(30)
        assert Attribute.objects.count() == 0

        second = _worker(env, tmp_path / "second.log")
        report = CycleReport.objects.get(pk=cycle_report.pk)
        wait_until(
            lambda: (s := _status_or_none(users["tester"], report))
            and s.phase == "planning" and s.state == State.AWAITING_SUBMISSION,
            timeout=45, what="the draft finished on the second worker",
        )
    finally:
        llm.close()
        for proc in (first, second):
            if proc and proc.poll() is None:
                proc.terminate()
                proc.wait(60)

    assert sorted(Attribute.objects.values_list("name", flat=True)) == sorted(f["name"] for f in REPORT_FIELDS)
    assert llm.requests == 2
    step = WorkflowStep.objects.get(activity_type="planning_draft_attributes")
    assert (step.attempt, step.status) == (2, WorkflowStep.Status.COMPLETED)

    async def terminate():
        await temporal_harness.client.get_workflow_handle(f"cycle-{cycle.pk}").terminate("test over")

    temporal_harness.call(terminate())
