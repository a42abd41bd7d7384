"""More samples on failure: the proposal, its size and seed, and what the owner's approval changes."""
import datetime
import hashlib
import io
from pathlib import Path

import polars as pl
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from cycles.exceptions import ApplicationError, ConflictError, PermissionDeniedError
from cycles.models import (
    Attribute,
    InformationRequest,
    Phase,
    PhaseState,
    PopulationFile,
    Sample,
    SampleExtension,
    SamplingPlan,
    ScopingDecision,
    TestResult,
)
from cycles.sampling import select_random, with_row_index
from cycles.sampling.extension import allowed_deviations, extended_sample_size
from cycles.services import execution as ex
from cycles.services.execution import execution_rule_set
from cycles.services.requests import (
    data_owners_assign_bulk,
    evidence_review,
    evidence_upload,
    information_request_review,
    information_request_submit,
    information_requests_create,
)
from cycles.services.sample_extension import sample_extension_check, sample_extension_decide, sample_extension_propose
from cycles.services.sampling import samples_draw, sampling_plan_prepare
from versioning.models import VersionStatus
from versioning.services import version_create, version_decide

PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
ROWS = 200
SEED = 4242
# The source system disagrees on every 5th row's balance (one of the five samples seed 4242 draws).
CSV_TEXT = "account_id,balance,balance_src\n" + "".join(
    f"A{i:04d},{i}.00,{i + (1 if i % 5 == 0 else 0)}.00\n" for i in range(ROWS)
)


def test_the_extended_size_is_the_aicpa_size_that_allows_the_deviations_found():
    # AICPA Table A-1 at 5% risk and a 5% tolerable rate: 59 (0), 93 (1), 124 (2), 153 (3).
    sizes = [extended_sample_size(deviations=d, risk_of_overreliance=0.05, tolerable_rate=0.05).sample_size
             for d in range(4)]
    assert sizes == [59, 93, 124, 153]
    assert allowed_deviations(sample_size=124, risk_of_overreliance=0.05, tolerable_rate=0.05) == 2
    assert allowed_deviations(sample_size=5, risk_of_overreliance=0.05, tolerable_rate=0.05) == 0
    capped = extended_sample_size(deviations=2, risk_of_overreliance=0.05, tolerable_rate=0.05, population=50)
    assert capped.sample_size == 50 and "tested in full" in capped.rule


@pytest.fixture
def executed(settings, tmp_path, cycle_report, users, report):
    """A monthly high-risk report: 5 random samples (seed 4242), evidence accepted, rules run on balance."""
    settings.MEDIA_ROOT = str(tmp_path)
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)
    path = Path(tmp_path) / "populations" / "loans.csv"
    path.parent.mkdir(parents=True)
    path.write_text(CSV_TEXT, encoding="utf-8")
    population = PopulationFile.objects.create(
        cycle_report=cycle_report, file="populations/loans.csv", original_name="loans.csv",
        format=PopulationFile.Format.CSV, size_bytes=path.stat().st_size,
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(), row_count=ROWS,
        columns=["account_id", "balance", "balance_src"], status=PopulationFile.Status.PROFILED,
        uploaded_by=users["tester"],
    )
    report.frequency = "monthly"
    report.save(update_fields=["frequency"])
    tester = users["tester"]
    for name, risk, key in (("account_id", 8, True), ("balance", 8, False)):
        attribute = Attribute.objects.create(cycle_report=cycle_report, name=name, risk_score=risk, primary_key=key)
        ScopingDecision.objects.create(attribute=attribute, in_scope=True, rationale="test", decided_by=tester)
    cycle_report.phase = Phase.SAMPLE_SELECTION
    cycle_report.save(update_fields=["phase"])
    plan = sampling_plan_prepare(cycle_report_id=cycle_report.pk)
    SamplingPlan.objects.filter(pk=plan.pk).update(seed=SEED, population_file=population)
    samples = samples_draw(user=tester, cycle_report=cycle_report)
    version = version_create(cycle_report=cycle_report, phase=Phase.SAMPLE_SELECTION, author=tester,
                             items=[(s.key, {"row_index": s.row_index}) for s in samples])
    version_decide(version=version, user=users["owner"], approve=True)
    PhaseState.objects.create(cycle_report=cycle_report, phase=Phase.DATA_OWNER_IDENTIFICATION)
    data_owners_assign_bulk(user=users["executive"], cycle_report=cycle_report, data_owner=users["data_owner"],
                            attribute_ids=list(Attribute.objects.values_list("pk", flat=True)))
    PhaseState.objects.filter(phase=Phase.DATA_OWNER_IDENTIFICATION).update(status=PhaseState.Status.COMPLETED)
    [request] = information_requests_create(cycle_report_id=cycle_report.pk,
                                            due_date=datetime.date(2026, 9, 1))
    [file] = evidence_upload(user=users["data_owner"], request=request,
                             files=[SimpleUploadedFile("ledger.pdf", PDF, "application/pdf")])
    information_request_submit(user=users["data_owner"], request=request)
    evidence_review(user=tester, evidence=file, accept=True)
    information_request_review(user=tester, request=request)
    PhaseState.objects.create(cycle_report=cycle_report, phase=Phase.TEST_EXECUTION)
    cycle_report.phase = Phase.TEST_EXECUTION
    cycle_report.save(update_fields=["phase"])
    execution_rule_set(user=tester, attribute=Attribute.objects.get(name="balance"), kind="equality",
                       source_column="balance_src")
    ex.test_matrix_prepare(cycle_report_id=cycle_report.pk)
    return {"cycle_report": cycle_report, "request": request, "samples": samples}


def drawn(size):
    df = with_row_index(pl.read_csv(io.BytesIO(CSV_TEXT.encode()), infer_schema_length=0))
    return [s.sample_key for s in select_random(df, size=size, seed=SEED, key_column="account_id").samples]


def failing_keys(samples):
    return sorted(s.key for s in samples if int(s.key[1:]) % 5 == 0)


def test_no_extension_while_failures_stay_within_what_the_size_allows(executed):
    cycle_report = executed["cycle_report"]
    TestResult.objects.filter(result="fail").update(result="pass", failure_kind="")

    assert sample_extension_propose(cycle_report_id=cycle_report.pk) is None
    assert not SampleExtension.objects.exists()


def test_failures_beyond_the_allowed_deviations_propose_the_next_samples_of_the_same_seed(executed):
    cycle_report = executed["cycle_report"]
    failures = len(failing_keys(executed["samples"]))
    assert failures >= 1, "the seed must give at least one failing sample"
    [check] = [r for r in sample_extension_check(cycle_report=cycle_report) if r["attribute"].name == "balance"]
    assert (check["size"], check["failures"], check["allowed"], check["exceeds"]) == (5, failures, 0, True)

    extension = sample_extension_propose(cycle_report_id=cycle_report.pk)

    expected_size = extended_sample_size(deviations=failures, risk_of_overreliance=0.05,
                                         tolerable_rate=0.05, population=ROWS).sample_size
    assert (extension.current_size, extension.new_size, extension.seed) == (5, expected_size, SEED)
    assert list(extension.attributes.values_list("name", flat=True)) == ["balance"]
    assert extension.failures == {"balance": failures}
    first = drawn(5)
    assert sorted(first) == sorted(s.key for s in executed["samples"])
    assert extension.sample_keys == [k for k in drawn(expected_size) if k not in first]
    # Asking again (a retried activity, a second submission) proposes nothing new.
    assert sample_extension_propose(cycle_report_id=cycle_report.pk).pk == extension.pk


def test_approval_adds_the_samples_reopens_the_request_and_extends_the_matrix_for_that_attribute(executed, users):
    cycle_report = executed["cycle_report"]
    ids = list(TestResult.objects.exclude(result="fail").filter(result="not_tested").values_list("pk", flat=True))
    ex.test_results_bulk(user=users["tester"], cycle_report=cycle_report, result_ids=ids, action="pass")
    submitted = version_create(cycle_report=cycle_report, phase=Phase.TEST_EXECUTION, author=users["tester"],
                               items=[("x", {})])
    extension = sample_extension_propose(cycle_report_id=cycle_report.pk)
    added = len(extension.sample_keys)

    decided, reopened = sample_extension_decide(extension_id=extension.pk, user=users["owner"], approve=True,
                                                decision_id="6f1c1a34-5a57-4bb3-9d59-2f3fef2a1c11")

    assert decided.status == "approved"
    assert Sample.objects.filter(cycle_report=cycle_report).count() == 5 + added
    request = InformationRequest.objects.get(pk=executed["request"].pk)
    assert reopened == [request] and request.status == "open"
    assert request.sample_keys[-added:] == extension.sample_keys
    new_cells = TestResult.objects.filter(sample__key__in=extension.sample_keys)
    assert new_cells.count() == added
    assert set(new_cells.values_list("attribute__name", flat=True)) == {"balance"}
    assert not new_cells.filter(result="not_tested").exists()  # the equality rule ran on them
    submitted.refresh_from_db()
    assert submitted.status == VersionStatus.SUPERSEDED
    # The same decision again changes nothing; another is refused.
    again, _ = sample_extension_decide(extension_id=extension.pk, user=users["owner"], approve=True,
                                       decision_id="6f1c1a34-5a57-4bb3-9d59-2f3fef2a1c11")
    assert again.pk == extension.pk and Sample.objects.count() == 5 + added
    with pytest.raises(ConflictError, match="already approved"):
        sample_extension_decide(extension_id=extension.pk, user=users["owner"], approve=False, notes="no")


def test_a_rejection_needs_notes_and_settles_the_attribute(executed, users):
    cycle_report = executed["cycle_report"]
    extension = sample_extension_propose(cycle_report_id=cycle_report.pk)

    with pytest.raises(PermissionDeniedError):
        sample_extension_decide(extension_id=extension.pk, user=users["tester"], approve=True)
    with pytest.raises(ApplicationError, match="notes are required"):
        sample_extension_decide(extension_id=extension.pk, user=users["owner"], approve=False)
    sample_extension_decide(extension_id=extension.pk, user=users["owner"], approve=False,
                            notes="Known timing difference; raised as an observation.")

    assert Sample.objects.count() == 5
    assert sample_extension_propose(cycle_report_id=cycle_report.pk) is None
