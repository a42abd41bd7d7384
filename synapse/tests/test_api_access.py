"""Every role × endpoint × object pair against the one access table (cycles.access), API and pages.

Each endpoint is called by each of nine people with different relations to one
report of one cycle. The table says whether the relation allows the action:
if it does, the answer must not be a refusal (401/403/404: a 400 for the
deliberately invalid body, or a 409 for the phase, means the rules let them
in); if it doesn't, it must be 403 or 404. Bodies are invalid on purpose, so
that an allowed caller changes nothing for the next one.
"""
import datetime

import pytest
from django.test import Client
from rest_framework.test import APIClient

from cycles import access
from cycles.access import (
    ADMIN, APPROVER, CYCLE_MANAGER, EXECUTIVE, OWNER, REQUEST_DATA_OWNER, TESTER, UNRELATED,
)
from cycles.models import (
    Attribute, CycleReport, DataOwnerAssignment, Evidence, InformationRequest, Phase, PhaseState, PopulationFile,
    Sample, SamplingPlan, ScopingDecision,
)
from versioning.services import version_create
from workflows.models import CycleSchedule, WorkflowExecution

pytestmark = pytest.mark.django_db

# The fixture users and their relation to the report (conftest.users; owner2 is made a configured approver).
RELATION = {
    "admin": ADMIN, "manager": CYCLE_MANAGER, "tester": TESTER, "tester2": UNRELATED, "owner": OWNER,
    "owner2": APPROVER, "executive": EXECUTIVE, "data_owner": REQUEST_DATA_OWNER, "data_owner2": UNRELATED,
}

# (action, method, path, body); {cycle}, {cr}, ... are filled from the objects below. "api" paths get JSON.
ENDPOINTS = [
    ("cycle.read", "get", "/api/v1/cycles/{cycle}/", None),
    ("cycle.read", "get", "/api/v1/cycles/{cycle}/reports/", None),
    ("cycle.read", "get", "/api/v1/workflow/status/{cycle}/", None),
    ("cycle.manage", "patch", "/api/v1/cycles/{cycle}/", {"configuration": {"rfi_due_days": -1}}),
    ("cycle.manage", "post", "/api/v1/cycles/{cycle}/reports/", {}),
    ("cycle.manage", "post", "/api/v1/workflow/start/{cycle}/", {"report_ids": []}),
    ("cycle.manage", "post", "/api/v1/workflow/cancel/{cycle}/", {}),
    ("cycle_report.read", "get", "/api/v1/cycle-reports/{cr}/", None),
    ("cycle_report.read", "get", "/api/v1/cycle-reports/{cr}/attributes/", None),
    ("cycle_report.read", "get", "/api/v1/attributes/{attribute}/", None),
    ("cycle_report.read", "get", "/api/v1/cycle-reports/{cr}/scoping/", None),
    ("cycle_report.read", "get", "/api/v1/cycle-reports/{cr}/phases/", None),
    ("cycle_report.read", "get", "/api/v1/cycle-reports/{cr}/population-files/", None),
    ("cycle_report.read", "get", "/api/v1/population-files/{population}/profiles/", None),
    ("cycle_report.read", "get", "/api/v1/cycle-reports/{cr}/sampling-plan/", None),
    ("cycle_report.read", "get", "/api/v1/cycle-reports/{cr}/samples/", None),
    ("cycle_report.read", "get", "/api/v1/samples/{sample}/", None),
    ("cycle_report.read", "get", "/api/v1/cycle-reports/{cr}/data-owners/", None),
    ("cycle_report.staff", "patch", "/api/v1/cycle-reports/{cr}/", {}),
    ("cycle_report.work", "post", "/api/v1/cycle-reports/{cr}/attributes/", {}),
    ("cycle_report.work", "patch", "/api/v1/attributes/{attribute}/", {"risk_score": 99}),
    ("cycle_report.work", "post", "/api/v1/cycle-reports/{cr}/scoping/", {}),
    ("cycle_report.work", "post", "/api/v1/cycle-reports/{cr}/submit/", {}),
    ("cycle_report.work", "post", "/api/v1/cycle-reports/{cr}/population-files/", {}),
    ("cycle_report.work", "patch", "/api/v1/cycle-reports/{cr}/sampling-plan/", {"min_per_stratum": 0}),
    ("cycle_report.work", "post", "/api/v1/cycle-reports/{cr}/samples/", {}),
    ("version.read", "get", "/api/v1/versions/{version}/", None),
    ("version.read", "get", "/api/v1/versions/{version}/diff/", None),
    ("version.decide", "post", "/api/v1/versions/{version}/decide/", {"approve": False}),
    ("version_item.decide", "post", "/api/v1/versions/{samples_version}/items/{item}/decide/", {"approve": False}),
    ("data_owners.assign", "post", "/api/v1/cycle-reports/{cr}/data-owners/", {}),
    ("data_owners.assign", "post", "/api/v1/cycle-reports/{cr}/data-owners/bulk/", {}),
    ("data_owners.reassign", "post", "/api/v1/cycle-reports/{cr}/data-owners/reassign/", {}),
    ("cycle_report.reassign_tester", "post", "/api/v1/cycle-reports/{cr}/tester/reassign/", {}),
    ("cycle_report.read", "get", "/api/v1/cycle-reports/{cr}/reassignments/", None),
    ("request.read", "get", "/api/v1/requests/{request}/", None),
    ("request.answer", "post", "/api/v1/requests/{request}/evidence/", {}),
    ("request.review", "post", "/api/v1/evidence/{evidence}/review/", {}),
    ("evidence.download", "get", "/api/v1/evidence/{evidence}/download/", None),
    ("workflow.operate", "post", "/api/v1/workflow/terminate/{workflow_id}", {}),
    ("workflow.operate", "post", "/api/v1/workflow/reset/{workflow_id}", {"phase": "planning"}),
    ("workflow.operate", "post", "/api/v1/workflow/retry/{workflow_id}", {}),
    ("workflow.cancel_run", "post", "/api/v1/workflow/cancel-run/{workflow_id}", {}),
    ("cycle.manage", "post", "/api/v1/cycles/{cycle}/schedules/", {"frequency": "yearly"}),
    ("schedule.manage", "post", "/api/v1/workflow-schedules/{schedule}/pause/", {"reason": ["not text"]}),
    ("schedule.manage", "post", "/api/v1/workflow-schedules/{schedule}/trigger/", {"reason": ["not text"]}),
    # Pages: the same table.
    ("cycle.read", "get", "/cycles/{cycle}/", None),
    ("cycle_report.read", "get", "/cycle-reports/{cr}/", None),
    ("cycle_report.read", "get", "/cycle-reports/{cr}/planning/", None),
    ("cycle_report.read", "get", "/cycle-reports/{cr}/scoping/", None),
    ("version.read", "get", "/versions/{version}/", None),
    ("request.read", "get", "/requests/{request}/", None),
    ("request.read", "get", "/requests/{request}/evidence/{evidence}/download/", None),
    ("data_owners.reassign", "post", "/cycle-reports/{cr}/data-owners/reassign/", {}),
    ("cycle_report.reassign_tester", "post", "/cycles/{cycle}/reassign-tester/", {}),
    ("cycle.manage", "post", "/workflows/cycles/{cycle}/schedules/", None),
    ("schedule.manage", "post", "/workflows/schedules/{schedule}/resume/", None),
]

# Lists: the object is in the list exactly for the people the table lets read it.
LISTS = [
    ("cycle.read", "/api/v1/cycles/", "cycle"),
    ("cycle_report.read", "/api/v1/cycle-reports/", "cr"),
    ("cycle_report.read", "/api/v1/attributes/", "attribute"),
    ("cycle_report.read", "/api/v1/samples/", "sample"),
    ("version.read", "/api/v1/versions/", "version"),
    ("request.read", "/api/v1/requests/", "request"),
    ("schedule.manage", "/api/v1/workflow-schedules/", "schedule"),
]


@pytest.fixture
def world(users, cycle_report, settings, tmp_path):
    """One report in Sample Selection with every kind of object, and owner2 a configured approver."""
    settings.MEDIA_ROOT = str(tmp_path)
    settings.TEMPORAL_ADDRESS, settings.TEMPORAL_RPC_TIMEOUT = "127.0.0.1:1", 1
    cycle = cycle_report.cycle
    cycle.configuration = {**cycle.configuration,
                           "approvers": {"planning": ["owner2"], "sample_selection": ["owner2"]}}
    cycle.save()
    CycleReport.objects.filter(pk=cycle_report.pk).update(phase=Phase.SAMPLE_SELECTION)
    PhaseState.objects.create(cycle_report=cycle_report, phase=Phase.SAMPLE_SELECTION)
    attribute = Attribute.objects.create(cycle_report=cycle_report, name="balance")
    ScopingDecision.objects.create(attribute=attribute, in_scope=True, decided_by=users["tester"])
    DataOwnerAssignment.objects.create(attribute=attribute, data_owner=users["data_owner"],
                                       assigned_by=users["executive"])
    population = PopulationFile.objects.create(
        cycle_report=cycle_report, file="populations/p.csv", original_name="p.csv", format="csv", size_bytes=1,
        sha256="0" * 64, uploaded_by=users["tester"])
    SamplingPlan.objects.create(cycle_report=cycle_report, population_file=population, computed_size=1,
                                updated_by=users["tester"])
    sample = Sample.objects.create(cycle_report=cycle_report, key="A1", row_index=0, row_data={}, method="random",
                                   added_by=users["tester"])
    version = version_create(cycle_report=cycle_report, phase=Phase.PLANNING, author=users["tester"],
                             items=[("balance", {"risk_score": 4})])
    samples_version = version_create(cycle_report=cycle_report, phase=Phase.SAMPLE_SELECTION,
                                     author=users["tester"], items=[("A1", {"row_index": 0})])
    request = InformationRequest.objects.create(cycle_report=cycle_report, data_owner=users["data_owner"],
                                                sample_keys=["A1"], due_date=datetime.date(2026, 8, 1))
    request.attributes.add(attribute)
    (tmp_path / "evidence").mkdir()
    (tmp_path / "evidence" / "e.pdf").write_bytes(b"%PDF-1.4")
    evidence = Evidence.objects.create(request=request, file="evidence/e.pdf", original_name="e.pdf",
                                       content_type="application/pdf", size_bytes=8, sha256="1" * 64,
                                       uploaded_by=users["data_owner"])
    execution = WorkflowExecution.objects.create(
        workflow_id=f"cycle-{cycle.pk}-report-{cycle_report.report_id}", run_id="r1",
        workflow_type="ReportTestWorkflow", cycle=cycle, cycle_report=cycle_report)
    schedule = CycleSchedule.objects.create(name="Recurring", template=cycle, frequency="monthly",
                                            created_by=users["manager"], schedule_id=f"cycle-schedule-{cycle.pk}")
    return {"schedule": schedule.pk, "workflow_id": execution.workflow_id, "cycle": cycle.pk, "cr": cycle_report.pk, "attribute": attribute.pk, "population": population.pk,
            "sample": sample.pk, "version": version.pk, "samples_version": samples_version.pk,
            "item": samples_version.items.get().pk, "request": request.pk, "evidence": evidence.pk}


def call(user, method, path, body):
    if path.startswith("/api/"):
        client = APIClient()
        client.force_login(user)
        return getattr(client, method)(path, body, format="json") if body is not None else getattr(client, method)(path)
    client = Client()
    client.force_login(user)
    return getattr(client, method)(path, body) if body is not None else getattr(client, method)(path)


def test_the_table_names_only_known_relations():
    for action, relations in access.ACCESS.items():
        assert relations <= set(access.RELATIONS), action


@pytest.mark.parametrize("action, method, path, body", ENDPOINTS, ids=[f"{m} {p}" for _, m, p, _ in ENDPOINTS])
def test_every_role_gets_what_the_table_says(users, world, action, method, path, body):
    url = path.format(**world)
    # Those the table refuses first: an allowed caller's request (even invalid) must not change what they see.
    people = sorted(RELATION, key=lambda name: access.allowed(action, {RELATION[name]}))
    wrong = []
    for name in people:
        response = call(users[name], method, url, body)
        refused = response.status_code in (401, 403, 404)
        if access.allowed(action, {RELATION[name]}) == refused:
            wrong.append((name, RELATION[name], response.status_code, getattr(response, "content", b"")[:200]))
    assert not wrong, wrong


@pytest.mark.parametrize("action, path, key", LISTS, ids=[p for _, p, _ in LISTS])
def test_lists_show_an_object_exactly_to_those_who_may_read_it(users, world, action, path, key):
    wrong = []
    for name, relation in RELATION.items():
        client = APIClient()
        client.force_login(users[name])
        listed = {row["id"] for row in client.get(path, {"page_size": 500}).json()["results"]}
        if (world[key] in listed) != access.allowed(action, {relation}):
            wrong.append((name, relation))
    assert not wrong, wrong
