"""A whole cycle driven through the API alone, with the real Temporal dev server, worker and database:
from creating the LOB and the report to every Request for Information accepted (the last step that exists),
each person with their own API token."""
from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from workflows.testing import wait_until

pytestmark = [pytest.mark.temporal, pytest.mark.django_db(transaction=True)]

FIELDS = [{"name": "account_id", "description": "Unique account identifier"},
          {"name": "balance", "description": "Outstanding balance in USD"},
          {"name": "origination_date", "description": "Date the loan was originated"}]


def population_csv(rows: int = 60) -> bytes:
    lines = ["account_id,balance,origination_date"]
    lines += [f"A{i:04d},{1000 + i * 7.5:.2f},2024-0{1 + i % 9}-1{i % 10}" for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def token_client(user) -> APIClient:
    """The person makes a named token through the API, then uses only that."""
    session = APIClient()
    session.force_login(user)
    created = session.post("/api/v1/tokens/", {"name": "integration"}, format="json")
    assert created.status_code == 201, created.content
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {created.json()['key']}")
    assert client.get("/api/v1/me/").json()["username"] == user.username
    return client


def ok(response, status: int = 200) -> dict:
    assert response.status_code == status, (response.status_code, response.content[:2000])
    return response.json()


def test_a_cycle_driven_through_the_api_alone(temporal, users, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    admin, manager, tester, owner, executive, data_owner = (
        token_client(users[n]) for n in ("admin", "manager", "tester", "owner", "executive", "data_owner"))

    def user_id(client, role: str, username: str) -> int:
        rows = ok(client.get("/api/v1/users/", {"role": role}))["results"]
        return next(u["id"] for u in rows if u["username"] == username)

    # Set-up: the LOB, the report, the cycle, its report and tester.
    lob = ok(admin.post("/api/v1/lobs/", {
        "name": "Cards", "code": "cards", "data_executive": user_id(admin, "Data Executive", "executive"),
    }, format="json"), 201)
    report = ok(manager.post("/api/v1/reports/", {
        "name": "Card balances", "regulation": "FR Y-14M", "lob": lob["id"], "frequency": "monthly",
        "owner": user_id(manager, "Report Owner", "owner"), "fields": FIELDS,
    }, format="json"), 201)
    cycle = ok(manager.post("/api/v1/cycles/", {
        "name": "2026-Q3", "period_start": "2026-07-01", "period_end": "2026-09-30",
        "configuration": {"rfi_due_days": 10, "slas": {"planning": 5}},
    }, format="json"), 201)
    cycle_report = ok(manager.post(f"/api/v1/cycles/{cycle['id']}/reports/", {
        "report": report["id"], "tester": user_id(manager, "Tester", "tester"),
    }, format="json"), 201)
    cr = cycle_report["id"]
    ok(manager.post(f"/api/v1/workflow/start/{cycle['id']}/", {}, format="json"), 201)

    def live():
        body = ok(tester.get(f"/api/v1/workflow/status/{cycle['id']}/"))
        return body["reports"][0]["live"] or {}

    def wait_for(phase: str, state: str):
        return wait_until(lambda: (s := live()).get("active", {}).get(phase) == state and s,
                          what=f"{phase} {state}")

    def submit_and_approve(phase: str):
        submitted = ok(tester.post(f"/api/v1/cycle-reports/{cr}/submit/", {"phase": phase}, format="json"))
        assert submitted["delivered"], submitted
        decided = ok(owner.post(f"/api/v1/versions/{submitted['version_id']}/decide/", {"approve": True},
                                format="json"))
        assert decided["delivered"], decided
        return submitted["version_id"]

    # Planning: the offline provider drafts the attributes; the tester marks balance a CDE.
    wait_for("planning", "awaiting_submission")
    attributes = ok(tester.get("/api/v1/attributes/", {"cycle_report": cr}))["results"]
    assert sorted(a["name"] for a in attributes) == ["account_id", "balance", "origination_date"]
    balance = next(a for a in attributes if a["name"] == "balance")
    ok(tester.patch(f"/api/v1/attributes/{balance['id']}/", {"cde": True, "risk_score": 9}, format="json"))
    submit_and_approve("planning")

    # Data Profiling: upload the population; the workflow profiles it.
    wait_for("data_profiling", "awaiting_upload")
    uploaded = ok(tester.post(f"/api/v1/cycle-reports/{cr}/population-files/", {
        "file": SimpleUploadedFile("population.csv", population_csv(), content_type="text/csv"),
    }, format="multipart"), 201)
    assert uploaded["workflow"]["delivered"], uploaded
    profiles = ok(owner.get(f"/api/v1/population-files/{uploaded['file']['id']}/profiles/"))
    assert profiles["count"] == 3

    # Scoping: the recommendations stand; every attribute in scope.
    wait_for("scoping", "awaiting_submission")
    for attribute in attributes:
        ok(tester.post(f"/api/v1/cycle-reports/{cr}/scoping/", {
            "attribute_id": attribute["id"], "in_scope": True, "rationale": "Tested every cycle",
        }, format="json"))
    submit_and_approve("scoping")

    # Sample Selection and Data Owner Identification, in parallel.
    wait_for("sample_selection", "awaiting_submission")
    phases = {p["phase"]: p["status"] for p in ok(tester.get(f"/api/v1/cycle-reports/{cr}/phases/"))}
    assert phases["sample_selection"] == phases["data_owner_identification"] == "active"
    assert phases["planning"] == phases["data_profiling"] == phases["scoping"] == "completed"
    wait_until(lambda: tester.get(f"/api/v1/cycle-reports/{cr}/sampling-plan/").status_code == 200,
               what="sampling plan")
    drawn = ok(tester.post(f"/api/v1/cycle-reports/{cr}/samples/draw/"))
    assert drawn["samples"] and drawn["plan"]["seed"] is not None
    version_id = submit_and_approve("sample_selection")
    assert ok(owner.get(f"/api/v1/versions/{version_id}/"))["status"] == "approved"

    wait_for("data_owner_identification", "awaiting_data_owners")
    rows = ok(executive.get(f"/api/v1/cycle-reports/{cr}/data-owners/"))["results"]
    assigned = ok(executive.post(f"/api/v1/cycle-reports/{cr}/data-owners/bulk/", {
        "data_owner_id": user_id(executive, "Data Owner", "dataowner"),
        "attribute_ids": [row["attribute_id"] for row in rows],
    }, format="json"))
    assert assigned["missing"] == [] and assigned["workflow"]["delivered"], assigned

    # Requests for Information: the data owner answers, the tester accepts.
    requests = wait_until(lambda: ok(data_owner.get("/api/v1/requests/"))["results"], what="request sent")
    request_id = requests[0]["id"]
    ok(data_owner.post(f"/api/v1/requests/{request_id}/evidence/", {
        "files": [SimpleUploadedFile("ledger.csv", b"account_id,balance\nA0001,1007.50\n")],
    }, format="multipart"), 201)
    submitted = ok(data_owner.post(f"/api/v1/requests/{request_id}/submit/"))
    assert submitted["status"] == "submitted" and submitted["workflow"]["delivered"], submitted
    for evidence in ok(tester.get(f"/api/v1/requests/{request_id}/"))["evidence"]:
        ok(tester.post(f"/api/v1/evidence/{evidence['id']}/review/", {"accept": True}, format="json"))
    reviewed = ok(tester.post(f"/api/v1/requests/{request_id}/review/"))
    assert reviewed["status"] == "accepted" and reviewed["workflow"]["delivered"], reviewed

    wait_until(lambda: {p["phase"]: p["status"] for p in ok(tester.get(f"/api/v1/cycle-reports/{cr}/phases/"))}
               .get("request_for_information") == "completed", what="Requests for Information completed")
    assert ok(manager.get(f"/api/v1/cycle-reports/{cr}/"))["phase"] in ("request_for_information", "test_execution")
