"""A report driven through Planning, Data Profiling and Scoping on the real Temporal dev server,
with the real worker, activities and database, the way the pages drive it."""
from __future__ import annotations


import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from cycles.models import Attribute, CycleReport, PopulationFile, ProfileResult, ScopingDecision, TestCycle
from cycles.services.planning import attribute_update
from cycles.services.scoping import scoping_decide
from synapse.exceptions import ConflictError, PermissionDeniedError
from synapse.models import AuditEvent
from versioning.models import Approval, Version, VersionStatus
from workflows.models import WorkflowDecision, WorkflowExecution, WorkflowStep, WorkflowTransition
from workflows.services import (
    decisions_deliver_pending,
    workflow_decide_version,
    workflow_register_population,
    workflow_start,
    workflow_status,
    workflow_submit_version,
)
from workflows.temporal.contracts import State
from workflows.testing import point_settings_at, wait_until

pytestmark = [pytest.mark.temporal, pytest.mark.django_db(transaction=True)]

# The phases after Scoping, skipped where a test is about the first three.
AFTER_SCOPING = ["sample_selection", "data_owner_identification", "request_for_information", "test_execution",
                 "observations", "finalize"]


def population_csv(rows: int = 40) -> bytes:
    lines = ["account_id,customer_name,balance,origination_date,is_delinquent"]
    for i in range(rows):
        name = "" if i % 10 == 3 else f"Customer {i}"
        lines.append(f"A{i:05d},{name},{1000 + i * 17.5:.2f},2024-0{1 + i % 9}-1{i % 10},{'true' if i % 7 == 0 else 'false'}")
    return ("\n".join(lines) + "\n").encode()


def wait_state(user, cycle_report, state: str, phase: str):
    def reached():
        status = workflow_status(user=user, cycle_report=CycleReport.objects.get(pk=cycle_report.pk))
        return status if status and status.phase == phase and status.state == state else None

    return wait_until(reached, what=f"{phase}/{state}")


def approve_latest(owner, cycle_report, phase: str):
    version = Version.objects.get(cycle_report=cycle_report, phase=phase, status=VersionStatus.SUBMITTED)
    return workflow_decide_version(user=owner, version=version, approve=True)


def test_report_goes_through_three_phases_with_send_back_and_refusals(temporal, users, cycle, cycle_report):
    tester, owner, manager = users["tester"], users["owner"], users["manager"]

    with pytest.raises(PermissionDeniedError):
        workflow_start(user=tester, cycle=cycle)
    started = workflow_start(user=manager, cycle=cycle, skip_phases=AFTER_SCOPING)
    assert started.workflow_id == f"cycle-{cycle.pk}"
    assert started.report_workflow_ids == {cycle_report.pk: f"cycle-{cycle.pk}-report-{cycle_report.report_id}"}
    cycle.refresh_from_db()
    cycle_report.refresh_from_db()
    assert cycle.status == TestCycle.Status.RUNNING
    with pytest.raises(ConflictError, match="already"):
        workflow_start(user=manager, cycle=cycle)

    # Planning: the offline provider drafted one attribute per report field.
    status = wait_state(tester, cycle_report, State.AWAITING_SUBMISSION, "planning")
    assert status.waiting_on == "Tester"
    assert Attribute.objects.filter(cycle_report=cycle_report, source="llm").count() == 5

    outcome = workflow_submit_version(user=tester, cycle_report=cycle_report, phase="planning")
    assert outcome.delivered and outcome.result.version_number == 1
    v1 = Version.objects.get(pk=outcome.result.version_id)
    assert v1.items.count() == 5 and v1.workflow_id == cycle_report_wf(cycle_report)
    assert v1.activity_name == "version_create"

    # Only the report's owner decides; refusals store nothing.
    for intruder in (tester, users["tester2"], users["owner2"], manager):
        with pytest.raises(PermissionDeniedError):
            workflow_decide_version(user=intruder, version=v1, approve=True)
    assert WorkflowDecision.objects.filter(update_name="decide_version").count() == 0

    back = workflow_decide_version(user=owner, version=v1, approve=False, notes="balance is a CDE; mark it")
    assert "sent back" in back.message
    v1.refresh_from_db()
    assert v1.status == VersionStatus.CHANGES_REQUESTED

    wait_state(tester, cycle_report, State.AWAITING_SUBMISSION, "planning")
    balance = Attribute.objects.get(cycle_report=cycle_report, name="balance")
    attribute_update(user=tester, attribute=balance, cde=True, risk_score=9)
    v2 = workflow_submit_version(user=tester, cycle_report=cycle_report, phase="planning")
    assert v2.result.version_number == 2
    approve_latest(owner, cycle_report, "planning")

    # Data Profiling: upload, then the workflow profiles it inside the update.
    from cycles.services.profiling import population_file_upload

    wait_state(tester, cycle_report, State.AWAITING_UPLOAD, "data_profiling")
    population = population_file_upload(
        user=tester, cycle_report=CycleReport.objects.get(pk=cycle_report.pk),
        uploaded_file=SimpleUploadedFile("population.csv", population_csv(), content_type="text/csv"),
    )
    profiled = workflow_register_population(user=tester, population_file=population)
    assert profiled.delivered and "40 rows" in profiled.message
    population.refresh_from_db()
    assert population.status == PopulationFile.Status.PROFILED
    assert ProfileResult.objects.filter(population_file=population).count() == 5
    assert ProfileResult.objects.get(population_file=population, column_name="customer_name").null_count == 4
    # Profiling no longer ends the phase: the tester confirms the columns, the owner approves the version.
    from cycles.services.profiling_checks import column_mappings_confirm_matched

    wait_state(tester, cycle_report, State.AWAITING_SUBMISSION, "data_profiling")
    assert column_mappings_confirm_matched(user=tester, population_file=population) == 5
    workflow_submit_version(user=tester, cycle_report=cycle_report, phase="data_profiling")
    approve_latest(owner, cycle_report, "data_profiling")

    # Scoping: recommendations exist; the tester changes one, the owner approves.
    wait_state(tester, cycle_report, State.AWAITING_SUBMISSION, "scoping")
    assert ScopingDecision.objects.filter(attribute__cycle_report=cycle_report).count() == 5
    scoping_decide(user=tester, attribute=balance, in_scope=True, rationale="CDE with history of breaks")
    workflow_submit_version(user=tester, cycle_report=cycle_report, phase="scoping")
    approve_latest(owner, cycle_report, "scoping")

    wait_until(lambda: TestCycle.objects.get(pk=cycle.pk).status == TestCycle.Status.COMPLETED,
               what="cycle completed")
    cycle_report.refresh_from_db()
    assert cycle_report.status == CycleReport.Status.SCOPED

    # Tracking: both executions, every transition once, every step finished.
    report_exec = WorkflowExecution.objects.get(workflow_id=cycle_report_wf(cycle_report))
    assert report_exec.status == WorkflowExecution.Status.COMPLETED
    assert list(report_exec.transitions.filter(skipped=False).values_list("to_phase", flat=True)) == [
        "planning", "data_profiling", "scoping"]
    assert WorkflowExecution.objects.filter(workflow_id=f"cycle-{cycle.pk}").exists()
    assert not WorkflowStep.objects.exclude(status=WorkflowStep.Status.COMPLETED).exists()
    assert Approval.objects.filter(version__cycle_report=cycle_report).count() == 4
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"cycle.start_workflow", "version.approved", "version.changes_requested",
            "population.upload", "cycle_report.finish"} <= actions


def cycle_report_wf(cycle_report) -> str:
    return f"cycle-{cycle_report.cycle_id}-report-{cycle_report.report_id}"


def test_skip_phases_are_honoured(temporal, users, cycle, cycle_report):
    workflow_start(user=users["manager"], cycle=cycle, skip_phases=["data_profiling", "scoping", *AFTER_SCOPING])
    cycle_report.refresh_from_db()
    wait_state(users["tester"], cycle_report, State.AWAITING_SUBMISSION, "planning")
    workflow_submit_version(user=users["tester"], cycle_report=cycle_report, phase="planning")
    approve_latest(users["owner"], cycle_report, "planning")
    # Scoping was skipped, so the report is not "scoped": it just completed.
    wait_until(lambda: CycleReport.objects.get(pk=cycle_report.pk).status == "completed", what="report completed")
    cycle_report.refresh_from_db()
    assert sorted(cycle_report.skipped_phases) == sorted(["data_profiling", "scoping", *AFTER_SCOPING])
    skipped = WorkflowTransition.objects.filter(execution__workflow_id=cycle_report_wf(cycle_report), skipped=True)
    assert sorted(skipped.values_list("to_phase", flat=True)) == sorted(["data_profiling", "scoping", *AFTER_SCOPING])
    assert not PopulationFile.objects.exists() and not ScopingDecision.objects.exists()


def test_worker_restart_and_unreachable_server_lose_nothing_and_duplicate_nothing(
    temporal_harness, settings, transactional_db, users, cycle, cycle_report
):
    point_settings_at(temporal_harness, settings)
    tester, owner = users["tester"], users["owner"]

    with temporal_harness.worker(settings.TEMPORAL_TASK_QUEUE):
        workflow_start(user=users["manager"], cycle=cycle, skip_phases=["data_profiling", *AFTER_SCOPING])
        cycle_report.refresh_from_db()
        wait_state(tester, cycle_report, State.AWAITING_SUBMISSION, "planning")
    # The worker is gone in the middle of Planning. A new one takes over.
    with temporal_harness.worker(settings.TEMPORAL_TASK_QUEUE):
        submitted = workflow_submit_version(user=tester, cycle_report=cycle_report, phase="planning")
        assert submitted.delivered

        # Temporal unreachable: the owner's approval is stored, not lost.
        settings.TEMPORAL_ADDRESS = "127.0.0.1:1"
        settings.TEMPORAL_RPC_TIMEOUT = 2
        pending = approve_latest(owner, cycle_report, "planning")
        assert not pending.delivered and "saved" in pending.message
        assert WorkflowDecision.objects.get(pk=pending.decision.pk).status == WorkflowDecision.Status.PENDING

        # Back online: the outbox delivers it with the same update id.
        settings.TEMPORAL_ADDRESS = temporal_harness.address
        assert decisions_deliver_pending() == 1
        assert WorkflowDecision.objects.get(pk=pending.decision.pk).status == WorkflowDecision.Status.DELIVERED
        assert decisions_deliver_pending() == 0

        wait_state(tester, cycle_report, State.AWAITING_SUBMISSION, "scoping")
        workflow_submit_version(user=tester, cycle_report=cycle_report, phase="scoping")
        approve_latest(owner, cycle_report, "scoping")
        wait_until(lambda: WorkflowExecution.objects.filter(
            workflow_id=cycle_report_wf(cycle_report), status=WorkflowExecution.Status.COMPLETED).exists(),
            what="report workflow completed")
        assert CycleReport.objects.get(pk=cycle_report.pk).status == "scoped"

    assert Attribute.objects.filter(cycle_report=cycle_report).count() == 5
    assert Version.objects.filter(cycle_report=cycle_report, phase="planning").count() == 1
    assert Approval.objects.filter(version__cycle_report=cycle_report).count() == 2
    transitions = WorkflowTransition.objects.filter(execution__workflow_id=cycle_report_wf(cycle_report))
    assert sorted(transitions.values_list("to_phase", flat=True)) == sorted(
        ["data_profiling", "planning", "scoping", *AFTER_SCOPING])
