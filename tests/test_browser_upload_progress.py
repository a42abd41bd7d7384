"""Uploads in a real browser: the progress bar follows the file to the server, and without JavaScript the
plain form post gives the same result.

Headless Debian Chromium driven by Playwright against the live server; no workflow is needed (evidence is
stored by the page itself; a population file is kept and refused while no workflow runs).
"""
from __future__ import annotations

import pytest

from cycles.models import Evidence, Phase, PopulationFile
from cycles.tests.test_requests import requests_ready
from cycles.tests.test_views import in_phase
from tests.test_browser_walk import Person

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PDF_HEAD = b"%PDF-1.7\n1 0 obj <<>> endobj\n"
PDF_TAIL = b"trailer <<>>\n%%EOF\n"

# Records each change of the progress box (state and bar value), in order, through an exposed function:
# the answer's page replaces this one, so the record must leave the page as it happens.
WATCH = """
() => {
  const box = document.querySelector('.upload-progress');
  const bar = box.querySelector('progress');
  new MutationObserver(() => window.recordProgress(box.getAttribute('data-state'), bar.value))
    .observe(box, {attributes: true, subtree: true, attributeFilter: ['data-state', 'value', 'hidden']});
}
"""


def watch_progress(person: Person) -> list[tuple[str, float]]:
    seen: list[tuple[str, float]] = []
    person.page.expose_function("recordProgress", lambda state, value: seen.append((state, value)))
    person.page.evaluate(WATCH)
    return seen


def test_evidence_upload_shows_its_progress_then_the_stored_files(browser, live_server, users, cycle_report,
                                                                  storage):
    request = requests_ready(cycle_report, users)["dataowner"]
    owner = Person(browser, live_server, "dataowner")
    page = owner.open(f"/requests/{request.pk}/")
    assert page.locator(".upload-progress").is_hidden()
    statement = storage / "statement.pdf"
    statement.write_bytes(PDF_HEAD + b"%" * (4 << 20) + b"\n" + PDF_TAIL)  # 4 MB: several progress events
    seen = watch_progress(owner)

    page.set_input_files("#upload input[type=file]", str(statement))
    page.click("#upload button:has-text('Upload')")
    page.wait_for_selector("text=Uploaded statement.pdf v1")

    states = [state for state, _ in seen]
    assert states[0] == "sending" and "done" in states
    done = states.index("done")
    assert seen[done][1] == 100
    assert all(value <= 100 for _, value in seen)
    values = [value for state, value in seen[:done]]
    assert values == sorted(values)  # the bar only moves forward
    assert Evidence.objects.filter(request=request, original_name="statement.pdf").count() == 1
    # The answer's page is the request page with the file listed, and a fresh (hidden) progress box.
    assert "statement.pdf" in page.inner_text("body")
    assert page.locator(".upload-progress").is_hidden()


def test_without_javascript_the_form_posts_as_usual(browser, live_server, users, cycle_report, storage):
    request = requests_ready(cycle_report, users)["dataowner"]
    owner = Person(browser, live_server, "dataowner")
    context = browser.new_context(java_script_enabled=False, storage_state=owner.context.storage_state())
    page = context.new_page()
    page.goto(f"{live_server.url}/requests/{request.pk}/")
    statement = storage / "statement.pdf"
    statement.write_bytes(PDF_HEAD + PDF_TAIL)

    page.set_input_files("#upload input[type=file]", str(statement))
    page.click("#upload button:has-text('Upload')")
    page.wait_for_selector("text=Uploaded statement.pdf v1")

    assert page.locator(".upload-progress").is_hidden()
    assert Evidence.objects.filter(request=request, original_name="statement.pdf").count() == 1
    context.close()


def test_population_upload_shows_its_progress_then_the_pages_answer(browser, live_server, users, cycle_report,
                                                                    storage):
    in_phase(cycle_report, Phase.DATA_PROFILING)
    tester = Person(browser, live_server, "tester")
    page = tester.open(f"/cycle-reports/{cycle_report.pk}/data-profiling/")
    population = storage / "loans.csv"
    population.write_text("account_id,balance\n" + "".join(f"A{i},{i}.50\n" for i in range(100_000)))
    seen = watch_progress(tester)

    page.set_input_files("input[type=file]", str(population))
    page.click("text=Upload and profile")
    # No workflow runs in this test: the file is kept in the history, refused, and the page says why.
    page.wait_for_selector("text=loans.csv was not profiled")

    states = [state for state, _ in seen]
    assert states[0] == "sending" and "done" in states
    assert seen[states.index("done")][1] == 100
    assert PopulationFile.objects.get(cycle_report=cycle_report).original_name == "loans.csv"
