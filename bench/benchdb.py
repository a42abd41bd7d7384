"""The PostgreSQL database a bench run makes afresh (bench/orchestration.py, bench/faults_live.py)."""
from __future__ import annotations

import sys


def fresh_database() -> None:
    """Drop and recreate the settings' database, then migrate it; never a shared one (postgres, templates)."""
    import psycopg
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    name = settings.DATABASES["default"]["NAME"]
    if name in ("postgres", "template0", "template1"):
        sys.exit(f"Refusing to drop the database {name!r}: give --database-url a database of the bench's own.")
    params = {k: v for k, v in connection.get_connection_params().items() if k in ("host", "port", "user", "password")}
    connection.close()
    with psycopg.connect(dbname="postgres", autocommit=True, **params) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    call_command("migrate", verbosity=0)


def yardstick_ms(repeat: int = 7) -> float:
    """Milliseconds this machine takes for a fixed piece of pure Python, the median of ``repeat``.

    The machines' speed drifts (by a third over minutes, and more from one day to the next): a bench prints
    this beside its figures so that two runs can be compared, or a run put down to a slow moment.
    """
    import statistics
    import time

    def work() -> int:
        counts: dict[int, int] = {}
        for i in range(200_000):
            counts[i % 997] = counts.get(i % 997, 0) + i
        return len(counts)

    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)
