"""The workflow admin on the real dev server: executions of cycles and reports linked, filters, the detail
page (timeline, steps, history, compensation), and operations confirmed with a reason and audited."""
from __future__ import annotations

import pytest
from django.urls import reverse

from cycles.models import Attribute, CycleReport, PhaseState, Report, ScopingDecision
from synapse.models import AuditEvent
from versioning.models import Version, VersionStatus
from workflows.models import CompensationEntry, WorkflowDecision, WorkflowExecution
from workflows.services import workflow_decide_version, workflow_start, workflow_status, workflow_submit_version
from workflows.temporal.contracts import PHASE_ORDER, State
from workflows.testing import wait_until

pytestmark = [pytest.mark.temporal, pytest.mark.django_db(transaction=True)]

ONLY_SCOPING_AND_SAMPLING = [p for p in PHASE_ORDER if p not in ("scoping", "sample_selection")]


def status_of(user, cycle_report):
    return workflow_status(user=user, cycle_report=CycleReport.objects.get(pk=cycle_report.pk))


@pytest.fixture
def two_reports(users, lob, cycle, cycle_report):
    second = Report.objects.create(name="FR Y-9C", regulation="FR Y-9C", owner=users["owner"], lob=lob,
                                   frequency="quarterly", fields=[{"name": "total_assets", "description": "Assets"}])
    other = CycleReport.objects.create(cycle=cycle, report=second, tester=users["tester"])
    for cr in (cycle_report, other):
        Attribute.objects.create(cycle_report=cr, name="account_id", primary_key=True)
        Attribute.objects.create(cycle_report=cr, name="nickname", risk_score=1)
    return cycle_report, other


def test_executions_list_cycle_and_reports_linked_with_filters(temporal, client, users, cycle, two_reports):
    first, second = two_reports
    workflow_start(user=users["manager"], cycle=cycle, skip_phases=ONLY_SCOPING_AND_SAMPLING)
    for cr in two_reports:
        wait_until(lambda cr=cr: (s := status_of(users["tester"], cr)) and s.state == State.AWAITING_SUBMISSION,
                   what="scoping waiting for the tester")

    cycle_row = WorkflowExecution.objects.get(workflow_id=f"cycle-{cycle.pk}")
    assert cycle_row.cycle_id == cycle.pk and cycle_row.run_id
    for cr in two_reports:
        row = WorkflowExecution.objects.get(workflow_id=cr.workflow_id if cr.workflow_id else
                                            CycleReport.objects.get(pk=cr.pk).workflow_id)
        assert (row.cycle_id, row.cycle_report_id, row.parent_workflow_id) == (cycle.pk, cr.pk, f"cycle-{cycle.pk}")

    client.force_login(users["admin"])
    url = reverse("admin:workflows_workflowexecution_changelist")
    page = client.get(url).content.decode()
    assert f"cycle-{cycle.pk}-report-{first.report_id}" in page and f"cycle-{cycle.pk}-report-{second.report_id}" in page
    assert page.count("Q3 2026") >= 3  # the cycle column is filled on every row

    # The refresh action stores what each workflow waits on; the filters use it.
    ids = [str(pk) for pk in WorkflowExecution.objects.values_list("pk", flat=True)]
    client.post(url, {"action": "refresh_live", "_selected_action": ids})
    waiting = client.get(url, {"waiting_on": "Tester"}).content.decode()
    assert f"cycle-{cycle.pk}-report-{first.report_id}" in waiting
    assert f"for an action - cycle-{cycle.pk} (running)" not in waiting  # the cycle waits on nobody itself
    recent = client.get(url, {"age": "1h", "status": "running", "current_phase": "scoping"}).content.decode()
    assert f"cycle-{cycle.pk}-report-{second.report_id}" in recent
    assert f"cycle-{cycle.pk}-report" not in client.get(url, {"age": "older"}).content.decode()

    # The cycle's detail lists its report workflows and its event history from Temporal.
    detail = client.get(reverse("admin:workflows_workflowexecution_change", args=[cycle_row.pk])).content.decode()
    assert "Report workflows" in detail and "START_CHILD_WORKFLOW_EXECUTION_INITIATED" in detail
    assert "Open in Temporal UI" in detail


def test_reset_to_scoping_compensates_and_the_workflow_runs_scoping_again(
    temporal, client, users, cycle, cycle_report, two_reports,
):
    tester, owner, admin = users["tester"], users["owner"], users["admin"]
    workflow_start(user=users["manager"], cycle=cycle, skip_phases=ONLY_SCOPING_AND_SAMPLING)
    wait_until(lambda: (s := status_of(tester, cycle_report)) and s.state == State.AWAITING_SUBMISSION,
               what="scoping waiting for the tester")
    assert ScopingDecision.objects.filter(attribute__cycle_report=cycle_report).count() == 2
    report = CycleReport.objects.get(pk=cycle_report.pk)
    workflow_submit_version(user=tester, cycle_report=report, phase="scoping")
    version = Version.objects.get(cycle_report=report, phase="scoping", status=VersionStatus.SUBMITTED)
    workflow_decide_version(user=owner, version=version, approve=True)
    wait_until(lambda: status_of(tester, report).phase == "sample_selection", what="sample selection entered")

    execution = WorkflowExecution.objects.get(workflow_id=report.workflow_id, status="running")
    client.force_login(admin)
    operate = reverse("admin:workflows_workflowexecution_operate", args=[execution.pk, "reset"])
    assert "Reset to the start of" in client.get(operate).content.decode()
    # No reason: refused with a message, nothing done.
    refused = client.post(operate, {"phase": "scoping", "reason": ""})
    assert refused.status_code == 200 and "This field is required" in refused.content.decode()
    assert not CompensationEntry.objects.exists()

    response = client.post(operate, {"phase": "scoping", "reason": "Scope redone after the regulator's letter"})
    assert response.status_code == 302
    entries = list(CompensationEntry.objects.filter(cycle_report=report).order_by("id"))
    assert [(e.phase, e.strategy, e.trigger, e.triggered_by_id) for e in entries] == [
        ("sample_selection", "partial_rollback", "admin_reset", admin.pk),
        ("scoping", "rollback", "admin_reset", admin.pk),
    ]
    assert entries[1].undone["scoping_decisions"] == 2
    assert AuditEvent.objects.filter(action="workflow.reset", actor=admin).exists()

    # The workflow is back in Scoping on a new run: it recommends again and waits for the tester.
    wait_until(lambda: (s := status_of(tester, report)) and s.phase == "scoping"
               and s.state == State.AWAITING_SUBMISSION, what="scoping again")
    assert CycleReport.objects.get(pk=report.pk).phase == "scoping"
    assert ScopingDecision.objects.filter(attribute__cycle_report=report).count() == 2
    assert not PhaseState.objects.filter(cycle_report=report, phase="sample_selection").exists()
    new = WorkflowExecution.objects.get(workflow_id=report.workflow_id, status="running")
    assert new.run_id != execution.run_id
    detail = client.get(reverse("admin:workflows_workflowexecution_change", args=[new.pk])).content.decode()
    assert "Partial rollback" in detail and "Admin reset the report" in detail

    # The other report of the cycle went on untouched.
    other = CycleReport.objects.get(pk=two_reports[1].pk)
    assert status_of(tester, other).phase == "scoping"


def test_terminate_needs_an_admin_and_a_reason_and_is_audited(temporal, client, users, cycle, cycle_report):
    workflow_start(user=users["manager"], cycle=cycle, skip_phases=ONLY_SCOPING_AND_SAMPLING)
    wait_until(lambda: WorkflowExecution.objects.filter(cycle_report=cycle_report).exists(), what="report row")
    execution = WorkflowExecution.objects.get(cycle_report=cycle_report)
    operate = reverse("admin:workflows_workflowexecution_operate", args=[execution.pk, "terminate"])

    client.force_login(users["manager"])
    assert client.post(operate, {"reason": "stop"}).status_code in (302, 403)
    execution.refresh_from_db()
    assert execution.status == "running"

    client.force_login(users["admin"])
    assert client.post(operate, {"reason": "Started by mistake"}).status_code == 302
    execution.refresh_from_db()
    assert execution.status == "terminated"
    event = AuditEvent.objects.get(action="workflow.terminate")
    assert event.context["reason"] == "Started by mistake" and event.actor == users["admin"]
    assert status_of(users["tester"], cycle_report) is None


def test_redeliver_a_stored_decision_from_the_admin(temporal, client, users, cycle, cycle_report, two_reports):
    workflow_start(user=users["manager"], cycle=cycle, skip_phases=ONLY_SCOPING_AND_SAMPLING)
    report = CycleReport.objects.get(pk=cycle_report.pk)
    # A decision stored while Temporal was away (as the outbox keeps it).
    decision = WorkflowDecision.objects.create(
        workflow_id=report.workflow_id, update_name="submit_version", requested_by=users["tester"],
        cycle_report=report, payload={})
    decision.payload = {"decision_id": str(decision.pk), "phase": "scoping", "user_id": users["tester"].pk,
                        "notes": ""}
    decision.save()
    wait_until(lambda: (s := status_of(users["tester"], report)) and s.state == State.AWAITING_SUBMISSION,
               what="scoping waiting for the tester")

    client.force_login(users["admin"])
    url = reverse("admin:workflows_workflowdecision_changelist")
    confirm = client.post(url, {"action": "redeliver", "_selected_action": [str(decision.pk)]})
    assert "Re-deliver" in confirm.content.decode()
    decision.refresh_from_db()
    assert decision.status == "pending"
    client.post(url, {"action": "redeliver", "_selected_action": [str(decision.pk)], "confirm": "1",
                      "reason": "Temporal was down during the upgrade"})
    decision.refresh_from_db()
    assert decision.status == "delivered"
    assert Version.objects.filter(cycle_report=report, phase="scoping").count() == 1
    assert AuditEvent.objects.filter(action="decision.redeliver", context__reason__startswith="Temporal").exists()
