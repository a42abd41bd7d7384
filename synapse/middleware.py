"""The idle timeout, renewed without a database write on every request."""
from __future__ import annotations

import time

from django.conf import settings
from django.contrib.auth import SESSION_KEY

RENEWED_AT = "_renewed_at"


class SessionRenewalMiddleware:
    """Renews a signed-in session's expiry at most once every ``SESSION_RENEW_SECONDS``.

    A session ends ``SESSION_COOKIE_AGE`` (``SESSION_IDLE_SECONDS``) after it was last saved. Saving it on
    every request (``SESSION_SAVE_EVERY_REQUEST``) costs each page an UPDATE in a transaction of its own;
    marking it modified only when its last renewal is older than the interval keeps the timeout to within
    that interval of the last request, for one write a minute per person instead of one a page. Placed after
    SessionMiddleware, so that its response step runs first and SessionMiddleware saves what it marked.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        session = getattr(request, "session", None)
        # An anonymous visitor's empty session stays unsaved, as Django leaves it; a signed-out one is gone.
        if session is not None and session.get(SESSION_KEY) is not None:
            now = int(time.time())
            if now - session.get(RENEWED_AT, 0) >= settings.SESSION_RENEW_SECONDS:
                session[RENEWED_AT] = now
        return response
