"""Observations, the three sign-offs and the package in a real browser, against the live server and the
real Temporal: the tester shapes the drafted observations, the owner approves them, the test manager,
report owner and data executive sign in turn, and the downloaded package verifies offline.

The phases before Observations are prepared through their services (the other walks cover them).
"""
from __future__ import annotations

import pytest

from cycles.models import CycleReport, EvidencePackage, Observation, TestCycle
from cycles.services.package import package_verify
from cycles.tests.test_observations import build_tested_report
from tests.test_browser_walk import Person
from workflows.testing import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.temporal, pytest.mark.django_db(transaction=True)]

BEFORE_OBSERVATIONS = ["planning", "data_profiling", "scoping", "sample_selection", "data_owner_identification",
                       "request_for_information", "test_execution"]


def _shot(page, name: str) -> None:
    import os

    folder = os.environ.get("SYNAPSE_SCREENSHOTS")
    if folder:
        page.screenshot(path=f"{folder}/{name}.png", full_page=True)


def _sign(person, pk: int, label: str):
    page = person.open(f"/cycle-reports/{pk}/final-report/")
    assert page.locator("#sign-off-form").count() == 1, f"no sign-off form for the {label}"
    assert "means:" in page.locator("#sign-off-form").inner_text()
    page.click("#sign-off-form button[type=submit]")
    page.wait_for_selector(".messages")
    return page


def test_observations_approval_three_sign_offs_and_the_package_download(
    browser, live_server, temporal, users, cycle, cycle_report, settings, tmp_path
):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)
    build_tested_report(cycle_report, users)
    cycle.configuration = {**cycle.configuration, "skip_phases": BEFORE_OBSERVATIONS}
    cycle.save(update_fields=["configuration"])
    manager = Person(browser, live_server, "manager")
    tester = Person(browser, live_server, "tester")
    owner = Person(browser, live_server, "owner")
    executive = Person(browser, live_server, "executive")
    pk = cycle_report.pk

    page = manager.open(f"/cycles/{cycle.pk}/")
    page.click("#start-workflow")
    page.wait_for_selector(".messages")

    # The drafted observations appear; the tester fills each in and submits the set.
    tester.reload_until(f"/cycle-reports/{pk}/observations/",
                        lambda p: p.locator("form.observation-form").count() == 2, "drafted observations")
    for observation in Observation.objects.filter(cycle_report=cycle_report).order_by("number"):
        page = tester.open(f"/cycle-reports/{pk}/observations/")
        prefix = f"#id_o{observation.pk}-"
        page.fill(prefix + "impact", "Balances misstated in the regulatory submission.")
        page.fill(prefix + "root_cause", "Manual adjustments not posted to the ledger.")
        page.select_option(prefix + "remediation_owner", str(users["data_owner"].pk))
        page.fill(prefix + "remediation_target_date", "2026-12-31")
        page.click(f"#observation-{observation.pk} button:has-text('Save {observation.code}')")
        page.wait_for_selector(".messages")
        assert f"{observation.code} saved." in page.content()
    _shot(page, "observations")
    page.click("text=Submit for approval")
    page.wait_for_selector(".messages")
    owner.approve_latest(cycle_report, "observations")

    # The report is generated; only the next signer gets a form, in order.
    manager.reload_until(f"/cycle-reports/{pk}/final-report/",
                         lambda p: p.locator("#sign-off-form").count() == 1, "the report to sign")
    assert owner.open(f"/cycle-reports/{pk}/final-report/").locator("#sign-off-form").count() == 0
    _shot(manager.page, "final-report-to-sign")
    _sign(manager, pk, "test manager")
    owner.reload_until(f"/cycle-reports/{pk}/final-report/",
                       lambda p: p.locator("#sign-off-form").count() == 1, "the owner's turn")
    _sign(owner, pk, "report owner")
    executive.reload_until(f"/cycle-reports/{pk}/final-report/",
                           lambda p: p.locator("#sign-off-form").count() == 1, "the executive's turn")
    _sign(executive, pk, "data executive")

    # Sealed and packaged; the cycle completes; the package downloads and verifies offline.
    wait_until(lambda: EvidencePackage.objects.filter(final_report__cycle_report=cycle_report).exists(),
               timeout=60, what="package built")
    wait_until(lambda: TestCycle.objects.get(pk=cycle.pk).status == "completed", timeout=60, what="cycle completed")
    assert CycleReport.objects.get(pk=pk).status == "completed"
    page = manager.open(f"/cycle-reports/{pk}/final-report/")
    assert page.locator("#sign-offs td:has-text('not signed')").count() == 0
    _shot(page, "final-report-signed")
    with page.expect_download() as download:
        page.click("#download-package")
    path = tmp_path / "package.zip"
    download.value.save_as(path)
    problems, checked = package_verify(path)
    assert problems == [] and checked > 10
    page = manager.open(f"/cycles/{cycle.pk}/")
    assert page.locator("#cycle-results a:has-text('evidence-package-')").count() == 1
    _shot(page, "cycle-results")
