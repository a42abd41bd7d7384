"""Test Execution: evidence tied to samples × attributes, the test matrix and its history, extensions.

A cell (`TestResult`) is one approved sample × one in-scope attribute. A re-test
copies the cell's previous state into `TestResultHistory` before it changes, so
every earlier result stays readable. State changes go through
cycles.services.execution.
"""
from django.conf import settings
from django.db import models
from django.db.models import Q

from cycles.models.core import Attribute, CycleReport
from cycles.models.requests import Evidence
from cycles.models.sampling import Sample


class EvidenceLink(models.Model):
    """Which samples × attributes of its request one evidence file covers.

    A null sample means every sample of the request, a null attribute every
    attribute of the request. A file with no link at all covers the whole
    request, so evidence uploaded before links existed keeps working.
    """

    evidence = models.ForeignKey(Evidence, on_delete=models.CASCADE, related_name="links")
    sample = models.ForeignKey(Sample, null=True, blank=True, on_delete=models.CASCADE, related_name="evidence_links")
    attribute = models.ForeignKey(
        Attribute, null=True, blank=True, on_delete=models.CASCADE, related_name="evidence_links"
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["evidence_id", "sample__key", "attribute__name"]
        constraints = [
            # NULLS NOT DISTINCT would need PostgreSQL 15; the service checks "all" links itself.
            models.UniqueConstraint(fields=["evidence", "sample", "attribute"], name="uniq_evidence_link"),
        ]

    def __str__(self):
        return f"{self.evidence} covers {self.sample or 'every sample'} × {self.attribute or 'every attribute'}"


class ExecutionRule(models.Model):
    """How an attribute is tested by rule against the sample's source row (one rule per attribute)."""

    class Kind(models.TextChoices):
        EQUALITY = "equality", "Equal to a source column"
        TOLERANCE = "tolerance", "Within a numeric tolerance of a source column"
        FORMAT = "format", "Matches a format (regular expression)"
        RANGE = "range", "Within a range"

    attribute = models.OneToOneField(Attribute, on_delete=models.CASCADE, related_name="execution_rule")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    source_column = models.CharField(
        max_length=255,
        blank=True,
        help_text="Equality and tolerance: the population column holding the source system's value.",
    )
    tolerance = models.DecimalField(
        max_digits=20, decimal_places=6, null=True, blank=True, help_text="Tolerance: the largest absolute difference."
    )
    pattern = models.CharField(max_length=500, blank=True, help_text="Format: a regular expression the value must match in full.")
    min_value = models.DecimalField(max_digits=24, decimal_places=6, null=True, blank=True)
    max_value = models.DecimalField(max_digits=24, decimal_places=6, null=True, blank=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["attribute__name"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(kind__in=["equality", "tolerance"]) | ~Q(source_column=""),
                name="rule_compare_needs_source_column",
            ),
            models.CheckConstraint(
                condition=~Q(kind="tolerance") | Q(tolerance__isnull=False, tolerance__gte=0),
                name="rule_tolerance_needs_tolerance",
            ),
            models.CheckConstraint(condition=~Q(kind="format") | ~Q(pattern=""), name="rule_format_needs_pattern"),
            models.CheckConstraint(
                condition=~Q(kind="range") | Q(min_value__isnull=False) | Q(max_value__isnull=False),
                name="rule_range_needs_bound",
            ),
        ]

    def __str__(self):
        return f"{self.attribute}: {self.get_kind_display()}"


class TestResultValue(models.TextChoices):
    NOT_TESTED = "not_tested", "Not yet tested"
    PASS = "pass", "Pass"
    FAIL = "fail", "Fail"
    INCONCLUSIVE = "inconclusive", "Inconclusive"
    NOT_APPLICABLE = "not_applicable", "Not applicable"


class TestMethod(models.TextChoices):
    RULE = "rule", "By rule"
    MANUAL = "manual", "By the tester"


class FailureKind(models.TextChoices):
    """Why a cell failed: Observation Management groups failures by attribute and this kind."""

    NONE = "", "—"
    MISMATCH = "mismatch", "Value differs from the source"
    TOLERANCE = "tolerance", "Outside the tolerance"
    FORMAT = "format", "Wrong format"
    RANGE = "range", "Out of range"
    MISSING = "missing", "Value or evidence missing"
    OTHER = "other", "Other (see comment)"


class TestResult(models.Model):
    """One cell of the test matrix: an approved sample tested for one in-scope attribute."""

    __test__ = False

    cycle_report = models.ForeignKey(CycleReport, on_delete=models.CASCADE, related_name="test_results")
    sample = models.ForeignKey(Sample, on_delete=models.PROTECT, related_name="test_results")
    attribute = models.ForeignKey(Attribute, on_delete=models.PROTECT, related_name="test_results")
    expected_value = models.TextField(blank=True, help_text="From the sample's population row.")
    observed_value = models.TextField(blank=True, help_text="What the evidence (or the source column) shows.")
    result = models.CharField(
        max_length=20, choices=TestResultValue.choices, default=TestResultValue.NOT_TESTED, db_index=True
    )
    failure_kind = models.CharField(max_length=20, choices=FailureKind.choices, blank=True, default="")
    comment = models.TextField(blank=True)
    method = models.CharField(max_length=10, choices=TestMethod.choices, blank=True, default="")
    rule_detail = models.CharField(max_length=500, blank=True, help_text="What the rule checked, when tested by rule.")
    evidence = models.ManyToManyField(Evidence, blank=True, related_name="test_results")
    attempt = models.PositiveIntegerField(default=0, help_text="How many times the cell was tested (0: never).")
    tested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    tested_at = models.DateTimeField(null=True, blank=True)
    extension = models.ForeignKey(
        "SampleExtension",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="test_results",
        help_text="The sample extension that added this cell's sample, if any.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["cycle_report_id", "sample__row_index", "attribute__name"]
        constraints = [
            models.UniqueConstraint(fields=["sample", "attribute"], name="uniq_test_result_cell"),
            models.CheckConstraint(
                condition=Q(result="fail") | Q(failure_kind=""), name="failure_kind_only_on_fail"
            ),
        ]
        indexes = [models.Index(fields=["cycle_report", "result"]), models.Index(fields=["cycle_report", "attribute"]),
                   # The matrix's cells per sample, from the index alone (cycles.services.execution.MatrixCells).
                   models.Index(fields=["cycle_report", "sample"], name="testresult_report_sample")]

    def __str__(self):
        return f"{self.sample} × {self.attribute}: {self.get_result_display()}"

    @property
    def is_done(self) -> bool:
        return self.result != TestResultValue.NOT_TESTED


class TestResultCount(models.Model):
    """How many of a report's cells of one attribute hold one result: the matrix's figures without counting it.

    Kept by database triggers on cycles_testresult (cycles migration 0012), in the transaction of the
    write, whoever writes (services, bulk inserts, queryset updates, deletes), so it is always exact.
    Read it, never write it: cycles.services.execution.result_counts and friends.
    """

    __test__ = False

    cycle_report = models.ForeignKey(CycleReport, on_delete=models.CASCADE, related_name="+")
    attribute = models.ForeignKey(Attribute, on_delete=models.CASCADE, related_name="+")
    result = models.CharField(max_length=20, choices=TestResultValue.choices)
    n = models.IntegerField(default=0, help_text="Cells of this report and attribute holding this result.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["cycle_report", "attribute", "result"], name="uniq_test_result_count"),
        ]

    def __str__(self):
        return f"{self.attribute}: {self.n} {self.result}"


class TestResultHistory(models.Model):
    """An earlier state of a cell, kept when the cell is re-tested (or reset by a bulk action)."""

    __test__ = False

    test_result = models.ForeignKey(TestResult, on_delete=models.CASCADE, related_name="history")
    attempt = models.PositiveIntegerField()
    expected_value = models.TextField(blank=True)
    observed_value = models.TextField(blank=True)
    result = models.CharField(max_length=20, choices=TestResultValue.choices)
    failure_kind = models.CharField(max_length=20, choices=FailureKind.choices, blank=True, default="")
    comment = models.TextField(blank=True)
    method = models.CharField(max_length=10, choices=TestMethod.choices, blank=True, default="")
    rule_detail = models.CharField(max_length=500, blank=True)
    evidence_ids = models.JSONField(default=list, blank=True, help_text="Ids of the evidence the result relied on.")
    tested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    tested_at = models.DateTimeField(null=True, blank=True)
    replaced_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    replaced_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["test_result_id", "-attempt"]
        constraints = [models.UniqueConstraint(fields=["test_result", "attempt"], name="uniq_test_result_attempt")]
        verbose_name_plural = "test result history"

    def __str__(self):
        return f"{self.test_result.sample} × {self.test_result.attribute}, attempt {self.attempt}: {self.result}"


class SampleExtension(models.Model):
    """More samples proposed when an attribute's failures exceed the deviations the sample size allows."""

    class Status(models.TextChoices):
        PROPOSED = "proposed", "Proposed"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"

    cycle_report = models.ForeignKey(CycleReport, on_delete=models.CASCADE, related_name="sample_extensions")
    number = models.PositiveIntegerField(help_text="1 for the first extension of the report, 2 for the next…")
    attributes = models.ManyToManyField(Attribute, related_name="sample_extensions")
    failures = models.JSONField(default=dict, help_text='{attribute name: failed cells} when proposed.')
    allowed_deviations = models.PositiveIntegerField(help_text="Deviations the sample size allowed.")
    current_size = models.PositiveIntegerField(help_text="Samples before the extension.")
    new_size = models.PositiveIntegerField(help_text="Samples after it, by the same statistical rule.")
    seed = models.BigIntegerField(null=True, blank=True)
    rule = models.CharField(max_length=255, blank=True, help_text="How the new size was found.")
    sample_keys = models.JSONField(default=list, help_text="Keys of the samples the extension adds.")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PROPOSED, db_index=True)
    proposed_at = models.DateTimeField(auto_now_add=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True)
    decision_id = models.UUIDField(null=True, blank=True, unique=True)

    class Meta:
        ordering = ["cycle_report_id", "number"]
        constraints = [models.UniqueConstraint(fields=["cycle_report", "number"], name="uniq_sample_extension")]

    def __str__(self):
        return f"Extension {self.number} of {self.cycle_report}: {self.current_size} → {self.new_size}"
