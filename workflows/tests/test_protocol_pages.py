"""While Temporal is away, pages and the status API show the last status the workflow answered, with its
age, at once (issue 10), instead of waiting and failing."""
from __future__ import annotations

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from cycles.models import CycleReport, Phase, TestCycle
from workflows.models import WorkflowStatusSnapshot
from workflows.temporal.client import bridge
from workflows.temporal.contracts import State
from workflows.tests.test_api import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def away(settings, users, cycle, cycle_report):
    """A running report whose Temporal can't be reached, with the status its workflow last answered."""
    settings.TEMPORAL_ADDRESS = "127.0.0.1:1"
    bridge.reset()
    workflow_id = f"cycle-{cycle.pk}-report-{cycle_report.report_id}"
    CycleReport.objects.filter(pk=cycle_report.pk).update(workflow_id=workflow_id, phase=Phase.PLANNING,
                                                          status=CycleReport.Status.IN_PROGRESS)
    TestCycle.objects.filter(pk=cycle.pk).update(status=TestCycle.Status.RUNNING, workflow_id=f"cycle-{cycle.pk}")
    WorkflowStatusSnapshot.objects.create(
        cycle_report=cycle_report, workflow_id=workflow_id,
        status={"cycle_report_id": cycle_report.pk, "phase": "planning", "state": State.AWAITING_DECISION,
                "waiting_on": "Report Owner", "active": {"planning": State.AWAITING_DECISION}},
        read_at=timezone.now() - datetime.timedelta(minutes=4),
    )
    yield cycle_report
    bridge.reset()


def test_phase_page_shows_the_last_known_status_and_its_age(client, users, away):
    client.force_login(users["tester"])
    response = client.get(reverse("cycles:planning", args=[away.pk]))
    page = response.content.decode()
    assert response.status_code == 200
    assert "Report Owner" in page
    assert "can&#x27;t be reached" in page and "last known status, from 4 min ago" in page


def test_status_api_gives_the_stored_status_with_when_and_why(users, away, cycle):
    body = client_for(users["tester"]).get(f"/api/v1/workflow/status/{cycle.pk}").json()
    (report,) = body["reports"]
    assert report["live"]["state"] == State.AWAITING_DECISION and report["live"]["as_of"]
    assert report["live_error"].startswith("The workflow service (Temporal) can't be reached")


def test_reconcile_command_says_when_temporal_cant_be_asked(away):
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="can't be reached"):
        call_command("reconcile_workflows")


def test_a_workflow_whose_task_failed_is_busy_not_an_error(users, away, cycle, monkeypatch):
    """After its worker is killed holding a workflow task, Temporal answers queries and updates with
    FAILED_PRECONDITION "Workflow Task in failed state" until the task is retried: the status API gives the
    stored status, and a person's step is saved for the outbox, instead of a 500."""
    from temporalio.service import RPCError, RPCStatusCode

    from versioning.models import Version
    from workflows.models import WorkflowDecision
    from workflows.services import workflow_submit_version
    from workflows.temporal.client import BUSY, NO_WORKER, unavailable_reason

    not_ready = RPCError("Unable to query workflow due to Workflow Task in failed state.",
                         RPCStatusCode.FAILED_PRECONDITION, b"")
    assert unavailable_reason(not_ready) == BUSY

    def run(fn, **kwargs):
        raise not_ready

    monkeypatch.setattr(bridge, "run", run)
    body = client_for(users["tester"]).get(f"/api/v1/workflow/status/{cycle.pk}").json()
    (report,) = body["reports"]
    assert report["live"]["state"] == State.AWAITING_DECISION and report["live"]["as_of"]
    assert "busy" in report["live_error"]

    cycle_report = CycleReport.objects.select_related("report__lob", "cycle", "tester").get(pk=away.pk)
    monkeypatch.setattr("cycles.services.artifacts.phase_artifact_check", lambda **kwargs: None)
    outcome = workflow_submit_version(user=users["tester"], cycle_report=cycle_report, phase="planning")
    assert not outcome.delivered and outcome.reason in (BUSY, NO_WORKER)
    assert WorkflowDecision.objects.get().status == WorkflowDecision.Status.PENDING
    assert not Version.objects.exists()
