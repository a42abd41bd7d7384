"""Production settings: DEBUG off by default, the dev SECRET_KEY refused, `check --deploy` clean."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GOOD_KEY = "k3Y-" + "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOP"
# The production settings README.md documents (behind a TLS-terminating proxy).
PRODUCTION = {
    "DEBUG": "false", "SECRET_KEY": GOOD_KEY, "ALLOWED_HOSTS": "synapse.bank.example",
    "SECURE_PROXY_SSL": "true", "SECURE_SSL_REDIRECT": "true", "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true", "SECURE_HSTS_PRELOAD": "true",
}


def run(args, **env) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("DEBUG", "SECRET_KEY", "SECURE_", "ALLOWED_HOSTS", "SESSION_", "CSRF_",
                                  "DJANGO_ALLOW_ASYNC_UNSAFE"))}
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                          env={**clean, "DJANGO_SETTINGS_MODULE": "synapse.settings", **env})


PROBE = ("import django; from django.conf import settings; django.setup(); "
         "print(settings.DEBUG, settings.SECURE_HSTS_SECONDS, settings.SECURE_SSL_REDIRECT)")


def test_debug_is_off_unless_asked_for():
    assert run(["-c", PROBE], SECRET_KEY=GOOD_KEY).stdout.split() == ["False", "0", "False"]
    assert run(["-c", PROBE], DEBUG="true").stdout.split()[0] == "True"


def test_the_dev_secret_key_is_refused_when_debug_is_off():
    for env in ({}, {"DEBUG": "false", "SECRET_KEY": "dev-only-insecure-key-change-me"}, {"SECRET_KEY": "short"}):
        result = run(["-c", PROBE], **env)
        assert result.returncode != 0 and "SECRET_KEY is the development key" in result.stderr, env


def test_hsts_and_ssl_redirect_come_from_the_environment():
    assert run(["-c", PROBE], **PRODUCTION).stdout.split() == ["False", "31536000", "True"]


def test_check_deploy_gives_no_warning_with_the_documented_production_settings():
    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
