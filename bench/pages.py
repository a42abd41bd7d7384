"""Time every page and API list at 50 reports × 300 attributes × 100 samples on PostgreSQL.

    .venv/bin/python bench/pages.py [--requests 20] [--reports 50] [--attributes 300] [--samples 100]
                                    [--database-url postgres://postgres@127.0.0.1:5432/h11] [--rebuild]
                                    [--only SUBSTRING]

Builds the data set with cycles.testing.scale_dataset_build (bulk inserts) in a
database of its own (kept between runs: --rebuild starts afresh),
then, for each page as each role that uses it, counts the queries of one
request and times --requests more through Django's test Client (DEBUG off).
The Client keeps its database connection from request to request, as the web
processes' pool does (DATABASE_POOL); connecting anew for each request would
add 10-20 ms to the heaviest pages.
Prints queries, response size and server time p50/p95 per page, and exits 1
if a page's p95 misses the 100 ms target or answers other than 200.

Temporal is absent on purpose: TEMPORAL_ADDRESS points at a closed port and the
reports' workflow ids are set, so a phase page's live status goes the
"workflow service unreachable" way and progress is read from the database. A
refused connection fails fast; a server that accepts connections and never
answers is the business of the status cache and circuit breaker (issue 10).
"""
from __future__ import annotations

import argparse
import os
import secrets
import socket
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchdb import yardstick_ms  # noqa: E402 (bench/ is the script's own folder)

TARGET_P95_MS = 100.0


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def setup(args) -> None:
    os.environ["DATABASE_URL"] = args.database_url
    os.environ["DEBUG"] = "false"
    os.environ["TEMPORAL_ADDRESS"] = f"127.0.0.1:{closed_port()}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "synapse.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only-" + secrets.token_urlsafe(40))  # DEBUG is off: a real key
    import django

    django.setup()


def database(args):
    """The bench database: made (and filled) once, reused by later runs unless --rebuild."""
    import psycopg
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    name = settings.DATABASES["default"]["NAME"]
    connection.close()
    params = {k: v for k, v in connection.get_connection_params().items() if k in ("host", "port", "user", "password")}
    with psycopg.connect(dbname="postgres", autocommit=True, **params) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists and args.rebuild:
            admin.execute(f'DROP DATABASE "{name}"')
            exists = None
        if not exists:
            admin.execute(f'CREATE DATABASE "{name}"')
    call_command("migrate", verbosity=0)
    # The test Client's host, as the test runner would allow it.
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]


def dataset(args):
    from cycles.models import TestCycle
    from cycles.testing import scale_dataset_build
    from synapse.models import User
    from versioning.models import Version
    from cycles.models import CycleReport, InformationRequest, PopulationFile

    prefix = f"r{args.reports}a{args.attributes}s{args.samples}"
    cycle = TestCycle.objects.filter(name=f"{prefix} cycle").first()
    if cycle is None:
        start = time.perf_counter()
        ds = scale_dataset_build(reports=args.reports, attributes=args.attributes, samples=args.samples,
                                 prefix=prefix)
        print(f"built {args.reports} reports × {args.attributes} attributes × {args.samples} samples "
              f"in {time.perf_counter() - start:.1f} s")
        # What autovacuum does to a live database after a load: statistics for the planner, and the
        # visibility map that lets counts be answered from an index alone.
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
        return ds
    # Reuse: find the same handles the build returned.
    from cycles.testing import ScaleDataset

    ds = ScaleDataset(cycle_id=cycle.pk)
    for role in ("admin", "manager", "tester", "owner", "executive"):
        ds.users[role] = User.objects.get(username=f"{prefix}-{role}")
    ds.users["data_owner"] = User.objects.get(username=f"{prefix}-dataowner0")
    crs = list(CycleReport.objects.filter(cycle=cycle).order_by("pk"))
    ds.cycle_report_ids = [cr.pk for cr in crs]
    ds.parallel_id = next(cr.pk for cr in crs if cr.phase == "sample_selection")
    ds.execution_id = next(cr.pk for cr in crs if cr.phase == "test_execution")
    ds.observations_id = next(cr.pk for cr in crs if cr.phase == "observations")
    ds.finalize_id = next(cr.pk for cr in crs if cr.phase == "finalize")
    ds.rfi_id = next(cr.pk for cr in crs if cr.phase == "request_for_information")
    ds.sample_version_id = Version.objects.get(cycle_report_id=ds.parallel_id, phase="sample_selection").pk
    ds.planning_version_id = Version.objects.get(cycle_report_id=ds.parallel_id, phase="planning").pk
    ds.population_file_id = PopulationFile.objects.get(cycle_report_id=ds.parallel_id).pk
    ds.request_id = InformationRequest.objects.filter(
        cycle_report__cycle=cycle, status=InformationRequest.Status.SUBMITTED).order_by("pk").first().pk
    print(f"reusing the data set of {len(crs)} reports (--rebuild to build afresh)")
    return ds


def measure(client, url: str, n: int) -> tuple[int, int, int, list[float], list[float]]:
    """Status, queries and size of the page, and the wall and CPU milliseconds of n requests.

    CPU time is this process's (Python: view, ORM, templates), not PostgreSQL's; on a machine
    shared with other work it says what the page costs when the wall clock says how busy the machine is.
    """
    from cycles.testing import queries_of

    client.get(url)  # warm per-process caches, and the session's renewal after logging in
    status, queries, _ = queries_of(client, url)
    times, cpu = [], []
    size = 0
    for _ in range(n):
        start, start_cpu = time.perf_counter(), time.process_time()
        response = client.get(url)
        times.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
        size = len(response.content)
    return status, queries, size, times, cpu


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--reports", type=int, default=50)
    parser.add_argument("--attributes", type=int, default=300)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/h11_bench")
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--only", default="", help="time only the pages whose label contains this")
    args = parser.parse_args()
    if not args.database_url.startswith("postgres"):
        print("bench/pages.py measures PostgreSQL: give --database-url postgres://...", file=sys.stderr)
        return 2
    setup(args)
    from django.test import Client

    from cycles.testing import SCALE_PAGES
    from django.urls import NoReverseMatch

    database(args)
    ds = dataset(args)
    # As a web process starts (synapse/asgi.py): its pages loaded and its heap settled (synapse/heap.py), so
    # that the collector doesn't go through everything the process holds in the middle of a request.
    from synapse.heap import settle_web

    settle_web()
    clients = {}
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; {args.requests} requests per page; "
          f"yardstick {yardstick_ms():.1f} ms (a fixed piece of Python: lower is a faster moment)")
    print(f"{'role':<11} {'page':<40} {'status':>6} {'queries':>7} {'KB':>5} {'p50 ms':>7} {'p95 ms':>7} "
          f"{'cpu p50':>7} {'cpu p95':>7}")
    failed = []
    for page in SCALE_PAGES:
        role, label = page.role, page.label
        try:
            url = page.url(ds)
        except NoReverseMatch:  # a model not in the admin on this branch
            continue
        if args.only and args.only not in label:
            continue
        if role not in clients:
            clients[role] = Client()
            clients[role].force_login(ds.users[role])
        status, queries, size, times, cpu = measure(clients[role], url, args.requests)
        p50, p95_ms = statistics.median(times), p95(times)
        flag = "" if status == 200 and p95_ms < TARGET_P95_MS else "  <- MISSES"
        if flag:
            failed.append(f"{role} {label}")
        print(f"{role:<11} {label:<40} {status:>6} {queries:>7} {size / 1024:>5.0f} {p50:>7.1f} {p95_ms:>7.1f} "
              f"{statistics.median(cpu):>7.1f} {p95(cpu):>7.1f}{flag}")
    print(f"load average {os.getloadavg()[0]:.1f} at the end; yardstick {yardstick_ms():.1f} ms")
    print(f"\n{len(failed)} page(s) miss the target (200, p95 < {TARGET_P95_MS:.0f} ms)" +
          (": " + "; ".join(failed) if failed else "") + ". Temporal absent: status read from the database.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
