"""Live progress across processes: two web processes (daphne) and a worker, with Redis as the Channels layer.

The workflow is started through web process A; the worker moves the report into its first phase and
publishes it; a page's WebSocket served by web process B receives it.
"""
from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import websockets
from rest_framework.authtoken.models import Token

from workflows.tests.test_ops import free_port, subprocess_database_url
from workflows.testing import wait_until

ROOT = Path(__file__).resolve().parents[2]
REDIS = ("127.0.0.1", 6379)
pytestmark = [pytest.mark.temporal, pytest.mark.django_db(transaction=True)]


def redis_up() -> bool:
    try:
        with socket.create_connection(REDIS, timeout=1):
            return True
    except OSError:
        return False


def serving(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/login/", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def processes(temporal_harness, request, tmp_path):
    """Start processes with the test's database, Temporal and a Redis database of their own; stop them after."""
    if not redis_up():
        pytest.skip("Redis is not running at 127.0.0.1:6379")
    # A Redis database of this test's own, so that other test runs on the machine don't see its groups.
    redis_url = f"redis://{REDIS[0]}:{REDIS[1]}/{random.Random(os.getpid()).randint(10, 15)}"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "synapse.settings", "DATABASE_URL": subprocess_database_url(),
           "TEMPORAL_ADDRESS": temporal_harness.address, "REDIS_URL": redis_url,
           "TEMPORAL_TASK_QUEUE": f"cross-{os.getpid()}-{time.monotonic_ns()}", "WORKER_HEARTBEAT_SECONDS": "2"}
    started = []

    def start(*args):
        # Output to a file, not a pipe: a chatty process must not block on a full pipe nobody reads.
        log = open(tmp_path / f"process-{len(started)}.log", "w")  # noqa: SIM115
        proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                text=True)
        proc.log_path = log.name
        started.append(proc)
        return proc

    def stop_all():
        for proc in started:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in started:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()

    request.addfinalizer(stop_all)
    start.logs = lambda: "\n".join(f"--- {p.args[1:4]}:\n{Path(p.log_path).read_text()[-2000:]}" for p in started)
    return start, env


def test_progress_published_by_the_worker_reaches_a_page_served_by_another_web_process(
    processes, users, cycle, cycle_report, client, settings,
):
    start, env = processes
    settings.TEMPORAL_TASK_QUEUE = env["TEMPORAL_TASK_QUEUE"]
    web_a, web_b = free_port(), free_port()
    for port in (web_a, web_b):
        start("-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "synapse.asgi:application")
    start("manage.py", "run_temporal_worker", "--task-queue", env["TEMPORAL_TASK_QUEUE"])
    try:
        wait_until(lambda: serving(web_a) and serving(web_b), timeout=120, what="both web processes serving")
    except AssertionError as err:
        raise AssertionError(f"{err}\n{start.logs()}") from None

    # The manager's page on web B watches the cycle (a session both processes read from the database).
    client.force_login(users["manager"])
    session = client.cookies["sessionid"].value
    token = Token.objects.create(user=users["manager"]).key

    async def watch_then_start():
        async with websockets.connect(
            f"ws://127.0.0.1:{web_b}/ws/cycles/{cycle.pk}/progress/",
            additional_headers={"Cookie": f"sessionid={session}", "Origin": f"http://127.0.0.1:{web_b}"},
        ) as socket_b:
            async with httpx.AsyncClient() as http:
                response = await http.post(f"http://127.0.0.1:{web_a}/api/v1/workflow/start/{cycle.pk}",
                                           json={}, headers={"Authorization": f"Bearer {token}"}, timeout=30)
            assert response.status_code == 201, response.text
            return json.loads(await asyncio.wait_for(socket_b.recv(), timeout=60))

    message = asyncio.run(watch_then_start())
    assert message == {"cycle_report_id": cycle_report.pk, "phase": "planning"}


def test_a_page_of_a_cycle_the_user_may_not_see_is_refused_across_processes(processes, users, cycle, client):
    start, _ = processes
    port = free_port()
    start("-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "synapse.asgi:application")
    wait_until(lambda: serving(port), timeout=120, what="web process serving")
    client.force_login(users["data_owner"])

    async def connect():
        async with websockets.connect(
            f"ws://127.0.0.1:{port}/ws/cycles/{cycle.pk}/progress/",
            additional_headers={"Cookie": f"sessionid={client.cookies['sessionid'].value}",
                                "Origin": f"http://127.0.0.1:{port}"},
        ) as ws:
            await ws.recv()

    # Closed before the handshake is accepted: the server answers 403 and no message is ever sent.
    with pytest.raises(websockets.InvalidStatus) as refused:
        asyncio.run(connect())
    assert refused.value.response.status_code == 403
