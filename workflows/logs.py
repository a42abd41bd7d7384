"""Structured logs: every line carries the workflow id, run id and user it is about, as JSON when LOG_FORMAT=json.

The web sets the user per request (LogContextMiddleware); the worker's interceptor
sets the workflow and run per activity (log_context). ContextFilter copies them
onto each record, so a plain `logger.info(...)` anywhere is enough.
"""
from __future__ import annotations

import contextvars
import json
import logging
from contextlib import contextmanager

_context: contextvars.ContextVar[dict] = contextvars.ContextVar("synapse_log_context", default={})
FIELDS = ("workflow_id", "run_id", "user", "activity")


@contextmanager
def log_context(**values):
    token = _context.set({**_context.get(), **{k: v for k, v in values.items() if v}})
    try:
        yield
    finally:
        _context.reset(token)


def install_record_factory() -> None:
    """Every record, whichever handler gets it (a test's caplog too), carries the context (AppConfig.ready)."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "synapse_context", False):
        return

    def factory(*args, **kwargs):
        record = previous(*args, **kwargs)
        for name, value in _context.get().items():
            setattr(record, name, value)
        return record

    factory.synapse_context = True
    logging.setLogRecordFactory(factory)


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in _context.get().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"), "level": record.levelname,
                 "logger": record.name, "message": record.getMessage()}
        entry.update({name: getattr(record, name) for name in FIELDS if getattr(record, name, None)})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class LogContextMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        with log_context(user=user.get_username() if user is not None and user.is_authenticated else ""):
            return self.get_response(request)
