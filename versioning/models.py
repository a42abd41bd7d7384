"""Versions of phase artifacts (attributes, scoping, samples), their items and approvals.

An approved version is immutable: the model refuses it, and database triggers
(migration 0002) refuse UPDATE of an approved version or its items whatever
code path tries.
"""
from django.conf import settings
from django.db import models

from cycles.models import Phase


class VersionStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SUBMITTED = "submitted", "Submitted"
    APPROVED = "approved", "Approved"
    CHANGES_REQUESTED = "changes_requested", "Changes requested"
    SUPERSEDED = "superseded", "Superseded"


# The one map of allowed status changes; versioning.services.version_set_status owns it.
ALLOWED_TRANSITIONS: dict[str, set[str]] = {
    VersionStatus.DRAFT: {VersionStatus.SUBMITTED, VersionStatus.SUPERSEDED},
    VersionStatus.SUBMITTED: {
        VersionStatus.APPROVED,
        VersionStatus.CHANGES_REQUESTED,
        VersionStatus.SUPERSEDED,
    },
    VersionStatus.CHANGES_REQUESTED: {VersionStatus.SUPERSEDED},
    VersionStatus.APPROVED: set(),
    VersionStatus.SUPERSEDED: set(),
}


class ImmutableVersionError(Exception):
    """Raised on any attempt to change an approved version or its items."""


class Version(models.Model):
    """One numbered version of a phase artifact of one cycle report."""

    cycle_report = models.ForeignKey(
        "cycles.CycleReport", on_delete=models.PROTECT, related_name="versions"
    )
    phase = models.CharField(max_length=40, choices=Phase.choices)
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=20, choices=VersionStatus.choices, default=VersionStatus.DRAFT)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="revisions"
    )
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="authored_versions")
    notes = models.TextField(blank=True)
    request_id = models.UUIDField(
        null=True, blank=True, unique=True, help_text="The decision that created it (makes creation idempotent)."
    )
    workflow_id = models.CharField(max_length=200, blank=True, db_index=True)
    workflow_run_id = models.CharField(max_length=64, blank=True)
    workflow_step = models.CharField(max_length=80, blank=True, help_text="The workflow step (phase) that created it.")
    activity_name = models.CharField(max_length=120, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["cycle_report_id", "phase", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["cycle_report", "phase", "number"], name="uniq_version_number"),
        ]
        indexes = [models.Index(fields=["cycle_report", "phase", "status"])]

    def __str__(self):
        return f"{self.get_phase_display()} v{self.number} ({self.get_status_display()})"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            stored = type(self).objects.filter(pk=self.pk).values_list("status", flat=True).first()
            if stored == VersionStatus.APPROVED:
                raise ImmutableVersionError(f"{self} is approved and cannot change.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        if self.status == VersionStatus.APPROVED:
            raise ImmutableVersionError(f"{self} is approved and cannot be deleted.")
        return super().delete(*args, **kwargs)

    @property
    def is_approved(self) -> bool:
        return self.status == VersionStatus.APPROVED


class VersionItem(models.Model):
    """One element of a version (an attribute, a scoping decision, a sample), frozen as data."""

    class Decision(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"

    version = models.ForeignKey(Version, on_delete=models.PROTECT, related_name="items")
    key = models.CharField(max_length=255, help_text="Stable identity across versions (attribute name, sample key).")
    data = models.JSONField(help_text="The item's fields as they were when the version was made.")
    decision = models.CharField(max_length=10, choices=Decision.choices, default=Decision.PENDING)
    decision_note = models.TextField(blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["version_id", "key"]
        constraints = [models.UniqueConstraint(fields=["version", "key"], name="uniq_version_item_key")]

    def __str__(self):
        return f"{self.key} in {self.version}"

    def save(self, *args, **kwargs):
        if Version.objects.filter(pk=self.version_id, status=VersionStatus.APPROVED).exists():
            raise ImmutableVersionError(f"{self.version} is approved; its items cannot change.")
        super().save(*args, **kwargs)


class Approval(models.Model):
    """The report owner's decision on a submitted version."""

    class Decision(models.TextChoices):
        APPROVED = "approved", "Approved"
        CHANGES_REQUESTED = "changes_requested", "Changes requested"

    version = models.OneToOneField(Version, on_delete=models.PROTECT, related_name="approval")
    decision = models.CharField(max_length=20, choices=Decision.choices)
    notes = models.TextField(blank=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="approvals")
    request_id = models.UUIDField(null=True, blank=True, unique=True)
    workflow_id = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.get_decision_display()} {self.version} by {self.decided_by}"
