"""Test helpers for the API: read an error in the one shape (synapse.api) without hand-parsing."""
from __future__ import annotations

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
