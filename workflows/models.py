"""Tracking tables filled by the worker's interceptor, and the decision outbox.

Nothing here holds business rules: these rows describe what Temporal ran and
what people asked of it.
"""
import uuid

from django.conf import settings
from django.db import models


class WorkflowExecution(models.Model):
    """One Temporal workflow run, as the worker saw it."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"
        TERMINATED = "terminated", "Terminated"

    workflow_id = models.CharField(max_length=200)
    run_id = models.CharField(max_length=64)
    workflow_type = models.CharField(max_length=120)
    parent_workflow_id = models.CharField(max_length=200, blank=True)
    cycle = models.ForeignKey(
        "cycles.TestCycle", null=True, blank=True, on_delete=models.SET_NULL, related_name="workflow_executions"
    )
    cycle_report = models.ForeignKey(
        "cycles.CycleReport", null=True, blank=True, on_delete=models.SET_NULL, related_name="workflow_executions"
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.RUNNING)
    current_phase = models.CharField(max_length=40, blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]
        constraints = [models.UniqueConstraint(fields=["workflow_id", "run_id"], name="uniq_execution_run")]
        indexes = [
            models.Index(fields=["status", "-started_at"]),
            models.Index(fields=["workflow_type", "status"]),
            models.Index(fields=["workflow_id"]),
        ]

    def __str__(self):
        return f"{self.workflow_id} ({self.status})"


class WorkflowStep(models.Model):
    """One activity execution (all its attempts) inside a workflow run."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"
        RETRYING = "retrying", "Retrying"

    execution = models.ForeignKey(WorkflowExecution, on_delete=models.CASCADE, related_name="steps")
    activity_id = models.CharField(max_length=100)
    activity_type = models.CharField(max_length=120)
    phase = models.CharField(max_length=40, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.RUNNING)
    attempt = models.PositiveIntegerField(default=1)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["execution", "started_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["execution", "activity_id"], name="uniq_step_activity")
        ]
        indexes = [
            models.Index(fields=["activity_type", "status"]),
            models.Index(fields=["phase", "status"]),
            models.Index(fields=["-started_at"]),
        ]

    def __str__(self):
        return f"{self.activity_type} #{self.attempt} ({self.status})"


class WorkflowTransition(models.Model):
    """A report workflow moving from one phase to the next."""

    execution = models.ForeignKey(WorkflowExecution, on_delete=models.CASCADE, related_name="transitions")
    from_phase = models.CharField(max_length=40, blank=True)
    to_phase = models.CharField(max_length=40)
    skipped = models.BooleanField(default=False)
    activity_id = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["execution", "created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["execution", "activity_id"], name="uniq_transition_activity")
        ]
        indexes = [models.Index(fields=["to_phase", "-created_at"])]

    def __str__(self):
        return f"{self.from_phase or 'start'} -> {self.to_phase}"


class WorkflowDecision(models.Model):
    """A person's step, stored in the transaction of the business change it stands for, then sent.

    Its id is the Temporal update id, so delivering it twice (a retry after a
    lost answer, or the outbox after an outage) is one update, not two. Each
    workflow's decisions are delivered in the order they were stored.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for the workflow service"
        ACCEPTED = "accepted", "Accepted, being carried out"
        DELIVERED = "delivered", "Delivered"
        DUPLICATE = "duplicate", "Already applied"
        REJECTED = "rejected", "Refused by the workflow"

    # Not answered yet: an earlier one of these holds back the workflow's later decisions.
    OPEN = (Status.PENDING, Status.ACCEPTED)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workflow_id = models.CharField(max_length=200)
    update_name = models.CharField(max_length=80)
    payload = models.JSONField(help_text="The update's input dataclass as a dict.")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    cycle_report = models.ForeignKey(
        "cycles.CycleReport", null=True, blank=True, on_delete=models.SET_NULL, related_name="decisions"
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    subject = models.CharField(
        max_length=100, blank=True, db_index=True,
        help_text="What the step is about (e.g. information_request:12), to find the decision a service stored.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [
            models.Index(fields=["status", "created_at"]),
            models.Index(fields=["workflow_id", "status", "created_at"]),
        ]

    def __str__(self):
        return f"{self.update_name} -> {self.workflow_id} ({self.status})"


class WorkflowStatusSnapshot(models.Model):
    """The last status a report's workflow answered, shown (with its age) while Temporal or the worker is away."""

    cycle_report = models.OneToOneField(
        "cycles.CycleReport", on_delete=models.CASCADE, related_name="workflow_status_snapshot"
    )
    workflow_id = models.CharField(max_length=200)
    status = models.JSONField(help_text="The status query's answer (ReportStatus) as a dict.")
    read_at = models.DateTimeField()

    def __str__(self):
        return f"{self.workflow_id} as of {self.read_at:%Y-%m-%d %H:%M:%S}"


class WorkflowAlert(models.Model):
    """Something an operator or a manager must look at (failure, SLA breach, escalation)."""

    class Severity(models.TextChoices):
        INFO = "info", "Info"
        WARNING = "warning", "Warning"
        CRITICAL = "critical", "Critical"

    key = models.CharField(max_length=255, unique=True, help_text="Idempotency key: one alert per event.")
    workflow_id = models.CharField(max_length=200, blank=True, db_index=True)
    cycle_report = models.ForeignKey(
        "cycles.CycleReport", null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts"
    )
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.WARNING)
    kind = models.CharField(max_length=60)
    message = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["resolved_at", "-created_at"])]

    def __str__(self):
        return f"[{self.severity}] {self.kind}: {self.message[:60]}"
