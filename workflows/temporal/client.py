"""One Temporal client per process, usable from synchronous Django code.

The client lives on an event loop in a daemon thread; sync callers hand it a
coroutine function and wait for the answer with a timeout. Connection failures
are not cached: the next call tries again, so a Temporal server that comes back
is used without restarting the web process.
"""
from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

from django.conf import settings
from temporalio.client import Client

T = TypeVar("T")


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
        **({"runtime": runtime} if runtime is not None else {}),
    )


class TemporalUnavailable(Exception):
    """The Temporal server could not be reached (or did not answer in time)."""


class ClientBridge:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: Client | None = None
        self._client_key: tuple | None = None

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

    async def _get_client(self) -> Client:
        # Settings may change between calls in tests; a new address means a new client.
        key = (settings.TEMPORAL_ADDRESS, settings.TEMPORAL_NAMESPACE, settings.TEMPORAL_API_KEY)
        if self._client is None or self._client_key != key:
            try:
                self._client = await asyncio.wait_for(connect(), timeout=settings.TEMPORAL_RPC_TIMEOUT)
            except (RuntimeError, OSError, asyncio.TimeoutError) as err:
                self._client = None
                raise TemporalUnavailable(f"Temporal at {settings.TEMPORAL_ADDRESS} is unreachable: {err}") from err
            self._client_key = key
        return self._client

    def run(self, fn: Callable[[Client], Awaitable[T]], timeout: float | None = None) -> T:
        """Run fn(client) on the client's loop and return its result."""
        loop = self._ensure_loop()

        async def call():
            return await fn(await self._get_client())

        future = asyncio.run_coroutine_threadsafe(call(), loop)
        try:
            return future.result(timeout or settings.TEMPORAL_RPC_TIMEOUT * 3)
        except TimeoutError as err:
            future.cancel()
            raise TemporalUnavailable("Temporal did not answer in time.") from err


bridge = ClientBridge()
