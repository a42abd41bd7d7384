"""The workflow API: start, status, cancel, and decisions through a real Temporal dev server."""
import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from cycles.models import CycleReport, Phase, TestCycle
from versioning.models import Version, VersionStatus
from workflows.testing import wait_until
from synapse.testing import problem


def client_for(user):
    client = APIClient()
    client.force_login(user)
    return client


def assert_error(response, status: int, code: str | None = None) -> dict:
    return problem(response, status, code)


@pytest.mark.temporal
def test_start_twice_then_follow_the_report_through_planning(temporal, users, cycle, cycle_report):
    token = Token.objects.create(user=users["manager"])
    manager = APIClient()
    manager.credentials(HTTP_AUTHORIZATION=f"Bearer {token.key}")
    # Seed 001's call, as written: no trailing slash.
    url = f"/api/v1/workflow/start/{cycle.pk}"
    body = {"report_ids": [cycle_report.report_id], "skip_phases": []}

    response = manager.post(url, body, format="json")
    assert response.status_code == 201, response.content
    started = response.json()
    assert started["workflow_id"] == f"cycle-{cycle.pk}"
    assert started["report_workflow_ids"] == {
        str(cycle_report.pk): f"cycle-{cycle.pk}-report-{cycle_report.report_id}"
    }

    error = assert_error(manager.post(url, body, format="json"), 409, "conflict")
    assert "already" in error["detail"]

    status_url = f"/api/v1/workflow/status/{cycle.pk}/"

    def report_status(user, *, state):
        rows = client_for(user).get(status_url).json()["reports"]
        live = rows[0]["live"]
        return rows[0] if live and live["state"] == state else None

    row = wait_until(lambda: report_status(users["tester"], state="awaiting_submission"),
                     what="the report to wait for the tester's Planning submission")
    assert (row["phase"], row["status"], row["live_error"]) == ("planning", "in_progress", None)
    assert row["live"]["waiting_on"] == "Tester"

    submit = client_for(users["tester"]).post(
        f"/api/v1/cycle-reports/{cycle_report.pk}/submit/", {"phase": "planning", "notes": "First draft."},
        format="json",
    )
    assert submit.status_code == 200, submit.content
    assert submit.json()["delivered"] is True
    version = Version.objects.get(pk=submit.json()["version_id"])
    assert version.status == VersionStatus.SUBMITTED

    wait_until(lambda: report_status(users["owner"], state="awaiting_decision"), what="the owner's turn")
    decide = client_for(users["owner"]).post(
        f"/api/v1/versions/{version.pk}/decide/", {"approve": True, "notes": "Agreed."}, format="json"
    )
    assert decide.status_code == 200, decide.content
    assert decide.json()["delivered"] is True
    wait_until(
        lambda: CycleReport.objects.get(pk=cycle_report.pk).phase == Phase.DATA_PROFILING,
        what="the report to move on to Data Profiling",
    )
    version.refresh_from_db()
    assert version.status == VersionStatus.APPROVED


@pytest.mark.django_db
def test_start_is_503_with_a_body_when_temporal_is_unreachable(settings, users, cycle, cycle_report):
    settings.TEMPORAL_ADDRESS = "127.0.0.1:1"
    settings.TEMPORAL_RPC_TIMEOUT = 2
    response = client_for(users["manager"]).post(f"/api/v1/workflow/start/{cycle.pk}/", {}, format="json")
    error = assert_error(response, 503, "service_unavailable")
    assert "can't be reached" in error["detail"]
    cycle.refresh_from_db()
    assert (cycle.status, cycle.workflow_id) == (TestCycle.Status.DRAFT, "")


@pytest.mark.django_db
def test_start_is_refused_to_others_and_validated(users, cycle, cycle_report):
    url = f"/api/v1/workflow/start/{cycle.pk}/"
    assert_error(client_for(users["tester"]).post(url, {}, format="json"), 403, "permission_denied")
    assert_error(client_for(users["data_owner"]).post(url, {}, format="json"), 404, "not_found")
    assert_error(APIClient().post(url, {}, format="json"), 401)

    manager = client_for(users["manager"])
    error = assert_error(manager.post(url, {"skip_phases": ["lunch"], "report_ids": "x"}, format="json"), 400,
                         "invalid")
    assert set(error["errors"]) == {"skip_phases.0", "report_ids"}
    error = assert_error(manager.post(url, {"report_ids": [999999]}, format="json"), 400)
    assert "999999" in error["detail"]
    cycle.refresh_from_db()
    assert cycle.status == TestCycle.Status.DRAFT


@pytest.mark.django_db
def test_status_answers_from_the_database_when_temporal_is_unreachable(settings, users, cycle, cycle_report, lob):
    settings.TEMPORAL_ADDRESS = "127.0.0.1:1"
    settings.TEMPORAL_RPC_TIMEOUT = 2
    CycleReport.objects.filter(pk=cycle_report.pk).update(
        workflow_id=f"cycle-{cycle.pk}-report-{cycle_report.report_id}", phase=Phase.PLANNING,
        status=CycleReport.Status.IN_PROGRESS,
    )
    TestCycle.objects.filter(pk=cycle.pk).update(status=TestCycle.Status.RUNNING, workflow_id=f"cycle-{cycle.pk}")

    response = client_for(users["tester"]).get(f"/api/v1/workflow/status/{cycle.pk}")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["workflow_id"]) == ("running", f"cycle-{cycle.pk}")
    [row] = body["reports"]
    assert (row["phase"], row["status"], row["live"]) == ("planning", "in_progress", None)
    assert "can't be reached" in row["live_error"]

    assert_error(client_for(users["tester2"]).get(f"/api/v1/workflow/status/{cycle.pk}"), 404)
    assert_error(client_for(users["data_owner"]).get(f"/api/v1/workflow/status/{cycle.pk}"), 404)


@pytest.mark.django_db
def test_cancel_needs_a_started_workflow_and_the_manager(users, cycle, cycle_report):
    url = f"/api/v1/workflow/cancel/{cycle.pk}/"
    assert_error(client_for(users["tester"]).post(url, {}, format="json"), 403)
    error = assert_error(client_for(users["manager"]).post(url, {"reason": "Wrong period."}, format="json"), 409)
    assert "never started" in error["detail"]
