"""Reassigning a data owner in a real browser (issue 7): after "Assignments complete", with the requests
out, the data executive moves one attribute of a two-attribute request to another data owner; the
workflow is told of the request split off; the new owner finds it in My work and uploads evidence.

The phases before are driven through their services (tests/test_browser_walk.py walks them in pages).
"""
from __future__ import annotations

import pytest
from django.core import mail

from cycles.models import Attribute, CycleReport, InformationRequest, Reassignment, ScopingDecision
from tests.test_browser_walk import Person
from versioning.models import Version
from workflows.services import workflow_status
from workflows.testing import wait_until as _wait_until

pytestmark = [pytest.mark.browser, pytest.mark.temporal, pytest.mark.django_db(transaction=True)]


def wait_until(predicate, *, what: str):
    return _wait_until(predicate, timeout=120, what=what)


def _to_requests(users, cycle, cycle_report, tmp_path):
    """Start the workflow and take the report to open requests: one request to dataowner for two attributes."""
    from cycles.models import PopulationFile
    from cycles.services.requests import data_owners_assign_bulk
    from cycles.services.sampling import samples_draw, sampling_plan_update
    from workflows.services import (
        workflow_complete_data_owners,
        workflow_decide_version,
        workflow_start,
        workflow_submit_version,
    )

    tester = users["tester"]
    (tmp_path / "population.csv").write_text("account_id,balance\n" + "".join(
        f"A{i:04d},{100 + i}\n" for i in range(60)))
    PopulationFile.objects.create(
        cycle_report=cycle_report, file="population.csv", original_name="population.csv", format="csv",
        size_bytes=1, sha256="0" * 64, row_count=60, columns=["account_id", "balance"], status="profiled",
        uploaded_by=tester)
    for name in ("account_id", "balance"):
        attribute = Attribute.objects.create(cycle_report=cycle_report, name=name, primary_key=name == "account_id")
        ScopingDecision.objects.create(attribute=attribute, in_scope=True, rationale="Key and CDE", decided_by=tester)
    cycle.configuration = {**cycle.configuration, "skip_phases": [
        "planning", "data_profiling", "scoping", "test_execution", "observations", "finalize"]}
    cycle.save(update_fields=["configuration"])
    workflow_start(user=users["manager"], cycle=cycle)
    fresh = lambda: CycleReport.objects.select_related("report__lob", "cycle").get(pk=cycle_report.pk)  # noqa: E731
    wait_until(lambda: hasattr(fresh(), "sampling_plan"), what="sampling plan prepared")
    wait_until(lambda: fresh().phase_states.filter(phase="data_owner_identification", status="active").exists(),
               what="data owner identification")
    sampling_plan_update(user=tester, cycle_report=fresh(), seed=7, tolerable_rate="0.25",
                         risk_of_overreliance="0.10")
    samples_draw(user=tester, cycle_report=fresh())
    submitted = workflow_submit_version(user=tester, cycle_report=fresh(), phase="sample_selection")
    workflow_decide_version(user=users["owner"], version=Version.objects.get(pk=submitted.result.version_id),
                            approve=True)
    data_owners_assign_bulk(user=users["executive"], cycle_report=fresh(), data_owner=users["data_owner"],
                            attribute_ids=list(Attribute.objects.values_list("pk", flat=True)))
    workflow_complete_data_owners(user=users["executive"], cycle_report=fresh())
    wait_until(lambda: fresh().phase_states.filter(phase="request_for_information", status="active").exists(),
               what="requests phase")
    return wait_until(lambda: InformationRequest.objects.filter(status="open").first(), what="request")


def test_the_data_executive_reassigns_and_the_new_owner_uploads_evidence(
    browser, live_server, temporal, users, cycle, cycle_report, settings, tmp_path
):
    settings.MEDIA_ROOT = str(tmp_path)
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    request = _to_requests(users, cycle, cycle_report, tmp_path)
    executive = Person(browser, live_server, "executive")
    new_owner = Person(browser, live_server, "dataowner2")
    pk = cycle_report.pk

    # The data executive reassigns balance; the request also covers account_id, so it is split.
    page = executive.open(f"/cycle-reports/{pk}/data-owners/")
    balance = Attribute.objects.get(name="balance")
    page.select_option("#id_reassign_attribute", str(balance.pk))
    page.select_option("#id_reassign_data_owner", label=str(users["data_owner2"]))
    page.click("#reassign button:has-text('Reassign')")
    assert "Say why the attribute is reassigned." in page.content()  # refused, nothing saved
    page.fill("#id_reassign_reason", "Balances moved to the finance team.")
    page.click("#reassign button:has-text('Reassign')")
    page.wait_for_selector("#reassignments")
    assert "Balances moved to the finance team." in page.inner_text("#reassignments")
    split = Reassignment.objects.get().new_request
    assert split.data_owner == users["data_owner2"] and request.attributes.get().name == "account_id"
    # The workflow chases the new request (its "request" email goes to the new owner).
    wait_until(lambda: str(split.pk) in (workflow_status(user=users["manager"],
                                                         cycle_report=CycleReport.objects.get(pk=pk)).requests),
               what="the workflow knows the split-off request")
    wait_until(lambda: any(m.to == [users["data_owner2"].email] and "Request for information" in m.subject
                           for m in mail.outbox), what="the request email to the new owner")

    # The new owner finds it in My work and uploads evidence.
    new_owner.reload_until("/my-work/", lambda p: p.locator(f"a[href='/requests/{split.pk}/']").count() >= 1,
                           "the moved request in My work")
    page = new_owner.open(f"/requests/{split.pk}/")
    ledger = tmp_path / "balances.pdf"
    ledger.write_bytes(b"%PDF-1.4\n% balances\n")
    page.set_input_files("input[type=file]", str(ledger))
    page.click("button:has-text('Upload')")
    page.wait_for_selector("text=balances.pdf")
    assert split.evidence.get().uploaded_by == users["data_owner2"]
