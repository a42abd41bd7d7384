"""The workflow operations API without Temporal: lists scoped by role, refusals in the one error shape."""
from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from cycles.models import TestCycle
from synapse.testing import problem
from workflows.models import CompensationEntry, WorkflowExecution, WorkflowVersion
from workflows.temporal.worker import KNOWN_PATCHES, build_id

pytestmark = pytest.mark.django_db


def api_as(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def runs(users, cycle, cycle_report, make_user):
    mine = WorkflowExecution.objects.create(workflow_id=f"cycle-{cycle.pk}-report-1", run_id="r1",
                                            workflow_type="ReportTestWorkflow", cycle=cycle, cycle_report=cycle_report,
                                            waiting_on="Tester", current_phase="scoping")
    other_cycle = TestCycle.objects.create(name="Other", period_start=cycle.period_start, period_end=cycle.period_end,
                                           test_manager=make_user("manager2", "Test Manager"))
    theirs = WorkflowExecution.objects.create(workflow_id=f"cycle-{other_cycle.pk}", run_id="r2",
                                              workflow_type="TestCycleWorkflow", cycle=other_cycle)
    WorkflowVersion.objects.create(execution=mine, build_id="aaaaaaaaaaaa", patches=[])
    WorkflowVersion.objects.create(execution=mine, build_id=build_id(), patches=["phase-compensation-v1"])
    CompensationEntry.objects.create(key="k", cycle_report=cycle_report, workflow_id=mine.workflow_id, phase="scoping",
                                     strategy="rollback", trigger="admin_reset", triggered_by=users["admin"],
                                     undone={"scoping_decisions": 3})
    return mine, theirs


def test_lists_are_scoped_to_what_the_user_may_see(users, runs):
    mine, theirs = runs
    manager = api_as(users["manager"])
    listed = manager.get("/api/v1/workflow/executions/").json()["results"]
    assert [r["workflow_id"] for r in listed] == [mine.workflow_id]
    assert manager.get("/api/v1/workflow/executions/", {"waiting_on": "Owner"}).json()["results"] == []
    assert len(api_as(users["admin"]).get("/api/v1/workflow/executions/").json()["results"]) == 2

    versions = manager.get("/api/v1/workflow-versions/", {"workflow_id": mine.workflow_id}).json()
    assert [v["build_id"] for v in versions["results"]] == [build_id(), "aaaaaaaaaaaa"]  # it moved to this build
    assert versions["current_build_id"] == build_id() and versions["current_patches"] == KNOWN_PATCHES

    entries = manager.get("/api/v1/workflow-compensation/").json()["results"]
    assert entries[0]["undone"] == {"scoping_decisions": 3} and entries[0]["triggered_by"] == "admin"
    assert api_as(users["data_owner"]).get("/api/v1/workflow-compensation/").json()["results"] == []


def test_operations_refused_clearly(users, runs):
    mine, theirs = runs
    manager, admin = api_as(users["manager"]), api_as(users["admin"])
    hidden = manager.post(f"/api/v1/workflow/terminate/{theirs.workflow_id}", {"reason": "x"}, format="json")
    problem(hidden, 404, "not_found")
    refused = manager.post(f"/api/v1/workflow/reset/{mine.workflow_id}", {"reason": "x", "phase": "planning"},
                           format="json")
    assert refused.status_code == 403
    no_reason = admin.post(f"/api/v1/workflow/reset/{mine.workflow_id}", {"phase": "planning"}, format="json")
    assert no_reason.status_code == 400 and "reason" in str(no_reason.json())
    bad_phase = admin.post(f"/api/v1/workflow/reset/{mine.workflow_id}", {"reason": "x", "phase": "nope"},
                           format="json")
    assert bad_phase.status_code == 400
    WorkflowExecution.objects.filter(pk=mine.pk).update(status="completed")
    closed = admin.post(f"/api/v1/workflow/terminate/{mine.workflow_id}", {"reason": "x"}, format="json")
    assert "not running" in problem(closed, 409)["detail"]


def test_metrics_api_for_managers_only(users, runs, cycle):
    assert api_as(users["tester"]).get("/api/v1/workflow-metrics/").status_code == 403
    data = api_as(users["manager"]).get("/api/v1/workflow-metrics/", {"cycle": cycle.pk}).json()
    assert data["cycles"][0]["name"] == cycle.name and "phase_durations" in data and "percent" in data["cycles"][0]
    assert api_as(users["manager"]).get("/api/v1/workflow-metrics/", {"cycle": "x"}).status_code == 400
