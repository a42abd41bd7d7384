"""A report's row lock: writers that take it wait for one another; rows that refer to the report don't."""
from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest
from django.db import connection, connections, transaction

from cycles.models import CycleReport
from workflows.models import WorkflowDecision

ROOT = Path(__file__).resolve().parents[2]


def test_every_lock_of_a_report_row_is_a_no_key_lock():
    """FOR UPDATE on the report also held up every INSERT of a row referring to it (its foreign key check takes
    FOR KEY SHARE): a person's decision waited for the worker's activity on the same report to commit."""
    plain = []
    for path in (p for app in ("synapse", "cycles", "versioning", "workflows") for p in (ROOT / app).rglob("*.py")):
        if "tests" in path.parts:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"CycleReport\.objects\.select_for_update\((?!no_key=True)", line):
                plain.append(f"{path.relative_to(ROOT)}:{number}")
    assert plain == []


@pytest.mark.django_db(transaction=True)
def test_a_decision_is_stored_while_a_service_holds_its_report(users, cycle_report):
    if connection.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's (SQLite locks the whole database for a writer)")
    locked, release = threading.Event(), threading.Event()

    def hold():
        with transaction.atomic():
            CycleReport.objects.select_for_update(no_key=True).get(pk=cycle_report.pk)
            locked.set()
            release.wait(10)
        connections.close_all()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(10)
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '1s'")  # a wait for the lock would fail here
            WorkflowDecision.objects.create(workflow_id="w-1", update_name="submit_version", payload={},
                                            requested_by=users["tester"], cycle_report=cycle_report)
    finally:
        release.set()
        holder.join()
    assert WorkflowDecision.objects.filter(cycle_report=cycle_report).count() == 1
