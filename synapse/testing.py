"""Test helpers: read an API error in the one shape (synapse.api) without hand-parsing; hold a row lock."""
from __future__ import annotations

import contextlib
import threading

from synapse.api import PROBLEM_CONTENT_TYPE, PROBLEM_TYPE_PREFIX


def problem(response, status: int, code: str | None = None) -> dict:
    """Assert the response is an RFC 9457 problem with this status (and code); return its body.

    body["detail"] is the message, body["errors"] the field errors ({} when none).
    """
    assert response.status_code == status, (response.status_code, getattr(response, "content", b"")[:2000])
    assert response["Content-Type"].startswith(PROBLEM_CONTENT_TYPE), response["Content-Type"]
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"], body
    assert body["type"] == PROBLEM_TYPE_PREFIX + body["code"], body
    if code:
        assert body["code"] == code, body
    body.setdefault("errors", {})
    return body


@contextlib.contextmanager
def row_locked_elsewhere(instance, *, wait_seconds: int = 2):
    """While inside, another transaction holds `instance`'s row FOR UPDATE, and a statement of this
    connection that waits for a row lock fails after `wait_seconds` (PostgreSQL; transactional tests)."""
    from django.db import connection, connections, transaction

    held, done = threading.Event(), threading.Event()

    def hold():
        try:
            with transaction.atomic():
                type(instance).objects.select_for_update().get(pk=instance.pk)
                held.set()
                done.wait(60)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold, name="row-lock-holder")
    holder.start()
    try:
        assert held.wait(30), "the other transaction did not get the lock"
        with connection.cursor() as cursor:
            cursor.execute(f"SET lock_timeout = '{int(wait_seconds)}s'")
        yield
    finally:
        done.set()
        holder.join()
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")
