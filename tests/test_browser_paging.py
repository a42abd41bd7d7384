"""The pages bounded for scale, in a real browser: the Test Execution matrix a page and a sample at a time,
and the Observations page a page of observations at a time with every failed cell in each form.

Headless Debian Chromium driven by Playwright against the live server; the records are made through the
services (no Temporal: the pages read status from the database).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from cycles.models import Observation, Sample, TestResult
from cycles.services import execution as ex
from cycles.services.observations import observations_draft
from cycles.tests.test_execution import matrix  # noqa: F401  (fixture)
from cycles.tests.test_observations import build_tested_report
from tests.test_browser_walk import Person

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _shot(page, tmp_path, name: str) -> None:
    folder = Path(os.environ.get("SYNAPSE_SCREENSHOTS", tmp_path))
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def _cells(page) -> list[int]:
    return [int(row.get_attribute("id").removeprefix("cell-")) for row in page.locator("tr[id^=cell-]").all()]


def test_the_tester_works_through_the_matrix_page_by_page_and_sample_by_sample(
    browser, live_server, matrix, users, monkeypatch, tmp_path  # noqa: F811
):
    from cycles.views import execution as views

    monkeypatch.setattr(views, "CELLS_PER_PAGE", 4)
    cycle_report = matrix["cycle_report"]
    ex.test_matrix_prepare(cycle_report_id=cycle_report.pk)
    expected = list(TestResult.objects.filter(cycle_report=cycle_report)
                    .order_by("sample__row_index", "attribute__name").values_list("pk", flat=True))
    tester = Person(browser, live_server, "tester")

    page = tester.open(f"/cycle-reports/{cycle_report.pk}/test-execution/")
    seen = _cells(page)
    while page.locator("nav[aria-label='Pages of cells'] a:has-text('Next')").count():
        page.click("nav[aria-label='Pages of cells'] a:has-text('Next')")
        seen += _cells(page)
    assert seen == expected

    # One sample's cells, chosen in the filter; a cell opened from there comes back to the sample.
    s2 = Sample.objects.get(cycle_report=cycle_report, key="S-002")
    page.select_option("#filter-sample", str(s2.pk))
    page.click("form[aria-label='Filter the cells'] button")
    page.wait_for_url(re.compile(rf".*sample={s2.pk}.*"))
    ones = list(TestResult.objects.filter(sample=s2).order_by("attribute__name").values_list("pk", flat=True))
    assert _cells(page) == ones
    _shot(page, tmp_path, "test-execution-one-sample")
    page.click(f"#cell-{ones[0]} a.btn")
    page.check("input[name=outcome][value=pass]")
    page.click("button:has-text('Save the result')")
    page.wait_for_url(re.compile(rf".*sample={s2.pk}.*#cell-{ones[0]}"))
    assert "Pass" in page.inner_text(f"#cell-{ones[0]}")
    assert _cells(page) == ones


def test_the_observations_page_shows_a_page_of_observations_each_listing_every_failed_cell(
    browser, live_server, cycle_report, users, storage, monkeypatch, tmp_path
):
    from cycles.views import observations as views

    monkeypatch.setattr(views, "OBSERVATIONS_PER_PAGE", 1)
    build_tested_report(cycle_report, users)
    observations_draft(cycle_report_id=cycle_report.pk)
    numbers = list(Observation.objects.filter(cycle_report=cycle_report).order_by("number")
                   .values_list("number", flat=True))
    failed = TestResult.objects.filter(cycle_report=cycle_report, result="fail").count()
    assert len(numbers) > 1 and failed > 1
    tester = Person(browser, live_server, "tester")

    page = tester.open(f"/cycle-reports/{cycle_report.pk}/observations/")
    assert page.locator("form.observation-form").count() == 1
    assert page.locator("form.observation-form select[name$=cells] option").count() == failed
    assert page.locator("#merge-form input[name=observations]").count() == len(numbers)
    _shot(page, tmp_path, "observations-page-1")
    shown = [page.inner_text("article.observation h3")]
    while page.locator(".pagination a:has-text('Next')").count():
        page.click(".pagination a:has-text('Next')")
        shown.append(page.inner_text("article.observation h3"))
    assert [title.split(":")[0] for title in shown] == [f"OBS-{n}" for n in numbers]
