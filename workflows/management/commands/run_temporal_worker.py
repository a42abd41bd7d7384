"""manage.py run_temporal_worker: run the Temporal worker (and the decision outbox)."""
from __future__ import annotations

import asyncio
import datetime
import logging
import os
import signal
import sys
import threading

from django.conf import settings
from django.core.management.base import BaseCommand

logger = logging.getLogger("workflows.worker")


class Command(BaseCommand):
    help = "Run a Temporal worker for Synapse's workflows and activities. Ctrl-C or SIGTERM stops it cleanly."

    def add_arguments(self, parser):
        parser.add_argument("--task-queue", default=settings.TEMPORAL_TASK_QUEUE)
        parser.add_argument(
            "--max-concurrent-activities", type=int, default=settings.TEMPORAL_WORKER_MAX_ACTIVITIES,
            help="Activities run at once; also the size of the activity thread pool.",
        )
        parser.add_argument("--connect-retries", type=int, default=60,
                            help="Seconds to keep trying to reach the Temporal server at start.")
        parser.add_argument("--graceful-shutdown", type=float, default=30.0,
                            help="Seconds running activities get to finish after SIGTERM/SIGINT.")
        parser.add_argument("--conn-max-age", type=int, default=300,
                            help="Seconds an activity thread keeps its database connection (0: a new one per "
                                 "activity). The pool has a fixed number of threads, so this many connections at most.")
        parser.add_argument("--outbox-interval", type=float, default=2.0,
                            help="Seconds between deliveries of decisions not answered yet (the outbox).")
        parser.add_argument("--reconcile-interval", type=float, default=settings.TEMPORAL_RECONCILE_INTERVAL,
                            help="Seconds between reconciliations of workflows with the database (0: never).")
        parser.add_argument("--pdf-processes", type=int, default=settings.PDF_RENDER_PROCESSES,
                            help="Processes that render final report PDFs beside the worker's (0: in the worker).")
        parser.add_argument("--metrics-port", type=int, default=settings.WORKER_METRICS_PORT,
                            help="Serve Synapse's worker metrics for Prometheus on this port (0: off).")
        parser.add_argument("--sdk-metrics-address", default=settings.TEMPORAL_SDK_METRICS_ADDRESS,
                            help="host:port for the Temporal SDK's own runtime metrics (empty: off).")

    def handle(self, *args, **options):
        import faulthandler

        faulthandler.register(signal.SIGUSR1)  # kill -USR1 <pid> prints every thread's stack
        logging.getLogger("workflows").setLevel(logging.INFO)
        worker_connections(options["conn_max_age"])
        try:
            asyncio.run(self._run(options))
        except ConnectionError as err:
            self.stderr.write(f"run_temporal_worker: {err}")
            self.stderr.flush()
            sys.stdout.flush()
            # Exit at once: the SDK's Rust runtime is still up, and tearing it down in the interpreter's
            # shutdown sometimes aborts the process (SIGABRT) instead of exiting with this code.
            os._exit(2)

    async def _connect(self, retries: int, runtime=None):
        from workflows.temporal.client import connect

        for attempt in range(retries + 1):
            try:
                return await connect(runtime=runtime)
            except RuntimeError as err:
                if attempt == retries:
                    raise ConnectionError(f"Temporal at {settings.TEMPORAL_ADDRESS} is unreachable: {err}") from err
                if attempt == 0:
                    logger.info("waiting for Temporal at %s ...", settings.TEMPORAL_ADDRESS)
                await asyncio.sleep(1)

    async def _run(self, options):
        from workflows.temporal.worker import build_worker

        runtime = None
        if options["sdk_metrics_address"]:
            from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

            runtime = Runtime(telemetry=TelemetryConfig(
                metrics=PrometheusConfig(bind_address=options["sdk_metrics_address"])))
        if options["metrics_port"]:
            from prometheus_client import start_http_server

            start_http_server(options["metrics_port"])
        client = await self._connect(options["connect_retries"], runtime=runtime)
        from cycles import pdf

        pdf.start_pool(options["pdf_processes"])
        worker, executor = build_worker(
            client,
            task_queue=options["task_queue"],
            max_concurrent_activities=options["max_concurrent_activities"],
            graceful_shutdown_timeout=datetime.timedelta(seconds=options["graceful_shutdown"]),
        )
        from synapse.heap import load_pages, settle

        load_pages()  # before the first activity reverses an address, not during it
        settle()  # everything the worker keeps is loaded: out of the collector's sight
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)

        outbox_stop = threading.Event()
        outbox = threading.Thread(
            target=_outbox_loop, args=(outbox_stop, options["outbox_interval"], options["reconcile_interval"]),
            name="decision-outbox", daemon=True
        )
        outbox.start()
        monitor = threading.Thread(
            target=_monitor_loop, args=(outbox_stop, settings.WORKER_HEARTBEAT_SECONDS, options["task_queue"]),
            name="worker-monitor", daemon=True,
        )
        monitor.start()
        self.stdout.write(
            f"Worker on {settings.TEMPORAL_ADDRESS} namespace={settings.TEMPORAL_NAMESPACE} "
            f"task_queue={options['task_queue']} max_concurrent_activities={options['max_concurrent_activities']}"
        )
        async with worker:
            await stop.wait()
            self.stdout.write("Stopping: finishing running activities...")
        outbox_stop.set()
        monitor.join(timeout=10)
        executor.shutdown(wait=True)
        pdf.stop_pool()
        self.stdout.write("Worker stopped.")


def worker_connections(conn_max_age: int) -> None:
    """How the worker's threads hold their database connections.

    Activity threads live as long as the worker: connecting anew for every activity cost more than many
    activities' own work, so a connection is kept `conn_max_age` seconds. No health check (a "SELECT 1"
    before each activity's first query): a connection the database dropped fails that activity's attempt,
    Temporal retries it, and close_old_connections() around each activity closes the connection that had
    the error before the next one.
    """
    from django.db import connections

    for alias in connections:
        connections.settings[alias]["CONN_MAX_AGE"] = conn_max_age
        connections.settings[alias]["CONN_HEALTH_CHECKS"] = False
        # A connection per thread instead of the web's pool (DATABASE_POOL), which keeps none across requests.
        connections.settings[alias].get("OPTIONS", {}).pop("pool", None)


def _outbox_loop(stop: threading.Event, interval: float, reconcile_interval: float = 0) -> None:
    import time

    from django.db import close_old_connections

    from workflows.services import decisions_deliver_pending, workflows_reconcile

    next_reconcile = time.monotonic() + min(reconcile_interval, 30) if reconcile_interval else None
    while not stop.wait(interval):
        close_old_connections()
        try:
            decisions_deliver_pending()
            if next_reconcile is not None and time.monotonic() >= next_reconcile:
                next_reconcile = time.monotonic() + reconcile_interval
                # Every worker runs it; each workflow is compared by one of them, at least once an interval.
                workflows_reconcile(claim_every=datetime.timedelta(seconds=reconcile_interval / 2))
        except Exception:
            logger.exception("decision outbox failed; will retry")
        finally:
            close_old_connections()


def _monitor_loop(stop: threading.Event, interval: float, task_queue: str) -> None:
    """The heartbeat /healthz reads, then a sweep of running workflows and alerts (issue 9)."""
    import os
    import socket

    from django.db import close_old_connections
    from django.utils import timezone

    from workflows.monitor import monitor_sweep, worker_heartbeat
    from workflows.temporal.worker import build_id

    identity, started = f"{socket.gethostname()}:{os.getpid()}", timezone.now()

    def beat(*, stopped: bool = False) -> None:
        worker_heartbeat(identity=identity, task_queue=task_queue, started_at=started, build_id=build_id(),
                         stopped=stopped)

    while not stop.is_set():
        close_old_connections()
        try:
            beat()
            monitor_sweep()
        except Exception:
            logger.exception("worker monitor failed; will retry")
        finally:
            close_old_connections()
        stop.wait(interval)
    try:
        beat(stopped=True)
    except Exception:
        logger.exception("could not record the worker's stop")
    finally:
        close_old_connections()
