"""The Observations and Final Test Report API: same services and checks as the pages, one error shape."""
import uuid

import pytest
from rest_framework.test import APIClient

from cycles.models import Observation, Phase, TestResult
from cycles.services.final_report import final_report_generate, sign_off_record
from cycles.services.observations import observations_draft
from cycles.services.package import package_build
from cycles.tests.test_observations import (  # noqa: F401
    approved_observations,
    build_tested_report,
    enter,
)
from cycles.tests.test_package import _history
from synapse.testing import problem
from workflows.models import WorkflowDecision

pytestmark = pytest.mark.django_db


@pytest.fixture
def api():
    def make(user):
        client = APIClient()
        client.force_login(user)
        return client

    return make


def assert_error(response, status: int, code: str | None = None) -> dict:
    return problem(response, status, code)


@pytest.fixture
def observing(cycle_report, users, storage):  # noqa: F811
    build_tested_report(cycle_report, users)
    observations_draft(cycle_report_id=cycle_report.pk)
    return cycle_report


def test_the_tester_lists_edits_merges_and_splits_through_the_api(api, observing, users):
    client = api(users["tester"])
    listed = client.get(f"/api/v1/cycle-reports/{observing.pk}/observations/").json()
    assert [o["code"] for o in listed] == ["OBS-1", "OBS-2"]
    first, second = listed
    assert {c["sample"] for c in first["cells"]} == {"S-002", "S-003"}

    patched = client.patch(f"/api/v1/observations/{first['id']}/", {"severity": "critical", "impact": "Capital"},
                           format="json")
    assert patched.status_code == 200 and patched.json()["severity"] == "critical"
    assert_error(client.patch(f"/api/v1/observations/{first['id']}/", {"severity": "urgent"}, format="json"), 400,
                 "invalid")

    merged = client.post(f"/api/v1/cycle-reports/{observing.pk}/observations/merge/",
                         {"observation_ids": [first["id"], second["id"]]}, format="json")
    assert merged.status_code == 200 and len(merged.json()["cells"]) == 3
    cell = merged.json()["cells"][0]["id"]
    split = client.post(f"/api/v1/observations/{first['id']}/split/", {"cell_ids": [cell]}, format="json")
    assert split.status_code == 201 and [c["id"] for c in split.json()["cells"]] == [cell]

    created = client.post(f"/api/v1/cycle-reports/{observing.pk}/observations/",
                          {"title": "Late posting", "severity": "low", "type": "control"}, format="json")
    assert created.status_code == 201 and created.json()["title"] == "Late posting"


def test_object_and_role_checks_match_the_pages(api, observing, users):
    observation = Observation.objects.filter(cycle_report=observing).first()
    assert_error(api(users["tester2"]).get(f"/api/v1/cycle-reports/{observing.pk}/observations/"), 404)
    assert_error(api(users["tester2"]).patch(f"/api/v1/observations/{observation.pk}/", {"title": "x"},
                                              format="json"), 404)
    assert_error(api(users["owner"]).patch(f"/api/v1/observations/{observation.pk}/", {"title": "x"},
                                           format="json"), 403, "permission_denied")
    passed = TestResult.objects.filter(cycle_report=observing, result="pass").first()
    error = assert_error(api(users["tester"]).patch(f"/api/v1/observations/{observation.pk}/",
                                                    {"cell_ids": [passed.pk]}, format="json"), 400)
    assert "only on failed cells" in error["detail"]


def test_remediation_and_sign_off_through_the_api(api, cycle_report, users, storage):  # noqa: F811
    build_tested_report(cycle_report, users)
    approved_observations(cycle_report, users)
    enter(cycle_report, Phase.FINALIZE)
    observation = Observation.objects.filter(cycle_report=cycle_report).first()
    moved = api(users["tester"]).post(f"/api/v1/observations/{observation.pk}/remediation/",
                                      {"to_status": "in_progress"}, format="json")
    assert moved.status_code == 200 and moved.json()["remediation_events"][-1]["actor"] == "tester"
    assert_error(api(users["tester"]).post(f"/api/v1/observations/{observation.pk}/remediation/",
                                           {"to_status": "closed"}, format="json"), 400)

    error = assert_error(api(users["manager"]).post(f"/api/v1/cycle-reports/{cycle_report.pk}/sign-off/",
                                                    {"role": "test_manager"}, format="json"), 409)
    assert "not been generated" in error["detail"]
    report = final_report_generate(cycle_report_id=cycle_report.pk, generation=1)
    assert_error(api(users["owner"]).post(f"/api/v1/cycle-reports/{cycle_report.pk}/sign-off/",
                                          {"role": "test_manager"}, format="json"), 403)
    error = assert_error(api(users["owner"]).post(f"/api/v1/cycle-reports/{cycle_report.pk}/sign-off/",
                                                  {"role": "report_owner"}, format="json"), 409)
    assert "signs after the Test Manager" in error["detail"]
    assert not WorkflowDecision.objects.exists()

    for role, name in (("test_manager", "manager"), ("report_owner", "owner"), ("data_executive", "executive")):
        sign_off_record(decision_id=str(uuid.uuid4()), final_report_id=report.pk, role=role,
                        user_id=users[name].pk, sign=True)
    listed = api(users["executive"]).get(f"/api/v1/cycle-reports/{cycle_report.pk}/final-report/").json()
    assert listed[0]["status"] == "signed" and [s["role"] for s in listed[0]["sign_offs"]] == [
        "test_manager", "report_owner", "data_executive"]
    assert_error(api(users["executive"]).get(f"/api/v1/cycle-reports/{cycle_report.pk}/package/"), 404)
    package_build(final_report_id=report.pk, history=_history)
    package = api(users["executive"]).get(f"/api/v1/cycle-reports/{cycle_report.pk}/package/").json()
    assert len(package["sha256"]) == 64 and package["files"] >= 10
    download = api(users["owner"]).get(f"/api/v1/cycle-reports/{cycle_report.pk}/package/?download=1")
    assert download["Content-Type"] == "application/zip"
    results = api(users["manager"]).get(f"/api/v1/cycles/{cycle_report.cycle_id}/results/").json()
    assert results["totals"]["fail"] == 3 and results["reports"][0]["package"]["sha256"] == package["sha256"]
    assert_error(api(users["tester"]).post(f"/api/v1/cycle-reports/{cycle_report.pk}/remove/",
                                           {"reason": "x"}, format="json"), 403)
