"""Worker interceptor: database hygiene and tracking around every sync activity.

A worker never passes through Django's request cycle, so nothing else closes
connections that the database dropped or that outlived CONN_MAX_AGE; without
this, a worker that idled overnight fails its first activity of the morning.
"""
from __future__ import annotations

import dataclasses
import inspect
import logging
import time

from django.db import close_old_connections
from temporalio import activity
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from workflows.logs import log_context
from workflows.prometheus import ACTIVITIES, ACTIVITY_SECONDS, RETRIES
from workflows.temporal import retry

logger = logging.getLogger("workflows.activity")


def _tracked(fn):
    def run(*args):
        info = activity.info()
        with log_context(workflow_id=info.workflow_id, run_id=info.workflow_run_id, activity=info.activity_type):
            return _run_tracked(fn, info, *args)

    return run


def _run_tracked(fn, info, *args):
    from workflows import tracking

    inp = args[0] if args else None
    close_old_connections()
    started = time.monotonic()
    step = None
    try:
        try:
            step = tracking.step_started(info, inp)
        except Exception:
            logger.exception("tracking failed for %s", info.activity_type)
        try:
            result = fn(*args)
        except BaseException as err:
            logger.warning(
                "activity %s workflow=%s attempt=%d failed in %dms: %s",
                info.activity_type, info.workflow_id, info.attempt,
                (time.monotonic() - started) * 1000, err,
            )
            if step is not None:
                try:
                    # The workflow gave its retry policy to the server, which hands it to us:
                    # the last attempt fails the step, any other is logged as a retry.
                    policy = retry.policy_of(info.activity_type, info.retry_policy)
                    delay = retry.next_delay(policy, info.attempt, err)
                    tracking.step_failed(step, err, final=delay is None)
                    if delay is not None:
                        tracking.retry_logged(step, info, err, delay_seconds=delay)
                        RETRIES.labels(info.activity_type).inc()
                except Exception:
                    logger.exception("tracking failed for %s", info.activity_type)
            ACTIVITIES.labels(info.activity_type, "failed").inc()
            ACTIVITY_SECONDS.labels(info.activity_type).observe(time.monotonic() - started)
            raise
        ACTIVITIES.labels(info.activity_type, "completed").inc()
        ACTIVITY_SECONDS.labels(info.activity_type).observe(time.monotonic() - started)
        logger.info(
            "activity %s workflow=%s attempt=%d ok in %dms",
            info.activity_type, info.workflow_id, info.attempt, (time.monotonic() - started) * 1000,
        )
        if step is not None:
            try:
                tracking.step_finished(step, result)
            except Exception:
                logger.exception("tracking failed for %s", info.activity_type)
        return result
    finally:
        close_old_connections()


class _ActivityInbound(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput):
        if not inspect.iscoroutinefunction(input.fn):
            input = dataclasses.replace(input, fn=_tracked(input.fn))
        return await super().execute_activity(input)


class TrackingInterceptor(Interceptor):
    """Registered on every worker (see workflows.temporal.worker.build_worker)."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ActivityInbound(next)
