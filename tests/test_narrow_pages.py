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
