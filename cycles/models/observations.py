"""Observation Management: failed test cells grouped into observations, and their remediation."""
from django.conf import settings
from django.db import models

from cycles.models.core import Attribute, CycleReport
from cycles.models.execution import FailureKind


class Severity(models.TextChoices):
    CRITICAL = "critical", "Critical"
    HIGH = "high", "High"
    MEDIUM = "medium", "Medium"
    LOW = "low", "Low"
    INFORMATIONAL = "informational", "Informational"


class ObservationType(models.TextChoices):
    DATA_ACCURACY = "data_accuracy", "Data accuracy"
    COMPLETENESS = "completeness", "Completeness"
    FORMAT = "format", "Format / validity"
    DOCUMENTATION = "documentation", "Documentation / evidence"
    CONTROL = "control", "Control design"
    OTHER = "other", "Other"


# The observation type a kind of failure suggests when drafting.
TYPE_FOR_KIND = {
    FailureKind.MISMATCH: ObservationType.DATA_ACCURACY,
    FailureKind.TOLERANCE: ObservationType.DATA_ACCURACY,
    FailureKind.MISSING: ObservationType.COMPLETENESS,
    FailureKind.FORMAT: ObservationType.FORMAT,
    FailureKind.RANGE: ObservationType.FORMAT,
    FailureKind.OTHER: ObservationType.OTHER,
}


class Observation(models.Model):
    """A finding: failed cells of one report, with severity, impact, root cause and remediation.

    Drafted from the failed cells, shaped by the tester, frozen in a version the
    report owner approves; after approval it follows its remediation lifecycle.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        OPEN = "open", "Open"
        IN_PROGRESS = "in_progress", "Remediation in progress"
        CLOSED = "closed", "Closed"

    cycle_report = models.ForeignKey(CycleReport, on_delete=models.PROTECT, related_name="observations")
    number = models.PositiveIntegerField(help_text="OBS-n within the report.")
    title = models.CharField(max_length=200)
    attribute = models.ForeignKey(
        Attribute, null=True, blank=True, on_delete=models.PROTECT, related_name="observations",
        help_text="The attribute its cells belong to (empty once cells of several are merged).",
    )
    failure_kind = models.CharField(max_length=20, choices=FailureKind.choices, blank=True)
    severity = models.CharField(max_length=20, choices=Severity.choices, default=Severity.MEDIUM)
    type = models.CharField(max_length=20, choices=ObservationType.choices, default=ObservationType.OTHER)
    description = models.TextField(blank=True)
    impact = models.TextField(blank=True)
    root_cause = models.TextField(blank=True)
    remediation_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="remediations"
    )
    remediation_target_date = models.DateField(null=True, blank=True)
    cells = models.ManyToManyField("cycles.TestResult", related_name="observations", blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT, db_index=True)
    drafted = models.BooleanField(default=False, help_text="Drafted automatically from failed cells.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["cycle_report_id", "number"]
        constraints = [models.UniqueConstraint(fields=["cycle_report", "number"], name="uniq_observation_number")]

    def __str__(self):
        return f"OBS-{self.number}: {self.title}"

    @property
    def code(self) -> str:
        return f"OBS-{self.number}"


class RemediationEvent(models.Model):
    """One step of an observation's remediation lifecycle: who moved it, when, from what to what."""

    observation = models.ForeignKey(Observation, on_delete=models.PROTECT, related_name="remediation_events")
    from_status = models.CharField(max_length=20, choices=Observation.Status.choices)
    to_status = models.CharField(max_length=20, choices=Observation.Status.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                              related_name="+")
    note = models.TextField(blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["observation_id", "at", "id"]

    def __str__(self):
        return f"{self.observation.code}: {self.from_status} → {self.to_status}"
