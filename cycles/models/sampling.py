"""Sample Selection: the size rule table, a report's sampling plan and its working samples."""
from django.conf import settings
from django.db import models
from django.db.models import Q

from cycles.models.core import CycleReport, Frequency, PopulationFile, RiskLevel


class SampleSizeRule(models.Model):
    """Default sample counts by control frequency and risk (editable in the admin)."""

    frequency = models.CharField(max_length=20, choices=Frequency.choices)
    risk = models.CharField(max_length=10, choices=RiskLevel.choices)
    sample_count = models.PositiveIntegerField()
    note = models.CharField(max_length=255, blank=True, help_text="Where this number comes from.")

    class Meta:
        ordering = ["frequency", "risk"]
        constraints = [models.UniqueConstraint(fields=["frequency", "risk"], name="uniq_sample_size_rule")]

    def __str__(self):
        return f"{self.get_frequency_display()}, {self.get_risk_display()} risk: {self.sample_count}"


class SamplingPlan(models.Model):
    """How a report's samples are sized and drawn: the size rule, any override, the draw settings."""

    class SizeRule(models.TextChoices):
        FREQUENCY = "frequency", "Frequency table"
        STATISTICAL = "statistical", "Statistical (AICPA binomial)"

    class Method(models.TextChoices):
        RANDOM = "random", "Simple random"
        STRATIFIED = "stratified", "Stratified"
        RISK_BASED = "risk_based", "Risk-based"
        MANUAL = "manual", "Picked by hand"

    cycle_report = models.OneToOneField(CycleReport, on_delete=models.CASCADE, related_name="sampling_plan")
    population_file = models.ForeignKey(
        PopulationFile, null=True, blank=True, on_delete=models.PROTECT, related_name="sampling_plans"
    )
    size_rule = models.CharField(max_length=20, choices=SizeRule.choices, default=SizeRule.FREQUENCY)
    risk = models.CharField(max_length=10, choices=RiskLevel.choices, default=RiskLevel.MEDIUM)
    risk_of_overreliance = models.DecimalField(max_digits=4, decimal_places=3, default=0.05)
    tolerable_rate = models.DecimalField(max_digits=4, decimal_places=3, default=0.05)
    expected_rate = models.DecimalField(max_digits=4, decimal_places=3, default=0.0)
    computed_size = models.PositiveIntegerField(default=0)
    allowed_deviations = models.PositiveIntegerField(null=True, blank=True)
    size_explanation = models.CharField(max_length=255, blank=True, help_text="Which rule produced the size.")
    override_size = models.PositiveIntegerField(null=True, blank=True)
    override_reason = models.TextField(blank=True)
    method = models.CharField(max_length=20, choices=Method.choices, default=Method.RANDOM)
    seed = models.BigIntegerField(null=True, blank=True)
    stratify_by = models.CharField(max_length=255, blank=True)
    min_per_stratum = models.PositiveIntegerField(default=1)
    risk_column = models.CharField(max_length=255, blank=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(override_size__isnull=True) | ~Q(override_reason=""), name="override_needs_reason"
            )
        ]

    def __str__(self):
        return f"Sampling plan of {self.cycle_report}"

    @property
    def sample_size(self) -> int:
        return self.override_size or self.computed_size


class Sample(models.Model):
    """A sample in the tester's working set (frozen into a version on submission)."""

    cycle_report = models.ForeignKey(CycleReport, on_delete=models.CASCADE, related_name="samples")
    key = models.CharField(max_length=255, help_text="The row's primary key value, or its row number.")
    row_index = models.BigIntegerField()
    row_data = models.JSONField(help_text="The population row as it was drawn.")
    stratum = models.CharField(max_length=255, blank=True)
    method = models.CharField(max_length=20, choices=SamplingPlan.Method.choices)
    seed = models.BigIntegerField(null=True, blank=True)
    reason = models.TextField(blank=True, help_text="Why a hand-picked sample was added.")
    added_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["cycle_report_id", "row_index"]
        constraints = [models.UniqueConstraint(fields=["cycle_report", "key"], name="uniq_sample_key")]

    def __str__(self):
        return f"Sample {self.key}"
