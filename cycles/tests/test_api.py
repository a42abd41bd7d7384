"""The cycles API: each endpoint for a role allowed and a role refused, auth, and the error shape."""
import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from cycles.models import LOB, Attribute, CycleReport, Phase, Report, ScopingDecision, TestCycle
from synapse.models import AuditEvent
from synapse.testing import problem

pytestmark = pytest.mark.django_db


@pytest.fixture
def api():
    """api(user) -> a client logged in with a session (None: anonymous)."""

    def make(user=None):
        client = APIClient()
        if user is not None:
            client.force_login(user)
        return client

    return make


def assert_error(response, status: int, code: str | None = None) -> dict:
    return problem(response, status, code)


def ids(response) -> list[int]:
    return [row["id"] for row in response.json()["results"]]


@pytest.fixture
def planning(cycle_report):
    CycleReport.objects.filter(pk=cycle_report.pk).update(phase=Phase.PLANNING, status=CycleReport.Status.IN_PROGRESS)
    cycle_report.refresh_from_db()
    return cycle_report


@pytest.fixture
def attribute(planning):
    return Attribute.objects.create(cycle_report=planning, name="account_id", primary_key=True, risk_score=8)


# --- authentication -----------------------------------------------------------


def test_anonymous_gets_401_in_the_error_shape(cycle_report):
    response = APIClient().get("/api/v1/cycle-reports/")
    assert_error(response, 401, "not_authenticated")


@pytest.mark.parametrize("keyword", ["Token", "Bearer"])
def test_token_auth_accepts_token_and_bearer(keyword, users, cycle_report):
    token = Token.objects.create(user=users["tester"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"{keyword} {token.key}")
    response = client.get("/api/v1/cycle-reports/")
    assert response.status_code == 200
    assert ids(response) == [cycle_report.pk]


def test_a_wrong_token_is_401(users):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer not-a-real-token")
    assert_error(client.get("/api/v1/cycles/"), 401, "authentication_failed")


# --- LOBs and reports -------------------------------------------------------------


def test_lobs_are_read_by_all_and_created_by_an_admin(api, users, lob):
    tester = api(users["tester"])
    assert ids(tester.get("/api/v1/lobs/")) == [lob.pk]
    body = {"name": "Cards", "code": "cards", "data_executive": users["executive"].pk}
    assert_error(tester.post("/api/v1/lobs/", body, format="json"), 403, "permission_denied")
    assert not LOB.objects.filter(code="cards").exists()

    response = api(users["admin"]).post("/api/v1/lobs/", body, format="json")
    assert response.status_code == 201
    assert response.json()["data_executive"]["username"] == "executive"
    created = LOB.objects.get(code="cards")
    assert AuditEvent.objects.for_object(created).filter(action="lob.create").exists()


def test_an_lob_needs_a_data_executive(api, users):
    body = {"name": "Cards", "code": "cards", "data_executive": users["tester"].pk}
    error = assert_error(api(users["admin"]).post("/api/v1/lobs/", body, format="json"), 400)
    assert "not a Data Executive" in error["detail"]
    assert not LOB.objects.filter(code="cards").exists()


def test_reports_are_scoped_to_the_user(api, users, report, cycle_report):
    assert ids(api(users["owner"]).get("/api/v1/reports/")) == [report.pk]
    assert ids(api(users["tester"]).get("/api/v1/reports/")) == [report.pk]
    assert ids(api(users["owner2"]).get("/api/v1/reports/")) == []
    assert ids(api(users["data_owner"]).get("/api/v1/reports/")) == []
    assert_error(api(users["owner2"]).get(f"/api/v1/reports/{report.pk}/"), 404, "not_found")


def test_a_test_manager_creates_a_report_and_a_tester_cannot(api, users, lob):
    body = {
        "name": "FFIEC 031", "regulation": "FFIEC 031", "owner": users["owner"].pk, "lob": lob.pk,
        "frequency": "quarterly", "fields": [{"name": "rcon2170", "description": "Total assets"}],
    }
    assert_error(api(users["tester"]).post("/api/v1/reports/", body, format="json"), 403)
    response = api(users["manager"]).post("/api/v1/reports/", body, format="json")
    assert response.status_code == 201
    assert response.json()["owner"]["username"] == "owner"
    assert Report.objects.get(name="FFIEC 031").fields == [{"name": "rcon2170", "description": "Total assets"}]


def test_report_validation_errors_are_400_with_details_and_save_nothing(api, users, lob):
    body = {"name": "FFIEC 031", "regulation": "", "owner": 999999, "lob": lob.pk, "fields": [{"description": "x"}]}
    error = assert_error(api(users["manager"]).post("/api/v1/reports/", body, format="json"), 400, "invalid")
    assert set(error["errors"]) == {"regulation", "owner", "fields.0.name"}
    assert not Report.objects.filter(name="FFIEC 031").exists()

    duplicate = {**body, "regulation": "FFIEC 031", "owner": users["owner"].pk,
                 "fields": [{"name": "a"}, {"name": "a"}]}
    error = assert_error(api(users["manager"]).post("/api/v1/reports/", duplicate, format="json"), 400)
    assert "unique" in error["detail"]
    assert not Report.objects.filter(name="FFIEC 031").exists()


# --- cycles ---------------------------------------------------------------------------


def test_cycles_are_scoped_to_the_user(api, users, cycle, cycle_report):
    assert ids(api(users["manager"]).get("/api/v1/cycles/")) == [cycle.pk]
    assert ids(api(users["tester"]).get("/api/v1/cycles/")) == [cycle.pk]
    assert ids(api(users["owner"]).get("/api/v1/cycles/")) == [cycle.pk]
    assert ids(api(users["data_owner"]).get("/api/v1/cycles/")) == []
    assert ids(api(users["tester2"]).get("/api/v1/cycles/")) == []
    assert_error(api(users["tester2"]).get(f"/api/v1/cycles/{cycle.pk}/"), 404)
    detail = api(users["tester"]).get(f"/api/v1/cycles/{cycle.pk}/").json()
    assert detail["report_count"] == 1
    assert detail["test_manager"]["username"] == "manager"


def test_a_test_manager_creates_a_cycle(api, users):
    body = {"name": "Q4 2026", "period_start": "2026-10-01", "period_end": "2026-12-31",
            "configuration": {"skip_phases": ["data_profiling"]}}
    response = api(users["manager"]).post("/api/v1/cycles/", body, format="json")
    assert response.status_code == 201, response.content
    cycle = TestCycle.objects.get(name="Q4 2026")
    assert cycle.test_manager == users["manager"]
    assert cycle.configuration["skip_phases"] == ["data_profiling"]
    assert response.json()["report_count"] == 0

    assert_error(api(users["tester"]).post("/api/v1/cycles/", {**body, "name": "Other"}, format="json"), 403)
    assert not TestCycle.objects.filter(name="Other").exists()


def test_cycle_validation_is_400_and_saves_nothing(api, users):
    backwards = {"name": "Backwards", "period_start": "2026-10-01", "period_end": "2026-09-30"}
    error = assert_error(api(users["manager"]).post("/api/v1/cycles/", backwards, format="json"), 400, "invalid")
    assert "period_end" in error["errors"]
    unknown_phase = {"name": "Unknown", "period_start": "2026-10-01", "period_end": "2026-12-31",
                     "configuration": {"skip_phases": ["lunch"]}}
    error = assert_error(api(users["manager"]).post("/api/v1/cycles/", unknown_phase, format="json"), 400)
    assert "lunch" in error["detail"]
    assert not TestCycle.objects.exists()


def test_configuration_changes_only_by_the_manager_and_only_in_draft(api, users, cycle, cycle_report):
    url = f"/api/v1/cycles/{cycle.pk}/"
    body = {"configuration": {"rfi_due_days": 5}}
    assert_error(api(users["tester"]).patch(url, body, format="json"), 403)
    response = api(users["manager"]).patch(url, body, format="json")
    assert response.status_code == 200
    assert response.json()["configuration"]["rfi_due_days"] == 5

    TestCycle.objects.filter(pk=cycle.pk).update(status=TestCycle.Status.RUNNING)
    assert_error(api(users["manager"]).patch(url, {"configuration": {"rfi_due_days": 7}}, format="json"), 409,
                 "conflict")
    cycle.refresh_from_db()
    assert cycle.configuration["rfi_due_days"] == 5


def test_adding_a_report_to_a_cycle(api, users, cycle, cycle_report, lob):
    other = Report.objects.create(name="CCAR", regulation="CCAR", owner=users["owner2"], lob=lob)
    url = f"/api/v1/cycles/{cycle.pk}/reports/"
    body = {"report": other.pk, "tester": users["tester2"].pk}

    assert_error(api(users["tester"]).post(url, body, format="json"), 403)
    assert_error(api(users["data_owner"]).post(url, body, format="json"), 404)
    response = api(users["manager"]).post(url, body, format="json")
    assert response.status_code == 201
    assert response.json()["tester"]["username"] == "tester2"
    assert CycleReport.objects.filter(cycle=cycle, report=other, tester=users["tester2"]).exists()

    error = assert_error(api(users["manager"]).post(url, body, format="json"), 409, "conflict")
    assert "already" in error["detail"]
    error = assert_error(api(users["manager"]).post(url, {"report": 999999}, format="json"), 400, "invalid")
    assert "report" in error["errors"]

    # The tester sees only their own report of the cycle.
    listed = api(users["tester"]).get(url).json()
    assert [row["id"] for row in listed["results"]] == [cycle_report.pk]  # paginated, like every list


# --- cycle reports ---------------------------------------------------------------------


def test_cycle_reports_are_scoped_and_foreign_ones_are_404(api, users, cycle_report):
    response = api(users["tester"]).get(f"/api/v1/cycle-reports/{cycle_report.pk}/")
    assert response.status_code == 200
    body = response.json()
    assert (body["phase"], body["status"], body["tester"]["username"]) == ("", "not_started", "tester")
    assert_error(api(users["tester2"]).get(f"/api/v1/cycle-reports/{cycle_report.pk}/"), 404, "not_found")
    assert ids(api(users["tester2"]).get("/api/v1/cycle-reports/")) == []
    assert ids(api(users["executive"]).get("/api/v1/cycle-reports/")) == [cycle_report.pk]
    assert ids(api(users["data_owner"]).get("/api/v1/cycle-reports/")) == []


def test_cycle_report_filters(api, users, cycle_report):
    manager = api(users["manager"])
    assert ids(manager.get("/api/v1/cycle-reports/", {"status": "not_started"})) == [cycle_report.pk]
    assert ids(manager.get("/api/v1/cycle-reports/", {"phase": "planning"})) == []
    error = assert_error(manager.get("/api/v1/cycle-reports/", {"phase": "lunch", "cycle": "x"}), 400)
    assert set(error["errors"]) == {"phase", "cycle"}


def test_assigning_the_tester(api, users, cycle_report):
    url = f"/api/v1/cycle-reports/{cycle_report.pk}/"
    assert_error(api(users["tester"]).patch(url, {"tester": users["tester2"].pk}, format="json"), 403)
    error = assert_error(api(users["manager"]).patch(url, {"tester": users["owner"].pk}, format="json"), 400)
    assert "not a Tester" in error["detail"]
    response = api(users["manager"]).patch(url, {"tester": users["tester2"].pk}, format="json")
    assert response.status_code == 200
    assert response.json()["tester"]["username"] == "tester2"
    cycle_report.refresh_from_db()
    assert cycle_report.tester == users["tester2"]


# --- attributes -----------------------------------------------------------------------


def test_the_tester_adds_an_attribute_in_planning(api, users, planning):
    url = f"/api/v1/cycle-reports/{planning.pk}/attributes/"
    body = {"name": "balance", "data_type": "decimal", "mandatory": True, "risk_score": 6}
    assert_error(api(users["owner"]).post(url, body, format="json"), 403, "permission_denied")
    assert_error(api(users["tester2"]).post(url, body, format="json"), 404)
    response = api(users["tester"]).post(url, body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["source"] == "manual"
    assert response.json()["risk_level"] == "medium"

    listed = api(users["owner"]).get(url).json()["results"]
    assert [row["name"] for row in listed] == ["balance"]
    error = assert_error(api(users["tester"]).post(url, body, format="json"), 409)
    assert "already has an attribute" in error["detail"]


def test_attribute_validation_is_400_with_details_and_saves_nothing(api, users, planning):
    url = f"/api/v1/cycle-reports/{planning.pk}/attributes/"
    error = assert_error(
        api(users["tester"]).post(url, {"name": "", "risk_score": 11, "data_type": "blob"}, format="json"), 400
    )
    assert set(error["errors"]) == {"name", "risk_score", "data_type"}
    # Someone who may not edit is refused whatever the body holds.
    assert_error(api(users["owner"]).post(url, {"risk_score": 11}, format="json"), 403)
    assert not Attribute.objects.exists()


def test_attributes_are_locked_outside_planning(api, users, cycle_report):
    url = f"/api/v1/cycle-reports/{cycle_report.pk}/attributes/"
    error = assert_error(api(users["tester"]).post(url, {"name": "balance"}, format="json"), 409, "phase_locked")
    assert "Planning" in error["detail"]


def test_changing_and_removing_an_attribute(api, users, attribute):
    url = f"/api/v1/attributes/{attribute.pk}/"
    assert api(users["owner"]).get(url).json()["name"] == "account_id"
    assert_error(api(users["tester2"]).get(url), 404)
    assert_error(api(users["owner"]).patch(url, {"risk_score": 2}, format="json"), 403)

    response = api(users["tester"]).patch(url, {"risk_score": 2, "description": "Account key"}, format="json")
    assert response.status_code == 200
    attribute.refresh_from_db()
    assert (attribute.risk_score, attribute.description) == (2, "Account key")

    assert_error(api(users["tester"]).put(url, {"risk_score": 3}, format="json"), 400)  # PUT needs the name
    assert api(users["tester"]).delete(url).status_code == 204
    assert not Attribute.objects.filter(pk=attribute.pk).exists()


# --- scoping and submission ---------------------------------------------------------------


def test_scoping_decisions(api, users, attribute):
    cycle_report = attribute.cycle_report
    CycleReport.objects.filter(pk=cycle_report.pk).update(phase=Phase.SCOPING)
    url = f"/api/v1/cycle-reports/{cycle_report.pk}/scoping/"
    out = {"attribute_id": attribute.pk, "in_scope": False, "rationale": ""}

    assert_error(api(users["owner"]).post(url, {**out, "rationale": "Low risk."}, format="json"), 403)
    error = assert_error(api(users["tester"]).post(url, out, format="json"), 400)
    assert "out of scope" in error["detail"]
    assert not ScopingDecision.objects.exists()

    response = api(users["tester"]).post(url, {**out, "in_scope": True, "rationale": "Primary key."}, format="json")
    assert response.status_code == 200
    assert response.json()["in_scope"] is True
    listed = api(users["owner"]).get(url).json()["results"]
    assert [(row["attribute_name"], row["decided_by"]["username"]) for row in listed] == [("account_id", "tester")]
    assert_error(api(users["tester2"]).get(url), 404)


def test_scoping_an_attribute_of_another_report_is_400(api, users, attribute, cycle, lob):
    other_report = Report.objects.create(name="CCAR", regulation="CCAR", owner=users["owner"], lob=lob)
    other = CycleReport.objects.create(cycle=cycle, report=other_report, tester=users["tester"], phase=Phase.SCOPING)
    body = {"attribute_id": attribute.pk, "in_scope": True, "rationale": ""}
    error = assert_error(api(users["tester"]).post(f"/api/v1/cycle-reports/{other.pk}/scoping/", body,
                                                   format="json"), 400)
    assert "attribute_id" in error["errors"]


def test_submitting_is_for_the_assigned_tester(api, users, planning):
    url = f"/api/v1/cycle-reports/{planning.pk}/submit/"
    assert_error(api(users["owner"]).post(url, {"phase": "planning"}, format="json"), 403)
    assert_error(api(users["tester2"]).post(url, {"phase": "planning"}, format="json"), 404)
    error = assert_error(api(users["tester"]).post(url, {"phase": "lunch"}, format="json"), 400)
    assert "phase" in error["errors"]
    # No workflow runs for this report yet: a clear conflict, not a stored decision.
    error = assert_error(api(users["tester"]).post(url, {"phase": "planning"}, format="json"), 409)
    assert "not been started" in error["detail"]


def test_malformed_json_is_400_in_the_error_shape(api, users, cycle):
    response = api(users["manager"]).post(
        "/api/v1/cycles/", data="{not json", content_type="application/json"
    )
    assert_error(response, 400, "parse_error")

