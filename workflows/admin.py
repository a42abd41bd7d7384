"""Admin of the workflow tracking tables and the decision outbox, with links to Temporal's Web UI.

The worker's interceptor writes these rows, so they are read-only here:
what Temporal ran can't be edited after the fact. Starting and cancelling
a cycle's workflow are actions on the cycle (cycles.admin).
"""
from __future__ import annotations

from urllib.parse import quote

from django.conf import settings
from django.contrib import admin, messages
from django.utils import timezone
from django.utils.html import format_html

from synapse.admin import ReadOnlyAdmin, ReadOnlyTabularInline
from workflows.models import (
    WorkflowAlert,
    WorkflowDecision,
    WorkflowExecution,
    WorkflowStatusSnapshot,
    WorkflowStep,
    WorkflowTransition,
)


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


@admin.register(WorkflowExecution)
class WorkflowExecutionAdmin(ReadOnlyAdmin):
    list_display = ("workflow", "workflow_type", "status", "current_phase", "cycle", "cycle_report", "started_at",
                    "closed_at")
    list_filter = ("status", "workflow_type", "current_phase")
    search_fields = ("workflow_id", "run_id", "parent_workflow_id")
    list_select_related = ("cycle", "cycle_report__report", "cycle_report__cycle")
    date_hierarchy = "started_at"
    fields = ("workflow", "run_id", "workflow_type", "parent_workflow_id", "cycle", "cycle_report", "status",
              "current_phase", "started_at", "closed_at")
    readonly_fields = fields
    inlines = [WorkflowTransitionInline, WorkflowStepInline]

    @admin.display(description="Workflow", ordering="workflow_id")
    def workflow(self, execution):
        return temporal_ui_link(execution.workflow_id)


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


@admin.register(WorkflowDecision)
class WorkflowDecisionAdmin(ReadOnlyAdmin):
    """The outbox of human decisions; pending ones are delivered by the worker when Temporal is back."""

    list_display = ("created_at", "update_name", "workflow", "requested_by", "cycle_report", "status", "attempts",
                    "delivered_at")
    list_filter = ("status", "update_name")
    search_fields = ("workflow_id", "requested_by__username", "error")
    list_select_related = ("requested_by", "cycle_report__report", "cycle_report__cycle")
    date_hierarchy = "created_at"
    actions = ["reconcile"]

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
