"""Every role in a real browser: a report from "Start workflow" to scoped, through the pages only.

Headless Debian Chromium driven by Playwright, against the live server, with the
real Temporal dev server and worker behind it.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from conftest import PASSWORD
from cycles.models import CycleReport
from versioning.models import Version
from workflows.models import WorkflowExecution
from workflows.testing import wait_until

pytestmark = [
    pytest.mark.browser,
    pytest.mark.temporal,
    pytest.mark.django_db(transaction=True),
]

AFTER_SCOPING = ["sample_selection", "data_owner_identification", "request_for_information", "test_execution",
                 "observations", "finalize"]


class Person:
    """A logged-in role with its own browser context (its own session cookie)."""

    def __init__(self, browser, live_server, username: str):
        self.base = live_server.url
        self.context = browser.new_context()
        self.page = self.context.new_page()
        self.page.set_default_timeout(30_000)
        self.page.goto(f"{self.base}/login/")
        self.page.fill("input[name=username]", username)
        self.page.fill("input[name=password]", PASSWORD)
        self.page.click("button[type=submit]")
        self.page.wait_for_url(re.compile(r".*/my-work/"))

    def open(self, path: str):
        self.page.goto(f"{self.base}{path}")
        return self.page

    def reload_until(self, path: str, predicate, what: str):
        def ready():
            self.open(path)
            return predicate(self.page)

        wait_until(ready, timeout=30, interval=0.5, what=what)

    def approve_latest(self, cycle_report, phase: str):
        version = Version.objects.get(cycle_report=cycle_report, phase=phase, status="submitted")
        page = self.open("/my-work/")
        page.click(f"a[href='/versions/{version.pk}/']")
        page.check("input[name=decision][value=approve]")
        page.click("text=Send decision")
        page.wait_for_selector(".messages, .alert")
        assert "approved" in page.content().lower()


def test_report_from_start_to_scoped_through_the_pages(
    browser, live_server, temporal, users, cycle, cycle_report, tmp_path
):
    cycle.configuration = {**cycle.configuration, "skip_phases": AFTER_SCOPING}
    cycle.save(update_fields=["configuration"])
    manager = Person(browser, live_server, "manager")
    tester = Person(browser, live_server, "tester")
    owner = Person(browser, live_server, "owner")
    pk = cycle_report.pk

    # The tester sees no Start button; the manager starts the cycle.
    assert tester.open(f"/cycles/{cycle.pk}/").locator("#start-workflow").count() == 0
    page = manager.open(f"/cycles/{cycle.pk}/")
    page.click("#start-workflow")
    page.wait_for_selector(".messages")
    assert "started" in page.content().lower()

    # Planning: the drafted attributes appear; the tester submits; the owner approves.
    # (Waiting for the button too: the full suite once saw the attributes without it, and no run alone has.)
    tester.reload_until(f"/cycle-reports/{pk}/planning/",
                        lambda p: p.locator("td:has-text('account_id')").count() >= 1
                        and p.locator("text=Submit for approval").count() == 1, "drafted attributes")
    tester.page.click("text=Submit for approval")
    tester.page.wait_for_selector(".messages")
    owner.approve_latest(cycle_report, "planning")

    # Data Profiling: the wrong report's file is flagged before anything else.
    wrong = tmp_path / "corporate_exposures.csv"
    wrong.write_text("facility,segment,exposure\n" + "".join(f"F{i},corporate,{i * 10}\n" for i in range(50)))
    tester.reload_until(f"/cycle-reports/{pk}/data-profiling/",
                        lambda p: p.locator("input[type=file]").count() == 1, "upload form")
    tester.page.set_input_files("input[type=file]", str(wrong))
    tester.page.click("text=Upload and profile")
    tester.page.wait_for_selector("text=Profiled 50 rows")
    assert "Only 0 of the report's 5 attributes match a column" in tester.page.inner_text("#wrong-file")
    assert "Submit for approval" not in tester.page.content() or "isn't finished" not in tester.page.content()

    # The right file replaces it; its key repeats a value and leaves one blank.
    population = tmp_path / "population.csv"
    population.write_text("account_id,customer_name,balance,origination_date,is_delinquent\n" + "".join(
        f"{'A0005' if i == 6 else '' if i == 9 else f'A{i:04d}'},Customer {i},{100 + i}.50,"
        f"2024-02-{1 + i % 28:02d},false\n" for i in range(300)))
    tester.page.set_input_files("input[type=file]", str(population))
    tester.page.click("text=Replace with a new file")
    tester.page.wait_for_selector("text=Profiled 300 rows")
    assert tester.page.locator("#wrong-file").count() == 0
    key_box = tester.page.inner_text("#key")
    assert "The primary key account_id has 1 repeated value and 1 blank" in key_box
    files = tester.page.inner_text("text=Files of this report >> xpath=..")
    assert "corporate_exposures.csv" in files and "population.csv" in files

    # Fix the key: customer_name names each row once.
    tester.page.select_option("#key select[name=key_column]", "customer_name")
    tester.page.click("text=Resolve the key")
    tester.page.wait_for_selector("text=Rows are named by customer_name")
    # Confirm the columns matched by name, look at the rules, and submit them for approval.
    tester.page.click("#mapping button:has-text('Confirm the 5 matches by name')")
    tester.page.wait_for_selector("text=5 columns confirmed")
    assert tester.page.locator("#rules td:has-text('account_id')").count() >= 1
    shots = Path(os.environ.get("SYNAPSE_SCREENSHOTS", tmp_path))
    tester.page.screenshot(path=str(shots / "data-profiling.png"), full_page=True)
    tester.page.click("text=Submit for approval")
    tester.page.wait_for_selector("text=Version 1 submitted")
    owner.approve_latest(cycle_report, "data_profiling")

    # Scoping: recommendations are there; submit; the owner approves.
    tester.reload_until(f"/cycle-reports/{pk}/scoping/",
                        lambda p: p.locator("text=Submit for approval").count() == 1, "scoping form")
    tester.page.click("text=Submit for approval")
    tester.page.wait_for_selector(".messages")
    owner.approve_latest(cycle_report, "scoping")

    wait_until(lambda: WorkflowExecution.objects.filter(
        workflow_id=cycle_report.cycle.cycle_reports.get().workflow_id or "-", status="completed").exists(),
        what="report workflow completed")
    assert CycleReport.objects.get(pk=pk).status == CycleReport.Status.SCOPED
    page = manager.open(f"/cycles/{cycle.pk}/")
    assert "Scoped" in page.inner_text("table")
    page.screenshot(path=str(shots / "cycle-scoped.png"), full_page=True)


def test_from_approved_scoping_to_evidence_accepted_through_the_pages(
    browser, live_server, temporal, users, cycle, cycle_report, settings, tmp_path
):
    """Sample Selection ‖ Data Owner Identification, then a Request for Information answered with evidence."""
    from cycles.models import Attribute, InformationRequest, PopulationFile, ScopingDecision

    settings.MEDIA_ROOT = str(tmp_path)
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    # Planning, Profiling and Scoping were done (the first walk shows them through the pages).
    (tmp_path / "population.csv").write_text("account_id,customer_name,balance\n" + "".join(
        f"A{i:04d},Customer {i},{100 + i}\n" for i in range(120)))
    PopulationFile.objects.create(
        cycle_report=cycle_report, file="population.csv", original_name="population.csv", format="csv",
        size_bytes=1, sha256="0" * 64, row_count=120, columns=["account_id", "customer_name", "balance"],
        status="profiled", uploaded_by=users["tester"])
    for name, extra in [("account_id", {"primary_key": True}), ("balance", {"cde": True, "risk_score": 8})]:
        attribute = Attribute.objects.create(cycle_report=cycle_report, name=name, **extra)
        ScopingDecision.objects.create(attribute=attribute, in_scope=True, rationale="Key and CDE",
                                       decided_by=users["tester"])
    cycle.configuration = {**cycle.configuration, "skip_phases": ["planning", "data_profiling", "scoping"]}
    cycle.save(update_fields=["configuration"])
    manager = Person(browser, live_server, "manager")
    tester = Person(browser, live_server, "tester")
    owner = Person(browser, live_server, "owner")
    executive = Person(browser, live_server, "executive")
    data_owner = Person(browser, live_server, "dataowner")
    pk = cycle_report.pk

    manager.open(f"/cycles/{cycle.pk}/").click("#start-workflow")
    manager.page.wait_for_selector(".messages")

    # Both parallel phases show on the cycle page.
    manager.reload_until(f"/cycles/{cycle.pk}/", lambda p: "Data Owner Identification" in p.inner_text("table")
                         and "Sample Selection" in p.inner_text("table"), "both parallel phases shown")

    # The tester draws the samples and submits them; the owner approves the set.
    tester.reload_until(f"/cycle-reports/{pk}/sample-selection/",
                        lambda p: p.locator("text=Draw samples").count() == 1, "sample selection page")
    tester.page.click("text=Draw samples")
    tester.page.wait_for_selector("text=Submit for approval")
    tester.page.click("text=Submit for approval")
    tester.page.wait_for_selector(".messages")
    owner.approve_latest(cycle_report, "sample_selection")

    # The data executive assigns one data owner to both attributes at once.
    page = executive.open(f"/cycle-reports/{pk}/data-owners/")
    for box in page.locator("input[name=attributes]").all():
        box.check()
    page.select_option("#bulk-form select[name=data_owner]", label=str(users["data_owner"]))
    page.click("text=Assign to the ticked attributes")
    page.wait_for_selector("text=confirm with")
    # Nothing goes out until the data executive confirms the assignments.
    assert not InformationRequest.objects.filter(cycle_report=cycle_report).exists()
    page.click("button:has-text('Assignments complete')")
    page.wait_for_selector(".messages")

    # The data owner finds the request on their own page and answers it.
    data_owner.reload_until("/requests/", lambda p: p.locator("a[href^='/requests/']").count() >= 1,
                            "the data owner's request")
    request = InformationRequest.objects.get(data_owner=users["data_owner"])
    page = data_owner.open(f"/requests/{request.pk}/")
    ledger = tmp_path / "ledger.csv"
    ledger.write_text("account_id,balance\nA0001,101\n")
    statement = tmp_path / "statement.pdf"
    statement.write_bytes(b"%PDF-1.4\n% evidence\n")
    page.set_input_files("input[type=file]", [str(ledger), str(statement)])
    page.click("button:has-text('Upload')")
    page.wait_for_selector("text=statement.pdf")
    page.click("text=Submit evidence")
    page.wait_for_selector(".messages")

    # The tester accepts each file and finishes the review.
    page = tester.open(f"/requests/{request.pk}/")
    files = page.locator("form.review-form").count()
    assert files == 2
    for i in range(files):
        form = page.locator("form.review-form").nth(i)
        form.locator("input[value=accept]").check()
        form.locator("button:has-text('Save')").click()
        page.wait_for_selector(".messages")
    page.click("text=Finish review")
    page.wait_for_selector(".messages")

    wait_until(lambda: CycleReport.objects.get(pk=pk).phase == "test_execution"
               and CycleReport.objects.get(pk=pk).status == CycleReport.Status.IN_PROGRESS,
               what="report in test execution")
    request.refresh_from_db()
    assert request.status == InformationRequest.Status.ACCEPTED
    assert request.evidence.filter(status="accepted").count() == 2
    page = manager.open(f"/cycles/{cycle.pk}/")
    assert "Test Execution" in page.inner_text("table")
    shots = Path(os.environ.get("SYNAPSE_SCREENSHOTS", tmp_path))
    page.screenshot(path=str(shots / "cycle-awaiting-test-execution.png"), full_page=True)
