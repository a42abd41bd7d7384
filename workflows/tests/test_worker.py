"""The worker as production builds it: sandbox validation, the command's start and clean stop."""
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from temporalio.worker import Worker

from cycles.models import Phase
from workflows.temporal.activities import ALL_ACTIVITIES
from workflows.temporal.contracts import PHASE_ORDER
from workflows.temporal.worker import WORKFLOWS, build_worker

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.temporal


def test_phase_order_matches_the_model():
    assert PHASE_ORDER == tuple(p.value for p in Phase)


def test_every_workflow_passes_the_sandbox_when_the_worker_is_built(temporal_harness):
    """Worker() validates each workflow class in the sandbox: a Django import there fails here."""

    async def build():
        worker, executor = build_worker(temporal_harness.client, task_queue="build-check")
        executor.shutdown()
        return worker

    worker = temporal_harness.call(build())
    assert isinstance(worker, Worker)
    assert {w.__name__ for w in WORKFLOWS} == {"TestCycleWorkflow", "ReportTestWorkflow", "RecurringCycleWorkflow"}
    assert len({a.__temporal_activity_definition.name for a in ALL_ACTIVITIES}) == len(ALL_ACTIVITIES)


def _command(*args, address):
    env = {**os.environ, "TEMPORAL_ADDRESS": address, "DJANGO_SETTINGS_MODULE": "synapse.settings"}
    return subprocess.Popen(
        [sys.executable, "manage.py", "run_temporal_worker", *args],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def test_worker_command_starts_and_stops_cleanly_on_sigterm(temporal_harness):
    proc = _command("--task-queue", "command-check", "--outbox-interval", "3600", address=temporal_harness.address)
    line = proc.stdout.readline()  # blocks until the worker reports it is polling
    assert "task_queue=command-check" in line
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Worker stopped." in out


def test_worker_command_fails_with_one_line_when_temporal_is_unreachable():
    proc = _command("--connect-retries", "0", address="127.0.0.1:1")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert err.strip().splitlines()[-1].startswith("run_temporal_worker: Temporal at 127.0.0.1:1 is unreachable")
