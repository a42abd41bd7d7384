"""Fixtures shared by every app's tests: a user per role and a small cycle."""
import datetime

import pytest
from django.contrib.auth.models import Group

from synapse.roles import Role

# The Temporal fixtures: `temporal_harness` (the dev server, once per session)
# and `temporal` (settings pointed at it, a worker on a fresh task queue).
pytest_plugins = ["workflows.testing"]

PASSWORD = "pass-for-tests-123"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # PBKDF2's deliberate slowness costs seconds per test for nothing here.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def make_user(db, django_user_model):
    def make(username: str, *roles: str, **extra):
        user = django_user_model.objects.create_user(
            username=username, password=PASSWORD, email=f"{username}@example.com", **extra
        )
        for role in roles:
            # get_or_create: transactional tests flush the groups the migration made.
            user.groups.add(Group.objects.get_or_create(name=role)[0])
        return user

    return make


@pytest.fixture
def users(make_user):
    """One user per role, plus a second tester and report owner for object checks."""
    return {
        "admin": make_user("admin", Role.ADMIN, is_staff=True, is_superuser=True),
        "manager": make_user("manager", Role.TEST_MANAGER),
        "tester": make_user("tester", Role.TESTER),
        "tester2": make_user("tester2", Role.TESTER),
        "owner": make_user("owner", Role.REPORT_OWNER),
        "owner2": make_user("owner2", Role.REPORT_OWNER),
        "executive": make_user("executive", Role.DATA_EXECUTIVE),
        "data_owner": make_user("dataowner", Role.DATA_OWNER),
        "data_owner2": make_user("dataowner2", Role.DATA_OWNER),
    }


REPORT_FIELDS = [
    {"name": "account_id", "description": "Unique account identifier"},
    {"name": "customer_name", "description": "Legal name of the borrower"},
    {"name": "balance", "description": "Outstanding balance in USD"},
    {"name": "origination_date", "description": "Date the loan was originated"},
    {"name": "is_delinquent", "description": "Whether the account is 90+ days past due"},
]


@pytest.fixture
def lob(users):
    from cycles.models import LOB

    return LOB.objects.create(name="Retail Lending", code="retail", data_executive=users["executive"])


@pytest.fixture
def report(users, lob):
    from cycles.models import Report

    return Report.objects.create(
        name="FR Y-14Q Retail",
        regulation="FR Y-14Q",
        owner=users["owner"],
        lob=lob,
        frequency="quarterly",
        fields=REPORT_FIELDS,
    )


@pytest.fixture
def cycle(users):
    from cycles.models import TestCycle

    return TestCycle.objects.create(
        name="Q3 2026",
        period_start=datetime.date(2026, 7, 1),
        period_end=datetime.date(2026, 9, 30),
        test_manager=users["manager"],
    )


@pytest.fixture
def cycle_report(cycle, report, users):
    from cycles.models import CycleReport

    return CycleReport.objects.create(cycle=cycle, report=report, tester=users["tester"])


# --- scale: two data sets, 1× and 3× rows, for the query-count tests (issue 11) -----------------


def built_once_per_module(django_db_blocker, build):
    """For a module-scoped fixture: (an address where no Temporal answers, what `build()` made), made once for
    the module inside a transaction rolled back when the module is done. Each test's own transaction (the `db` fixture)
    is a savepoint within it, so what a test writes (a login, a decision, a row deleted) is undone after it
    as before; only what is outside the database (files, caches) is shared."""
    from django.db import transaction
    from django.test import override_settings

    from cycles.testing import closed_port

    address = f"127.0.0.1:{closed_port()}"
    with django_db_blocker.unblock(), override_settings(TEMPORAL_ADDRESS=address):
        outer = transaction.atomic()
        outer.__enter__()
        try:
            yield address, build()
        finally:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)


@pytest.fixture(scope="module")
def _scale_pair_of_module(django_db_setup, django_db_blocker):
    """The pair, built once for a module of query-count tests (a second a build, a hundred tests)."""
    from cycles.testing import scale_pair_build

    yield from built_once_per_module(django_db_blocker, scale_pair_build)


@pytest.fixture
def scale_pair(_scale_pair_of_module, db, settings):
    """The small and the 3× data set of cycles.testing, with Temporal pointed at a closed port."""
    address, pair = _scale_pair_of_module
    settings.TEMPORAL_ADDRESS = address
    return pair


@pytest.fixture
def storage(settings, tmp_path):
    """Media and upload temp folders of this test only (to see what an upload stored, or left behind)."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "upload-tmp")
    (tmp_path / "upload-tmp").mkdir()
    return tmp_path


CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser():
    """The headless Chromium the browser walks share (Debian's package, driven by Playwright)."""
    from pathlib import Path

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package (make test does, as root).")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs its own event loop in this thread, so Django's async-unsafe check
    # would refuse the ORM calls the tests make beside it. The variable is set only while the browser
    # runs and taken away after, so later tests (and the subprocesses they start, such as
    # `check --deploy`) never inherit it.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as p:
            launched = p.chromium.launch(
                executable_path=CHROMIUM, args=["--no-sandbox", "--disable-background-networking", "--disable-gpu"]
            )
            yield launched
            launched.close()
