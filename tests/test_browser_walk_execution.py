"""Test Execution in a real browser: the tester fills the matrix with one failed cell, the owner approves
the sample extension it calls for, the new samples come back through the reopened request, and the owner
approves the results.

The phases before Test Execution are driven through their services here (tests/test_browser_walk.py
walks them through the pages); everything from the matrix on is done in Chromium.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from cycles.models import (
    Attribute,
    CycleReport,
    InformationRequest,
    PopulationFile,
    SampleExtension,
    ScopingDecision,
    TestResult,
)
from tests.test_browser_walk import Person
from versioning.models import Version
from workflows.testing import wait_until as _wait_until

def wait_until(predicate, *, what: str):
    # Patient: the machine may be busy, and each step waits on the worker's activities.
    return _wait_until(predicate, timeout=120, what=what)


pytestmark = [pytest.mark.browser, pytest.mark.temporal, pytest.mark.django_db(transaction=True)]


def _to_test_execution(users, cycle, cycle_report, tmp_path):
    """Start the workflow and take the report through Sample Selection, data owners and evidence."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from cycles.services.requests import (
        data_owners_assign_bulk,
        evidence_review,
        evidence_upload,
        information_request_review,
        information_request_submit,
    )
    from cycles.services.sampling import samples_draw, sampling_plan_update
    from workflows.services import (
        workflow_complete_data_owners,
        workflow_decide_version,
        workflow_request_reviewed,
        workflow_request_submitted,
        workflow_start,
        workflow_submit_version,
    )

    tester, owner = users["tester"], users["owner"]
    (tmp_path / "population.csv").write_text("account_id,customer_name,balance\n" + "".join(
        f"A{i:04d},Customer {i},{100 + i}\n" for i in range(120)))
    PopulationFile.objects.create(
        cycle_report=cycle_report, file="population.csv", original_name="population.csv", format="csv",
        size_bytes=1, sha256="0" * 64, row_count=120, columns=["account_id", "customer_name", "balance"],
        status="profiled", uploaded_by=tester)
    for name, extra in [("account_id", {"primary_key": True}), ("balance", {"cde": True, "risk_score": 8})]:
        attribute = Attribute.objects.create(cycle_report=cycle_report, name=name, **extra)
        ScopingDecision.objects.create(attribute=attribute, in_scope=True, rationale="Key and CDE", decided_by=tester)
    # Observations and Finalize have a walk of their own (tests/test_browser_walk_finalize.py).
    cycle.configuration = {**cycle.configuration, "skip_phases": ["planning", "data_profiling", "scoping",
                                                                  "observations", "finalize"]}
    cycle.save(update_fields=["configuration"])
    workflow_start(user=users["manager"], cycle=cycle)

    fresh = lambda: CycleReport.objects.select_related("report__lob", "cycle").get(pk=cycle_report.pk)  # noqa: E731
    wait_until(lambda: hasattr(fresh(), "sampling_plan"), what="sampling plan prepared")
    # A 25% tolerable rate at 10% risk keeps the extension small enough to walk through (15 samples).
    sampling_plan_update(user=tester, cycle_report=fresh(), seed=7, tolerable_rate="0.25",
                         risk_of_overreliance="0.10")
    samples_draw(user=tester, cycle_report=fresh())
    submitted = workflow_submit_version(user=tester, cycle_report=fresh(), phase="sample_selection")
    workflow_decide_version(user=owner, version=Version.objects.get(pk=submitted.result.version_id), approve=True)
    wait_until(lambda: fresh().phase_states.filter(phase="data_owner_identification", status="active").exists(),
               what="data owner identification")
    data_owners_assign_bulk(user=users["executive"], cycle_report=fresh(), data_owner=users["data_owner"],
                            attribute_ids=list(Attribute.objects.values_list("pk", flat=True)))
    workflow_complete_data_owners(user=users["executive"], cycle_report=fresh())
    request = wait_until(lambda: InformationRequest.objects.filter(status="open").first(), what="request")
    wait_until(lambda: fresh().phase_states.filter(phase="request_for_information", status="active").exists(),
               what="requests phase")
    [file] = evidence_upload(user=users["data_owner"], request=request,
                             files=[SimpleUploadedFile("ledger.pdf", b"%PDF-1.4\n% ledger\n", "application/pdf")])
    information_request_submit(user=users["data_owner"], request=request)
    workflow_request_submitted(user=users["data_owner"], request=request)
    evidence_review(user=tester, evidence=file, accept=True)
    information_request_review(user=tester, request=request)
    workflow_request_reviewed(user=tester, request=request)
    wait_until(lambda: TestResult.objects.filter(cycle_report=cycle_report).count() == 4, what="matrix prepared")
    return request


def _bulk_pass(person, path):
    page = person.open(path)
    for box in page.locator("input[name=cells]").all():
        box.check()
    page.select_option("select[name=action]", "pass")
    page.click("#bulk-form button:has-text('Apply')")
    page.wait_for_selector(".messages")
    return page


def test_the_tester_fills_the_matrix_with_a_failure_and_the_owner_extends_then_approves(
    browser, live_server, temporal, users, cycle, cycle_report, settings, tmp_path
):
    settings.MEDIA_ROOT = str(tmp_path)
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    shots = Path(os.environ.get("SYNAPSE_SCREENSHOTS", tmp_path))
    request = _to_test_execution(users, cycle, cycle_report, tmp_path)
    tester = Person(browser, live_server, "tester")
    owner = Person(browser, live_server, "owner")
    data_owner = Person(browser, live_server, "dataowner")
    pk = cycle_report.pk
    matrix = f"/cycle-reports/{pk}/test-execution/"

    # The tester opens one balance cell and fails it, relying on the accepted ledger.
    tester.reload_until(matrix, lambda p: "0 of 4 cells tested" in p.content(), "the matrix")
    target = TestResult.objects.filter(attribute__name="balance").order_by("sample__row_index").first()
    page = tester.open(f"/cycle-reports/{pk}/test-execution/cells/{target.pk}/")
    page.check("input[name=outcome][value=fail]")
    page.fill("input[name=observed_value]", "999")
    page.select_option("select[name=failure_kind]", "mismatch")
    page.click("button:has-text('Save the result')")
    assert "a comment is required" in page.content()  # refused, nothing saved
    page.fill("textarea[name=comment]", "The ledger shows 999, the report a different balance.")
    page.check("input[name=evidence]")
    page.click("button:has-text('Save the result')")
    page.wait_for_url(re.compile(r".*/test-execution/.*#cell-\d+"))
    assert "Fail" in page.inner_text(f"#cell-{target.pk}")

    # The rest pass in bulk; the tester submits; the failure calls for more samples.
    page = _bulk_pass(tester, matrix + "?show=untested")
    assert "4 of 4 cells tested" in page.content()
    page = tester.open(matrix)
    page.screenshot(path=str(shots / "test-execution-matrix.png"), full_page=True)
    page.click("text=Submit for approval")
    page.wait_for_selector(".messages")
    assert "more samples" in page.inner_text(".messages")
    extension = SampleExtension.objects.get()
    assert (extension.current_size, extension.new_size) == (2, 15)

    # The owner sees the proposal and approves it.
    page = owner.open(matrix)
    assert "Extension 1 proposed" in page.content()
    page.screenshot(path=str(shots / "test-execution-extension.png"), full_page=True)
    page.check("input[name=decision][value=approve]")
    page.click("text=Record the decision")
    page.wait_for_selector(".messages")
    assert "approved" in page.inner_text(".messages")

    # The data owner answers the reopened request for the new samples; the tester accepts.
    data_owner.reload_until(f"/requests/{request.pk}/", lambda p: p.locator("input[type=file]").count() == 1,
                            "the reopened request")
    page = data_owner.page
    assert "13 without evidence yet" not in page.content()  # the first file covers the whole request
    more = tmp_path / "ledger-extension.pdf"
    more.write_bytes(b"%PDF-1.4\n% the new samples\n")
    page.set_input_files("input[type=file]", str(more))
    page.click("summary:has-text('Say what these files cover')")
    for key in extension.sample_keys[:3]:
        page.check(f"input[name=samples][value='{key}']")
    page.click("button:has-text('Upload')")
    page.wait_for_selector("text=ledger-extension.pdf")
    page.click("text=Submit evidence")
    page.wait_for_selector(".messages")
    page = tester.open(f"/requests/{request.pk}/")
    new_file = page.locator("tr:has-text('ledger-extension.pdf') form.review-form")
    new_file.locator("input[value=accept]").check()
    new_file.locator("button:has-text('Save')").click()
    page.wait_for_selector(".messages")
    page.click("text=Finish review")
    page.wait_for_selector(".messages")

    # Back in the matrix: the 13 new cells; the tester passes them and submits again; the owner approves.
    tester.reload_until(matrix, lambda p: "4 of 17 cells tested" in p.content()
                        and p.locator("text=Submit for approval").count() == 1, "the extended matrix")
    page = _bulk_pass(tester, matrix + "?show=untested")
    assert "17 of 17 cells tested" in page.content()
    page.click("text=Submit for approval")
    page.wait_for_selector(".messages")
    owner.approve_latest(cycle_report, "test_execution")
    wait_until(lambda: CycleReport.objects.get(pk=pk).status == CycleReport.Status.COMPLETED,
               what="report completed")
    page = owner.open(matrix + "?show=failed")
    assert page.locator("input[name=cells]").count() == 0  # the owner reads, doesn't edit
    assert "999" in page.content()
    page.screenshot(path=str(shots / "test-execution-approved.png"), full_page=True)
