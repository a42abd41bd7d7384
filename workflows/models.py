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
    # Issue 9: the live state, as the last status query answered it (workflows.operations refreshes it).
    state = models.CharField(max_length=40, blank=True, help_text="The workflow's state in its current phase.")
    waiting_on = models.CharField(max_length=60, blank=True, help_text="Who the workflow waits on now.")
    last_error = models.TextField(blank=True)
    last_progress_at = models.DateTimeField(null=True, blank=True, help_text="Last step finished or state change.")
    # When a worker's monitor last asked the workflow for its live state (claimed first: of several workers,
    # one asks, once every WORKFLOW_LIVE_REFRESH_SECONDS; see workflows.monitor).
    live_checked_at = models.DateTimeField(null=True, blank=True)
    # When a worker's reconciliation last compared the workflow with the database (claimed first, the same
    # way: of several workers, one does it; see workflows.services.workflows_reconcile).
    reconciled_at = models.DateTimeField(null=True, blank=True)

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


class WorkflowWait(models.Model):
    """A stretch of time a report workflow waited on one role, as its status answered it.

    Opened when the live state (workflows.operations.execution_live_status, refreshed by a
    worker's monitor every WORKFLOW_LIVE_REFRESH_SECONDS) starts naming the role, closed when it stops; the
    monitoring page sums them into the time each role has kept reports waiting.
    """

    execution = models.ForeignKey(WorkflowExecution, on_delete=models.CASCADE, related_name="waits")
    role = models.CharField(max_length=60)
    phase = models.CharField(max_length=40, blank=True)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["execution_id", "started_at", "id"]
        indexes = [models.Index(fields=["execution", "ended_at"]), models.Index(fields=["role"])]

    def __str__(self):
        return f"{self.execution.workflow_id} waited on {self.role} from {self.started_at:%Y-%m-%d %H:%M}"


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
        ordering = ["execution_id", "started_at", "id"]
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
        ordering = ["execution_id", "created_at", "id"]
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
    sending_until = models.DateTimeField(
        null=True, blank=True,
        help_text="While someone sends it and waits for the answer: the outbox leaves it to them until then.",
    )

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


# --- issue 9: retry log, compensation log ---------------------------------------------------


class WorkflowRetry(models.Model):
    """One failed activity attempt that Temporal will retry (written by the worker's interceptor)."""

    execution = models.ForeignKey(WorkflowExecution, on_delete=models.CASCADE, related_name="retries")
    step = models.ForeignKey(WorkflowStep, null=True, blank=True, on_delete=models.CASCADE, related_name="retries")
    activity_type = models.CharField(max_length=120)
    activity_id = models.CharField(max_length=100)
    attempt = models.PositiveIntegerField(help_text="The attempt that failed.")
    max_attempts = models.PositiveIntegerField(default=0, help_text="0: unlimited.")
    error = models.TextField()
    delay_seconds = models.FloatField(help_text="Wait before the next attempt, from the retry policy.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["execution", "activity_id", "attempt"], name="uniq_retry_attempt")
        ]
        indexes = [models.Index(fields=["activity_type", "-created_at"])]

    def __str__(self):
        return f"{self.activity_type} attempt {self.attempt} failed"


class CompensationEntry(models.Model):
    """What undoing a phase did: who or what triggered it, what was undone, how it went."""

    class Strategy(models.TextChoices):
        ROLLBACK = "rollback", "Rollback (remove what the phase created)"
        PARTIAL_ROLLBACK = "partial_rollback", "Partial rollback (keep what succeeded)"
        NOTIFY = "notify", "Notify the people involved"
        SKIP = "skip", "Skip (continue; manual intervention recorded)"

    class Trigger(models.TextChoices):
        PHASE_FAILED = "phase_failed", "Phase failed beyond its retries"
        REPORT_REMOVED = "report_removed", "Report removed from a running cycle"
        ADMIN_RESET = "admin_reset", "Admin reset the report to an earlier phase"

    class Outcome(models.TextChoices):
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        MANUAL = "manual", "Needs manual intervention"

    key = models.CharField(max_length=255, unique=True, help_text="Idempotency key: one entry per compensation.")
    cycle_report = models.ForeignKey(
        "cycles.CycleReport", null=True, blank=True, on_delete=models.SET_NULL, related_name="compensations"
    )
    workflow_id = models.CharField(max_length=200, blank=True, db_index=True)
    phase = models.CharField(max_length=40)
    strategy = models.CharField(max_length=20, choices=Strategy.choices)
    trigger = models.CharField(max_length=20, choices=Trigger.choices)
    triggered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="The person who triggered it; empty when the workflow did.",
    )
    reason = models.TextField(blank=True)
    undone = models.JSONField(default=dict, blank=True, help_text="{what: how many}, e.g. {\"scoping_decisions\": 5}.")
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.DONE)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "compensation entries"
        indexes = [models.Index(fields=["cycle_report", "-created_at"])]

    def __str__(self):
        return f"{self.phase}: {self.strategy} ({self.outcome})"


# --- issue 9: worker liveness --------------------------------------------------------------------


class WorkerHeartbeat(models.Model):
    """A worker process says it is alive every few seconds; /healthz and the admin read it."""

    identity = models.CharField(max_length=200, unique=True, help_text="host:pid of the worker process.")
    task_queue = models.CharField(max_length=200)
    build_id = models.CharField(max_length=40, blank=True, help_text="Hash of the workflow code it runs.")
    started_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    stopped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_seen_at"]

    def __str__(self):
        return f"{self.identity} on {self.task_queue}"


class WorkflowVersion(models.Model):
    """Migration history: which workflow code (build) ran each execution, and when it moved to a new one.

    The worker's tracking interceptor records the build of the worker that ran an execution's activities;
    a new row for the same execution is the moment it moved (its old path kept by workflow.patched).
    """

    execution = models.ForeignKey(WorkflowExecution, on_delete=models.CASCADE, related_name="versions")
    build_id = models.CharField(max_length=40)
    patches = models.JSONField(default=list, blank=True, help_text="workflow.patched ids known to that build.")
    first_seen_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["execution_id", "first_seen_at", "id"]
        constraints = [models.UniqueConstraint(fields=["execution", "build_id"], name="uniq_execution_build")]

    def __str__(self):
        return f"{self.execution.workflow_id} on {self.build_id}"


# --- issue 9: recurring cycles (Temporal Schedules) ---------------------------------------------


class CycleSchedule(models.Model):
    """A cycle that recurs: a Temporal Schedule creates a cycle like the template and starts its workflow."""

    class Frequency(models.TextChoices):
        MONTHLY = "monthly", "Monthly (the 1st)"
        QUARTERLY = "quarterly", "Quarterly (1 Jan, Apr, Jul, Oct)"

    name = models.CharField(max_length=200, help_text="Each cycle is named '<name> <period>'.")
    template = models.ForeignKey("cycles.TestCycle", on_delete=models.PROTECT, related_name="schedules",
                                 help_text="Reports, testers and settings are copied from this cycle.")
    frequency = models.CharField(max_length=20, choices=Frequency.choices)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    schedule_id = models.CharField(max_length=200, unique=True, blank=True)
    paused = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return f"{self.name} ({self.get_frequency_display()})"


class ScheduledCycleRun(models.Model):
    """One cycle a schedule created; the run key (the scheduled workflow's id) makes a retry create nothing twice."""

    schedule = models.ForeignKey(CycleSchedule, on_delete=models.CASCADE, related_name="runs")
    run_key = models.CharField(max_length=255, unique=True)
    cycle = models.OneToOneField("cycles.TestCycle", on_delete=models.CASCADE, related_name="scheduled_run")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
