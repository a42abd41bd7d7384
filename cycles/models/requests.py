"""Data Owner Identification, Requests for Information and evidence."""
import uuid

from django.conf import settings
from django.db import models

from cycles.models.core import Attribute, CycleReport


class DataOwnerAssignment(models.Model):
    """The data owner who answers for one in-scope attribute, set by the LOB's data executive."""

    attribute = models.OneToOneField(Attribute, on_delete=models.CASCADE, related_name="data_owner_assignment")
    data_owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_attributes")
    assigned_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    assigned_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["attribute__name"]
        indexes = [models.Index(fields=["data_owner"])]

    def __str__(self):
        return f"{self.attribute} → {self.data_owner}"


class InformationRequest(models.Model):
    """One request per data owner per report: the samples × attributes wanted, by a due date."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        SUBMITTED = "submitted", "Evidence submitted"
        RETURNED = "returned", "Returned to data owner"
        ACCEPTED = "accepted", "Accepted"

    cycle_report = models.ForeignKey(CycleReport, on_delete=models.CASCADE, related_name="information_requests")
    data_owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="information_requests")
    attributes = models.ManyToManyField(Attribute, related_name="information_requests")
    sample_keys = models.JSONField(default=list, help_text="Keys of the approved samples the request covers.")
    due_date = models.DateField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OPEN, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["cycle_report_id", "data_owner__username"]
        # One request per data owner when the requests go out; a reassignment (issue 7) may give an owner a
        # second one, moved to them as it was, so this is an index and not a unique constraint.
        indexes = [models.Index(fields=["cycle_report", "data_owner"], name="request_report_owner_idx")]

    def __str__(self):
        return f"Request to {self.data_owner} for {self.cycle_report.report}"


class RequestNotification(models.Model):
    """An email sent about a request; the unique key makes a retried send a no-op."""

    class Kind(models.TextChoices):
        REQUEST = "request", "Request sent"
        REMINDER = "reminder", "Reminder"
        DUE = "due", "Due today"
        ESCALATION = "escalation", "Escalation"
        RETURNED = "returned", "Returned"
        DATA_OWNERS = "data_owners", "Data owners requested"
        DATA_OWNER_SLA = "data_owner_sla", "Data owners not assigned by SLA"
        REASSIGNED = "reassigned", "Reassigned"

    key = models.CharField(max_length=200, unique=True)
    request = models.ForeignKey(
        InformationRequest, null=True, blank=True, on_delete=models.CASCADE, related_name="notifications"
    )
    cycle_report = models.ForeignKey(CycleReport, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    recipients = models.JSONField(default=list)
    subject = models.CharField(max_length=255)
    sent_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-sent_at"]

    def __str__(self):
        return f"{self.get_kind_display()}: {self.subject}"


def evidence_path(instance, filename):
    # A fresh name per upload: a file is never overwritten, whatever its name.
    return f"evidence/{instance.request.cycle_report_id}/{instance.request_id}/{uuid.uuid4().hex}"


class Evidence(models.Model):
    """A file a data owner uploaded for a request; never overwritten (a new upload is a new version)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for review"
        ACCEPTED = "accepted", "Accepted"
        RETURNED = "returned", "Returned"

    request = models.ForeignKey(InformationRequest, on_delete=models.PROTECT, related_name="evidence")
    file = models.FileField(upload_to=evidence_path)
    original_name = models.CharField(max_length=255)
    version = models.PositiveIntegerField(default=1)
    content_type = models.CharField(max_length=120)
    size_bytes = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    uploaded_at = models.DateTimeField(auto_now_add=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    review_note = models.TextField(blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["request_id", "original_name", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["request", "original_name", "version"], name="uniq_evidence_version")
        ]

    def __str__(self):
        return f"{self.original_name} v{self.version}"


class Reassignment(models.Model):
    """Work moved from one person to another on a running cycle, and why (issue 7).

    A data owner reassignment moves an attribute (and its open request, or the part of it that
    covers the attribute); a tester reassignment moves a report's work to another tester.
    """

    class Kind(models.TextChoices):
        DATA_OWNER = "data_owner", "Data owner"
        TESTER = "tester", "Tester"

    kind = models.CharField(max_length=20, choices=Kind.choices)
    cycle_report = models.ForeignKey(CycleReport, on_delete=models.PROTECT, related_name="reassignments")
    attribute = models.ForeignKey(Attribute, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    from_user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    to_user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reason = models.TextField()
    reassigned_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reassigned_at = models.DateTimeField(auto_now_add=True)
    request = models.ForeignKey(
        InformationRequest, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text="The open request the attribute was in when it was reassigned (none if requests were not out).",
    )
    new_request = models.ForeignKey(
        InformationRequest, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text="The request split off for the new data owner; empty when the whole request moved.",
    )

    class Meta:
        ordering = ["-reassigned_at", "-pk"]
        indexes = [models.Index(fields=["cycle_report", "kind"])]

    def __str__(self):
        what = self.attribute.name if self.attribute_id and self.kind == self.Kind.DATA_OWNER else "tester"
        return f"{what}: {self.from_user} → {self.to_user}"
