"""Pages stay usable on a 390 px wide phone: nothing wider than the screen."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from test_browser_walk import Person

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_cycle_and_phase_pages_fit_390_px(browser, live_server, users, cycle, cycle_report, tmp_path):
    manager = Person(browser, live_server, "manager")
    manager.page.set_viewport_size({"width": 390, "height": 844})
    shots = Path(os.environ.get("SYNAPSE_SCREENSHOTS", tmp_path))
    for path, name in ((f"/cycles/{cycle.pk}/", "cycle"), (f"/cycle-reports/{cycle_report.pk}/data-profiling/", "profiling"),
                       (f"/cycle-reports/{cycle_report.pk}/scoping/", "scoping")):
        page = manager.open(path)
        page.screenshot(path=str(shots / f"narrow-{name}.png"), full_page=True)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{path} is {width} px wide at 390 px"


def test_the_reassign_forms_fit_390_px(browser, live_server, users, cycle, cycle_report, settings, tmp_path):
    """Issue 7: the data executive's Reassign form and history, the test manager's Reassign a tester."""
    from cycles.models import CycleReport, Phase, PhaseState, TestCycle
    from cycles.services.reassignments import data_owner_reassign
    from cycles.tests.test_requests import requests_ready

    settings.MEDIA_ROOT = str(tmp_path)
    requests_ready(cycle_report, users)
    PhaseState.objects.filter(cycle_report=cycle_report, phase=Phase.DATA_OWNER_IDENTIFICATION).update(
        status=PhaseState.Status.COMPLETED)
    PhaseState.objects.create(cycle_report=cycle_report, phase=Phase.REQUEST_FOR_INFORMATION)
    TestCycle.objects.filter(pk=cycle.pk).update(status=TestCycle.Status.RUNNING)
    CycleReport.objects.filter(pk=cycle_report.pk).update(phase=Phase.REQUEST_FOR_INFORMATION, status="in_progress")
    data_owner_reassign(user=users["executive"], attribute=cycle_report.attributes.get(name="balance"),
                        data_owner=users["data_owner2"], reason="A long reason " * 12)
    shots = Path(os.environ.get("SYNAPSE_SCREENSHOTS", tmp_path))
    for username, path, name, marker in (
        ("executive", f"/cycle-reports/{cycle_report.pk}/data-owners/", "reassign-data-owner", "#reassign"),
        ("manager", f"/cycles/{cycle.pk}/", "reassign-tester", "#reassign-tester"),
    ):
        person = Person(browser, live_server, username)
        person.page.set_viewport_size({"width": 390, "height": 844})
        page = person.open(path)
        assert page.locator(marker).count() == 1
        page.screenshot(path=str(shots / f"narrow-{name}.png"), full_page=True)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{path} is {width} px wide at 390 px"
