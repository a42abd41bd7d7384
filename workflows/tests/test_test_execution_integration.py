"""Test Execution end to end with the real worker, activities and database, on the time-skipping server:
rules fill the matrix, a failure beyond what the sample allows proposes more samples, the owner approves,
the new samples go out through the reopened request on the same workflow (chased on its timers), come
back into the matrix, and the owner approves the results."""
from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from cycles.models import (
    Attribute,
    CycleReport,
    InformationRequest,
    PopulationFile,
    RequestNotification,
    Sample,
    SampleExtension,
    ScopingDecision,
    TestResult,
)
from cycles.services import execution as ex
from cycles.services.requests import (
    data_owners_assign_bulk,
    evidence_review,
    evidence_upload,
    information_request_review,
    information_request_submit,
)
from cycles.services.sampling import samples_draw, sampling_plan_update
from versioning.models import Version, VersionStatus
from workflows.services import (
    workflow_complete_data_owners,
    workflow_decide_extension,
    workflow_decide_version,
    workflow_request_reviewed,
    workflow_request_submitted,
    workflow_start,
    workflow_status,
    workflow_submit_version,
)
from workflows.temporal.contracts import State
from workflows.testing import point_settings_at
from workflows.testing import wait_until as _wait_until
from workflows.tests.test_integration_requests import fresh, terminate_after  # noqa: F401  (fixture)

def wait_until(predicate, *, what: str):
    # Patient: the machine may be busy, and each step waits on the worker's activities.
    return _wait_until(predicate, timeout=120, what=what)


pytestmark = [pytest.mark.temporal, pytest.mark.django_db(transaction=True)]

PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
ROWS = 200
SEED = 4242  # draws A0019, A0031, A0047, A0080, A0121 of this file
# The source system disagrees with the report on one row only: A0080, one of the five samples.
CSV = "account_id,balance,balance_src\n" + "".join(
    f"A{i:04d},{i}.00,{i + (1 if i == 80 else 0)}.00\n" for i in range(ROWS))


@pytest.fixture
def monthly_report(users, cycle, cycle_report, report, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    report.frequency = "monthly"
    report.save(update_fields=["frequency"])
    (tmp_path / "population.csv").write_text(CSV)
    PopulationFile.objects.create(
        cycle_report=cycle_report, file="population.csv", original_name="population.csv", format="csv",
        size_bytes=len(CSV), sha256=hashlib.sha256(CSV.encode()).hexdigest(), row_count=ROWS,
        columns=["account_id", "balance", "balance_src"], status=PopulationFile.Status.PROFILED,
        uploaded_by=users["tester"],
    )
    for name, extra in [("account_id", {"primary_key": True, "risk_score": 8}), ("balance", {"risk_score": 8})]:
        attribute = Attribute.objects.create(cycle_report=cycle_report, name=name, **extra)
        ScopingDecision.objects.create(attribute=attribute, in_scope=True, rationale="Scoped",
                                       decided_by=users["tester"])
    return cycle_report


def state(user, report):
    status = workflow_status(user=user, cycle_report=fresh(report))
    return status.active.get("test_execution") if status else None


def answer(users, request, name, keys=None):
    """The data owner uploads and submits; the tester accepts; the workflow hears both."""
    owner, tester = users["data_owner"], users["tester"]
    request.refresh_from_db()
    [file] = evidence_upload(user=owner, request=request, sample_keys=keys,
                             files=[SimpleUploadedFile(name, PDF, "application/pdf")])
    information_request_submit(user=owner, request=request)
    workflow_request_submitted(user=owner, request=request)
    evidence_review(user=tester, evidence=file, accept=True)
    information_request_review(user=tester, request=request)
    workflow_request_reviewed(user=tester, request=request)
    return file


def test_a_failure_beyond_the_allowed_deviations_extends_the_sample_on_the_same_workflow(
    time_skipping_harness, users, cycle, monthly_report, settings, terminate_after,  # noqa: F811
):
    tester, owner = users["tester"], users["owner"]
    point_settings_at(time_skipping_harness, settings)
    with time_skipping_harness.worker(settings.TEMPORAL_TASK_QUEUE):
        # Observations and Finalize are tested in test_finalize_integration.py.
        workflow_start(user=users["manager"], cycle=cycle,
                       skip_phases=["planning", "data_profiling", "scoping", "observations", "finalize"])
        report = fresh(monthly_report)

        # Sample Selection with a recorded seed; Data Owner Identification beside it.
        wait_until(lambda: hasattr(fresh(report), "sampling_plan"), what="sampling plan prepared")
        sampling_plan_update(user=tester, cycle_report=fresh(report), seed=SEED)
        drawn = samples_draw(user=tester, cycle_report=fresh(report))
        assert sorted(s.key for s in drawn) == ["A0019", "A0031", "A0047", "A0080", "A0121"]
        samples = workflow_submit_version(user=tester, cycle_report=fresh(report), phase="sample_selection")
        workflow_decide_version(user=owner, version=Version.objects.get(pk=samples.result.version_id), approve=True)
        wait_until(lambda: workflow_status(user=tester, cycle_report=fresh(report)).active.get(
            "data_owner_identification") == State.AWAITING_ASSIGNMENT, what="data owners asked")
        data_owners_assign_bulk(user=users["executive"], cycle_report=fresh(report), data_owner=users["data_owner"],
                                attribute_ids=list(Attribute.objects.values_list("pk", flat=True)))
        workflow_complete_data_owners(user=users["executive"], cycle_report=fresh(report))

        # Requests for Information: one request, answered and accepted.
        request = wait_until(lambda: InformationRequest.objects.filter(cycle_report=report).first(),
                             what="request created")
        wait_until(lambda: workflow_status(user=tester, cycle_report=fresh(report)).requests.get(str(request.pk))
                   == "open", what="workflow waiting on the request")
        answer(users, request, "ledger.pdf")

        # Test Execution: the matrix is prepared; the rule finds A0080's balance differs from the source.
        wait_until(lambda: state(tester, report) == State.AWAITING_SUBMISSION, what="test execution ready")
        status = workflow_status(user=tester, cycle_report=fresh(report))
        assert status.test_progress["total"] == 10 and status.test_progress["done"] == 0
        assert fresh(report).status == CycleReport.Status.IN_PROGRESS
        ex.execution_rule_set(user=tester, attribute=Attribute.objects.get(name="balance"), kind="equality",
                              source_column="balance_src")
        ex.test_matrix_prepare(cycle_report_id=report.pk)
        failed = TestResult.objects.get(result="fail")
        assert (failed.sample.key, failed.expected_value, failed.observed_value) == ("A0080", "80.00", "81.00")
        untested = list(TestResult.objects.filter(result="not_tested").values_list("pk", flat=True))
        ex.test_results_bulk(user=tester, cycle_report=fresh(report), result_ids=untested, action="pass")

        # Submitted: 1 failure where a sample of 5 allows none, so the workflow proposes more samples.
        submitted = workflow_submit_version(user=tester, cycle_report=fresh(report), phase="test_execution")
        assert "proposes 88 more samples" in submitted.message
        extension = SampleExtension.objects.get()
        assert (extension.current_size, extension.new_size, extension.seed) == (5, 93, SEED)
        status = workflow_status(user=tester, cycle_report=fresh(report))
        assert (status.active["test_execution"], status.waiting_on) == (
            State.AWAITING_EXTENSION_DECISION, "Report Owner")
        assert status.pending_extension_id == extension.pk

        # The owner approves: the samples exist, the request is reopened on this workflow and chased.
        workflow_decide_extension(user=owner, extension=extension, approve=True)
        wait_until(lambda: state(tester, report) == State.AWAITING_EVIDENCE, what="extension requests out")
        assert Sample.objects.filter(cycle_report=report).count() == 93
        request.refresh_from_db()
        assert request.status == "open" and request.sample_keys[-88:] == extension.sample_keys
        assert Version.objects.get(pk=submitted.result.version_id).status == VersionStatus.SUPERSEDED
        new_cells = TestResult.objects.filter(sample__key__in=extension.sample_keys)
        assert new_cells.count() == 88 and set(new_cells.values_list("attribute__name", flat=True)) == {"balance"}
        wait_until(lambda: RequestNotification.objects.filter(key__endswith="-x1", kind="request").exists(),
                   what="the extension's request email")
        time_skipping_harness.sleep(timedelta(days=8))
        wait_until(lambda: RequestNotification.objects.filter(request=request, kind="reminder",
                                                              key__contains="-x1").count() == 1,
                   what="a reminder of the extension's request")

        # The evidence comes back for the new samples; the matrix is ready for the tester again.
        answer(users, request, "ledger-extension.pdf", keys=extension.sample_keys)
        wait_until(lambda: state(tester, report) == State.AWAITING_SUBMISSION, what="back to the tester")
        assert not TestResult.objects.filter(result="not_tested").exists()  # the rule tested the new cells
        assert TestResult.objects.filter(result="fail").count() == 1
        cell = new_cells.first()
        assert [e.original_name for e in ex.evidence_covering(
            cycle_report=report, sample=cell.sample, attribute=cell.attribute)] == [
            "ledger-extension.pdf", "ledger.pdf"]

        # Submitted again: 1 failure in 93 is allowed; the owner approves and the report completes.
        again = workflow_submit_version(user=tester, cycle_report=fresh(report), phase="test_execution")
        assert SampleExtension.objects.count() == 1
        workflow_decide_version(user=owner, version=Version.objects.get(pk=again.result.version_id), approve=True)
        wait_until(lambda: fresh(report).status == CycleReport.Status.COMPLETED, what="report completed")
    version = Version.objects.get(pk=again.result.version_id)
    assert version.status == VersionStatus.APPROVED and version.items.count() == 98
    assert version.items.get(key="A0080|balance").data["result"] == "fail"
