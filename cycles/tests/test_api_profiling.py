"""The API of Data Profiling, phase states, data owner completion, and configured approvers."""
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from cycles.models import Attribute, CycleReport, DataOwnerAssignment, Phase, PhaseState, PopulationFile, ScopingDecision
from synapse.testing import problem
from versioning.models import VersionItem
from versioning.services import version_create

pytestmark = pytest.mark.django_db

CSV = b"account_id,balance\nA1,10\nA2,20\n"


def client_for(user):
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    return tmp_path


@pytest.fixture
def profiling(cycle_report):
    CycleReport.objects.filter(pk=cycle_report.pk).update(phase=Phase.DATA_PROFILING,
                                                           status=CycleReport.Status.IN_PROGRESS)
    PhaseState.objects.create(cycle_report=cycle_report, phase=Phase.PLANNING, status=PhaseState.Status.COMPLETED)
    PhaseState.objects.create(cycle_report=cycle_report, phase=Phase.DATA_PROFILING)
    cycle_report.refresh_from_db()
    return cycle_report


def test_the_tester_uploads_a_population_file_and_others_are_refused(users, profiling, media):
    url = f"/api/v1/cycle-reports/{profiling.pk}/population-files/"
    upload = lambda: {"file": SimpleUploadedFile("loans.csv", CSV)}  # noqa: E731
    problem(client_for(users["owner"]).post(url, upload(), format="multipart"), 403)
    problem(client_for(users["tester2"]).post(url, upload(), format="multipart"), 404)
    problem(client_for(users["tester"]).post(url, {}, format="multipart"), 400)
    assert not PopulationFile.objects.exists()

    response = client_for(users["tester"]).post(url, upload(), format="multipart")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["file"]["original_name"] == "loans.csv" and body["file"]["format"] == "csv"
    # The report's workflow never started: the file is kept, and the body says why it wasn't profiled.
    assert "workflow_error" in body
    listed = client_for(users["owner"]).get(url).json()
    assert [f["id"] for f in listed["results"]] == [body["file"]["id"]]
    profiles = client_for(users["owner"]).get(f"/api/v1/population-files/{body['file']['id']}/profiles/")
    assert profiles.json()["count"] == 0
    problem(client_for(users["tester2"]).get(f"/api/v1/population-files/{body['file']['id']}/profiles/"), 404)


def test_a_reports_phase_states(users, profiling):
    rows = client_for(users["owner"]).get(f"/api/v1/cycle-reports/{profiling.pk}/phases/").json()
    assert [r["phase"] for r in rows] == list(Phase.values)
    by_phase = {r["phase"]: r for r in rows}
    assert by_phase["planning"]["status"] == "completed" and not by_phase["planning"]["current"]
    assert by_phase["data_profiling"]["status"] == "active" and by_phase["data_profiling"]["current"]
    assert by_phase["scoping"]["status"] == "pending"
    problem(client_for(users["data_owner"]).get(f"/api/v1/cycle-reports/{profiling.pk}/phases/"), 404)


def test_data_owner_completion_by_the_lobs_executive(users, cycle_report):
    attribute = Attribute.objects.create(cycle_report=cycle_report, name="balance")
    ScopingDecision.objects.create(attribute=attribute, in_scope=True, decided_by=users["tester"])
    url = f"/api/v1/cycle-reports/{cycle_report.pk}/data-owners/complete/"
    problem(client_for(users["tester"]).post(url), 403)
    error = problem(client_for(users["executive"]).post(url), 409, "conflict")
    assert error["errors"]["missing"] == ["balance"]
    DataOwnerAssignment.objects.create(attribute=attribute, data_owner=users["data_owner"],
                                       assigned_by=users["executive"])
    body = client_for(users["executive"]).post(url).json()
    assert body["missing"] == [] and ("workflow" in body or "workflow_error" in body)


def test_a_configured_approver_reads_and_decides_what_they_are_asked_to(users, cycle_report, settings):
    settings.TEMPORAL_ADDRESS, settings.TEMPORAL_RPC_TIMEOUT = "127.0.0.1:1", 2
    cycle = cycle_report.cycle
    cycle.configuration = {**cycle.configuration, "approvers": {"planning": ["owner2"]}}
    cycle.save()
    CycleReport.objects.filter(pk=cycle_report.pk).update(workflow_id="cycle-1-report-1")
    version = version_create(cycle_report=cycle_report, phase=Phase.PLANNING, author=users["tester"],
                             items=[("balance", {"risk_score": 4})])
    approver = client_for(users["owner2"])
    assert approver.get(f"/api/v1/versions/{version.pk}/").status_code == 200
    assert approver.get(f"/api/v1/cycle-reports/{cycle_report.pk}/").status_code == 200
    response = approver.post(f"/api/v1/versions/{version.pk}/decide/", {"approve": True}, format="json")
    assert response.status_code == 202, response.content  # stored, to be delivered when Temporal is back


def test_nobody_decides_an_item_of_their_own_version_and_only_phases_with_items_have_them(make_user, users,
                                                                                         cycle_report):
    from synapse.roles import Role

    both = make_user("both", Role.TESTER, Role.REPORT_OWNER)
    CycleReport.objects.filter(pk=cycle_report.pk).update(tester=both)
    cycle_report.report.owner = both
    cycle_report.report.save()
    own = version_create(cycle_report=cycle_report, phase=Phase.SAMPLE_SELECTION, author=both,
                         items=[("A1", {"row_index": 0})])
    item = own.items.get()
    url = f"/api/v1/versions/{own.pk}/items/{item.pk}/decide/"
    error = problem(client_for(both).post(url, {"approve": False, "note": "no"}, format="json"), 403)
    assert "own version" in error["detail"]
    assert VersionItem.objects.get(pk=item.pk).decision == VersionItem.Decision.PENDING

    planning = version_create(cycle_report=cycle_report, phase=Phase.PLANNING, author=users["tester"],
                              items=[("balance", {"risk_score": 4})])
    planning_item = planning.items.get()
    problem(client_for(both).post(f"/api/v1/versions/{planning.pk}/items/{planning_item.pk}/decide/",
                                  {"approve": True}, format="json"), 409)


def test_the_tester_confirms_the_matches_by_name_and_others_are_refused(users, profiling):
    from cycles.models import ColumnMapping

    population = PopulationFile.objects.create(
        cycle_report=profiling, file="loans.csv", original_name="loans.csv", format="csv", size_bytes=len(CSV),
        sha256="0" * 64, row_count=2, columns=["account_id", "balance"], status=PopulationFile.Status.PROFILED,
        uploaded_by=users["tester"])
    for name in ("account_id", "balance"):
        ColumnMapping.objects.create(population_file=population, column_name=name, status="matched",
                                     attribute=Attribute.objects.create(cycle_report=profiling, name=name))
    url = f"/api/v1/population-files/{population.pk}/mappings/confirm/"
    problem(client_for(users["owner"]).post(url), 403)
    problem(client_for(users["tester2"]).post(url), 404)
    assert not ColumnMapping.objects.filter(status="confirmed").exists()

    response = client_for(users["tester"]).post(url)
    assert response.status_code == 200, response.content
    assert response.json() == {"population_file": population.pk, "confirmed": 2}
    assert set(ColumnMapping.objects.values_list("status", flat=True)) == {"confirmed"}
    assert client_for(users["tester"]).post(url).json()["confirmed"] == 0
