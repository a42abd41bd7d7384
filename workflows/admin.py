"""Admin of the workflow tracking tables and the decision outbox, with links to Temporal's Web UI.

The worker's interceptor writes these rows, so they are read-only here:
what Temporal ran can't be edited after the fact. Starting and cancelling
a cycle's workflow are actions on the cycle (cycles.admin); operations on one
run (cancel, terminate, retry, reset, re-deliver a decision) are confirmed
pages of this admin calling workflows.operations, as the API does.
"""
from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.db.models.functions import Coalesce
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.timesince import timesince

from cycles.models import Phase
from cycles.permissions import is_admin
from synapse.admin import ReadOnlyAdmin, ReadOnlyTabularInline
from synapse.exceptions import ApplicationError
from workflows import operations
from workflows.models import (
    CompensationEntry,
    CycleSchedule,
    ScheduledCycleRun,
    WorkerHeartbeat,
    WorkflowVersion,
    WorkflowAlert,
    WorkflowDecision,
    WorkflowExecution,
    WorkflowRetry,
    WorkflowStatusSnapshot,
    WorkflowStep,
    WorkflowTransition,
    WorkflowWait,
)
from workflows.temporal.contracts import REPORT_WORKFLOW_TYPE


def temporal_ui_url(workflow_id: str) -> str:
    base = settings.TEMPORAL_UI_URL.rstrip("/")
    return f"{base}/namespaces/{quote(settings.TEMPORAL_NAMESPACE, safe='')}/workflows/{quote(workflow_id, safe='')}"


def temporal_ui_link(workflow_id: str):
    """The workflow id as a link to its page in Temporal's Web UI ("—" when there is none)."""
    if not workflow_id:
        return "—"
    return format_html('<a href="{}" target="_blank" rel="noopener">{}</a>', temporal_ui_url(workflow_id), workflow_id)


class WorkflowStepInline(ReadOnlyTabularInline):
    model = WorkflowStep
    fields = ("activity_type", "activity_id", "phase", "status", "attempt", "started_at", "finished_at",
              "duration_ms", "error")
    readonly_fields = fields
    show_change_link = False


class WorkflowTransitionInline(ReadOnlyTabularInline):
    model = WorkflowTransition
    fields = ("from_phase", "to_phase", "skipped", "activity_id", "created_at")
    readonly_fields = fields
    show_change_link = False


class WorkflowWaitInline(ReadOnlyTabularInline):
    model = WorkflowWait
    verbose_name_plural = "waits (who the workflow waited on, and when)"
    fields = ("role", "phase", "started_at", "ended_at")
    readonly_fields = fields
    show_change_link = False


class AgeFilter(admin.SimpleListFilter):
    """How long a running workflow has gone without progress (or since it started)."""

    title = "waiting for"
    parameter_name = "age"
    BANDS = {"1h": (None, timedelta(hours=1)), "1d": (timedelta(hours=1), timedelta(days=1)),
             "7d": (timedelta(days=1), timedelta(days=7)), "older": (timedelta(days=7), None)}

    def lookups(self, request, model_admin):
        return [("1h", "under an hour"), ("1d", "1 hour to 1 day"), ("7d", "1 to 7 days"), ("older", "over 7 days")]

    def queryset(self, request, queryset):
        band = self.BANDS.get(self.value())
        if band is None:
            return queryset
        now = timezone.now()
        since = Coalesce("last_progress_at", "started_at")
        queryset = queryset.annotate(_since=since)
        shortest, longest = band
        if shortest is not None:
            queryset = queryset.filter(_since__lte=now - shortest)
        if longest is not None:
            queryset = queryset.filter(_since__gt=now - longest)
        return queryset


class WaitingOnFilter(admin.SimpleListFilter):
    title = "waiting on"
    parameter_name = "waiting_on"

    def lookups(self, request, model_admin):
        return [(v, v) for v in ("Tester", "Report Owner", "Data Executive", "Data Owner", "System", "Admin")]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(waiting_on__contains=self.value())
        return queryset


class OperationForm(forms.Form):
    """Confirm an operation on a workflow, with its reason (and the phase for a reset)."""

    reason = forms.CharField(label="Reason (goes in the audit trail)", widget=forms.Textarea(attrs={"rows": 3}),
                             max_length=1000)
    phase = forms.ChoiceField(label="Reset to the start of", choices=Phase.choices, required=False)


OPERATIONS = {
    "cancel": ("Cancel", "Ask the workflow to cancel: it records the report as cancelled and stops."),
    "terminate": ("Terminate", "Stop the run at once, without any cleanup in the workflow."),
    "retry": ("Retry the failed step", "Run the phase that failed beyond its retries again from its start."),
    "reset": ("Reset to a phase", "Compensate what the phase and the later ones wrote, then take the "
                                  "workflow back to the start of the phase."),
    "refresh": ("Refresh live state", "Ask the workflow where it stands now."),
}


@admin.register(WorkflowExecution)
class WorkflowExecutionAdmin(ReadOnlyAdmin):
    """Every cycle and report workflow: state, who it waits on, failures and retries; a detail page with
    the timeline, steps, retries, decisions, compensation and Temporal's event history; operations
    (cancel, terminate, retry, reset) confirmed with a reason, through workflows.operations."""

    change_form_template = "admin/workflows/workflowexecution/change_form.html"
    list_display = ("workflow_id", "workflow_type", "status", "current_phase", "state", "waiting_on", "waiting_for",
                    "failures", "retry_count", "cycle", "cycle_report", "parent", "started_at", "temporal")
    list_filter = ("status", "workflow_type", "current_phase", WaitingOnFilter, AgeFilter)
    search_fields = ("workflow_id", "run_id", "parent_workflow_id")
    list_select_related = ("cycle", "cycle_report__report", "cycle_report__cycle")
    date_hierarchy = "started_at"
    fields = ("workflow", "run_id", "workflow_type", "parent", "cycle", "cycle_report", "status",
              "current_phase", "state", "waiting_on", "last_error", "started_at", "last_progress_at", "closed_at")
    readonly_fields = fields
    inlines = [WorkflowTransitionInline, WorkflowWaitInline, WorkflowStepInline]
    actions = ["refresh_live"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(
            _failures=Count("steps", filter=Q(steps__status=WorkflowStep.Status.FAILED), distinct=True),
            _retries=Count("retries", distinct=True),
        )

    @admin.display(description="Workflow", ordering="workflow_id")
    def workflow(self, execution):
        return temporal_ui_link(execution.workflow_id)

    @admin.display(description="Temporal UI")
    def temporal(self, execution):
        return format_html('<a href="{}" target="_blank" rel="noopener">open ↗</a>', temporal_ui_url(execution.workflow_id))

    @admin.display(description="Parent", ordering="parent_workflow_id")
    def parent(self, execution):
        if not execution.parent_workflow_id:
            return "—"
        url = reverse("admin:workflows_workflowexecution_changelist")
        return format_html('<a href="{}?q={}">{}</a>', url, quote(execution.parent_workflow_id),
                           execution.parent_workflow_id)

    @admin.display(description="Waiting for")
    def waiting_for(self, execution):
        if execution.status != WorkflowExecution.Status.RUNNING:
            return "—"
        return timesince(execution.last_progress_at or execution.started_at)

    @admin.display(description="Failures", ordering="_failures")
    def failures(self, execution):
        return execution._failures

    @admin.display(description="Retries", ordering="_retries")
    def retry_count(self, execution):
        return execution._retries

    @admin.action(description="Refresh live state from Temporal")
    def refresh_live(self, request, queryset):
        refreshed = 0
        for execution in queryset.filter(status=WorkflowExecution.Status.RUNNING):
            try:
                operations.execution_live_status(execution=execution)
                refreshed += 1
            except ApplicationError as err:
                self.message_user(request, f"{execution.workflow_id}: {err.message}", level=messages.ERROR)
                break
        self.message_user(request, f"{refreshed} workflow(s) refreshed.", level=messages.SUCCESS)

    # --- the detail page and the operations ----------------------------------------------

    def get_urls(self):
        return [
            path("<int:object_id>/operate/<str:operation>/", self.admin_site.admin_view(self.operate_view),
                 name="workflows_workflowexecution_operate"),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        execution = self.get_object(request, object_id)
        extra = {}
        if execution is not None:
            extra = self._detail_context(request, execution)
        return super().change_view(request, object_id, form_url, extra_context={**extra, **(extra_context or {})})

    def _detail_context(self, request, execution):
        live_error = history_error = None
        live = None
        if execution.status == WorkflowExecution.Status.RUNNING:
            try:
                live = operations.execution_live_status(execution=execution)
            except ApplicationError as err:
                live_error = err.message
        try:
            history = operations.execution_history(user=request.user, execution=execution)
        except ApplicationError as err:
            history, history_error = [], err.message
        transitions = list(execution.transitions.all())
        timeline = [{"phase": t.to_phase, "skipped": t.skipped, "entered": t.created_at,
                     "left": transitions[i + 1].created_at if i + 1 < len(transitions) else None}
                    for i, t in enumerate(transitions)]
        return {
            "execution": execution,
            "live": live,
            "live_error": live_error,
            "timeline": timeline,
            "steps": execution.steps.all(),
            "retries": execution.retries.all(),
            "decisions": WorkflowDecision.objects.filter(workflow_id=execution.workflow_id)
            .select_related("requested_by").order_by("-created_at")[:50],
            "compensations": CompensationEntry.objects.filter(workflow_id=execution.workflow_id)
            .select_related("triggered_by"),
            "children": WorkflowExecution.objects.filter(parent_workflow_id=execution.workflow_id)
            .select_related("cycle_report__report"),
            "versions": execution.versions.all(),
            "history": history,
            "history_error": history_error,
            "operations": [(name, label) for name, (label, _) in OPERATIONS.items()
                           if name != "reset" or execution.workflow_type == REPORT_WORKFLOW_TYPE],
            "temporal_url": temporal_ui_url(execution.workflow_id),
        }

    def operate_view(self, request, object_id, operation):
        execution = self.get_object(request, object_id)
        if execution is None or operation not in OPERATIONS:
            raise Http404("No such workflow or operation.")
        if not is_admin(request.user) and operation not in ("cancel", "refresh"):
            raise PermissionDenied
        detail_url = reverse("admin:workflows_workflowexecution_change", args=[execution.pk])
        if operation == "refresh":
            try:
                operations.execution_live_status(execution=execution)
                self.message_user(request, "Live state refreshed.", level=messages.SUCCESS)
            except ApplicationError as err:
                self.message_user(request, err.message, level=messages.ERROR)
            return HttpResponseRedirect(detail_url)
        label, help_text = OPERATIONS[operation]
        form = OperationForm(request.POST or None, initial={"phase": execution.current_phase})
        if request.method == "POST" and form.is_valid():
            reason = form.cleaned_data["reason"]
            try:
                if operation == "cancel":
                    operations.execution_cancel(user=request.user, execution=execution, reason=reason)
                    done = "Cancellation requested; the workflow winds down on its own."
                elif operation == "terminate":
                    operations.execution_terminate(user=request.user, execution=execution, reason=reason)
                    done = "The workflow was terminated."
                elif operation == "retry":
                    done = operations.execution_retry_phase(user=request.user, execution=execution,
                                                            reason=reason).message
                else:
                    new = operations.execution_reset(user=request.user, execution=execution,
                                                     phase=form.cleaned_data["phase"], reason=reason)
                    self.message_user(request, f"Reset to the start of {Phase(new.current_phase).label}; "
                                               f"what it wrote was compensated.", level=messages.SUCCESS)
                    return HttpResponseRedirect(reverse("admin:workflows_workflowexecution_change", args=[new.pk]))
            except ApplicationError as err:
                form.add_error(None, err.message)
            else:
                self.message_user(request, done, level=messages.SUCCESS)
                return HttpResponseRedirect(detail_url)
        context = {
            **self.admin_site.each_context(request),
            "title": f"{label}: {execution.workflow_id}",
            "opts": self.model._meta,
            "execution": execution,
            "operation": operation,
            "label": label,
            "help_text": help_text,
            "form": form,
            "show_phase": operation == "reset",
            "detail_url": detail_url,
        }
        return TemplateResponse(request, "admin/workflows/operate_confirm.html", context)


@admin.register(WorkflowStep)
class WorkflowStepAdmin(ReadOnlyAdmin):
    list_display = ("activity_type", "execution", "phase", "status", "attempt", "started_at", "duration_ms")
    list_filter = ("status", "activity_type", "phase")
    search_fields = ("activity_type", "activity_id", "execution__workflow_id", "error")
    list_select_related = ("execution",)
    date_hierarchy = "started_at"


@admin.register(WorkflowTransition)
class WorkflowTransitionAdmin(ReadOnlyAdmin):
    list_display = ("execution", "from_phase", "to_phase", "skipped", "created_at")
    list_filter = ("to_phase", "skipped")
    search_fields = ("execution__workflow_id", "activity_id")
    list_select_related = ("execution",)


@admin.register(WorkflowWait)
class WorkflowWaitAdmin(ReadOnlyAdmin):
    """Who each report workflow waited on, and from when to when (the monitoring page sums these)."""

    list_display = ("execution", "role", "phase", "started_at", "ended_at")
    list_filter = ("role", "phase")
    search_fields = ("execution__workflow_id",)
    list_select_related = ("execution",)


@admin.register(WorkflowDecision)
class WorkflowDecisionAdmin(ReadOnlyAdmin):
    """The outbox of human decisions; pending ones are delivered by the worker when Temporal is back."""

    list_display = ("created_at", "update_name", "workflow", "requested_by", "cycle_report", "status", "attempts",
                    "delivered_at")
    list_filter = ("status", "update_name")
    search_fields = ("workflow_id", "requested_by__username", "error")
    list_select_related = ("requested_by", "cycle_report__report", "cycle_report__cycle")
    date_hierarchy = "created_at"
    actions = ["reconcile", "redeliver"]

    @admin.display(description="Workflow", ordering="workflow_id")
    def workflow(self, decision):
        return temporal_ui_link(decision.workflow_id)

    @admin.action(description="Reconcile their reports' workflows with the database (deliver, repair, alert)")
    def reconcile(self, request, queryset):
        from workflows.services import workflows_reconcile

        ids = sorted({pk for pk in queryset.values_list("cycle_report_id", flat=True) if pk})
        report = workflows_reconcile(cycle_report_ids=ids)
        self.message_user(request, f"Reconciliation: {report}.",
                          level=messages.WARNING if report.unavailable or report.alerts else messages.SUCCESS)


    @admin.action(description="Re-deliver to the workflow")
    def redeliver(self, request, queryset):
        """Confirm with a reason first (an intermediate page), then send each through workflows.operations."""
        form = OperationForm(request.POST if "confirm" in request.POST else None)
        if "confirm" in request.POST and form.is_valid():
            for decision in queryset.order_by("created_at"):
                try:
                    outcome = operations.decision_redeliver(user=request.user, decision=decision,
                                                            reason=form.cleaned_data["reason"])
                    self.message_user(request, f"{decision.update_name} → {decision.workflow_id}: {outcome.message}",
                                      level=messages.SUCCESS)
                except ApplicationError as err:
                    self.message_user(request, f"{decision.update_name} → {decision.workflow_id}: {err.message}",
                                      level=messages.ERROR)
            return None
        return TemplateResponse(request, "admin/workflows/operate_confirm.html", {
            **self.admin_site.each_context(request),
            "title": "Re-deliver decisions",
            "opts": self.model._meta,
            "label": "Re-deliver",
            "help_text": "Send the stored decisions to their workflows again, with the same update ids "
                         "(a delivered one is refused: the workflow already has it).",
            "form": form,
            "decisions": queryset,
            "action": "redeliver",
            "detail_url": reverse("admin:workflows_workflowdecision_changelist"),
        })


@admin.register(WorkflowStatusSnapshot)
class WorkflowStatusSnapshotAdmin(ReadOnlyAdmin):
    """The last status each report's workflow answered: what pages show while Temporal or the worker is away."""

    list_display = ("cycle_report", "workflow", "read_at")
    search_fields = ("workflow_id",)
    list_select_related = ("cycle_report__report", "cycle_report__cycle")

    @admin.display(description="Workflow", ordering="workflow_id")
    def workflow(self, snapshot):
        return temporal_ui_link(snapshot.workflow_id)


@admin.register(WorkflowAlert)
class WorkflowAlertAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "severity", "kind", "message", "cycle_report", "workflow", "resolved_at")
    list_filter = ("severity", "kind", ("resolved_at", admin.EmptyFieldListFilter))
    search_fields = ("kind", "message", "workflow_id", "key")
    list_select_related = ("cycle_report__report", "cycle_report__cycle")
    date_hierarchy = "created_at"
    actions = ["mark_resolved"]

    @admin.display(description="Workflow", ordering="workflow_id")
    def workflow(self, alert):
        return temporal_ui_link(alert.workflow_id)

    @admin.action(description="Mark resolved")
    def mark_resolved(self, request, queryset):
        count = queryset.filter(resolved_at__isnull=True).update(resolved_at=timezone.now())
        self.message_user(request, f"{count} alert(s) marked resolved.", level=messages.SUCCESS)


@admin.register(WorkflowRetry)
class WorkflowRetryAdmin(ReadOnlyAdmin):
    """The retry log: every failed attempt Temporal retried, with the wait the policy gave it."""

    list_display = ("created_at", "activity_type", "execution", "attempt", "max_attempts", "delay_seconds", "error")
    list_filter = ("activity_type",)
    search_fields = ("activity_type", "execution__workflow_id", "error")
    list_select_related = ("execution",)
    date_hierarchy = "created_at"


@admin.register(CompensationEntry)
class CompensationEntryAdmin(ReadOnlyAdmin):
    """The compensation log: what undoing a phase did, who or what triggered it, and how it went."""

    list_display = ("created_at", "cycle_report", "phase", "strategy", "trigger", "triggered_by", "outcome", "undone")
    list_filter = ("strategy", "trigger", "outcome", "phase")
    search_fields = ("workflow_id", "reason", "key")
    list_select_related = ("cycle_report__report", "cycle_report__cycle", "triggered_by")
    date_hierarchy = "created_at"


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(ReadOnlyAdmin):
    """Worker processes and when each last said it was alive (/healthz reads the same rows)."""

    list_display = ("identity", "task_queue", "build_id", "started_at", "last_seen_at", "alive", "stopped_at")
    search_fields = ("identity", "task_queue", "build_id")

    @admin.display(boolean=True, description="Alive")
    def alive(self, beat):
        from workflows.monitor import workers_alive

        return workers_alive().filter(pk=beat.pk).exists()


@admin.register(WorkflowVersion)
class WorkflowVersionAdmin(ReadOnlyAdmin):
    """Migration history: the workflow build each execution ran on, and when it moved to another."""

    list_display = ("execution", "build_id", "patches", "first_seen_at")
    list_filter = ("build_id",)
    search_fields = ("execution__workflow_id", "build_id")
    list_select_related = ("execution",)


@admin.register(CycleSchedule)
class CycleScheduleAdmin(admin.ModelAdmin):
    """Recurring cycles: adding one creates its Temporal Schedule (workflows.schedules); pause, resume and
    trigger are actions. The cycles a schedule made are listed on it."""

    list_display = ("name", "template", "frequency", "paused", "created_by", "schedule_link", "cycles_made")
    list_filter = ("frequency", "paused")
    search_fields = ("name", "schedule_id")
    list_select_related = ("template", "created_by")
    fields = ("name", "template", "frequency")
    actions = ["pause", "resume", "trigger"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_runs=Count("runs"))

    def get_readonly_fields(self, request, obj=None):
        return ("name", "template", "frequency", "paused", "schedule_link", "temporal_state") if obj else ()

    def get_fields(self, request, obj=None):
        return self.get_readonly_fields(request, obj) if obj else self.fields

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def save_model(self, request, obj, form, change):
        from workflows.schedules import schedule_create

        created = schedule_create(user=request.user, template=form.cleaned_data["template"],
                                  frequency=form.cleaned_data["frequency"], name=form.cleaned_data["name"])
        obj.pk, obj.schedule_id = created.pk, created.schedule_id

    def add_view(self, request, form_url="", extra_context=None):
        try:
            return super().add_view(request, form_url, extra_context)
        except ApplicationError as err:
            self.message_user(request, err.message, level=messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    @admin.display(description="Cycles made", ordering="_runs")
    def cycles_made(self, schedule):
        return schedule._runs

    @admin.display(description="Temporal schedule")
    def schedule_link(self, schedule):
        base = settings.TEMPORAL_UI_URL.rstrip("/")
        namespace = quote(settings.TEMPORAL_NAMESPACE, safe="")
        return format_html('<a href="{}/namespaces/{}/schedules/{}" target="_blank" rel="noopener">{}</a>',
                           base, namespace, quote(schedule.schedule_id, safe=""), schedule.schedule_id)

    @admin.display(description="In Temporal")
    def temporal_state(self, schedule):
        from workflows.schedules import schedule_describe

        try:
            state = schedule_describe(schedule=schedule)
        except ApplicationError as err:
            return err.message
        nxt = ", ".join(f"{t:%Y-%m-%d %H:%M}" for t in state["next_runs"]) or "—"
        return f"{'Paused' if state['paused'] else 'Active'}; next runs: {nxt}"

    def _each(self, request, queryset, operation, done: str):
        for schedule in queryset:
            try:
                operation(user=request.user, schedule=schedule, reason=f"From the admin by {request.user}")
                self.message_user(request, f"{schedule}: {done}.", level=messages.SUCCESS)
            except ApplicationError as err:
                self.message_user(request, f"{schedule}: {err.message}", level=messages.ERROR)

    @admin.action(description="Pause the selected schedules")
    def pause(self, request, queryset):
        from workflows.schedules import schedule_pause

        self._each(request, queryset, schedule_pause, "paused")

    @admin.action(description="Resume the selected schedules")
    def resume(self, request, queryset):
        from workflows.schedules import schedule_resume

        self._each(request, queryset, schedule_resume, "resumed")

    @admin.action(description="Run the selected schedules now")
    def trigger(self, request, queryset):
        from workflows.schedules import schedule_trigger

        self._each(request, queryset, schedule_trigger, "triggered: a new cycle is being created and started")


@admin.register(ScheduledCycleRun)
class ScheduledCycleRunAdmin(ReadOnlyAdmin):
    """The cycles each schedule made, one per run of its Temporal Schedule (a retried run makes none twice)."""

    list_display = ("schedule", "cycle", "run_key", "created_at")
    search_fields = ("run_key", "schedule__name", "cycle__name")
    list_select_related = ("schedule", "cycle")
