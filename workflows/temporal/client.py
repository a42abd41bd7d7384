"""One Temporal client per process, usable from synchronous Django code.

The client lives on an event loop in a daemon thread; sync callers hand it a
coroutine function and wait for the answer with a deadline. Connection failures
are not cached: the next call tries again, so a Temporal server that comes back
is used without restarting the web process.

A circuit breaker keeps a web process from paying the deadline on every
request while Temporal or the worker is away: after a call finds it
unavailable, calls fail at once with the same reason for
TEMPORAL_BREAKER_SECONDS, then one call tries again.
"""
from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from django.conf import settings
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from workflows.temporal.converter import DATA_CONVERTER

T = TypeVar("T")

# Why Temporal could not take a call; each gives people a different reason.
UNREACHABLE = "unreachable"
NO_WORKER = "no_worker"
BUSY = "busy"
REASONS = {
    UNREACHABLE: "The workflow service (Temporal) can't be reached",
    NO_WORKER: "No workflow worker is running",
    BUSY: "The report's workflow did not answer in time (it is busy with an earlier step)",
}
# RPC failures that mean "not reachable now", as opposed to "refused".
UNAVAILABLE_CODES = {RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED}


async def connect(
    *, address: str | None = None, namespace: str | None = None, api_key: str | None = None, tls: bool | None = None,
    runtime=None,
) -> Client:
    """Connect with the settings (Temporal Cloud: an API key and TLS); the worker passes a Runtime with metrics."""
    api_key = settings.TEMPORAL_API_KEY if api_key is None else api_key
    return await Client.connect(
        address or settings.TEMPORAL_ADDRESS,
        namespace=namespace or settings.TEMPORAL_NAMESPACE,
        api_key=api_key or None,
        tls=settings.TEMPORAL_TLS if tls is None else tls,
        data_converter=DATA_CONVERTER,
        **({"runtime": runtime} if runtime is not None else {}),
    )


class TemporalUnavailable(Exception):
    """Temporal could not take the call now: unreachable, no worker polling, or the workflow busy."""

    def __init__(self, message: str = "", reason: str = UNREACHABLE) -> None:
        super().__init__(message or REASONS[reason])
        self.reason = reason

    @property
    def explanation(self) -> str:
        return REASONS.get(self.reason, REASONS[UNREACHABLE])


def unavailable_reason(err: BaseException) -> str | None:
    """The reason an error means "not available now", or None when it is an answer (a refusal)."""
    if isinstance(err, TemporalUnavailable):
        return err.reason
    if isinstance(err, RPCError):
        if err.status == RPCStatusCode.FAILED_PRECONDITION and "poller" in str(err).lower():
            return NO_WORKER  # "no poller seen for task queue recently"
        if err.status == RPCStatusCode.FAILED_PRECONDITION and "workflow task in failed state" in str(err).lower():
            # WorkflowNotReady: the workflow's last task timed out or failed (its worker was killed while it
            # held it) and no task has completed since; queries and updates are answered again once the
            # task is retried, within seconds. Seen by bench/faults_live.py as 500s on the status API.
            return BUSY
        if err.status in UNAVAILABLE_CODES:
            return UNREACHABLE if err.status == RPCStatusCode.UNAVAILABLE else BUSY
    if isinstance(err, (asyncio.TimeoutError, TimeoutError)):
        return BUSY
    from temporalio.client import RPCTimeoutOrCancelledError

    if isinstance(err, RPCTimeoutOrCancelledError):
        return BUSY
    return None


class ClientBridge:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: Client | None = None
        self._client_key: tuple | None = None
        self._open_until = 0.0
        self._open_reason = UNREACHABLE
        self._open_key: tuple | None = None

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or not self._loop.is_running():
                loop = asyncio.new_event_loop()
                started = threading.Event()

                def serve():
                    asyncio.set_event_loop(loop)
                    loop.call_soon(started.set)
                    loop.run_forever()

                threading.Thread(target=serve, name="temporal-client", daemon=True).start()
                started.wait()
                self._loop = loop
            return self._loop

    def _key(self) -> tuple:
        return (settings.TEMPORAL_ADDRESS, settings.TEMPORAL_NAMESPACE, settings.TEMPORAL_API_KEY)

    async def _get_client(self, timeout: float) -> Client:
        # Settings may change between calls in tests; a new address means a new client.
        key = self._key()
        if self._client is None or self._client_key != key:
            try:
                self._client = await asyncio.wait_for(connect(), timeout=timeout)
            except (RuntimeError, OSError, asyncio.TimeoutError) as err:
                self._client = None
                raise TemporalUnavailable(
                    f"Temporal at {settings.TEMPORAL_ADDRESS} is unreachable: {err or 'no answer in time'}"
                ) from err
            self._client_key = key
        return self._client

    # --- circuit breaker ---------------------------------------------------------

    def trip(self, reason: str) -> None:
        """Fail calls at once with `reason` for TEMPORAL_BREAKER_SECONDS."""
        self._open_reason = reason
        self._open_key = (*self._key(), settings.TEMPORAL_TASK_QUEUE)
        self._open_until = time.monotonic() + settings.TEMPORAL_BREAKER_SECONDS

    def reset(self) -> None:
        self._open_until = 0.0

    def open_reason(self) -> str | None:
        """The reason calls fail at once now, or None when the breaker is closed."""
        if time.monotonic() < self._open_until and self._open_key == (*self._key(), settings.TEMPORAL_TASK_QUEUE):
            return self._open_reason
        return None

    def run(
        self, fn: Callable[[Client], Awaitable[T]], timeout: float | None = None, *, breaker: bool = True,
        connect_timeout: float | None = None,
    ) -> T:
        """Run fn(client) on the client's loop and return its result, within `timeout` seconds.

        Raises TemporalUnavailable at once while the breaker is open (unless breaker=False),
        and when the call runs out of time.
        """
        timeout = timeout or settings.TEMPORAL_RPC_TIMEOUT
        reason = self.open_reason() if breaker else None
        if reason:
            raise TemporalUnavailable(reason=reason)
        loop = self._ensure_loop()

        async def call():
            # The deadline is kept on the loop, so whatever the call raises is retrieved here
            # (no "Task exception was never retrieved" when it times out).
            client = await self._get_client(min(connect_timeout or timeout, timeout))
            return await asyncio.wait_for(fn(client), timeout)

        future = asyncio.run_coroutine_threadsafe(call(), loop)
        try:
            result = future.result(timeout + 5)
        except Exception as err:
            if not future.done():  # the loop itself is stuck: should not happen
                future.cancel()
                raise TemporalUnavailable("Temporal did not answer in time.", reason=BUSY) from err
            reason = unavailable_reason(err)
            if reason in (UNREACHABLE, NO_WORKER):
                self.trip(reason)
            if reason and not isinstance(err, TemporalUnavailable):
                raise TemporalUnavailable(f"{REASONS[reason]}: {err}", reason=reason) from err
            raise
        self.reset()
        return result


bridge = ClientBridge()
