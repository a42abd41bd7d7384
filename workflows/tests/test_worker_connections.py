"""The worker's database connections: kept between activities, no health check, a dropped one replaced.

`run_temporal_worker` keeps each activity thread's connection (CONN_MAX_AGE) and turns Django's health
check off: it cost a "SELECT 1" before every activity's first query. A connection the database dropped
then fails one attempt of one activity (Temporal retries it) and is closed before the next.
"""
from __future__ import annotations

import types

import pytest
from django.db import OperationalError, connection, connections

from workflows.management.commands.run_temporal_worker import worker_connections
from workflows.temporal.interceptors import _run_tracked

pytestmark = pytest.mark.django_db(transaction=True)


def info(attempt: int = 1):
    return types.SimpleNamespace(activity_type="probe", activity_id=f"probe-{attempt}", attempt=attempt,
                                 workflow_id="wf-probe", workflow_run_id="run-1", workflow_type="Probe",
                                 retry_policy=None)


def backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def test_a_connection_the_database_dropped_fails_one_attempt_and_is_replaced(monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("terminates a PostgreSQL backend")
    settings = connections.settings["default"]
    for name in ("CONN_MAX_AGE", "CONN_HEALTH_CHECKS"):  # put back after the test
        monkeypatch.setitem(settings, name, settings.get(name))
    worker_connections(300)  # what run_temporal_worker does first
    connection.close()

    first = _run_tracked(lambda: backend_pid(), info())
    # Kept for the next activity: the same backend, and no health check query before it.
    queries = []
    with connection.execute_wrapper(lambda execute, sql, *args: queries.append(sql) or execute(sql, *args)):
        assert _run_tracked(lambda: backend_pid(), info()) == first
    assert not any("SELECT 1" in sql for sql in queries)

    # The database drops it (a restart, an idle timeout): that attempt fails, the next gets a new one.
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [first])
    finally:
        other.close()
    with pytest.raises(OperationalError):
        _run_tracked(lambda: backend_pid(), info(attempt=2))
    assert _run_tracked(lambda: backend_pid(), info(attempt=3)) != first


def test_the_outbox_keeps_its_threads_and_their_connections_as_long_as_conn_max_age_allows(
        monkeypatch, users, cycle_report):
    """The outbox's threads are made once per process; each keeps its connection in the worker (CONN_MAX_AGE
    set) and closes it after each workflow's turn elsewhere (0, as in the web and the tests)."""
    import threading

    from workflows import services
    from workflows.models import WorkflowDecision

    answered = WorkflowDecision.objects.create(
        workflow_id="wf-done", update_name="request_submitted", requested_by=users["data_owner"],
        cycle_report=cycle_report, status=WorkflowDecision.Status.DELIVERED, payload={})
    pool = services._outbox_threads()
    assert services._outbox_threads() is pool

    def turn():
        """One workflow's turn (its decision answered already: read, not sent); then whether the thread's
        connection is still open."""
        assert services._deliver_workflow_queue([answered.pk], 1.0) == 0
        return threading.get_ident(), connection.connection is not None

    settings = connections.settings["default"]
    monkeypatch.setitem(settings, "CONN_MAX_AGE", 0)
    assert pool.submit(turn).result()[1] is False  # closed after its turn

    settings["CONN_MAX_AGE"] = 300  # as run_temporal_worker sets it
    everyone = threading.Barrier(services.OUTBOX_THREADS)
    try:
        turns = [pool.submit(turn).result() for _ in range(services.OUTBOX_THREADS * 2)]
        assert all(kept for _, kept in turns)
        assert {ident for ident, _ in turns} <= {t.ident for t in pool._threads}  # the same threads, kept
    finally:
        def close():  # every thread's connection, before the test database goes
            everyone.wait(timeout=10)
            connections.close_all()

        for done in [pool.submit(close) for _ in range(services.OUTBOX_THREADS)]:
            done.result()


def test_the_worker_keeps_a_connection_per_thread_even_where_the_web_pools_them(monkeypatch):
    """DATABASE_POOL set for the web (its entry points set it; a shared environment passes it on) leaves the
    worker's threads their own kept connections: Django refuses a pool with CONN_MAX_AGE."""
    settings = connections.settings["default"]
    for name in ("CONN_MAX_AGE", "CONN_HEALTH_CHECKS", "OPTIONS"):  # put back after the test
        monkeypatch.setitem(settings, name, settings.get(name))
    settings["OPTIONS"] = {**settings.get("OPTIONS", {}), "pool": {"min_size": 1}}
    worker_connections(300)
    assert "pool" not in settings["OPTIONS"] and settings["CONN_MAX_AGE"] == 300
