"""The versioning API: versions with items and diffs, the owner's decision, approvals."""
import pytest
from rest_framework.test import APIClient

from cycles.models import CycleReport, Phase
from versioning.models import Approval, VersionStatus
from versioning.services import version_create, version_decide
from workflows.models import WorkflowDecision
from synapse.testing import problem

pytestmark = pytest.mark.django_db


def client_for(user):
    client = APIClient()
    client.force_login(user)
    return client


def assert_error(response, status: int, code: str | None = None) -> dict:
    return problem(response, status, code)


def ids(response) -> list[int]:
    return [row["id"] for row in response.json()["results"]]


@pytest.fixture
def versions(users, cycle_report):
    """Planning v1 (sent back by the owner) and v2 (submitted): balance changed, customer_name removed, cde added."""
    v1 = version_create(
        cycle_report=cycle_report, phase=Phase.PLANNING, author=users["tester"],
        items=[("account_id", {"risk_score": 8}), ("balance", {"risk_score": 4}), ("customer_name", {"risk_score": 2})],
    )
    version_decide(version=v1, user=users["owner"], approve=False, notes="Balance is riskier than that.")
    v2 = version_create(
        cycle_report=cycle_report, phase=Phase.PLANNING, author=users["tester"],
        items=[("account_id", {"risk_score": 8}), ("balance", {"risk_score": 7}), ("cde", {"risk_score": 9})],
    )
    return v1, v2


def test_versions_are_listed_for_those_who_see_the_report(users, versions):
    v1, v2 = versions
    assert ids(client_for(users["owner"]).get("/api/v1/versions/")) == [v2.pk, v1.pk]
    assert ids(client_for(users["tester"]).get("/api/v1/versions/", {"phase": "planning"})) == [v2.pk, v1.pk]
    assert ids(client_for(users["tester"]).get("/api/v1/versions/", {"phase": "scoping"})) == []
    assert ids(client_for(users["tester"]).get("/api/v1/versions/", {"status": "submitted"})) == [v2.pk]
    assert ids(client_for(users["tester2"]).get("/api/v1/versions/")) == []
    assert ids(client_for(users["data_owner"]).get("/api/v1/versions/")) == []


def test_filtering_versions_by_cycle_report(users, versions, cycle_report):
    owner = client_for(users["owner"])
    assert len(ids(owner.get("/api/v1/versions/", {"cycle_report": cycle_report.pk}))) == 2
    assert ids(owner.get("/api/v1/versions/", {"cycle_report": cycle_report.pk + 1000})) == []
    error = assert_error(owner.get("/api/v1/versions/", {"cycle_report": "abc"}), 400, "invalid")
    assert "cycle_report" in error["errors"]


def test_a_version_comes_with_its_items(users, versions):
    v1, v2 = versions
    body = client_for(users["tester"]).get(f"/api/v1/versions/{v1.pk}/").json()
    assert [item["key"] for item in body["items"]] == ["account_id", "balance", "customer_name"]
    assert body["status"] == VersionStatus.CHANGES_REQUESTED
    assert body["approval"]["decision"] == Approval.Decision.CHANGES_REQUESTED
    assert body["approval"]["decided_by"]["username"] == "owner"
    assert client_for(users["tester"]).get(f"/api/v1/versions/{v2.pk}/").json()["approval"] is None
    assert_error(client_for(users["tester2"]).get(f"/api/v1/versions/{v1.pk}/"), 404, "not_found")


def test_the_diff_to_the_previous_version(users, versions):
    v1, v2 = versions
    diff = client_for(users["owner"]).get(f"/api/v1/versions/{v2.pk}/diff/").json()
    assert (diff["old"], diff["new"]) == (v1.pk, v2.pk)
    assert [item["key"] for item in diff["added"]] == ["cde"]
    assert [item["key"] for item in diff["removed"]] == ["customer_name"]
    assert diff["changed"] == [{"key": "balance", "fields": {"risk_score": {"old": 4, "new": 7}}}]
    assert diff["unchanged"] == 1

    first = client_for(users["owner"]).get(f"/api/v1/versions/{v1.pk}/diff/").json()
    assert first["old"] is None
    assert len(first["added"]) == 3
    assert_error(client_for(users["owner2"]).get(f"/api/v1/versions/{v2.pk}/diff/"), 404)


def test_deciding_is_for_the_report_owner(users, versions):
    _, v2 = versions
    url = f"/api/v1/versions/{v2.pk}/decide/"
    assert_error(client_for(users["tester"]).post(url, {"approve": True}, format="json"), 403, "permission_denied")
    assert_error(client_for(users["owner2"]).post(url, {"approve": True}, format="json"), 404)
    assert_error(client_for(users["data_owner"]).post(url, {"approve": True}, format="json"), 404)
    error = assert_error(client_for(users["owner"]).post(url, {"notes": "ok"}, format="json"), 400, "invalid")
    assert "approve" in error["errors"]
    error = assert_error(client_for(users["owner"]).post(url, {"approve": False}, format="json"), 400)
    assert "notes are required" in error["detail"]
    # The report's workflow never started: nothing to deliver to, so a conflict and nothing stored.
    error = assert_error(client_for(users["owner"]).post(url, {"approve": True}, format="json"), 409, "conflict")
    assert "not been started" in error["detail"]
    assert not WorkflowDecision.objects.exists()


def test_a_decision_is_stored_for_later_when_temporal_is_unreachable(users, versions, cycle_report, settings):
    settings.TEMPORAL_ADDRESS = "127.0.0.1:1"
    settings.TEMPORAL_RPC_TIMEOUT = 2
    CycleReport.objects.filter(pk=cycle_report.pk).update(workflow_id="cycle-1-report-1")
    _, v2 = versions

    response = client_for(users["owner"]).post(
        f"/api/v1/versions/{v2.pk}/decide/", {"approve": True, "notes": "Fine."}, format="json"
    )
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["delivered"] is False
    assert "saved" in body["message"]
    decision = WorkflowDecision.objects.get(pk=body["decision_id"])
    assert (decision.status, decision.payload["version_id"]) == (WorkflowDecision.Status.PENDING, v2.pk)


def test_approvals_are_scoped_to_visible_reports(users, versions):
    v1, _ = versions
    rows = client_for(users["tester"]).get("/api/v1/approvals/").json()["results"]
    assert [(row["version"], row["decision"], row["phase"]) for row in rows] == [
        (v1.pk, "changes_requested", "planning")
    ]
    assert ids(client_for(users["tester"]).get("/api/v1/approvals/", {"decision": "approved"})) == []
    assert ids(client_for(users["tester2"]).get("/api/v1/approvals/")) == []
    assert ids(client_for(users["data_owner"]).get("/api/v1/approvals/")) == []
