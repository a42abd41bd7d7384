"""Observations to a sealed, verified package and a completed cycle, on the real Temporal dev server,
with the real worker, activities and database, the way the pages drive it."""
from __future__ import annotations

import json

import pytest
from temporalio.client import WorkflowHistory

from cycles.models import (
    CycleReport,
    CycleReportRemoval,
    EvidencePackage,
    FinalReport,
    Observation,
    Report,
    SignOff,
    TestCycle,
)
from cycles.services.observations import observation_update
from cycles.services.package import package_verify
from cycles.tests.test_observations import build_tested_report, fill_in
from synapse.testing import problem
from versioning.models import Version, VersionStatus
from workflows.services import (
    workflow_decide_version,
    workflow_remove_report,
    workflow_sign_off,
    workflow_start,
    workflow_submit_version,
)
from workflows.temporal.contracts import FINALIZE, OBSERVATIONS, State
from workflows.testing import wait_until
from workflows.tests.test_integration import wait_state

pytestmark = [pytest.mark.temporal, pytest.mark.django_db(transaction=True)]

BEFORE_OBSERVATIONS = ["planning", "data_profiling", "scoping", "sample_selection", "data_owner_identification",
                       "request_for_information", "test_execution"]


def approve_observations(users, cycle_report):
    wait_state(users["tester"], cycle_report, State.AWAITING_SUBMISSION, OBSERVATIONS)
    outcome = workflow_submit_version(user=users["tester"], cycle_report=cycle_report, phase=OBSERVATIONS)
    assert outcome.delivered, outcome.message
    version = Version.objects.get(pk=outcome.result.version_id)
    assert workflow_decide_version(user=users["owner"], version=version, approve=True).delivered


def test_observations_sign_offs_with_a_send_back_package_and_cycle_completion(
    temporal, users, cycle, cycle_report, settings, tmp_path, lob,
):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)
    build_tested_report(cycle_report, users)
    second_report = Report.objects.create(name="FFIEC 031", regulation="Call Report", owner=users["owner"], lob=lob,
                                          frequency="quarterly", fields=[{"name": "total_assets"}])
    second = CycleReport.objects.create(cycle=cycle, report=second_report, tester=users["tester"])

    workflow_start(user=users["manager"], cycle=cycle, skip_phases=BEFORE_OBSERVATIONS)
    cycle.refresh_from_db()
    # The second report leaves the cycle with a reason; the cycle won't wait for it.
    second.refresh_from_db()
    removed = workflow_remove_report(user=users["manager"], cycle_report=second, reason="Moved to the Q4 cycle")
    assert removed.delivered, removed.message
    assert CycleReportRemoval.objects.get(cycle_report=second).reason == "Moved to the Q4 cycle"
    wait_until(lambda: CycleReport.objects.get(pk=second.pk).status == "cancelled", what="second report cancelled")

    # Observations: drafted by the activity from the failed cells, filled in by the tester, approved.
    cycle_report.refresh_from_db()
    wait_state(users["tester"], cycle_report, State.AWAITING_SUBMISSION, OBSERVATIONS)
    assert Observation.objects.filter(cycle_report=cycle_report, drafted=True).count() == 2
    for observation in Observation.objects.filter(cycle_report=cycle_report):
        fill_in(observation, users)
    approve_observations(users, cycle_report)
    wait_until(lambda: not Observation.objects.filter(cycle_report=cycle_report, status="draft").exists(),
               what="observations opened")

    # Finalize: sign-offs in order; the report owner sends it back to Observations.
    status = wait_state(users["manager"], cycle_report, State.AWAITING_TEST_MANAGER_SIGN_OFF, FINALIZE)
    assert status.waiting_on == "Test Manager"
    assert FinalReport.objects.get(cycle_report=cycle_report).pdf_sha256
    assert workflow_sign_off(user=users["manager"], cycle_report=cycle_report, role="test_manager").delivered
    back = workflow_sign_off(user=users["owner"], cycle_report=cycle_report, role="report_owner", sign=False,
                             send_back_to=OBSERVATIONS, notes="OBS-1 is critical, not medium")
    assert back.delivered and "reopens" in back.message
    wait_state(users["tester"], cycle_report, State.AWAITING_SUBMISSION, OBSERVATIONS)
    first = Observation.objects.filter(cycle_report=cycle_report).order_by("number").first()
    observation_update(user=users["tester"], observation=first, severity="critical")
    approve_observations(users, cycle_report)
    assert Version.objects.filter(cycle_report=cycle_report, phase=OBSERVATIONS,
                                  status=VersionStatus.APPROVED).count() == 2

    wait_state(users["manager"], cycle_report, State.AWAITING_TEST_MANAGER_SIGN_OFF, FINALIZE)
    latest = FinalReport.objects.filter(cycle_report=cycle_report).order_by("-number").first()
    assert latest.number == 2 and latest.data["observations"][0]["severity"] == "Critical"
    for role, name in (("test_manager", "manager"), ("report_owner", "owner"), ("data_executive", "executive")):
        outcome = workflow_sign_off(user=users[name], cycle_report=cycle_report, role=role)
        assert outcome.delivered, outcome.message

    # Sealed, packaged, and the cycle completes: one report signed off, the other removed.
    wait_until(lambda: TestCycle.objects.get(pk=cycle.pk).status == TestCycle.Status.COMPLETED,
               timeout=60, what="cycle completed")
    assert CycleReport.objects.get(pk=cycle_report.pk).status == "completed"
    assert list(SignOff.objects.filter(final_report=latest).values_list("role", flat=True)) == [
        "test_manager", "report_owner", "data_executive"]
    package = EvidencePackage.objects.get(final_report=latest)
    path = tmp_path / package.file_name
    with package.file.open("rb") as fh:
        path.write_bytes(fh.read())
    problems, checked = package_verify(path)
    assert problems == [] and checked == len(package.manifest)
    import zipfile

    with zipfile.ZipFile(path) as zf:
        history = zf.read("workflow/event_history.json").decode()
    events = json.loads(history)["events"]
    assert events[0]["eventType"] in ("EVENT_TYPE_WORKFLOW_EXECUTION_STARTED", "WorkflowExecutionStarted")
    assert WorkflowHistory.from_json(cycle_report.workflow_id, history).events


def test_the_same_steps_through_the_api_alone(temporal, users, cycle, cycle_report, settings, tmp_path, lob):
    """Start, observations, submission, approval, a send-back, three sign-offs, removal, results, package."""
    from rest_framework.test import APIClient

    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)
    build_tested_report(cycle_report, users)
    other = CycleReport.objects.create(
        cycle=cycle, tester=users["tester"],
        report=Report.objects.create(name="FR 2052a", regulation="FR 2052a", owner=users["owner"], lob=lob,
                                     frequency="daily", fields=[{"name": "outflow"}]))

    def api(name):
        client = APIClient()
        client.force_login(users[name])
        return client

    def ok(response, *codes):
        assert response.status_code in (codes or (200,)), response.content
        return response.json()

    ok(api("manager").post(f"/api/v1/workflow/start/{cycle.pk}/", {"skip_phases": BEFORE_OBSERVATIONS},
                           format="json"), 201)
    ok(api("manager").post(f"/api/v1/cycle-reports/{other.pk}/remove/", {"reason": "Not due this quarter"},
                           format="json"))

    def observations_approved():
        wait_state(users["tester"], cycle_report, State.AWAITING_SUBMISSION, OBSERVATIONS)
        for o in ok(api("tester").get(f"/api/v1/cycle-reports/{cycle_report.pk}/observations/")):
            ok(api("tester").patch(f"/api/v1/observations/{o['id']}/", {
                "impact": "Misstated balances", "root_cause": "Late postings",
                "remediation_owner": users["data_owner"].pk, "remediation_target_date": "2026-12-31"},
                format="json"))
        submitted = ok(api("tester").post(f"/api/v1/cycle-reports/{cycle_report.pk}/submit/",
                                          {"phase": OBSERVATIONS}, format="json"))
        ok(api("owner").post(f"/api/v1/versions/{submitted['version_id']}/decide/", {"approve": True},
                             format="json"))

    observations_approved()
    wait_state(users["manager"], cycle_report, State.AWAITING_TEST_MANAGER_SIGN_OFF, FINALIZE)
    sign = "/api/v1/cycle-reports/%d/sign-off/" % cycle_report.pk
    refused = api("owner").post(sign, {"role": "report_owner"}, format="json")
    assert "signs after the Test Manager" in problem(refused, 409)["detail"]
    ok(api("manager").post(sign, {"role": "test_manager"}, format="json"))
    ok(api("owner").post(sign, {"role": "report_owner", "sign": False, "send_back_to": OBSERVATIONS,
                                "notes": "Say which ledger"}, format="json"))
    observations_approved()
    wait_state(users["manager"], cycle_report, State.AWAITING_TEST_MANAGER_SIGN_OFF, FINALIZE)
    for role, name in (("test_manager", "manager"), ("report_owner", "owner"), ("data_executive", "executive")):
        ok(api(name).post(sign, {"role": role}, format="json"))

    wait_until(lambda: TestCycle.objects.get(pk=cycle.pk).status == TestCycle.Status.COMPLETED,
               timeout=60, what="cycle completed")
    reports = ok(api("executive").get(f"/api/v1/cycle-reports/{cycle_report.pk}/final-report/"))
    assert [r["status"] for r in reports] == ["signed", "sent_back"]
    results = ok(api("manager").get(f"/api/v1/cycles/{cycle.pk}/results/"))
    assert results["status"] == "completed" and results["totals"]["fail"] == 3
    by_report = {r["report"]: r for r in results["reports"]}
    assert by_report["FR 2052a"]["removed"] == "Not due this quarter"
    package = by_report[cycle_report.report.name]["package"]
    download = api("owner").get(f"/api/v1/cycle-reports/{cycle_report.pk}/package/?download=1")
    path = tmp_path / "package.zip"
    path.write_bytes(b"".join(download.streaming_content))
    assert package_verify(path) == ([], package["files"])
