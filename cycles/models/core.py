"""Business records of a test cycle: LOBs, reports, cycles and every phase's data.

State changes go through cycles.services; nothing here talks to Temporal.
"""
from django.conf import settings
from django.db import models
from django.db.models import Q


class Phase(models.TextChoices):
    """The nine phases, in the order ARCHITECTURE.md gives them.

    workflows.temporal.contracts.PHASE_ORDER repeats these values for the
    workflow sandbox (which must not import Django); a test keeps them equal.
    """

    PLANNING = "planning", "Planning"
    DATA_PROFILING = "data_profiling", "Data Profiling"
    SCOPING = "scoping", "Scoping"
    SAMPLE_SELECTION = "sample_selection", "Sample Selection"
    DATA_OWNER_IDENTIFICATION = "data_owner_identification", "Data Owner Identification"
    REQUEST_FOR_INFORMATION = "request_for_information", "Request for Information"
    TEST_EXECUTION = "test_execution", "Test Execution"
    OBSERVATIONS = "observations", "Observation Management"
    FINALIZE = "finalize", "Finalize Test Report"


class Frequency(models.TextChoices):
    ANNUAL = "annual", "Annual"
    QUARTERLY = "quarterly", "Quarterly"
    MONTHLY = "monthly", "Monthly"
    WEEKLY = "weekly", "Weekly"
    DAILY = "daily", "Daily"
    MANY_PER_DAY = "many_per_day", "Many times a day"


class RiskLevel(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"


class DataType(models.TextChoices):
    STRING = "string", "String"
    INTEGER = "integer", "Integer"
    DECIMAL = "decimal", "Decimal"
    DATE = "date", "Date"
    BOOLEAN = "boolean", "Boolean"


class LOB(models.Model):
    """A line of business, owned by its data executive."""

    name = models.CharField(max_length=120, unique=True)
    code = models.SlugField(max_length=30, unique=True)
    data_executive = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="executive_of_lobs"
    )

    class Meta:
        ordering = ["name"]
        verbose_name = "LOB"
        verbose_name_plural = "LOBs"

    def __str__(self):
        return self.name


class Report(models.Model):
    """A regulatory report that cycles test."""

    name = models.CharField(max_length=200, unique=True)
    regulation = models.CharField(max_length=120, help_text="e.g. FR Y-14Q, FFIEC 031, CCAR")
    description = models.TextField(blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_reports"
    )
    lob = models.ForeignKey(LOB, on_delete=models.PROTECT, related_name="reports")
    frequency = models.CharField(max_length=20, choices=Frequency.choices, default=Frequency.QUARTERLY)
    fields = models.JSONField(
        default=list,
        blank=True,
        help_text='The report\'s field list: [{"name": "...", "description": "..."}, ...].',
    )

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    @property
    def field_names(self) -> list[str]:
        return [f["name"] if isinstance(f, dict) else str(f) for f in self.fields]


def default_cycle_configuration() -> dict:
    return {
        "skip_phases": [],
        "approvers": {},
        "slas": {},
        "rfi_due_days": 10,
        "reminder_days_before": [3, 1],
        "escalation_days_after": 2,
        "data_owner_sla_days": 5,
    }


class TestCycle(models.Model):
    """A testing period over a set of reports, run by one test manager."""

    __test__ = False  # not a pytest test class, despite the name

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        RUNNING = "running", "Running"
        COMPLETED = "completed", "Completed"
        CANCELLED = "cancelled", "Cancelled"
        FAILED = "failed", "Failed"

    name = models.CharField(max_length=200)
    period_start = models.DateField()
    period_end = models.DateField()
    test_manager = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="managed_cycles"
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT, db_index=True)
    workflow_id = models.CharField(max_length=200, blank=True, db_index=True)
    configuration = models.JSONField(
        default=default_cycle_configuration,
        blank=True,
        help_text=(
            "skip_phases: phase values to skip; approvers: {phase: [usernames]}; "
            "slas: {phase: days}; rfi_due_days; reminder_days_before: [days]; "
            "escalation_days_after; data_owner_sla_days."
        ),
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(period_end__gte=models.F("period_start")), name="cycle_period_ordered")
        ]

    def __str__(self):
        return self.name


class CycleReport(models.Model):
    """One report inside one cycle: the unit a report workflow runs for."""

    class Status(models.TextChoices):
        NOT_STARTED = "not_started", "Not started"
        IN_PROGRESS = "in_progress", "In progress"
        SCOPED = "scoped", "Scoped"
        AWAITING_TEST_EXECUTION = "awaiting_test_execution", "Awaiting test execution"
        COMPLETED = "completed", "Completed"
        CANCELLED = "cancelled", "Cancelled"
        FAILED = "failed", "Failed"

    cycle = models.ForeignKey(TestCycle, on_delete=models.CASCADE, related_name="cycle_reports")
    report = models.ForeignKey(Report, on_delete=models.PROTECT, related_name="cycle_reports")
    tester = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="assigned_cycle_reports",
    )
    phase = models.CharField(max_length=40, choices=Phase.choices, blank=True)
    status = models.CharField(
        max_length=30, choices=Status.choices, default=Status.NOT_STARTED, db_index=True
    )
    workflow_id = models.CharField(max_length=200, blank=True, db_index=True)
    skipped_phases = models.JSONField(default=list, blank=True, help_text="Phases the workflow skipped.")
    last_observation_number = models.PositiveIntegerField(
        default=0, editable=False,
        help_text="The last number given to an observation of this report: a number is never given twice, "
                  "even after a merge or a reset removed the observation that had it.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["cycle", "report__name"]
        constraints = [models.UniqueConstraint(fields=["cycle", "report"], name="uniq_cycle_report")]
        indexes = [models.Index(fields=["tester", "status"]), models.Index(fields=["phase", "status"])]

    def __str__(self):
        return f"{self.report} in {self.cycle}"


class PhaseState(models.Model):
    """Where each phase of a cycle report stands; parallel phases are active together."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        COMPLETED = "completed", "Completed"
        SKIPPED = "skipped", "Skipped"

    cycle_report = models.ForeignKey(CycleReport, on_delete=models.CASCADE, related_name="phase_states")
    phase = models.CharField(max_length=40, choices=Phase.choices)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE)
    started_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["cycle_report_id", "started_at", "id"]
        constraints = [models.UniqueConstraint(fields=["cycle_report", "phase"], name="uniq_phase_state")]

    def __str__(self):
        return f"{self.get_phase_display()}: {self.get_status_display()}"


class Attribute(models.Model):
    """A report attribute under test: the Planning phase's working draft."""

    class Source(models.TextChoices):
        LLM = "llm", "Drafted by LLM"
        MANUAL = "manual", "Entered by hand"

    cycle_report = models.ForeignKey(CycleReport, on_delete=models.CASCADE, related_name="attributes")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    data_type = models.CharField(max_length=20, choices=DataType.choices, default=DataType.STRING)
    mandatory = models.BooleanField(default=False)
    primary_key = models.BooleanField(default=False)
    cde = models.BooleanField("critical data element", default=False)
    historical_issues = models.BooleanField(default=False)
    risk_score = models.PositiveSmallIntegerField(default=1, help_text="1 (low) to 10 (high).")
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.MANUAL)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["cycle_report_id", "name"]
        constraints = [
            models.UniqueConstraint(fields=["cycle_report", "name"], name="uniq_attribute_name"),
            models.CheckConstraint(condition=Q(risk_score__gte=1, risk_score__lte=10), name="attribute_risk_1_10"),
        ]

    def __str__(self):
        return self.name

    @property
    def risk_level(self) -> str:
        if self.risk_score >= 7:
            return RiskLevel.HIGH
        if self.risk_score >= 4:
            return RiskLevel.MEDIUM
        return RiskLevel.LOW


class PopulationFile(models.Model):
    """An uploaded population file; stored privately, profiled by an activity."""

    class Format(models.TextChoices):
        CSV = "csv", "CSV"
        XLSX = "xlsx", "Excel (XLSX)"
        PARQUET = "parquet", "Parquet"

    class Status(models.TextChoices):
        UPLOADED = "uploaded", "Uploaded"
        PROFILING = "profiling", "Profiling"
        PROFILED = "profiled", "Profiled"
        FAILED = "failed", "Failed"
        REFUSED = "refused", "Refused by the workflow"

    class KeyResolution(models.TextChoices):
        NONE = "", "Not needed"
        COLUMN = "column", "Another column chosen as the key"
        ROW_NUMBERS = "row_numbers", "Rows named by row number"

    cycle_report = models.ForeignKey(CycleReport, on_delete=models.CASCADE, related_name="population_files")
    file = models.FileField(upload_to="populations/%Y/%m/")
    original_name = models.CharField(max_length=255)
    format = models.CharField(max_length=10, choices=Format.choices)
    size_bytes = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    row_count = models.BigIntegerField(null=True, blank=True)
    columns = models.JSONField(default=list, blank=True, help_text="Column names in file order.")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.UPLOADED)
    error = models.TextField(blank=True)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    uploaded_at = models.DateTimeField(auto_now_add=True)
    profiled_at = models.DateTimeField(null=True, blank=True)
    profile_seconds = models.FloatField(null=True, blank=True)
    # What profiling found wrong with the file as a whole, shown before anything else.
    mapping_warning = models.TextField(blank=True, help_text="Set when few attributes match a column.")
    key_column = models.CharField(
        max_length=255, blank=True, help_text="The column whose values name rows (samples); empty: row numbers."
    )
    key_problem = models.TextField(blank=True, help_text="Duplicates or blanks found in the primary key.")
    key_resolution = models.CharField(max_length=20, choices=KeyResolution.choices, blank=True)
    key_reason = models.TextField(blank=True)
    key_resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-uploaded_at"]
        indexes = [models.Index(fields=["cycle_report", "-uploaded_at"])]

    def __str__(self):
        return self.original_name


class ProfileResult(models.Model):
    """Profiling statistics of one column of a population file."""

    population_file = models.ForeignKey(PopulationFile, on_delete=models.CASCADE, related_name="profile_results")
    column_name = models.CharField(max_length=255)
    attribute = models.ForeignKey(
        Attribute, null=True, blank=True, on_delete=models.SET_NULL, related_name="profile_results"
    )
    dtype = models.CharField(max_length=40)
    row_count = models.BigIntegerField()
    null_count = models.BigIntegerField()
    distinct_count = models.BigIntegerField()
    min_value = models.CharField(max_length=255, blank=True)
    max_value = models.CharField(max_length=255, blank=True)
    top_values = models.JSONField(default=list, blank=True, help_text='[{"value": ..., "count": n}, ...]')
    format_violations = models.BigIntegerField(default=0)
    rule_failures = models.JSONField(
        default=dict, blank=True, help_text='{rule name: failing row count}, e.g. {"mandatory": 3}.'
    )
    rule_results = models.JSONField(
        default=list,
        blank=True,
        help_text='Per validation rule: [{"rule": id, "label": ..., "failing": n, "examples": [row numbers]}].',
    )

    class Meta:
        ordering = ["population_file_id", "id"]
        constraints = [
            models.UniqueConstraint(fields=["population_file", "column_name"], name="uniq_profile_column")
        ]

    def __str__(self):
        return f"{self.column_name} of {self.population_file}"

    @property
    def null_rate(self) -> float:
        return self.null_count / self.row_count if self.row_count else 0.0


class ScopingDecision(models.Model):
    """Whether an attribute is tested, and why: the Scoping phase's working draft."""

    attribute = models.OneToOneField(Attribute, on_delete=models.CASCADE, related_name="scoping")
    in_scope = models.BooleanField(default=True)
    rationale = models.TextField(blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text="Empty when the system recommended it (see decided_by_rule).",
    )
    decided_by_rule = models.CharField(
        max_length=200, blank=True, help_text="The rule or model that decided, when the system did."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["attribute__name"]

    def __str__(self):
        return f"{self.attribute}: {'in' if self.in_scope else 'out of'} scope"
