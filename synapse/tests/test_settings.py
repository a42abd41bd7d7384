"""Settings come from the environment: each case loads them afresh in a subprocess."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = (
    "import json, django; from django.conf import settings; django.setup(); "
    "d = settings.DATABASES['default']; print(json.dumps({k: str(getattr(settings, k)) for k in "
    "['TEMPORAL_ADDRESS', 'TEMPORAL_NAMESPACE', 'TEMPORAL_API_KEY', 'TEMPORAL_TLS', 'TEMPORAL_TASK_QUEUE']} "
    "| {'ENGINE': d['ENGINE'], 'NAME': d['NAME'], 'CHANNEL': settings.CHANNEL_LAYERS['default']['BACKEND'], "
    "'OPTIONS': d.get('OPTIONS', {})}))"
)


def load(**env) -> dict:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(
        ("TEMPORAL_", "DATABASE_URL", "DATABASE_POOL", "REDIS_URL", "SYNAPSE_WEB_PROCESS", "CONN_MAX_AGE"))}
    out = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, check=True,
        env={**clean, "DJANGO_SETTINGS_MODULE": "synapse.settings", **env},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_embedded_defaults():
    s = load()
    assert s["TEMPORAL_ADDRESS"] == "localhost:7233" and s["TEMPORAL_TLS"] == "False"
    assert s["ENGINE"] == "django.db.backends.sqlite3"
    assert s["CHANNEL"] == "channels.layers.InMemoryChannelLayer"


def test_seed_temporal_host_is_accepted_and_address_wins():
    assert load(TEMPORAL_HOST="temporal.internal:7233")["TEMPORAL_ADDRESS"] == "temporal.internal:7233"
    both = load(TEMPORAL_HOST="old:7233", TEMPORAL_ADDRESS="new:7233")
    assert both["TEMPORAL_ADDRESS"] == "new:7233"


def test_temporal_cloud_api_key_turns_tls_on():
    s = load(TEMPORAL_ADDRESS="ns.acct.tmprl.cloud:7233", TEMPORAL_NAMESPACE="ns.acct", TEMPORAL_API_KEY="k")
    assert (s["TEMPORAL_NAMESPACE"], s["TEMPORAL_TLS"]) == ("ns.acct", "True")


@pytest.mark.parametrize("url, engine", [
    ("postgres://u@db:5432/synapse", "django.db.backends.postgresql"),
    ("sqlite:////tmp/x.sqlite3", "django.db.backends.sqlite3"),
])
def test_database_url_switches_engine(url, engine):
    assert load(DATABASE_URL=url)["ENGINE"] == engine


def test_postgres_binds_parameters_server_side_and_prepares_unless_turned_off():
    on = load(DATABASE_URL="postgres://u@db:5432/synapse")["OPTIONS"]
    assert (on["server_side_binding"], on["prepare_threshold"]) == (True, 5)
    assert load(DATABASE_URL="postgres://u@db:5432/synapse", DATABASE_PREPARE_THRESHOLD="2")["OPTIONS"][
        "prepare_threshold"] == 2
    off = load(DATABASE_URL="postgres://u@db:5432/synapse", DATABASE_PREPARED_STATEMENTS="false")["OPTIONS"]
    assert "server_side_binding" not in off and "prepare_threshold" not in off
    assert "server_side_binding" not in load()["OPTIONS"]  # SQLite has no such thing


@pytest.mark.django_db
def test_a_statement_a_connection_runs_again_is_prepared_on_postgres():
    """Parsed and planned once per connection: PostgreSQL lists it among the connection's prepared statements."""
    from django.contrib.auth import get_user_model
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("prepared statements are PostgreSQL's (SQLite runs the tests by default)")
    for _ in range(6):
        list(get_user_model().objects.filter(username="nobody-prepared"))
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        statements = [row[0] for row in cursor.fetchall()]
    assert any("synapse_user" in s and "$1" in s for s in statements), statements


def test_a_web_process_takes_its_connections_from_a_pool_and_others_keep_their_own():
    pg = "postgres://u@db:5432/synapse"
    assert "pool" not in load(DATABASE_URL=pg)["OPTIONS"]  # commands, the worker, tests
    pool = load(DATABASE_URL=pg, DATABASE_POOL="true", DATABASE_POOL_MAX_SIZE="4")["OPTIONS"]["pool"]
    assert pool == {"min_size": 2, "max_size": 4, "timeout": 10.0}
    assert "pool" not in load(DATABASE_POOL="true")["OPTIONS"]  # SQLite: nothing to pool
    # A web process pools unless CONN_MAX_AGE keeps connections per thread instead.
    assert "pool" in load(DATABASE_URL=pg, SYNAPSE_WEB_PROCESS="true")["OPTIONS"]
    assert "pool" not in load(DATABASE_URL=pg, SYNAPSE_WEB_PROCESS="true", CONN_MAX_AGE="60")["OPTIONS"]
    refused = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "synapse.settings", "DATABASE_URL": pg,
             "DATABASE_POOL": "true", "CONN_MAX_AGE": "60"},
    )
    assert refused.returncode != 0 and "leave CONN_MAX_AGE at 0" in refused.stderr
    too_small = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "synapse.settings", "DATABASE_URL": pg,
             "DATABASE_POOL": "true", "DATABASE_POOL_MIN_SIZE": "5", "DATABASE_POOL_MAX_SIZE": "2"},
    )
    assert too_small.returncode != 0 and "DATABASE_POOL_MIN_SIZE (5) must be 0 to DATABASE_POOL_MAX_SIZE (2" \
        in too_small.stderr


def test_the_asgi_entry_point_serves_requests_from_pooled_connections():
    """synapse.asgi (daphne's) turns the pool on: connections closed at each request's end go back to it and
    the next requests reuse them, rather than each starting a PostgreSQL backend of its own."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        pytest.skip("a PostgreSQL pool (SQLite runs the tests by default)")
    probe = (
        "import json, os; import synapse.asgi; from django.db import connection\n"
        "pids = []\n"
        "for _ in range(6):\n"
        "    with connection.cursor() as c: c.execute('SELECT pg_backend_pid()'); pids.append(c.fetchone()[0])\n"
        "    connection.close()  # what the end of a request does (close_old_connections, CONN_MAX_AGE 0)\n"
        "print(json.dumps({'pool': connection.pool is not None, 'backends': len(set(pids))}))"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_POOL", "CONN_MAX_AGE")}
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={**env, "DJANGO_SETTINGS_MODULE": "synapse.settings",
                              "DATABASE_POOL_MIN_SIZE": "1", "DATABASE_POOL_MAX_SIZE": "1"})
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen == {"pool": True, "backends": 1}  # one connection served the six; six backends without the pool


def test_redis_url_selects_the_redis_channel_layer():
    assert load(REDIS_URL="redis://127.0.0.1:6379/0")["CHANNEL"] == "channels_redis.core.RedisChannelLayer"
