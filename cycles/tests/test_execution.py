"""Test Execution services: the matrix, rules, manual results, history, bulk actions, evidence and the version."""
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from cycles.exceptions import ApplicationError, ConflictError, PermissionDeniedError, PhaseLockedError
from cycles.models import (
    Attribute,
    Evidence,
    ExecutionRule,
    FailureKind,
    Phase,
    PhaseState,
    Sample,
    SamplingPlan,
    TestResult,
    TestResultHistory,
)
from cycles.services.artifacts import phase_artifact_items
# The module, not its functions: pytest would collect test_result_record & co. as tests.
from cycles.services import execution as ex
from cycles.services.execution import (
    BulkAction,
    evidence_by_cell,
    evidence_covering,
    evidence_links_set,
    execution_rule_set,
    request_coverage,
    rule_evaluate,
)
from cycles.services.requests import evidence_review, evidence_upload, information_request_review
from cycles.services.requests import information_request_submit
from cycles.testing import artifact_refusal
from cycles.tests.test_requests import requests_ready
from synapse.audit import audit_events_for

PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"

ROWS = {
    "S-001": {"account_id": "S-001", "balance": "100.00", "balance_src": "100.00", "customer_name": "Ann Lee"},
    "S-002": {"account_id": "S-002", "balance": "250.50", "balance_src": "250.52", "customer_name": "bob"},
    "S-003": {"account_id": "S-003", "balance": "-5", "balance_src": "7", "customer_name": ""},
}


def make_samples(cycle_report, user, rows=ROWS):
    for i, (key, row) in enumerate(rows.items()):
        Sample.objects.create(cycle_report=cycle_report, key=key, row_index=i, row_data=row,
                              method=SamplingPlan.Method.RANDOM, seed=7, added_by=user)


def enter_test_execution(cycle_report):
    for phase in (Phase.DATA_OWNER_IDENTIFICATION, Phase.REQUEST_FOR_INFORMATION):
        PhaseState.objects.update_or_create(cycle_report=cycle_report, phase=phase,
                                            defaults={"status": PhaseState.Status.COMPLETED})
    PhaseState.objects.update_or_create(cycle_report=cycle_report, phase=Phase.TEST_EXECUTION,
                                        defaults={"status": PhaseState.Status.ACTIVE})
    cycle_report.phase = Phase.TEST_EXECUTION
    cycle_report.save(update_fields=["phase"])


def accept_all(requests, users, links=None):
    """Each data owner uploads one file, submits; the tester accepts it. links: {username: (keys, attr ids)}."""
    evidence = {}
    for username, request in requests.items():
        owner = request.data_owner
        [file] = evidence_upload(user=owner, request=request,
                                 files=[SimpleUploadedFile(f"{username}.pdf", PDF, "application/pdf")])
        if links and username in links:
            evidence_links_set(user=owner, evidence=file, sample_keys=links[username][0],
                               attribute_ids=links[username][1])
        information_request_submit(user=owner, request=request)
        evidence_review(user=users["tester"], evidence=file, accept=True)
        information_request_review(user=users["tester"], request=request)
        evidence[username] = file
    return evidence


@pytest.fixture
def matrix(cycle_report, users, storage):
    """Three samples × three in-scope attributes, evidence accepted, Test Execution running."""
    make_samples(cycle_report, users["tester"])
    requests = requests_ready(cycle_report, users)
    evidence = accept_all(requests, users)
    enter_test_execution(cycle_report)
    attributes = {a.name: a for a in Attribute.objects.filter(cycle_report=cycle_report)}
    return {"requests": requests, "evidence": evidence, "attributes": attributes, "cycle_report": cycle_report}


def cell(cycle_report, key, name):
    return TestResult.objects.get(cycle_report=cycle_report, sample__key=key, attribute__name=name)


# --- rules, pure -------------------------------------------------------------------------------------


def rule(kind, **fields):
    return ExecutionRule(kind=kind, **fields)


BALANCE = Attribute(name="balance", mandatory=True)


@pytest.mark.parametrize(
    "the_rule, row, result, kind",
    [
        (rule("equality", source_column="src"), {"balance": "1,250.00", "src": "1250"}, "pass", ""),
        (rule("equality", source_column="src"), {"balance": "10", "src": "11"}, "fail", FailureKind.MISMATCH),
        (rule("equality", source_column="src"), {"balance": "abc", "src": "ABC"}, "fail", FailureKind.MISMATCH),
        (rule("equality", source_column="src"), {"balance": "", "src": "3"}, "fail", FailureKind.MISSING),
        (rule("equality", source_column="src"), {"balance": "3"}, "inconclusive", ""),
        (rule("tolerance", source_column="src", tolerance=Decimal("0.05")), {"balance": "1.00", "src": "1.05"},
         "pass", ""),
        (rule("tolerance", source_column="src", tolerance=Decimal("0.05")), {"balance": "1.00", "src": "1.06"},
         "fail", FailureKind.TOLERANCE),
        (rule("tolerance", source_column="src", tolerance=Decimal("1")), {"balance": "x", "src": "1"},
         "fail", FailureKind.FORMAT),
        (rule("format", pattern=r"\d{3}-\d{2}"), {"balance": "123-45"}, "pass", ""),
        (rule("format", pattern=r"\d{3}-\d{2}"), {"balance": "123-456"}, "fail", FailureKind.FORMAT),
        (rule("format", pattern=r"\d+"), {"balance": " "}, "fail", FailureKind.MISSING),
        (rule("range", min_value=Decimal("0"), max_value=Decimal("100")), {"balance": "100"}, "pass", ""),
        (rule("range", min_value=Decimal("0")), {"balance": "-0.01"}, "fail", FailureKind.RANGE),
        (rule("range", max_value=Decimal("0")), {"Balance ": "1"}, "fail", FailureKind.RANGE),
        (rule("range", min_value=Decimal("0")), {"balance": "n/a"}, "fail", FailureKind.FORMAT),
        (rule("range", min_value=Decimal("0")), {"other": "1"}, "inconclusive", ""),
    ],
)
def test_rules_compare_the_row_with_its_source_or_check_format_and_range(the_rule, row, result, kind):
    outcome = rule_evaluate(rule=the_rule, attribute=BALANCE, row=row)

    assert (outcome.result, outcome.failure_kind) == (result, kind), outcome.detail
    assert outcome.detail


def test_an_empty_optional_value_is_not_applicable_by_format():
    outcome = rule_evaluate(rule=rule("format", pattern=r"\d+"), attribute=Attribute(name="n", mandatory=False),
                            row={"n": ""})

    assert outcome.result == "not_applicable"


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"kind": "equality"}, "Name the population column"),
        ({"kind": "tolerance", "source_column": "balance_src"}, "needs a tolerance"),
        ({"kind": "tolerance", "source_column": "balance_src", "tolerance": "abc"}, "must be a number"),
        ({"kind": "format", "pattern": "("}, "not valid"),
        ({"kind": "range"}, "minimum, a maximum or both"),
        ({"kind": "range", "min_value": "5", "max_value": "1"}, "above the maximum"),
        ({"kind": "guess"}, "Choose a rule kind"),
    ],
)
def test_a_rule_that_cannot_work_is_refused_with_a_message(matrix, users, fields, message):
    with pytest.raises(ApplicationError, match=message):
        execution_rule_set(user=users["tester"], attribute=matrix["attributes"]["balance"], **fields)

    assert not ExecutionRule.objects.exists()


def test_only_the_assigned_tester_sets_rules(matrix, users):
    with pytest.raises(PermissionDeniedError):
        execution_rule_set(user=users["tester2"], attribute=matrix["attributes"]["balance"], kind="equality",
                           source_column="balance_src")


# --- the matrix -----------------------------------------------------------------------------------------


def test_the_matrix_has_a_cell_per_approved_sample_and_in_scope_attribute_and_runs_rules(matrix, users):
    cycle_report = matrix["cycle_report"]
    execution_rule_set(user=users["tester"], attribute=matrix["attributes"]["balance"], kind="tolerance",
                       source_column="balance_src", tolerance="0.01")

    progress = ex.test_matrix_prepare(cycle_report_id=cycle_report.pk)

    assert progress["total"] == 9  # notes is out of scope
    assert progress["done"] == 3
    assert not TestResult.objects.filter(attribute__name="notes").exists()
    assert cell(cycle_report, "S-001", "balance").result == "pass"
    failed = cell(cycle_report, "S-002", "balance")
    assert (failed.result, failed.failure_kind, failed.method) == ("fail", "tolerance", "rule")
    assert (failed.expected_value, failed.observed_value) == ("250.50", "250.52")
    assert cell(cycle_report, "S-002", "customer_name").expected_value == "bob"
    assert cell(cycle_report, "S-002", "customer_name").result == "not_tested"


def test_preparing_again_adds_nothing_and_keeps_results(matrix, users):
    cycle_report = matrix["cycle_report"]
    ex.test_matrix_prepare(cycle_report_id=cycle_report.pk)
    target = cell(cycle_report, "S-001", "account_id")
    ex.test_result_record(user=users["tester"], result=target, outcome="pass", observed_value="S-001")

    again = ex.test_matrix_prepare(cycle_report_id=cycle_report.pk)

    assert again["total"] == 9 and again["done"] == 1
    assert TestResult.objects.count() == 9
    assert cell(cycle_report, "S-001", "account_id").result == "pass"


def test_a_retest_keeps_every_earlier_result_in_the_history(matrix, users):
    cycle_report = matrix["cycle_report"]
    ex.test_matrix_prepare(cycle_report_id=cycle_report.pk)
    target = cell(cycle_report, "S-003", "customer_name")

    ex.test_result_record(user=users["tester"], result=target, outcome="fail", comment="Name missing in the report.",
                       failure_kind="missing")
    ex.test_result_record(user=users["tester"], result=target, outcome="inconclusive", comment="Asked again.")
    final = ex.test_result_record(user=users["tester"], result=target, outcome="pass", observed_value="Cy Doe")

    assert (final.result, final.attempt, final.failure_kind) == ("pass", 3, "")
    history = list(TestResultHistory.objects.filter(test_result=target).order_by("attempt"))
    assert [(h.attempt, h.result, h.comment) for h in history] == [
        (1, "fail", "Name missing in the report."), (2, "inconclusive", "Asked again.")]
    assert history[0].failure_kind == "missing"
    assert audit_events_for(final).filter(action="test_result.record").count() == 3


@pytest.mark.parametrize("outcome", ["fail", "inconclusive", "not_applicable"])
def test_a_result_other_than_pass_needs_a_comment(matrix, users, outcome):
    ex.test_matrix_prepare(cycle_report_id=matrix["cycle_report"].pk)
    target = cell(matrix["cycle_report"], "S-001", "balance")

    with pytest.raises(ApplicationError, match="a comment is required"):
        ex.test_result_record(user=users["tester"], result=target, outcome=outcome)

    assert TestResult.objects.get(pk=target.pk).result == "not_tested"


def test_bad_results_are_refused(matrix, users):
    ex.test_matrix_prepare(cycle_report_id=matrix["cycle_report"].pk)
    target = cell(matrix["cycle_report"], "S-001", "balance")

    with pytest.raises(ApplicationError, match="Choose a result"):
        ex.test_result_record(user=users["tester"], result=target, outcome="not_tested")
    with pytest.raises(ApplicationError, match="Unknown kind of failure"):
        ex.test_result_record(user=users["tester"], result=target, outcome="fail", comment="x", failure_kind="odd")
    with pytest.raises(PermissionDeniedError):
        ex.test_result_record(user=users["tester2"], result=target, outcome="pass")


def test_results_can_change_only_while_test_execution_runs(matrix, users):
    cycle_report = matrix["cycle_report"]
    ex.test_matrix_prepare(cycle_report_id=cycle_report.pk)
    PhaseState.objects.filter(cycle_report=cycle_report, phase=Phase.TEST_EXECUTION).update(
        status=PhaseState.Status.COMPLETED)

    with pytest.raises(PhaseLockedError, match="complete"):
        ex.test_result_record(user=users["tester"], result=cell(cycle_report, "S-001", "balance"), outcome="pass")


def test_bulk_actions_apply_to_the_selected_cells_and_keep_history(matrix, users):
    cycle_report = matrix["cycle_report"]
    ex.test_matrix_prepare(cycle_report_id=cycle_report.pk)
    ids = list(TestResult.objects.filter(attribute__name="account_id").order_by("pk").values_list("pk", flat=True))
    TestResult.objects.filter(pk=ids[2]).update(observed_value="A-0003 as seen")

    assert ex.test_results_bulk(user=users["tester"], cycle_report=cycle_report, result_ids=ids, action="pass") == 3
    # What was observed is kept; only a cell with nothing observed takes its expected value.
    assert TestResult.objects.get(pk=ids[2]).observed_value == "A-0003 as seen"
    ex.test_results_bulk(user=users["tester"], cycle_report=cycle_report, result_ids=ids[:1],
                      action=BulkAction.NOT_APPLICABLE, comment="Closed account.")

    assert sorted(TestResult.objects.filter(pk__in=ids).values_list("result", flat=True)) == [
        "not_applicable", "pass", "pass"]
    assert TestResultHistory.objects.get(test_result_id=ids[0]).result == "pass"
    assert ex.test_execution_progress(cycle_report=cycle_report)["done"] == 3
    passed = TestResult.objects.get(pk=ids[1])
    # A bulk pass observes the expected value and relies on the accepted evidence covering the cell.
    assert passed.observed_value == passed.expected_value
    assert list(passed.evidence.all()) == [matrix["evidence"]["dataowner"]]


def test_a_bulk_action_takes_as_many_queries_for_nine_cells_as_for_one(matrix, users):
    """Cells are written in batches, their earlier results kept and evidence linked per batch: a tester passing
    a whole matrix at once waits for a few statements, not three for every cell."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    cycle_report = matrix["cycle_report"]
    ex.test_matrix_prepare(cycle_report_id=cycle_report.pk)
    ids = list(TestResult.objects.filter(cycle_report=cycle_report).order_by("pk").values_list("pk", flat=True))
    assert len(ids) == 9
    # Every cell tested once: from here on each has an earlier result to keep.
    ex.test_results_bulk(user=users["tester"], cycle_report=cycle_report, result_ids=ids, action=BulkAction.PASS)
    counts = {}
    for action, comment in ((BulkAction.PASS, ""), (BulkAction.NOT_APPLICABLE, "Closed accounts.")):
        for chosen in (ids[:1], ids):
            with CaptureQueriesContext(connection) as queries:
                ex.test_results_bulk(user=users["tester"], cycle_report=cycle_report, result_ids=chosen,
                                     action=action, comment=comment)
            counts[(action, len(chosen))] = len(queries)
    assert counts[(BulkAction.PASS, 1)] == counts[(BulkAction.PASS, 9)]
    assert counts[(BulkAction.NOT_APPLICABLE, 1)] == counts[(BulkAction.NOT_APPLICABLE, 9)]
    # What each cell went through is kept: passed (attempts 1 to 3), then not applicable (4, 5).
    first = TestResult.objects.get(pk=ids[0])
    assert (first.result, first.attempt, first.comment) == ("not_applicable", 5, "Closed accounts.")
    assert list(TestResultHistory.objects.filter(test_result=first).order_by("attempt")
                .values_list("attempt", "result")) == [(1, "pass"), (2, "pass"), (3, "pass"), (4, "not_applicable")]
    passed = TestResultHistory.objects.get(test_result_id=ids[1], attempt=1)
    assert passed.result == "pass" and passed.evidence_ids and passed.replaced_by == users["tester"]


def test_bulk_actions_refuse_a_missing_comment_cells_of_another_report_and_rules_that_do_not_exist(
        matrix, users, cycle):
    cycle_report = matrix["cycle_report"]
    ex.test_matrix_prepare(cycle_report_id=cycle_report.pk)
    ids = list(TestResult.objects.values_list("pk", flat=True))

    with pytest.raises(ApplicationError, match="comment is required"):
        ex.test_results_bulk(user=users["tester"], cycle_report=cycle_report, result_ids=ids, action="not_applicable")
    with pytest.raises(ApplicationError, match="no rule to re-test by"):
        ex.test_results_bulk(user=users["tester"], cycle_report=cycle_report, result_ids=ids, action="run_rules")
    with pytest.raises(ApplicationError, match="not in this report"):
        ex.test_results_bulk(user=users["tester"], cycle_report=cycle_report, result_ids=[*ids, 10_000],
                          action="pass")
    with pytest.raises(ApplicationError, match="Select at least one"):
        ex.test_results_bulk(user=users["tester"], cycle_report=cycle_report, result_ids=[], action="pass")
    assert ex.test_execution_progress(cycle_report=cycle_report)["done"] == 0


def test_rerunning_a_rule_after_changing_it_keeps_the_earlier_outcome(matrix, users):
    cycle_report = matrix["cycle_report"]
    balance = matrix["attributes"]["balance"]
    execution_rule_set(user=users["tester"], attribute=balance, kind="equality", source_column="balance_src")
    ex.test_matrix_prepare(cycle_report_id=cycle_report.pk)
    assert cell(cycle_report, "S-002", "balance").result == "fail"

    execution_rule_set(user=users["tester"], attribute=balance, kind="tolerance", source_column="balance_src",
                       tolerance="0.05")
    ids = list(TestResult.objects.filter(attribute=balance).values_list("pk", flat=True))
    ex.test_results_bulk(user=users["tester"], cycle_report=cycle_report, result_ids=ids, action="run_rules")

    retested = cell(cycle_report, "S-002", "balance")
    assert (retested.result, retested.attempt) == ("pass", 2)
    assert retested.history.get().failure_kind == "mismatch"


def test_filters_failed_untested_and_one_attribute(matrix, users):
    cycle_report = matrix["cycle_report"]
    execution_rule_set(user=users["tester"], attribute=matrix["attributes"]["balance"], kind="equality",
                       source_column="balance_src")
    ex.test_matrix_prepare(cycle_report_id=cycle_report.pk)

    failed = ex.test_results_for(user=users["tester"], cycle_report=cycle_report, failed_only=True)
    untested = ex.test_results_for(user=users["tester"], cycle_report=cycle_report, untested_only=True)
    one = ex.test_results_for(user=users["owner"], cycle_report=cycle_report,
                           attribute_id=matrix["attributes"]["customer_name"].pk)

    assert sorted(c.sample.key for c in failed) == ["S-002", "S-003"]
    assert untested.count() == 6
    assert {c.attribute.name for c in one} == {"customer_name"} and one.count() == 3
    with pytest.raises(PermissionDeniedError):
        ex.test_results_for(user=users["tester2"], cycle_report=cycle_report)


# --- evidence tied to cells ---------------------------------------------------------------------------


def test_a_file_without_links_covers_its_whole_request(matrix, users):
    cycle_report = matrix["cycle_report"]
    ex.test_matrix_prepare(cycle_report_id=cycle_report.pk)
    target = cell(cycle_report, "S-002", "balance")
    evidence = matrix["evidence"]["dataowner"]

    recorded = ex.test_result_record(user=users["tester"], result=target, outcome="pass", observed_value="250.50",
                                  evidence_ids=[evidence.pk])

    assert list(recorded.evidence.all()) == [evidence]
    # The other data owner's file covers customer_name only.
    with pytest.raises(ApplicationError, match="does not cover sample S-002"):
        ex.test_result_record(user=users["tester"], result=target, outcome="pass",
                           evidence_ids=[matrix["evidence"]["dataowner2"].pk])


def test_links_narrow_a_file_to_samples_and_attributes_and_coverage_shows_the_gaps(cycle_report, users, storage):
    make_samples(cycle_report, users["tester"])
    requests = requests_ready(cycle_report, users)
    request = requests["dataowner"]
    balance = Attribute.objects.get(cycle_report=cycle_report, name="balance")
    [file] = evidence_upload(user=users["data_owner"], request=request,
                             files=[SimpleUploadedFile("ledger.pdf", PDF, "application/pdf")])

    evidence_links_set(user=users["data_owner"], evidence=file, sample_keys=["S-001", "S-002"],
                       attribute_ids=[balance.pk])

    coverage = request_coverage(request=request)
    assert coverage["total"] == 6 and coverage["missing"] == 4
    covered = {(row["key"], c["attribute"].name) for row in coverage["rows"] for c in row["cells"] if c["evidence"]}
    assert covered == {("S-001", "balance"), ("S-002", "balance")}
    cells = evidence_by_cell(cycle_report=cycle_report)
    s3 = Sample.objects.get(key="S-003")
    assert cells[(s3.pk, balance.pk)] == []
    with pytest.raises(ApplicationError, match="not in the request: S-999"):
        evidence_links_set(user=users["data_owner"], evidence=file, sample_keys=["S-999"], attribute_ids=[])
    with pytest.raises(PermissionDeniedError):
        evidence_links_set(user=users["data_owner2"], evidence=file, sample_keys=[], attribute_ids=[])
    evidence_links_set(user=users["data_owner"], evidence=file, sample_keys=[], attribute_ids=[])
    assert request_coverage(request=request)["missing"] == 0


def test_only_accepted_evidence_supports_a_result(cycle_report, users, storage):
    make_samples(cycle_report, users["tester"])
    requests = requests_ready(cycle_report, users)
    [file] = evidence_upload(user=users["data_owner"], request=requests["dataowner"],
                             files=[SimpleUploadedFile("ledger.pdf", PDF, "application/pdf")])
    sample = Sample.objects.get(key="S-001")
    balance = Attribute.objects.get(cycle_report=cycle_report, name="balance")

    assert evidence_covering(cycle_report=cycle_report, sample=sample, attribute=balance) == []
    file.status = Evidence.Status.ACCEPTED
    file.save(update_fields=["status"])
    assert evidence_covering(cycle_report=cycle_report, sample=sample, attribute=balance) == [file]


# --- the version ----------------------------------------------------------------------------------------


def test_the_matrix_is_submitted_only_when_every_cell_is_tested(matrix, users):
    cycle_report = matrix["cycle_report"]
    ex.test_matrix_prepare(cycle_report_id=cycle_report.pk)

    with pytest.raises(ConflictError, match="9 of 9 cells are not tested"):
        phase_artifact_items(cycle_report=cycle_report, phase=Phase.TEST_EXECUTION)
    assert artifact_refusal(cycle_report, Phase.TEST_EXECUTION)  # a submission is refused so before it is sent

    ids = list(TestResult.objects.values_list("pk", flat=True))
    ex.test_results_bulk(user=users["tester"], cycle_report=cycle_report, result_ids=ids, action="pass")
    items = dict(phase_artifact_items(cycle_report=cycle_report, phase=Phase.TEST_EXECUTION))
    assert len(items) == 9
    assert items["S-002|balance"]["expected_value"] == "250.50"
    assert items["S-002|balance"]["result"] == "pass"


def test_a_submission_is_checked_by_counting_cells_not_by_reading_them(matrix, users):
    """The tester's submission says what isn't ready without building the version (the worker does): two counts
    in one query, whatever the size of the matrix."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from cycles.services.artifacts import phase_artifact_check

    cycle_report = matrix["cycle_report"]
    with pytest.raises(ApplicationError, match="The test matrix is empty"):
        phase_artifact_check(cycle_report=cycle_report, phase=Phase.TEST_EXECUTION)
    ex.test_matrix_prepare(cycle_report_id=cycle_report.pk)
    ids = list(TestResult.objects.order_by("pk").values_list("pk", flat=True))
    ex.test_results_bulk(user=users["tester"], cycle_report=cycle_report, result_ids=ids[1:], action="pass")
    with CaptureQueriesContext(connection) as queries, pytest.raises(ConflictError, match="1 of 9 cells"):
        phase_artifact_check(cycle_report=cycle_report, phase=Phase.TEST_EXECUTION)
    assert len(queries) == 1
    ex.test_results_bulk(user=users["tester"], cycle_report=cycle_report, result_ids=ids[:1], action="pass")
    assert phase_artifact_check(cycle_report=cycle_report, phase=Phase.TEST_EXECUTION) is None



# --- the stored counts and paging through the matrix -------------------------------------------------------


def counted_by_trigger(cycle_report) -> dict:
    from cycles.models import TestResultCount

    return {(c.attribute_id, c.result): c.n for c in TestResultCount.objects.filter(cycle_report=cycle_report)
            if c.n}


def counted_live(cycle_report) -> dict:
    from django.db.models import Count

    return {(a, r): n for a, r, n in TestResult.objects.filter(cycle_report=cycle_report)
            .values_list("attribute_id", "result").annotate(n=Count("pk")).order_by()}


def test_the_stored_counts_follow_every_write_to_the_matrix(matrix, users):
    """Bulk insert, rules, a manual result, a bulk action, a queryset update and a delete: the counts
    the pages read stay those of the cells."""
    cycle_report = matrix["cycle_report"]
    assert counted_by_trigger(cycle_report) == {}
    execution_rule_set(user=users["tester"], attribute=matrix["attributes"]["balance"], kind="equality",
                       source_column="balance_src")
    ex.test_matrix_prepare(cycle_report_id=cycle_report.pk)
    assert counted_by_trigger(cycle_report) == counted_live(cycle_report)
    assert (matrix["attributes"]["balance"].pk, "fail") in counted_by_trigger(cycle_report)

    ex.test_result_record(user=users["tester"], result=cell(cycle_report, "S-001", "account_id"), outcome="fail",
                          comment="Wrong account.", failure_kind=FailureKind.MISMATCH)
    ids = list(TestResult.objects.filter(attribute__name="customer_name").values_list("pk", flat=True))
    ex.test_results_bulk(user=users["tester"], cycle_report=cycle_report, result_ids=ids, action="pass")
    assert counted_by_trigger(cycle_report) == counted_live(cycle_report)

    TestResult.objects.filter(cycle_report=cycle_report, result="fail").update(result="inconclusive", failure_kind="")
    assert counted_by_trigger(cycle_report) == counted_live(cycle_report)
    TestResult.objects.filter(cycle_report=cycle_report, sample__key="S-003").delete()
    assert counted_by_trigger(cycle_report) == counted_live(cycle_report)
    progress = ex.test_execution_progress(cycle_report=cycle_report)
    assert (progress["total"], progress["pass"], progress["inconclusive"]) == (6, 3, 2)
    in_scope = set(TestResult.objects.filter(cycle_report=cycle_report).values_list("attribute_id", flat=True))
    assert ex.cells_per_attribute(cycle_report=cycle_report) == {pk: 2 for pk in in_scope}


@pytest.mark.parametrize("filters", [{}, {"failed_only": True}, {"untested_only": True}, {"attribute": "balance"}])
def test_the_matrix_read_a_slice_at_a_time_is_the_whole_matrix_in_order(matrix, users, filters):
    cycle_report = matrix["cycle_report"]
    execution_rule_set(user=users["tester"], attribute=matrix["attributes"]["balance"], kind="equality",
                       source_column="balance_src")
    ex.test_matrix_prepare(cycle_report_id=cycle_report.pk)
    if "attribute" in filters:
        filters = {"attribute_id": matrix["attributes"][filters["attribute"]].pk}
    cells = ex.test_results_for(user=users["tester"], cycle_report=cycle_report, **filters)
    expected = [c.pk for c in cells.order_by("sample__row_index", "attribute__name")]

    paged = ex.MatrixCells(cells)
    assert paged.count() == len(expected) > 0
    for size in (1, 2, 4, 50):
        assert [c.pk for start in range(0, len(expected), size) for c in paged[start:start + size]] == expected
    assert [c.pk for c in paged[len(expected) - 1:len(expected) + 5]] == expected[-1:]
    assert paged[len(expected):len(expected) + 5] == []
