"""From approved Scoping to evidence accepted for every request, with the real worker, activities
and database, on the time-skipping server so the reminders of days fire in the test."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from cycles.models import (
    Attribute,
    CycleReport,
    Evidence,
    InformationRequest,
    PhaseState,
    PopulationFile,
    RequestNotification,
    Sample,
    ScopingDecision,
)
from cycles.services.requests import (
    data_owner_assign,
    data_owners_assign_bulk,
    evidence_review,
    evidence_upload,
    information_request_review,
    information_request_submit,
)
from cycles.services.sampling import sample_add_manual, sample_remove, samples_draw
from versioning.models import Version, VersionItem, VersionStatus
from versioning.services import version_item_decide
from workflows.models import WorkflowAlert
from workflows.services import (
    workflow_complete_data_owners,
    workflow_decide_version,
    workflow_request_reviewed,
    workflow_request_submitted,
    workflow_start,
    workflow_status,
    workflow_submit_version,
)
from workflows.temporal.contracts import State
from workflows.testing import point_settings_at, wait_until

pytestmark = [pytest.mark.temporal, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def scoped_report(users, cycle, cycle_report, settings, tmp_path):
    """A report whose Planning, Profiling and Scoping were done (and are skipped by the workflow)."""
    settings.MEDIA_ROOT = str(tmp_path)
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    cycle.configuration = {**cycle.configuration, "rfi_due_days": 10, "reminder_days_before": [3, 1],
                           "escalation_days_after": 2, "data_owner_sla_days": 5}
    cycle.save(update_fields=["configuration"])
    rows = ["account_id,customer_name,balance,origination_date,is_delinquent"]
    rows += [f"A{i:04d},Customer {i},{100 + i},2024-01-{1 + i % 28:02d},{'true' if i % 9 == 0 else 'false'}"
             for i in range(200)]
    (tmp_path / "population.csv").write_text("\n".join(rows) + "\n")
    PopulationFile.objects.create(
        cycle_report=cycle_report, file="population.csv", original_name="population.csv", format="csv",
        size_bytes=1, sha256="0" * 64, row_count=200,
        columns=["account_id", "customer_name", "balance", "origination_date", "is_delinquent"],
        status=PopulationFile.Status.PROFILED, uploaded_by=users["tester"],
    )
    for name, in_scope, extra in [("account_id", True, {"primary_key": True, "mandatory": True}),
                                  ("balance", True, {"cde": True, "risk_score": 8}),
                                  ("origination_date", True, {}), ("customer_name", False, {})]:
        attribute = Attribute.objects.create(cycle_report=cycle_report, name=name, **extra)
        ScopingDecision.objects.create(attribute=attribute, in_scope=in_scope, rationale="Scoped",
                                       decided_by=users["tester"])
    return cycle_report


@pytest.fixture
def terminate_after(time_skipping_harness, cycle):
    """End the cycle's workflows after the test: a workflow left waiting for a task would hold
    the time-skipping server's clock for the tests that follow."""
    yield
    from temporalio.service import RPCError

    async def terminate():
        try:
            await time_skipping_harness.client.get_workflow_handle(f"cycle-{cycle.pk}").terminate("test over")
        except RPCError:
            pass  # never started, or already closed

    time_skipping_harness.call(terminate())


def fresh(cycle_report) -> CycleReport:
    return CycleReport.objects.select_related("report__lob", "cycle").get(pk=cycle_report.pk)


def sent(request, kind: str) -> int:
    return RequestNotification.objects.filter(request=request, kind=kind).count()


def test_parallel_step_requests_reminders_restart_and_evidence(
    time_skipping_harness, transactional_db, users, cycle, scoped_report, settings, mailoutbox, request,
    terminate_after,
):
    tester, owner, executive = users["tester"], users["owner"], users["executive"]
    data_owner, data_owner2 = users["data_owner"], users["data_owner2"]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    point_settings_at(time_skipping_harness, settings)
    first_worker = time_skipping_harness.worker(settings.TEMPORAL_TASK_QUEUE)
    first_worker.__enter__()
    running = [True]

    def stop_first_worker():
        if running.pop() if running else False:
            first_worker.__exit__(None, None, None)

    request.addfinalizer(stop_first_worker)
    workflow_start(user=users["manager"], cycle=cycle, skip_phases=["planning", "data_profiling", "scoping"])
    report = fresh(scoped_report)

    # Both phases of the parallel step are active at once.
    wait_until(lambda: PhaseState.objects.filter(cycle_report=report, status="active").count() == 2,
               what="both parallel phases active")
    status = wait_until(lambda: (s := workflow_status(user=tester, cycle_report=report)) and s.active == {
        "sample_selection": State.AWAITING_SUBMISSION, "data_owner_identification": State.AWAITING_ASSIGNMENT,
    } and s, what="parallel status")
    assert status.waiting_on == "Tester, Data Executive"

    # Sample Selection: draw, submit, one sample rejected, sent back, revised, approved.
    wait_until(lambda: hasattr(fresh(report), "sampling_plan"), what="sampling plan prepared")
    drawn = samples_draw(user=tester, cycle_report=fresh(report))
    assert len(drawn) == report.sampling_plan.sample_size
    v1 = workflow_submit_version(user=tester, cycle_report=fresh(report), phase="sample_selection")
    rejected = VersionItem.objects.filter(version_id=v1.result.version_id).first()
    version_item_decide(item=rejected, user=owner, approve=False, note="Closed account, not in the period")
    workflow_decide_version(user=owner, version=Version.objects.get(pk=v1.result.version_id), approve=False,
                            notes="Replace the closed account")
    wait_until(lambda: workflow_status(user=tester, cycle_report=fresh(report)).active["sample_selection"]
               == State.AWAITING_SUBMISSION, what="samples sent back")
    sample_remove(user=tester, sample=Sample.objects.get(cycle_report=report, key=rejected.key))
    replacement = next(f"A{i:04d}" for i in range(200) if not Sample.objects.filter(key=f"A{i:04d}").exists())
    sample_add_manual(user=tester, cycle_report=fresh(report), key=replacement, reason="Replaces a closed account")
    v2 = workflow_submit_version(user=tester, cycle_report=fresh(report), phase="sample_selection")
    workflow_decide_version(user=owner, version=Version.objects.get(pk=v2.result.version_id), approve=True)
    assert Version.objects.get(pk=v2.result.version_id).parent_id == v1.result.version_id

    # The join waits for Data Owner Identification.
    wait_until(lambda: PhaseState.objects.get(cycle_report=report, phase="sample_selection").status == "completed",
               what="sample selection completed")
    assert not InformationRequest.objects.exists()
    in_scope = Attribute.objects.filter(cycle_report=report, scoping__in_scope=True).order_by("name")
    data_owners_assign_bulk(user=executive, cycle_report=fresh(report), data_owner=data_owner,
                            attribute_ids=[a.pk for a in in_scope if a.name != "origination_date"])
    data_owner_assign(user=executive, attribute=in_scope.get(name="origination_date"), data_owner=data_owner2)
    workflow_complete_data_owners(user=executive, cycle_report=fresh(report))

    # Requests for Information: one per data owner, each emailed once.
    wait_until(lambda: RequestNotification.objects.filter(kind="request").count() == 2, what="requests sent")
    first = InformationRequest.objects.get(data_owner=data_owner)
    second = InformationRequest.objects.get(data_owner=data_owner2)
    assert sorted(first.sample_keys) == sorted(Version.objects.get(pk=v2.result.version_id)
                                               .items.values_list("key", flat=True))
    assert {m.to[0] for m in mailoutbox if "request" in m.subject.lower()} >= {data_owner.email, data_owner2.email}

    # The first data owner answers at once: no reminder will chase them.
    evidence_upload(user=data_owner, request=first,
                    files=[SimpleUploadedFile("ledger.csv", b"account_id,balance\nA0001,101\n")])
    information_request_submit(user=data_owner, request=first)
    workflow_request_submitted(user=data_owner, request=first)

    # Day 8: the reminder three days before the due date reached the second owner only.
    time_skipping_harness.sleep(timedelta(days=8))
    wait_until(lambda: sent(second, "reminder") == 1, what="first reminder")
    assert sent(first, "reminder") == 0

    # The worker is replaced between two reminders: the timers live in Temporal, not in the worker.
    # (The time-skipping server holds its clock while a task waits for a worker, so the days pass
    # once the new worker runs.)
    stop_first_worker()
    with time_skipping_harness.worker(settings.TEMPORAL_TASK_QUEUE):
        time_skipping_harness.sleep(timedelta(days=2, hours=1))
        wait_until(lambda: sent(second, "reminder") == 2 and sent(second, "due") == 1,
                   what="reminder and due notice after the restart")
        time_skipping_harness.sleep(timedelta(days=2, hours=1))
        wait_until(lambda: sent(second, "escalation") == 1, what="escalation")
        assert WorkflowAlert.objects.filter(key=f"request-overdue-{second.pk}").exists()
        second.refresh_from_db()
        assert second.escalated_at is not None
        assert sent(first, "reminder") == sent(first, "due") == sent(first, "escalation") == 0

        # The tester accepts the first request's evidence.
        evidence_review(user=tester, evidence=first.evidence.get(), accept=True)
        information_request_review(user=tester, request=first)
        workflow_request_reviewed(user=tester, request=first)

        # The second is returned once, then accepted; both uploads are kept.
        evidence_upload(user=data_owner2, request=second,
                        files=[SimpleUploadedFile("dates.csv", b"account_id,date\nA0001,2024-01-01\n")])
        information_request_submit(user=data_owner2, request=second)
        workflow_request_submitted(user=data_owner2, request=second)
        evidence_review(user=tester, evidence=second.evidence.get(), accept=False, note="Dates for all samples")
        information_request_review(user=tester, request=second)
        workflow_request_reviewed(user=tester, request=second)
        evidence_upload(user=data_owner2, request=second,
                        files=[SimpleUploadedFile("dates.csv", b"account_id,date\nA0001,2024-01-01\nA0002,x\n")])
        information_request_submit(user=data_owner2, request=second)
        workflow_request_submitted(user=data_owner2, request=second)
        latest = second.evidence.order_by("-version").first()
        assert latest.version == 2
        evidence_review(user=tester, evidence=latest, accept=True)
        information_request_review(user=tester, request=second)
        workflow_request_reviewed(user=tester, request=second)

        status = wait_until(
            lambda: (s := workflow_status(user=tester, cycle_report=fresh(report)))
            and s.phase == "test_execution" and s.state == State.AWAITING_SUBMISSION and s,
            what="test execution waiting for the tester",
        )
    assert status.test_progress["total"] == status.test_progress["not_tested"] > 0
    assert fresh(report).status == CycleReport.Status.IN_PROGRESS
    assert set(InformationRequest.objects.values_list("status", flat=True)) == {"accepted"}
    assert Evidence.objects.filter(request=second).count() == 2
    keys = list(RequestNotification.objects.values_list("key", flat=True))
    assert len(keys) == len(set(keys))
    assert Version.objects.get(pk=v2.result.version_id).status == VersionStatus.APPROVED


def test_data_owner_sla_escalates_on_its_timer(time_skipping_harness, temporal_time_skipping, users, cycle,
                                               scoped_report, settings, mailoutbox, terminate_after):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    workflow_start(user=users["manager"], cycle=cycle,
                   skip_phases=["planning", "data_profiling", "scoping", "sample_selection"])
    report = fresh(scoped_report)
    wait_until(lambda: RequestNotification.objects.filter(key=f"doi-{report.pk}-ask", kind="data_owners").exists(),
               what="data executive asked")
    assert not WorkflowAlert.objects.exists()
    time_skipping_harness.sleep(timedelta(days=5, hours=1))
    wait_until(lambda: WorkflowAlert.objects.filter(key=f"data-owner-sla-{report.pk}").exists(),
               what="SLA alert")
    assert RequestNotification.objects.filter(key=f"doi-{report.pk}-sla").count() == 1
    assert any(users["executive"].email in m.to for m in mailoutbox if "sla" in m.subject.lower()
               or "overdue" in m.subject.lower() or "data owner" in m.subject.lower())
