"""The API of Sample Selection, Data Owner Identification, Requests for Information and evidence.

Each endpoint for a role allowed and a role refused, the error shape, uploads,
downloads, and what the body says when the workflow can't be told.
"""
import datetime as dt
import hashlib
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from cycles.models import (
    Attribute,
    CycleReport,
    DataOwnerAssignment,
    Evidence,
    InformationRequest,
    Phase,
    PhaseState,
    PopulationFile,
    Report,
    Sample,
    SamplingPlan,
    ScopingDecision,
)
from cycles.services.requests import (
    data_owner_assign,
    evidence_review,
    evidence_upload,
    information_request_submit,
    information_requests_create,
)
from cycles.services.sampling import sampling_plan_prepare
from synapse.models import AuditEvent
from versioning.models import VersionItem
from versioning.services import version_create, version_decide
from workflows.models import WorkflowDecision
from synapse.testing import problem

pytestmark = pytest.mark.django_db

DUE = dt.date(2026, 9, 15)
PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
ROWS = 60
CSV_TEXT = "account_id,customer_name,balance,region\n" + "".join(
    f"A{i:04d},Customer {i},{(i * 7919) % 10_000}.00,{'NSE'[i % 3]}\n" for i in range(ROWS)
)
NO_WORKFLOW = "The cycle's workflow has not been started for this report."


# --- helpers -----------------------------------------------------------------------------------------


@pytest.fixture
def api():
    """api(user) -> a client logged in with a session."""

    def make(user):
        client = APIClient()
        client.force_login(user)
        return client

    return make


def assert_error(response, status: int, code: str | None = None) -> dict:
    return problem(response, status, code)


def upload(name, content):
    return SimpleUploadedFile(name, content, content_type="application/octet-stream")


def stored_files(media: Path) -> list[Path]:
    return sorted(p for p in media.rglob("*") if p.is_file()) if media.exists() else []


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "upload-tmp")
    (tmp_path / "upload-tmp").mkdir()
    return tmp_path / "media"


@pytest.fixture
def attributes(cycle_report, users):
    """account_id (primary key), balance and customer_name in scope; notes out of scope."""
    made = {}
    for name in ("account_id", "balance", "customer_name", "notes"):
        attribute = Attribute.objects.create(
            cycle_report=cycle_report, name=name, primary_key=name == "account_id",
            risk_score=8 if name == "balance" else 4,
        )
        ScopingDecision.objects.create(attribute=attribute, in_scope=name != "notes", rationale="r",
                                       decided_by=users["tester"])
        made[name] = attribute
    return made


@pytest.fixture
def parallel(cycle_report, attributes):
    """Sample Selection and Data Owner Identification both running, as the workflow leaves them."""
    CycleReport.objects.filter(pk=cycle_report.pk).update(
        phase=Phase.SAMPLE_SELECTION, status=CycleReport.Status.IN_PROGRESS
    )
    for phase in (Phase.SAMPLE_SELECTION, Phase.DATA_OWNER_IDENTIFICATION):
        PhaseState.objects.create(cycle_report=cycle_report, phase=phase, status=PhaseState.Status.ACTIVE)
    cycle_report.refresh_from_db()
    return cycle_report


@pytest.fixture
def population(media, parallel, users):
    path = media / "populations" / "loans.csv"
    path.parent.mkdir(parents=True)
    path.write_text(CSV_TEXT, encoding="utf-8")
    return PopulationFile.objects.create(
        cycle_report=parallel, file="populations/loans.csv", original_name="loans.csv",
        format=PopulationFile.Format.CSV, size_bytes=path.stat().st_size,
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(), row_count=ROWS,
        columns=["account_id", "customer_name", "balance", "region"], status=PopulationFile.Status.PROFILED,
        uploaded_by=users["tester"],
    )


@pytest.fixture
def plan(population, parallel):
    # What the workflow's activity does when Sample Selection starts.
    return sampling_plan_prepare(cycle_report_id=parallel.pk)


def assign_all(cycle_report, attributes, users):
    """account_id and balance to data_owner, customer_name to data_owner2."""
    executive = users["executive"]
    for name, owner in (("account_id", "data_owner"), ("balance", "data_owner"), ("customer_name", "data_owner2")):
        data_owner_assign(user=executive, attribute=attributes[name], data_owner=users[owner])


@pytest.fixture
def requests(parallel, attributes, users, media):
    """Requests of both data owners, after the report owner approved three samples: {username: request}."""
    assign_all(parallel, attributes, users)
    version = version_create(cycle_report=parallel, phase=Phase.SAMPLE_SELECTION, author=users["tester"],
                             items=[(key, {"row_index": i}) for i, key in enumerate(["A0001", "A0002", "A0003"])])
    version_decide(version=version, user=users["owner"], approve=True)
    return {r.data_owner.username: r for r in information_requests_create(cycle_report_id=parallel.pk, due_date=DUE)}


@pytest.fixture
def submitted(requests, users):
    """data_owner's request, submitted with report.pdf and scan.png."""
    request = requests["dataowner"]
    evidence_upload(user=users["data_owner"], request=request,
                    files=[upload("report.pdf", PDF), upload("scan.png", PNG)])
    return information_request_submit(user=users["data_owner"], request=request)


# --- Sample Selection ----------------------------------------------------------------------------


def test_the_sampling_plan_is_read_by_the_reports_people_and_changed_by_its_tester(api, users, plan):
    url = f"/api/v1/cycle-reports/{plan.cycle_report_id}/sampling-plan/"
    body = api(users["owner"]).get(url).json()
    assert body["computed_size"] == plan.computed_size > 0
    assert body["sample_size"] == plan.computed_size
    assert body["explanation"] == plan.size_explanation
    assert body["population_file_name"] == "loans.csv"
    assert_error(api(users["owner2"]).get(url), 404, "not_found")
    assert_error(api(users["data_owner"]).get(url), 404, "not_found")

    assert_error(api(users["owner"]).patch(url, {"risk": "low"}, format="json"), 403, "permission_denied")

    response = api(users["tester"]).patch(url, {"method": "stratified", "stratify_by": "REGION", "seed": 7},
                                          format="json")
    assert response.status_code == 200, response.content
    assert (response.json()["method"], response.json()["stratify_by"], response.json()["seed"]) == (
        "stratified", "region", 7,
    )
    assert SamplingPlan.objects.get(pk=plan.pk).stratify_by == "region"


def test_an_override_without_a_reason_is_400_with_the_services_message(api, users, plan):
    url = f"/api/v1/cycle-reports/{plan.cycle_report_id}/sampling-plan/"
    tester = api(users["tester"])

    error = assert_error(tester.patch(url, {"override_size": 9}, format="json"), 400, "invalid")
    assert error["detail"] == "Say why the sample size is overridden."
    assert SamplingPlan.objects.get(pk=plan.pk).override_size is None

    response = tester.patch(url, {"override_size": 9, "override_reason": "Audit asked for nine."}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["sample_size"] == 9
    assert response.json()["computed_size"] == plan.computed_size
    assert "Audit asked for nine." in response.json()["explanation"]
    assert AuditEvent.objects.for_object(plan).filter(action="sampling.override_size").exists()


def test_plan_fields_are_type_checked_and_unknown_ones_refused(api, users, plan):
    url = f"/api/v1/cycle-reports/{plan.cycle_report_id}/sampling-plan/"
    error = assert_error(
        api(users["tester"]).patch(url, {"method": "lottery", "computed_size": 1, "tolerable_rate": "x"},
                                   format="json"),
        400, "invalid",
    )
    assert set(error["errors"]) == {"method", "computed_size", "tolerable_rate"}
    error = assert_error(api(users["tester"]).patch(url, {"stratify_by": "postcode"}, format="json"), 400)
    assert "not a column of loans.csv" in error["detail"]


def test_there_is_no_plan_before_sample_selection_starts(api, users, cycle_report):
    error = assert_error(api(users["tester"]).get(f"/api/v1/cycle-reports/{cycle_report.pk}/sampling-plan/"), 404)
    assert "no sampling plan yet" in error["detail"]


def test_the_tester_draws_picks_and_removes_samples(api, users, plan):
    base = f"/api/v1/cycle-reports/{plan.cycle_report_id}/samples/"
    tester = api(users["tester"])
    assert_error(api(users["owner"]).post(f"{base}draw/"), 403, "permission_denied")
    assert not Sample.objects.exists()

    response = tester.post(f"{base}draw/")
    assert response.status_code == 200, response.content
    drawn = response.json()["samples"]
    assert len(drawn) == plan.computed_size
    assert response.json()["plan"]["seed"] == SamplingPlan.objects.get(pk=plan.pk).seed is not None
    assert {s["key"] for s in drawn} == set(Sample.objects.values_list("key", flat=True))

    free_key = next(f"A{i:04d}" for i in range(ROWS) if f"A{i:04d}" not in {s["key"] for s in drawn})
    assert_error(api(users["owner"]).post(base, {"key": free_key, "reason": "x"}, format="json"), 403)
    response = tester.post(base, {"key": free_key, "reason": "Largest exposure."}, format="json")
    assert response.status_code == 201, response.content
    assert (response.json()["method"], response.json()["reason"]) == ("manual", "Largest exposure.")
    error = assert_error(tester.post(base, {"key": "Z9999", "reason": "x"}, format="json"), 400, "invalid")
    assert "Z9999" in error["detail"]
    assert_error(tester.post(base, {"key": free_key, "reason": "again"}, format="json"), 409, "conflict")
    error = assert_error(tester.post(base, {"reason": "no key"}, format="json"), 400, "invalid")
    assert set(error["errors"]) == {"key"}

    listed = api(users["owner"]).get(base).json()
    assert listed["count"] == plan.computed_size + 1
    assert_error(api(users["data_owner"]).get(base), 404)

    sample = Sample.objects.get(key=free_key)
    assert_error(api(users["owner"]).delete(f"/api/v1/samples/{sample.pk}/"), 403, "permission_denied")
    assert_error(api(users["tester2"]).delete(f"/api/v1/samples/{sample.pk}/"), 404, "not_found")
    assert tester.delete(f"/api/v1/samples/{sample.pk}/").status_code == 204
    assert not Sample.objects.filter(pk=sample.pk).exists()


def test_samples_are_locked_once_sample_selection_is_over(api, users, plan):
    PhaseState.objects.filter(cycle_report_id=plan.cycle_report_id, phase=Phase.SAMPLE_SELECTION).update(
        status=PhaseState.Status.COMPLETED
    )
    url = f"/api/v1/cycle-reports/{plan.cycle_report_id}/samples/draw/"
    assert_error(api(users["tester"]).post(url), 409, "phase_locked")
    assert not Sample.objects.exists()


# --- per-sample decisions -------------------------------------------------------------------------


@pytest.fixture
def sample_version(parallel, users):
    return version_create(cycle_report=parallel, phase=Phase.SAMPLE_SELECTION, author=users["tester"],
                          items=[("A0001", {"row_index": 1}), ("A0002", {"row_index": 2})])


def test_the_report_owner_decides_each_sample_of_a_submitted_version(api, users, sample_version):
    item = sample_version.items.get(key="A0002")
    url = f"/api/v1/versions/{sample_version.pk}/items/{item.pk}/decide/"

    assert_error(api(users["tester"]).post(url, {"approve": True}, format="json"), 403, "permission_denied")
    assert_error(api(users["owner2"]).post(url, {"approve": True}, format="json"), 404, "not_found")
    error = assert_error(api(users["owner"]).post(url, {"approve": False}, format="json"), 400, "invalid")
    assert "A0002" in error["detail"]
    assert VersionItem.objects.get(pk=item.pk).decision == VersionItem.Decision.PENDING

    response = api(users["owner"]).post(url, {"approve": False, "note": "Outside the period."}, format="json")
    assert response.status_code == 200, response.content
    assert (response.json()["decision"], response.json()["decision_note"]) == ("rejected", "Outside the period.")
    assert response.json()["decided_by"]["username"] == "owner"

    other = sample_version.items.get(key="A0001")
    assert_error(api(users["owner"]).post(f"/api/v1/versions/{sample_version.pk}/items/999999/decide/",
                                          {"approve": True}, format="json"), 404)
    version_decide(version=sample_version, user=users["owner"], approve=False, notes="Replace A0002.")
    error = assert_error(api(users["owner"]).post(
        f"/api/v1/versions/{sample_version.pk}/items/{other.pk}/decide/", {"approve": True}, format="json"
    ), 409, "conflict")
    assert "not waiting for a decision" in error["detail"]
    assert sample_version.items.get(pk=other.pk).decision == VersionItem.Decision.PENDING


# --- Data Owner Identification --------------------------------------------------------------------


def test_the_data_owner_table_lists_in_scope_attributes_with_their_owner(api, users, parallel, attributes):
    data_owner_assign(user=users["executive"], attribute=attributes["balance"], data_owner=users["data_owner"])
    url = f"/api/v1/cycle-reports/{parallel.pk}/data-owners/"

    rows = api(users["executive"]).get(url).json()["results"]
    assert [(r["attribute_name"], r["data_owner"] and r["data_owner"]["username"]) for r in rows] == [
        ("account_id", None), ("balance", "dataowner"), ("customer_name", None),
    ]
    assert rows[1]["assigned_by"]["username"] == "executive"
    assert api(users["tester"]).get(url).status_code == 200
    assert_error(api(users["data_owner"]).get(url), 404)
    assert_error(api(users["owner2"]).get(url), 404)


def test_a_tester_cant_assign_data_owners(api, users, parallel, attributes):
    url = f"/api/v1/cycle-reports/{parallel.pk}/data-owners/"
    body = {"attribute_id": attributes["balance"].pk, "data_owner_id": users["data_owner"].pk}
    assert_error(api(users["tester"]).post(url, body, format="json"), 403, "permission_denied")
    bulk = {"data_owner_id": users["data_owner"].pk, "attribute_ids": [attributes["balance"].pk]}
    assert_error(api(users["tester"]).post(f"{url}bulk/", bulk, format="json"), 403, "permission_denied")
    assert not DataOwnerAssignment.objects.exists()


def test_the_last_assignment_keeps_its_change_when_the_workflow_cant_be_told(api, users, parallel, attributes):
    url = f"/api/v1/cycle-reports/{parallel.pk}/data-owners/"
    executive = api(users["executive"])

    response = executive.post(url, {"attribute_id": attributes["balance"].pk,
                                    "data_owner_id": users["data_owner"].pk}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["assignment"]["data_owner"]["username"] == "dataowner"
    assert [m["name"] for m in body["missing"]] == ["account_id", "customer_name"]
    assert "workflow" not in body and "workflow_error" not in body

    response = executive.post(f"{url}bulk/", {"data_owner_id": users["data_owner2"].pk,
                                             "attribute_ids": [attributes["account_id"].pk,
                                                               attributes["customer_name"].pk]}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert [a["attribute_name"] for a in body["assignments"]] == ["account_id", "customer_name"]
    assert body["missing"] == []
    assert body["workflow_error"] == NO_WORKFLOW
    assert "workflow" not in body
    assert DataOwnerAssignment.objects.filter(data_owner=users["data_owner2"]).count() == 2


def test_completing_data_owners_is_stored_for_the_workflow_when_temporal_is_unreachable(
    api, settings, users, parallel, attributes
):
    settings.TEMPORAL_ADDRESS = "127.0.0.1:1"
    settings.TEMPORAL_RPC_TIMEOUT = 2
    CycleReport.objects.filter(pk=parallel.pk).update(workflow_id=f"cycle-{parallel.cycle_id}-report-x")
    ids = [attributes[name].pk for name in ("account_id", "balance", "customer_name")]

    response = api(users["executive"]).post(
        f"/api/v1/cycle-reports/{parallel.pk}/data-owners/bulk/",
        {"data_owner_id": users["data_owner"].pk, "attribute_ids": ids}, format="json",
    )

    assert response.status_code == 200, response.content
    workflow = response.json()["workflow"]
    assert workflow["delivered"] is False
    assert "can't be reached" in workflow["message"]
    decision = WorkflowDecision.objects.get(pk=workflow["decision_id"])
    assert (decision.status, decision.cycle_report_id) == (WorkflowDecision.Status.PENDING, parallel.pk)
    assert DataOwnerAssignment.objects.count() == 3


def test_assignments_refused_by_the_service_are_errors_and_store_nothing(api, users, parallel, attributes, cycle):
    url = f"/api/v1/cycle-reports/{parallel.pk}/data-owners/"
    executive = api(users["executive"])

    error = assert_error(executive.post(f"{url}bulk/", {
        "data_owner_id": users["data_owner"].pk, "attribute_ids": [attributes["balance"].pk, attributes["notes"].pk],
    }, format="json"), 400, "invalid")
    assert "not in scope: notes" in error["detail"]
    error = assert_error(executive.post(url, {"attribute_id": attributes["balance"].pk,
                                              "data_owner_id": users["tester"].pk}, format="json"), 400)
    # Someone who isn't a Data Owner doesn't exist for this field: the executive learns no other user's name.
    assert "does not exist" in error["errors"]["data_owner_id"][0] and "tester" not in error["detail"]

    other_report = Report.objects.create(name="Other", regulation="FFIEC 031", owner=users["owner"],
                                         lob=parallel.report.lob)
    other = CycleReport.objects.create(cycle=cycle, report=other_report, tester=users["tester"])
    foreign = Attribute.objects.create(cycle_report=other, name="x")
    error = assert_error(executive.post(url, {"attribute_id": foreign.pk, "data_owner_id": users["data_owner"].pk},
                                        format="json"), 400, "invalid")
    assert set(error["errors"]) == {"attribute_id"}
    assert_error(executive.post(f"{url}bulk/", {"data_owner_id": users["data_owner"].pk, "attribute_ids": []},
                                format="json"), 400, "invalid")

    PhaseState.objects.filter(cycle_report=parallel, phase=Phase.DATA_OWNER_IDENTIFICATION).update(
        status=PhaseState.Status.COMPLETED
    )
    assert_error(executive.post(url, {"attribute_id": attributes["balance"].pk,
                                      "data_owner_id": users["data_owner"].pk}, format="json"), 409, "phase_locked")
    assert not DataOwnerAssignment.objects.exists()


# --- Requests for Information ---------------------------------------------------------------------


def test_requests_are_scoped_to_the_user_and_filtered(api, users, requests):
    mine, theirs = requests["dataowner"], requests["dataowner2"]

    def listed(user, query=""):
        response = api(user).get(f"/api/v1/requests/{query}")
        assert response.status_code == 200, response.content
        return [row["id"] for row in response.json()["results"]]

    assert listed(users["data_owner"]) == [mine.pk]
    assert listed(users["data_owner2"]) == [theirs.pk]
    assert sorted(listed(users["tester"])) == sorted([mine.pk, theirs.pk])
    assert listed(users["owner2"]) == []
    assert sorted(listed(users["tester"], f"?status=open&cycle_report={mine.cycle_report_id}")) == sorted(
        [mine.pk, theirs.pk]
    )
    assert listed(users["tester"], "?status=submitted") == []
    error = assert_error(api(users["tester"]).get("/api/v1/requests/?status=lunch&cycle_report=x"), 400, "invalid")
    assert set(error["errors"]) == {"status", "cycle_report"}


def test_a_request_shows_its_attributes_samples_due_date_and_latest_evidence(api, users, requests):
    request = requests["dataowner"]
    owner = users["data_owner"]
    evidence_upload(user=owner, request=request, files=[upload("report.pdf", PDF)])
    evidence_upload(user=owner, request=request, files=[upload("report.pdf", PDF + b"v2"), upload("scan.png", PNG)])

    response = api(owner).get(f"/api/v1/requests/{request.pk}/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert [a["name"] for a in body["attributes"]] == ["account_id", "balance"]
    assert body["sample_keys"] == ["A0001", "A0002", "A0003"]
    assert body["due_date"] == DUE.isoformat()
    assert [(e["original_name"], e["version"]) for e in body["evidence"]] == [("report.pdf", 2), ("scan.png", 1)]
    assert body["evidence"][0]["sha256"] == hashlib.sha256(PDF + b"v2").hexdigest()
    assert_error(api(users["data_owner2"]).get(f"/api/v1/requests/{request.pk}/"), 404, "not_found")


def test_requests_list_no_samples_when_sample_selection_was_skipped(api, users, parallel, attributes):
    PhaseState.objects.filter(cycle_report=parallel, phase=Phase.SAMPLE_SELECTION).update(
        status=PhaseState.Status.SKIPPED
    )
    assign_all(parallel, attributes, users)
    [request, _] = information_requests_create(cycle_report_id=parallel.pk, due_date=DUE)

    body = api(users["data_owner"]).get(f"/api/v1/requests/{request.pk}/").json()
    assert (body["sample_keys"], body["sample_count"]) == ([], 0)


def test_the_data_owner_uploads_several_files_at_once(api, users, requests, media):
    request = requests["dataowner"]
    url = f"/api/v1/requests/{request.pk}/evidence/"
    files = {"files": [upload("report.pdf", PDF), upload("scan.png", PNG)]}

    response = api(users["data_owner"]).post(url, files, format="multipart")

    assert response.status_code == 201, response.content
    rows = response.json()
    assert [(r["original_name"], r["version"], r["status"]) for r in rows] == [
        ("report.pdf", 1, "pending"), ("scan.png", 1, "pending"),
    ]
    assert rows[0]["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert rows[0]["download_url"] == f"/api/v1/evidence/{rows[0]['id']}/download/"
    assert len(stored_files(media / "evidence")) == 2


def test_a_forbidden_file_type_is_400_and_nothing_is_stored(api, users, requests, media):
    url = f"/api/v1/requests/{requests['dataowner'].pk}/evidence/"
    files = {"files": [upload("report.pdf", PDF), upload("payload.exe", b"MZ\x90\x00")]}

    error = assert_error(api(users["data_owner"]).post(url, files, format="multipart"), 400, "invalid_file")

    assert "payload.exe" in error["detail"]
    assert not Evidence.objects.exists()
    assert stored_files(media / "evidence") == []


def test_only_the_requests_data_owner_uploads(api, users, requests, media):
    url = f"/api/v1/requests/{requests['dataowner'].pk}/evidence/"
    assert_error(api(users["data_owner2"]).post(url, {"files": [upload("a.pdf", PDF)]}, format="multipart"), 404)
    assert_error(api(users["tester"]).post(url, {"files": [upload("a.pdf", PDF)]}, format="multipart"), 403)
    assert_error(api(users["data_owner"]).post(url, {}, format="multipart"), 400, "invalid_file")
    assert_error(api(users["data_owner"]).post(url, {"files": []}, format="json"), 415)
    assert not Evidence.objects.exists()


def test_submitting_keeps_the_submission_when_no_workflow_runs(api, users, requests, media):
    request = requests["dataowner"]
    url = f"/api/v1/requests/{request.pk}/submit/"
    owner = api(users["data_owner"])
    error = assert_error(owner.post(url), 400, "invalid")
    assert "Upload at least one evidence file" in error["detail"]
    evidence_upload(user=users["data_owner"], request=request, files=[upload("report.pdf", PDF)])
    assert_error(api(users["tester"]).post(url), 403, "permission_denied")
    assert_error(api(users["data_owner2"]).post(url), 404, "not_found")

    response = owner.post(url)

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "submitted"
    assert response.json()["workflow_error"] == NO_WORKFLOW
    assert InformationRequest.objects.get(pk=request.pk).status == InformationRequest.Status.SUBMITTED
    assert_error(owner.post(url), 409, "conflict")


def test_the_tester_reviews_each_file_then_the_request(api, users, submitted):
    report_pdf, scan = (Evidence.objects.get(request=submitted, original_name=n) for n in ("report.pdf", "scan.png"))
    tester = api(users["tester"])
    review_url = f"/api/v1/requests/{submitted.pk}/review/"

    assert_error(api(users["data_owner"]).post(f"/api/v1/evidence/{scan.pk}/review/", {"accept": True},
                                               format="json"), 403, "permission_denied")
    assert_error(api(users["data_owner2"]).post(f"/api/v1/evidence/{scan.pk}/review/", {"accept": True},
                                                format="json"), 404)
    error = assert_error(tester.post(f"/api/v1/evidence/{scan.pk}/review/", {"accept": False}, format="json"), 400)
    assert "a note is required" in error["detail"]
    response = tester.post(f"/api/v1/evidence/{scan.pk}/review/", {"accept": True}, format="json")
    assert response.status_code == 200, response.content
    assert (response.json()["status"], response.json()["reviewed_by"]["username"]) == ("accepted", "tester")

    error = assert_error(tester.post(review_url), 409, "conflict")
    assert "report.pdf v1" in error["detail"]
    evidence_review(user=users["tester"], evidence=report_pdf, accept=True)
    assert_error(api(users["data_owner"]).post(review_url), 403, "permission_denied")

    response = tester.post(review_url)

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "accepted"
    assert response.json()["workflow_error"] == NO_WORKFLOW
    assert InformationRequest.objects.get(pk=submitted.pk).status == InformationRequest.Status.ACCEPTED


def test_evidence_downloads_only_to_those_who_may_read_it(api, users, submitted):
    evidence = Evidence.objects.get(request=submitted, original_name="report.pdf")
    url = f"/api/v1/evidence/{evidence.pk}/download/"

    for who in ("data_owner", "tester", "executive"):
        response = api(users[who]).get(url, HTTP_ACCEPT="application/pdf")
        assert response.status_code == 200, (who, response.content)
        assert b"".join(response.streaming_content) == PDF
        assert response["Content-Type"] == "application/pdf"
        assert 'attachment; filename="report.pdf"' in response["Content-Disposition"]

    for who in ("data_owner2", "owner2", "tester2"):
        assert_error(api(users[who]).get(url), 404, "not_found")
    assert_error(api(users["tester"]).get("/api/v1/evidence/999999/download/"), 404, "not_found")
    assert_error(APIClient().get(url), 401)


def test_token_auth_works_with_bearer(users, requests):
    token = Token.objects.create(user=users["data_owner"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token.key}")

    response = client.get("/api/v1/requests/")

    assert response.status_code == 200
    assert [row["id"] for row in response.json()["results"]] == [requests["dataowner"].pk]
    response = client.post(f"/api/v1/requests/{requests['dataowner'].pk}/evidence/",
                           {"files": [upload("report.pdf", PDF)]}, format="multipart")
    assert response.status_code == 201, response.content
