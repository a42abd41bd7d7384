"""Test Execution: the matrix of approved samples × in-scope attributes, rules, results and their history.

The workflow's activity prepares the matrix (one cell per sample × attribute,
its expected value from the sample's population row) and runs the rules; the
tester reviews, records manual results, re-tests (the earlier result goes to
the cell's history) and submits the matrix as a version the report owner
approves or sends back.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.db.models import Case, Count, F, Q, QuerySet, Sum, When
from django.utils import timezone

from cycles.exceptions import ApplicationError, ConflictError, NotFoundError, PermissionDeniedError
from cycles.models import (
    Attribute,
    CycleReport,
    Evidence,
    EvidenceLink,
    ExecutionRule,
    FailureKind,
    InformationRequest,
    Phase,
    Sample,
    TestMethod,
    TestResult,
    TestResultCount,
    TestResultHistory,
    TestResultValue,
)
from cycles.permissions import can_view_cycle_report, can_work_on
from cycles.profiling import match_column
from cycles.services.artifacts import phase_require_editable
from synapse.audit import audit_record, snapshot

PHASE = Phase.TEST_EXECUTION
RESULT_FIELDS = ["expected_value", "observed_value", "result", "failure_kind", "comment", "method", "attempt"]
PATTERN_MAX = 500
# A manual result other than a pass says why, so the report owner can follow it.
NEEDS_COMMENT = {TestResultValue.FAIL, TestResultValue.INCONCLUSIVE, TestResultValue.NOT_APPLICABLE}


# --- rules ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleOutcome:
    """What a rule found for one cell."""

    expected: str
    observed: str
    result: str
    failure_kind: str
    detail: str


def _text(value) -> str:
    return "" if value is None else str(value).strip()


def _number(text: str) -> Decimal | None:
    # Population cells arrive as text; "1,250.00" is 1250.
    try:
        number = Decimal(text.replace(",", ""))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def _column(row: dict, name: str) -> str | None:
    return match_column(name, list(row))


def rule_evaluate(*, rule: ExecutionRule, attribute: Attribute, row: dict) -> RuleOutcome:
    """Test one population row for `attribute` by `rule` (pure: reads only its arguments)."""
    column = _column(row, attribute.name)
    if column is None:
        return RuleOutcome("", "", TestResultValue.INCONCLUSIVE, "",
                           f"The sample's row has no column {attribute.name!r}.")
    expected = _text(row[column])
    if rule.kind in (ExecutionRule.Kind.EQUALITY, ExecutionRule.Kind.TOLERANCE):
        source = _column(row, rule.source_column)
        if source is None:
            return RuleOutcome(expected, "", TestResultValue.INCONCLUSIVE, "",
                               f"The sample's row has no source column {rule.source_column!r}.")
        observed = _text(row[source])
        if rule.kind == ExecutionRule.Kind.EQUALITY:
            a, b = _number(expected), _number(observed)
            same = (a == b) if a is not None and b is not None else expected == observed
            if same:
                return RuleOutcome(expected, observed, TestResultValue.PASS, "", f"Equal to {source}.")
            if not observed or not expected:
                return RuleOutcome(expected, observed, TestResultValue.FAIL, FailureKind.MISSING,
                                   f"{'The report value' if not expected else source} is empty.")
            return RuleOutcome(expected, observed, TestResultValue.FAIL, FailureKind.MISMATCH,
                               f"{expected!r} differs from {source} {observed!r}.")
        a, b = _number(expected), _number(observed)
        if a is None or b is None:
            which = "The report value" if a is None else source
            return RuleOutcome(expected, observed, TestResultValue.FAIL, FailureKind.FORMAT,
                               f"{which} is not a number, so the tolerance can't be checked.")
        difference = abs(a - b)
        if difference <= rule.tolerance:
            return RuleOutcome(expected, observed, TestResultValue.PASS, "",
                               f"Differs from {source} by {difference}, within ±{rule.tolerance.normalize()}.")
        return RuleOutcome(expected, observed, TestResultValue.FAIL, FailureKind.TOLERANCE,
                           f"Differs from {source} by {difference}, beyond ±{rule.tolerance.normalize()}.")
    if not expected:
        if attribute.mandatory:
            return RuleOutcome(expected, expected, TestResultValue.FAIL, FailureKind.MISSING,
                               f"{attribute.name} is mandatory and empty.")
        return RuleOutcome(expected, expected, TestResultValue.NOT_APPLICABLE, "",
                           f"{attribute.name} is empty and not mandatory.")
    if rule.kind == ExecutionRule.Kind.FORMAT:
        if re.fullmatch(rule.pattern, expected):
            return RuleOutcome(expected, expected, TestResultValue.PASS, "", f"Matches {rule.pattern}.")
        return RuleOutcome(expected, expected, TestResultValue.FAIL, FailureKind.FORMAT,
                           f"Does not match {rule.pattern}.")
    number = _number(expected)
    bounds = f"[{'' if rule.min_value is None else rule.min_value.normalize()}, " \
             f"{'' if rule.max_value is None else rule.max_value.normalize()}]"
    if number is None:
        return RuleOutcome(expected, expected, TestResultValue.FAIL, FailureKind.FORMAT,
                           f"Not a number, so the range {bounds} can't be checked.")
    if (rule.min_value is not None and number < rule.min_value) or (
        rule.max_value is not None and number > rule.max_value
    ):
        return RuleOutcome(expected, expected, TestResultValue.FAIL, FailureKind.RANGE, f"Outside {bounds}.")
    return RuleOutcome(expected, expected, TestResultValue.PASS, "", f"Within {bounds}.")


def _decimal_or_none(name: str, value) -> Decimal | None:
    if value is None or _text(value) == "":
        return None
    number = _number(_text(value))
    if number is None:
        raise ApplicationError(f"{name} must be a number (got {_text(value)!r}).")
    return number


def execution_rule_set(
    *,
    user,
    attribute: Attribute,
    kind: str,
    source_column: str = "",
    tolerance=None,
    pattern: str = "",
    min_value=None,
    max_value=None,
) -> ExecutionRule:
    """Give an in-scope attribute the rule that tests it against its sample's row (replaces any rule)."""
    cycle_report = attribute.cycle_report
    if not can_work_on(user, cycle_report):
        raise PermissionDeniedError("Only the report's assigned tester can set its execution rules.")
    phase_require_editable(cycle_report, PHASE)
    if kind not in ExecutionRule.Kind.values:
        raise ApplicationError(f"Choose a rule kind: {', '.join(ExecutionRule.Kind.values)}.")
    source_column, pattern = _text(source_column), _text(pattern)
    tolerance = _decimal_or_none("The tolerance", tolerance)
    min_value = _decimal_or_none("The minimum", min_value)
    max_value = _decimal_or_none("The maximum", max_value)
    if kind in (ExecutionRule.Kind.EQUALITY, ExecutionRule.Kind.TOLERANCE) and not source_column:
        raise ApplicationError("Name the population column that holds the source system's value.")
    if kind == ExecutionRule.Kind.TOLERANCE and (tolerance is None or tolerance < 0):
        raise ApplicationError("A tolerance rule needs a tolerance of 0 or more.")
    if kind == ExecutionRule.Kind.FORMAT:
        if not pattern:
            raise ApplicationError("A format rule needs a regular expression.")
        if len(pattern) > PATTERN_MAX:
            raise ApplicationError(f"The regular expression is longer than {PATTERN_MAX} characters.")
        try:
            re.compile(pattern)
        except re.error as err:
            raise ApplicationError(f"The regular expression is not valid: {err}.") from None
    if kind == ExecutionRule.Kind.RANGE:
        if min_value is None and max_value is None:
            raise ApplicationError("A range rule needs a minimum, a maximum or both.")
        if min_value is not None and max_value is not None and min_value > max_value:
            raise ApplicationError("The minimum is above the maximum.")
    fields = {
        "kind": kind,
        "source_column": source_column if kind in (ExecutionRule.Kind.EQUALITY, ExecutionRule.Kind.TOLERANCE) else "",
        "tolerance": tolerance if kind == ExecutionRule.Kind.TOLERANCE else None,
        "pattern": pattern if kind == ExecutionRule.Kind.FORMAT else "",
        "min_value": min_value if kind == ExecutionRule.Kind.RANGE else None,
        "max_value": max_value if kind == ExecutionRule.Kind.RANGE else None,
        "updated_by": user,
    }
    with transaction.atomic():
        existing = ExecutionRule.objects.filter(attribute=attribute).first()
        before = snapshot(existing, list(fields)[:-1]) if existing else None
        rule, _ = ExecutionRule.objects.update_or_create(attribute=attribute, defaults=fields)
        audit_record(actor=user, action="execution_rule.set", obj=rule, before=before,
                     after=snapshot(rule, list(fields)[:-1]), context={"cycle_report": cycle_report.pk})
    return rule


# --- the matrix ---------------------------------------------------------------------------------


def _approved_samples(cycle_report: CycleReport) -> list[Sample]:
    from cycles.services.requests import _approved_sample_keys
    from cycles.services.sample_extension import approved_extension_keys

    keys = [*_approved_sample_keys(cycle_report), *approved_extension_keys(cycle_report=cycle_report)]
    return list(Sample.objects.filter(cycle_report=cycle_report, key__in=keys).order_by("row_index"))


def _in_scope(cycle_report: CycleReport) -> list[Attribute]:
    return list(
        Attribute.objects.filter(cycle_report=cycle_report, scoping__in_scope=True)
        .select_related("execution_rule")
        .order_by("name")
    )


def _expected(sample: Sample, attribute: Attribute) -> str:
    column = _column(sample.row_data or {}, attribute.name)
    return _text(sample.row_data[column]) if column else ""


def _kept(cell: TestResult, *, evidence_ids, actor) -> dict:
    """What a cell's history keeps of its current result (besides the cell and its attempt)."""
    return {
        "expected_value": cell.expected_value,
        "observed_value": cell.observed_value,
        "result": cell.result,
        "failure_kind": cell.failure_kind,
        "comment": cell.comment,
        "method": cell.method,
        "rule_detail": cell.rule_detail,
        "evidence_ids": sorted(evidence_ids),
        "tested_by_id": cell.tested_by_id,
        "tested_at": cell.tested_at,
        "replaced_by": actor,
    }


def _push_history(cell: TestResult, *, actor) -> None:
    """Keep the cell's current result before it changes (nothing to keep if it was never tested)."""
    if cell.attempt == 0:
        return
    TestResultHistory.objects.get_or_create(
        test_result=cell, attempt=cell.attempt,
        defaults=_kept(cell, evidence_ids=cell.evidence.values_list("pk", flat=True), actor=actor),
    )


def _apply_rule(cell: TestResult, rule: ExecutionRule, *, actor) -> None:
    outcome = rule_evaluate(rule=rule, attribute=cell.attribute, row=cell.sample.row_data or {})
    _push_history(cell, actor=actor)
    cell.expected_value = outcome.expected
    cell.observed_value = outcome.observed
    cell.result = outcome.result
    cell.failure_kind = outcome.failure_kind
    cell.rule_detail = outcome.detail[:500]
    cell.comment = ""
    cell.method = TestMethod.RULE
    cell.attempt += 1
    cell.tested_by = actor
    cell.tested_at = timezone.now()
    cell.save()
    cell.evidence.clear()


def test_matrix_prepare(*, cycle_report_id: int, extension_id: int | None = None) -> dict:
    """Create the cells of approved samples × in-scope attributes and run the rules on untested ones.

    Idempotent: existing cells and results stay; a rerun adds only what is missing
    and tests only cells still untested. Returns the progress.
    """
    cycle_report = CycleReport.objects.select_related("report", "cycle").get(pk=cycle_report_id)
    samples = _approved_samples(cycle_report)
    attributes = _in_scope(cycle_report)
    with transaction.atomic():
        CycleReport.objects.select_for_update(no_key=True).get(pk=cycle_report.pk)
        existing = set(TestResult.objects.filter(cycle_report=cycle_report).values_list("sample_id", "attribute_id"))
        extended = _extension_cells(cycle_report)
        new = [
            TestResult(cycle_report=cycle_report, sample=s, attribute=a, expected_value=_expected(s, a))
            for s in samples
            for a in attributes
            if (s.pk, a.pk) not in existing and (s.key not in extended or a.pk in extended[s.key])
        ]
        TestResult.objects.bulk_create(new)
        ran = 0
        for cell in (
            TestResult.objects.filter(cycle_report=cycle_report, result=TestResultValue.NOT_TESTED,
                                      attribute__execution_rule__isnull=False)
            .select_related("sample", "attribute__execution_rule")
        ):
            _apply_rule(cell, cell.attribute.execution_rule, actor=None)
            ran += 1
        if new or ran:
            audit_record(actor=None, action="test_matrix.prepare", obj=cycle_report,
                         after={"cells_created": len(new), "tested_by_rule": ran},
                         context={"extension": extension_id} if extension_id else None)
    return test_execution_progress(cycle_report=cycle_report)


def _extension_cells(cycle_report: CycleReport) -> dict[str, set[int]]:
    """Samples added by an extension are tested only for the attributes that called for them."""
    from cycles.models import SampleExtension

    cells: dict[str, set[int]] = {}
    for extension in SampleExtension.objects.filter(
        cycle_report=cycle_report, status=SampleExtension.Status.APPROVED
    ).prefetch_related("attributes"):
        ids = {a.pk for a in extension.attributes.all()}
        for key in extension.sample_keys:
            cells.setdefault(key, set()).update(ids)
    return cells


def result_counts(cycle_report_ids) -> dict[int, dict[str, int]]:
    """{cycle report id: {result: cells}} from the stored counts (TestResultCount), not the cells."""
    counts: dict[int, dict[str, int]] = {}
    for cr_id, result, n in (
        TestResultCount.objects.filter(cycle_report_id__in=list(cycle_report_ids), n__gt=0)
        .values_list("cycle_report_id", "result").annotate(total=Sum("n")).order_by()
    ):
        counts.setdefault(cr_id, {})[result] = n
    return counts


def result_counts_by_attribute(*, cycle_report: CycleReport) -> dict[int, dict[str, int]]:
    """{attribute id: {result: cells}} of one report, from the stored counts."""
    counts: dict[int, dict[str, int]] = {}
    for attribute_id, result, n in TestResultCount.objects.filter(cycle_report=cycle_report, n__gt=0) \
            .values_list("attribute_id", "result", "n"):
        counts.setdefault(attribute_id, {})[result] = n
    return counts


def test_execution_progress(*, cycle_report: CycleReport,
                            counts_by_attribute: dict[int, dict[str, int]] | None = None) -> dict:
    """Cells done / total and the count of each result (summed from ``counts_by_attribute`` when given)."""
    if counts_by_attribute is None:
        counts = result_counts([cycle_report.pk]).get(cycle_report.pk, {})
    else:
        counts = {}
        for by_result in counts_by_attribute.values():
            for result, n in by_result.items():
                counts[result] = counts.get(result, 0) + n
    total = sum(counts.values())
    untested = counts.get(TestResultValue.NOT_TESTED, 0)
    return {
        "total": total,
        "done": total - untested,
        **{value: counts.get(value, 0) for value in TestResultValue.values},
    }


# --- results by the tester ------------------------------------------------------------------------


def _require_tester(user, cycle_report: CycleReport) -> None:
    if not can_work_on(user, cycle_report):
        raise PermissionDeniedError("Only the report's assigned tester records its test results.")
    phase_require_editable(cycle_report, PHASE)


def _evidence_for_cell(cell: TestResult, evidence_ids: list[int]) -> list[Evidence]:
    if not evidence_ids:
        return []
    covering = {e.pk: e for e in evidence_covering(cycle_report=cell.cycle_report, sample=cell.sample,
                                                     attribute=cell.attribute)}
    unknown = [i for i in evidence_ids if i not in covering]
    if unknown:
        raise ApplicationError(
            f"Evidence {', '.join(map(str, unknown))} does not cover sample {cell.sample.key} × "
            f"{cell.attribute.name}: choose accepted evidence of its request that covers the cell."
        )
    return [covering[i] for i in evidence_ids]


def test_result_record(
    *,
    user,
    result: TestResult,
    outcome: str,
    observed_value: str = "",
    comment: str = "",
    failure_kind: str = "",
    evidence_ids: list[int] | None = None,
) -> TestResult:
    """The tester's result for one cell; a cell tested before keeps its earlier result in its history."""
    _require_tester(user, result.cycle_report)
    if outcome not in TestResultValue.values or outcome == TestResultValue.NOT_TESTED:
        raise ApplicationError("Choose a result: pass, fail, inconclusive or not applicable.")
    comment = _text(comment)
    if outcome in NEEDS_COMMENT and not comment:
        raise ApplicationError(
            f"Say why sample {result.sample.key} × {result.attribute.name} is "
            f"{TestResultValue(outcome).label.lower()}: a comment is required."
        )
    if outcome == TestResultValue.FAIL:
        failure_kind = failure_kind or FailureKind.OTHER
        if failure_kind not in FailureKind.values or failure_kind == FailureKind.NONE:
            raise ApplicationError(f"Unknown kind of failure {failure_kind!r}.")
    else:
        failure_kind = ""
    evidence = _evidence_for_cell(result, list(dict.fromkeys(evidence_ids or [])))
    with transaction.atomic():
        cell = TestResult.objects.select_for_update().select_related("sample", "attribute").get(pk=result.pk)
        before = snapshot(cell, RESULT_FIELDS)
        _push_history(cell, actor=user)
        cell.observed_value = _text(observed_value)
        cell.result = outcome
        cell.failure_kind = failure_kind
        cell.comment = comment
        cell.method = TestMethod.MANUAL
        cell.rule_detail = ""
        cell.attempt += 1
        cell.tested_by = user
        cell.tested_at = timezone.now()
        cell.save()
        cell.evidence.set(evidence)
        audit_record(actor=user, action="test_result.record", obj=cell, before=before,
                     after={**snapshot(cell, RESULT_FIELDS), "evidence": [e.pk for e in evidence]},
                     context={"cycle_report": cell.cycle_report_id})
    return cell


class BulkAction:
    PASS = "pass"
    NOT_APPLICABLE = "not_applicable"
    RUN_RULES = "run_rules"

    choices = [
        (PASS, "Mark pass"),
        (NOT_APPLICABLE, "Mark not applicable"),
        (RUN_RULES, "Re-test by rule"),
    ]


def test_results_bulk(
    *, user, cycle_report: CycleReport, result_ids: list[int], action: str, comment: str = ""
) -> int:
    """Apply one action to many cells of the report (each keeps its earlier result); returns how many."""
    _require_tester(user, cycle_report)
    if action not in dict(BulkAction.choices):
        raise ApplicationError(f"Choose an action: {', '.join(label for _, label in BulkAction.choices)}.")
    ids = list(dict.fromkeys(int(i) for i in result_ids or []))
    if not ids:
        raise ApplicationError("Select at least one cell.")
    comment = _text(comment)
    if action == BulkAction.NOT_APPLICABLE and not comment:
        raise ApplicationError("Say why the selected cells are not applicable: a comment is required.")
    with transaction.atomic():
        cells = list(
            # Lock the cells only: their rule is an outer join PostgreSQL can't lock.
            TestResult.objects.select_for_update(of=("self",))
            .filter(cycle_report=cycle_report, pk__in=ids)
            .select_related("sample", "attribute__execution_rule")
        )
        if len(cells) != len(ids):
            raise NotFoundError("Some selected cells are not in this report's matrix; reload the page.")
        if action == BulkAction.RUN_RULES:
            without = sorted({c.attribute.name for c in cells if not hasattr(c.attribute, "execution_rule")})
            if without:
                raise ApplicationError(f"These attributes have no rule to re-test by: {', '.join(without)}.")
        if action == BulkAction.RUN_RULES:
            for cell in cells:
                _apply_rule(cell, cell.attribute.execution_rule, actor=user)
        else:
            _set_bulk(cells, action=action, comment=comment, user=user, cycle_report=cycle_report)
        audit_record(actor=user, action=f"test_result.bulk_{action}", obj=cycle_report,
                     after={"cells": [c.pk for c in cells], "comment": comment})
    return len(cells)


BULK_BATCH = 500  # cells a statement writes (the history kept, the results, their evidence)


def _set_bulk(cells: list[TestResult], *, action: str, comment: str, user, cycle_report: CycleReport) -> None:
    """Give every cell the same manual result in a few statements, however many cells: the earlier results
    kept (as _push_history keeps one), the cells written in batches, and for a pass the accepted evidence
    covering each cell linked in place of what it had (as evidence.set() would)."""
    through = TestResult.evidence.through
    ids = [cell.pk for cell in cells]
    linked: dict[int, list[int]] = {}
    for result_id, evidence_id in through.objects.filter(testresult_id__in=ids).values_list(
            "testresult_id", "evidence_id"):
        linked.setdefault(result_id, []).append(evidence_id)
    TestResultHistory.objects.bulk_create([
        TestResultHistory(test_result=cell, attempt=cell.attempt,
                          **_kept(cell, evidence_ids=linked.get(cell.pk, []), actor=user))
        for cell in cells if cell.attempt  # a cell never tested has nothing to keep
    ], ignore_conflicts=True, batch_size=BULK_BATCH)
    now = timezone.now()
    for cell in cells:
        if action == BulkAction.PASS and not cell.observed_value:
            cell.observed_value = cell.expected_value
        cell.result, cell.failure_kind, cell.comment, cell.method, cell.rule_detail = (
            action, "", comment, TestMethod.MANUAL, "")
        cell.attempt += 1
        cell.tested_by, cell.tested_at = user, now
    # Every cell gets the same values, so one UPDATE a batch says them once (bulk_update would build a CASE
    # of every cell for each of nine columns); a pass takes the expected value where nothing was observed.
    values = {"result": action, "failure_kind": "", "comment": comment, "method": TestMethod.MANUAL,
              "rule_detail": "", "attempt": F("attempt") + 1, "tested_by": user, "tested_at": now}
    if action == BulkAction.PASS:
        values["observed_value"] = Case(When(observed_value="", then=F("expected_value")), default=F("observed_value"))
    for start in range(0, len(ids), BULK_BATCH):
        TestResult.objects.filter(pk__in=ids[start:start + BULK_BATCH]).update(**values)
    if action != BulkAction.PASS:
        return
    # A bulk pass relies on the accepted evidence that covers each cell.
    covering = evidence_by_cell(cycle_report=cycle_report)
    through.objects.filter(testresult_id__in=ids).delete()
    through.objects.bulk_create([
        through(testresult_id=cell.pk, evidence_id=evidence.pk)
        for cell in cells
        for evidence in {e.pk: e for e in covering.get((cell.sample_id, cell.attribute_id), [])
                         if e.status == Evidence.Status.ACCEPTED}.values()
    ], batch_size=BULK_BATCH)


# --- reading the matrix ----------------------------------------------------------------------------


def test_results_history_counts(cells) -> None:
    """Set history_count (earlier results) on each of the given cells, in one query for the lot.

    Counted for a page of cells rather than annotated on the report's whole matrix, which groups every cell.
    """
    counts = dict(
        TestResultHistory.objects.filter(test_result__in=[c.pk for c in cells]).values_list("test_result_id")
        .annotate(n=Count("pk")).order_by()
    ) if cells else {}
    for cell in cells:
        cell.history_count = counts.get(cell.pk, 0)


def test_results_for(
    *,
    user,
    cycle_report: CycleReport,
    failed_only: bool = False,
    untested_only: bool = False,
    attribute_id: int | None = None,
    sample_id: int | None = None,
) -> QuerySet[TestResult]:
    """The report's cells the user may see, filtered, with what a matrix row shows."""
    if not can_view_cycle_report(user, cycle_report):
        raise PermissionDeniedError("You can't see this report's test results.")
    cells = TestResult.objects.filter(cycle_report=cycle_report)
    if failed_only:
        cells = cells.filter(result=TestResultValue.FAIL)
    if untested_only:
        cells = cells.filter(result=TestResultValue.NOT_TESTED)
    if attribute_id:
        cells = cells.filter(attribute_id=attribute_id)
    if sample_id:
        cells = cells.filter(sample_id=sample_id)
    return (
        cells.select_related("sample", "attribute", "tested_by")
        .prefetch_related("evidence")
        .order_by("sample__row_index", "attribute__name")
    )


# The matrix's order: sample by sample (population row), then attribute name.
MATRIX_ORDER = ("sample__row_index", "sample_id", "attribute__name", "pk")


class MatrixCells:
    """A filtered matrix in its order, read a slice at a time without sorting every cell of the report.

    What Paginator (and so the API's pagination) needs: count() and slices. Sorting a report's tens of
    thousands of cells by sample row and attribute name to show fifty cost over 100 ms at 300 attributes ×
    100 samples; here one grouped query counts the filtered cells per sample (from an index), and a slice
    reads only the cells of the few samples it spans, in order.
    """

    def __init__(self, cells: QuerySet[TestResult]):
        self.cells = cells.order_by()
        self._per_sample: list[tuple[int, int]] | None = None

    def per_sample(self) -> list[tuple[int, int]]:
        """(sample id, filtered cells of that sample) in the matrix's sample order."""
        if self._per_sample is None:
            counts = dict(self.cells.values_list("sample_id").annotate(n=Count("*")).order_by())
            order = Sample.objects.filter(pk__in=list(counts)).order_by("row_index", "pk").values_list("pk", flat=True)
            self._per_sample = [(pk, counts[pk]) for pk in order]
        return self._per_sample

    def count(self) -> int:
        return sum(n for _, n in self.per_sample())

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, index):
        if not isinstance(index, slice):
            return self[index:index + 1][0]
        start, stop, _ = index.indices(self.count())
        if stop <= start:
            return []
        spanned, skip, seen = [], 0, 0
        for sample_id, n in self.per_sample():
            if seen + n > start and seen < stop:
                if not spanned:
                    skip = start - seen
                spanned.append(sample_id)
            seen += n
            if seen >= stop:
                break
        return list(
            self.cells.filter(sample_id__in=spanned)
            .select_related("sample", "attribute", "tested_by").prefetch_related("evidence")
            # A cell shows its sample's key, not the population row the sample holds (a JSON document
            # parsed once per cell of the page).
            .defer("sample__row_data", "sample__reason", "attribute__description")
            .order_by(*MATRIX_ORDER)[skip:skip + stop - start]
        )

    def __iter__(self):
        return iter(self[:])


def test_result_get(*, user, result_id: int) -> TestResult:
    cell = (
        TestResult.objects.select_related("cycle_report__report__lob", "cycle_report__cycle", "sample", "attribute",
                                          "tested_by")
        .filter(pk=result_id)
        .first()
    )
    if cell is None or not can_view_cycle_report(user, cell.cycle_report):
        raise NotFoundError("No such test result.")
    return cell


def test_results_failed(*, cycle_report: CycleReport) -> QuerySet[TestResult]:
    """The failed cells (Observation Management drafts observations from them)."""
    return (
        TestResult.objects.filter(cycle_report=cycle_report, result=TestResultValue.FAIL)
        .select_related("sample", "attribute")
        .order_by("attribute__name", "failure_kind", "sample__row_index")
    )


# --- evidence tied to cells -------------------------------------------------------------------------


def evidence_covering(*, cycle_report: CycleReport, sample: Sample, attribute: Attribute) -> list[Evidence]:
    """Accepted evidence (newest version of each file) whose request and links cover sample × attribute."""
    # sample_keys is a JSON list: filtered here, as JSON containment differs between SQLite and PostgreSQL.
    requests = InformationRequest.objects.filter(cycle_report=cycle_report, attributes=attribute)
    out = []
    for evidence in (
        Evidence.objects.filter(request__in=requests, status=Evidence.Status.ACCEPTED)
        .select_related("request")
        .prefetch_related("links")
        .order_by("original_name", "-version")
    ):
        if sample.key not in (evidence.request.sample_keys or []):
            continue
        if _covers(evidence, sample.pk, attribute.pk):
            out.append(evidence)
    return out


def _covers(evidence: Evidence, sample_id: int, attribute_id: int) -> bool:
    links = list(evidence.links.all())
    if not links:
        return True
    return any(
        (link.sample_id is None or link.sample_id == sample_id)
        and (link.attribute_id is None or link.attribute_id == attribute_id)
        for link in links
    )


def _coverage_of(evidence: Evidence) -> frozenset | None:
    """What a file covers, read once: None for the whole request, else its (sample id, attribute id) pairs
    (either None for "every")."""
    links = list(evidence.links.all())
    return frozenset((link.sample_id, link.attribute_id) for link in links) if links else None


def _covered_by(coverage: frozenset | None, sample_id: int, attribute_id: int) -> bool:
    return coverage is None or bool(
        {(sample_id, attribute_id), (None, attribute_id), (sample_id, None), (None, None)} & coverage
    )


def evidence_by_cell(
    *, cycle_report: CycleReport, cells: set[tuple[int, int]] | None = None
) -> dict[tuple[int, int], list[Evidence]]:
    """Every (sample id, attribute id) of the report's requests → the evidence covering it (fixed queries).

    ``cells`` narrows the answer to those pairs (a page of the matrix), so a page doesn't walk the whole report.
    Requests, their attributes and the files' links are read as plain values: a page asks this on every view.
    """
    through = InformationRequest.attributes.through
    asked = through.objects.filter(informationrequest__cycle_report=cycle_report)
    wanted_samples = None
    if cells is not None:
        # Only the requests (and their attributes) that ask for an attribute of the given cells.
        asked = asked.filter(attribute_id__in={a for _, a in cells})
        wanted_samples = {s for s, _ in cells}
    attributes_of: dict[int, list[int]] = {}
    for request_id, attribute_id in asked.order_by("informationrequest_id").values_list("informationrequest_id",
                                                                                     "attribute_id"):
        attributes_of.setdefault(request_id, []).append(attribute_id)
    if not attributes_of:
        return {}
    sample_keys = dict(InformationRequest.objects.filter(pk__in=list(attributes_of)).order_by()
                       .values_list("pk", "sample_keys"))
    files: dict[int, list[Evidence]] = {}
    for evidence in Evidence.objects.filter(request_id__in=list(attributes_of)).order_by():
        files.setdefault(evidence.request_id, []).append(evidence)
    links: dict[int, set[tuple[int | None, int | None]]] = {}
    for evidence_id, sample_id, attribute_id in EvidenceLink.objects.filter(
            evidence__request_id__in=list(attributes_of)).order_by().values_list("evidence_id", "sample_id",
                                                                                  "attribute_id"):
        links.setdefault(evidence_id, set()).add((sample_id, attribute_id))
    samples = Sample.objects.filter(cycle_report=cycle_report)
    if wanted_samples is not None:
        samples = samples.filter(pk__in=wanted_samples)
    sample_ids = dict(samples.order_by().values_list("key", "pk"))
    out: dict[tuple[int, int], list[Evidence]] = {}
    for request_id, attribute_ids in attributes_of.items():
        # The newest version of each file name, by name.
        latest: dict[str, Evidence] = {}
        for evidence in sorted(files.get(request_id, ()), key=lambda e: (e.original_name, -e.version)):
            latest.setdefault(evidence.original_name, evidence)
        # What a file covers: None for the whole request (no link), else its (sample, attribute) pairs.
        covering = [(e, frozenset(links[e.pk]) if e.pk in links else None) for e in latest.values()]
        for key in sample_keys.get(request_id) or []:
            sample_id = sample_ids.get(key)
            if sample_id is None:
                continue
            for attribute_id in attribute_ids:
                if cells is not None and (sample_id, attribute_id) not in cells:
                    continue
                cell = out.setdefault((sample_id, attribute_id), [])
                cell.extend(e for e, covers in covering if _covered_by(covers, sample_id, attribute_id))
    return out


def request_coverage(*, request: InformationRequest, keys: list[str] | None = None) -> dict:
    """Which of the request's samples × attributes have evidence (newest version of each file) and which don't.

    ``rows`` lists the given sample keys (a page of them; every sample when None); ``total`` and
    ``missing`` count the whole request.
    """
    attributes = list(request.attributes.order_by("name"))
    all_keys = list(request.sample_keys or [])
    sample_ids = dict(Sample.objects.filter(cycle_report_id=request.cycle_report_id, key__in=all_keys)
                      .values_list("key", "pk"))
    latest: dict[str, Evidence] = {}
    for evidence in request.evidence.prefetch_related("links").order_by("original_name", "-version"):
        latest.setdefault(evidence.original_name, evidence)
    files = [(e, _coverage_of(e)) for e in latest.values()]
    attribute_ids = [a.pk for a in attributes]
    if any(covers is None for _, covers in files):
        missing = 0  # a file without links covers every cell
    else:
        patterns = frozenset().union(*(covers for _, covers in files))
        missing = sum(
            1 for key in all_keys for attribute_id in attribute_ids
            if key not in sample_ids or not _covered_by(patterns, sample_ids[key], attribute_id)
        )
    rows = []
    for key in all_keys if keys is None else keys:
        sample_id = sample_ids.get(key)
        rows.append({"key": key, "cells": [
            {"attribute": attribute,
             "evidence": [e for e, covers in files
                          if sample_id is not None and _covered_by(covers, sample_id, attribute.pk)]}
            for attribute in attributes
        ]})
    return {"attributes": attributes, "rows": rows, "missing": missing,
            "total": len(all_keys) * len(attributes)}


def evidence_link_targets(
    *, request: InformationRequest, sample_keys: list[str] | None, attribute_ids: list[int] | None
) -> list[tuple[Sample | None, Attribute | None]]:
    """The (sample, attribute) pairs a file of the request covers; [] when it covers the whole request."""
    sample_keys = list(dict.fromkeys(sample_keys or []))
    try:
        attribute_ids = list(dict.fromkeys(int(i) for i in attribute_ids or []))
    except (TypeError, ValueError):
        raise ApplicationError("Attributes are given by their ids.") from None
    unknown_keys = sorted(set(sample_keys) - set(request.sample_keys or []))
    if unknown_keys:
        raise ApplicationError(f"These samples are not in the request: {', '.join(unknown_keys)}.")
    if set(attribute_ids) - set(request.attributes.values_list("pk", flat=True)):
        raise ApplicationError("Some chosen attributes are not in the request.")
    if not sample_keys and not attribute_ids:
        return []
    samples = list(Sample.objects.filter(cycle_report_id=request.cycle_report_id, key__in=sample_keys)) or [None]
    attributes = list(Attribute.objects.filter(pk__in=attribute_ids)) or [None]
    return [(s, a) for s in samples for a in attributes]


def evidence_links_create(*, evidence: Evidence, targets: list, user) -> list[EvidenceLink]:
    """Store the links of a file just uploaded (inside the upload's transaction)."""
    return EvidenceLink.objects.bulk_create(
        EvidenceLink(evidence=evidence, sample=s, attribute=a, created_by=user) for s, a in targets
    )


def evidence_links_set(
    *, user, evidence: Evidence, sample_keys: list[str] | None, attribute_ids: list[int] | None
) -> list[EvidenceLink]:
    """Say which of its request's samples and attributes a file covers (None or empty: all of them)."""
    request = evidence.request
    if request.data_owner_id != user.pk:
        raise PermissionDeniedError("Only the data owner the request was sent to says what a file covers.")
    if evidence.status == Evidence.Status.ACCEPTED:
        raise ConflictError(f"{evidence.original_name} v{evidence.version} is accepted: what it covers is settled.")
    targets = evidence_link_targets(request=request, sample_keys=sample_keys, attribute_ids=attribute_ids)
    with transaction.atomic():
        EvidenceLink.objects.filter(evidence=evidence).delete()
        links = evidence_links_create(evidence=evidence, targets=targets, user=user)
        audit_record(actor=user, action="evidence.links", obj=evidence,
                     after={"samples": sorted({s.key for s, _ in targets if s}) or "all",
                            "attributes": sorted({a.pk for _, a in targets if a}) or "all"},
                     context={"request": request.pk, "cycle_report": request.cycle_report_id})
    return links


# --- the version --------------------------------------------------------------------------------------


def _require_tested(cells: int, untested: int) -> None:
    if not cells:
        raise ApplicationError("The test matrix is empty: there is nothing to submit.")
    if untested:
        raise ConflictError(f"{untested} of {cells} cells are not tested yet: test every cell before submitting.")


def test_execution_check(*, cycle_report: CycleReport) -> None:
    """Raise what test_execution_version_items would (an empty matrix, an untested cell): two counts."""
    counts = TestResult.objects.filter(cycle_report=cycle_report).aggregate(
        cells=Count("pk"), untested=Count("pk", filter=Q(result=TestResultValue.NOT_TESTED)))
    _require_tested(counts["cells"], counts["untested"])


def test_execution_version_items(*, cycle_report: CycleReport) -> list[tuple[str, dict]]:
    """The matrix frozen for the report owner (raises while a cell is untested)."""
    cells = list(
        TestResult.objects.filter(cycle_report=cycle_report)
        .select_related("sample", "attribute")
        .prefetch_related("evidence")
        .order_by("sample__row_index", "attribute__name")
    )
    _require_tested(len(cells), sum(1 for c in cells if c.result == TestResultValue.NOT_TESTED))
    return [
        (
            f"{c.sample.key}|{c.attribute.name}",
            {
                "sample": c.sample.key,
                "attribute": c.attribute.name,
                "expected_value": c.expected_value,
                "observed_value": c.observed_value,
                "result": c.result,
                "failure_kind": c.failure_kind,
                "comment": c.comment,
                "method": c.method,
                "rule_detail": c.rule_detail,
                "attempt": c.attempt,
                "evidence": sorted(f"{e.original_name} v{e.version} {e.sha256}" for e in c.evidence.all()),
                "tested_by": c.tested_by_id,
                "tested_at": c.tested_at.isoformat() if c.tested_at else None,
            },
        )
        for c in cells
    ]


def failures_by_attribute(*, cycle_report: CycleReport) -> dict[int, int]:
    """Failed cells per in-scope attribute id."""
    return {attribute_id: counts[TestResultValue.FAIL]
            for attribute_id, counts in result_counts_by_attribute(cycle_report=cycle_report).items()
            if TestResultValue.FAIL in counts}


def cells_per_attribute(*, cycle_report: CycleReport) -> dict[int, int]:
    return {attribute_id: sum(counts.values())
            for attribute_id, counts in result_counts_by_attribute(cycle_report=cycle_report).items()}
