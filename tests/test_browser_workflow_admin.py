"""The workflow admin in a real browser (issue 9): an admin finds a stuck report, sees why, fixes the cause,
retries it and watches it move on; resets another report to Scoping and sees the compensation; a test
manager reads the monitoring charts. Headless Debian Chromium, the live server, the real Temporal dev server.
"""
from __future__ import annotations

import os
import re
import socket
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from cycles.models import Attribute, CycleReport, Report
from cycles.tests.test_notifications import Collector
from tests.test_browser_walk import Person
from versioning.models import Version
from workflows.services import workflow_decide_version, workflow_status, workflow_submit_version
from workflows.testing import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.temporal, pytest.mark.django_db(transaction=True)]
SHOTS = Path(os.environ.get("SCREENSHOT_DIR", "/tmp"))
ONLY = ["planning", "data_profiling", "sample_selection", "request_for_information", "test_execution"]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scoped(users, cycle_report):
    """Drive Scoping through its services to approval (the pages for it are walked in test_browser_walk)."""
    report = CycleReport.objects.get(pk=cycle_report.pk)
    wait_until(lambda: (s := workflow_status(user=users["tester"], cycle_report=report))
               and s.active.get("scoping") == "awaiting_submission", what="scoping waiting for the tester")
    workflow_submit_version(user=users["tester"], cycle_report=report, phase="scoping")
    version = Version.objects.get(cycle_report=report, phase="scoping", status="submitted")
    workflow_decide_version(user=users["owner"], version=version, approve=True)


def test_admin_repairs_a_stuck_report_resets_another_and_the_manager_reads_the_charts(
    browser, live_server, temporal, users, lob, cycle, cycle_report, settings,
):
    # The mail server is down: Data Owner Identification can't ask the data executive, beyond its retries.
    port = closed_port()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", port, 5
    settings.EMAIL_USE_TLS, settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD = False, "", ""
    second = CycleReport.objects.create(cycle=cycle, tester=users["tester"], report=Report.objects.create(
        name="FR Y-9C", regulation="FR Y-9C", owner=users["owner"], lob=lob, frequency="quarterly", fields=[]))
    for cr in (cycle_report, second):
        Attribute.objects.create(cycle_report=cr, name="account_id", primary_key=True)
        Attribute.objects.create(cycle_report=cr, name="balance", cde=True)
    cycle.configuration = {**cycle.configuration, "skip_phases": ONLY}
    cycle.save(update_fields=["configuration"])

    manager = Person(browser, live_server, "manager")
    page = manager.open(f"/cycles/{cycle.pk}/")
    page.click("#start-workflow")
    page.wait_for_selector(".messages")
    scoped(users, cycle_report)
    scoped(users, second)

    # The admin refreshes the list from Temporal and filters what waits on an admin.
    admin = Person(browser, live_server, "admin")
    stuck_id = CycleReport.objects.get(pk=cycle_report.pk).workflow_id

    def waits_on_admin(p):
        p.check("#action-toggle")
        p.select_option("select[name=action]", "refresh_live")
        p.click("button[name=index]")
        p.goto(f"{admin.base}/admin/workflows/workflowexecution/?waiting_on=Admin")
        return p.locator(f"text={stuck_id}").count() == 1

    admin.reload_until("/admin/workflows/workflowexecution/?status__exact=running", waits_on_admin,
                       "the stuck report listed as waiting on an admin")
    page = admin.page
    page.click(f"a:text-is('{stuck_id}')")
    page.wait_for_selector("#wf-retries")
    # Why: the failing step, its error and its retries.
    assert "Connection refused" in page.locator("#wf-live").inner_text()
    retries = page.locator("#wf-retries").inner_text()
    assert "data_owner_identification_notify" in retries and "1 of 3" in retries and "2 of 3" in retries
    assert "10 s" in retries
    page.screenshot(path=str(SHOTS / "h9-admin-stuck.png"), full_page=True)

    # The cause is fixed (the mail server is back); the admin retries and the report moves on.
    collector = Collector()
    smtp = Controller(collector, hostname="127.0.0.1", port=port)
    smtp.start()
    try:
        page.click("a.wf-op-retry")
        assert page.locator("textarea[name=reason][required]").count() == 1  # no reason, no retry
        page.fill("textarea[name=reason]", "Mail server restarted")
        page.click("input[type=submit]")
        page.wait_for_selector(".messagelist")
        assert "runs again from its start" in page.content()
        detail = page.url
        admin.reload_until(detail.replace(admin.base, ""), lambda p: "awaiting_data_owners" in
                           p.locator("#wf-live").inner_text(), "the report waiting on the data executive")
        assert "Data Executive" in page.locator("#wf-live").inner_text()
        assert any(users["executive"].email in m["to"] for m in collector.messages)
        page.screenshot(path=str(SHOTS / "h9-admin-retried.png"), full_page=True)

        # The other report goes back to Scoping; what it wrote is compensated and listed.
        other_id = CycleReport.objects.get(pk=second.pk).workflow_id
        admin.open(f"/admin/workflows/workflowexecution/?q={other_id}&status__exact=running")
        page.click(f"a:text-is('{other_id}')")
        page.click("a.wf-op-reset")
        page.select_option("select[name=phase]", "scoping")
        page.fill("textarea[name=reason]", "Scope to be redone after the owner's review")
        page.click("input[type=submit]")
        page.wait_for_selector(".messagelist")
        assert "Reset to the start of Scoping" in page.content()
        compensation = page.locator("#wf-compensation").inner_text()
        assert "Rollback (remove what the phase created)" in compensation and "2 scoping_decisions" in compensation
        assert "Notify the people involved" in compensation and "Admin reset the report" in compensation
        admin.reload_until(page.url.replace(admin.base, ""), lambda p: re.search(
            r"Phase scoping, state awaiting_submission", p.locator("#wf-live").inner_text()) is not None,
            "the reset report back in Scoping")
        page.screenshot(path=str(SHOTS / "h9-admin-reset.png"), full_page=True)
    finally:
        smtp.stop()

    # The test manager reads the monitoring charts of the cycle.
    page = manager.open(f"/workflows/monitoring/?cycle={cycle.pk}")
    assert page.locator("#chart-durations svg").count() == 1
    assert "scoping" in page.locator("#chart-durations").inner_text()
    assert page.locator("[role=progressbar]").count() == 1
    # Both failures were dealt with (one retried, one reset): no alert is left open.
    assert "No open alerts." in page.locator("section:has(h2:text-is('Open alerts'))").inner_text()
    page.screenshot(path=str(SHOTS / "h9-monitoring.png"), full_page=True)

    # The test manager makes the cycle recur from its page, then pauses it (issue 9, part 8).
    from playwright.sync_api import expect

    from workflows.models import CycleSchedule

    page = manager.open(f"/cycles/{cycle.pk}/")
    recurring = page.locator("#recurring")
    recurring.get_by_label("Name of the cycles").fill("Retail quarterly")
    recurring.get_by_label("Recurs").select_option("quarterly")
    recurring.get_by_role("button", name="Make it recur").click()
    expect(page.locator(".messages")).to_contain_text("Retail quarterly recurs quarterly")
    schedule = CycleSchedule.objects.get()
    try:
        expect(page.locator("#recurring")).to_contain_text("Active")
        page.locator("#recurring").get_by_role("button", name="Pause").click()
        expect(page.locator(".messages")).to_contain_text("paused: no cycle is created until it is resumed")
        expect(page.locator("#recurring")).to_contain_text("none while paused")
        page.screenshot(path=str(SHOTS / "h9-recurring.png"), full_page=True)
    finally:
        temporal.call(temporal.client.get_schedule_handle(schedule.schedule_id).delete())
