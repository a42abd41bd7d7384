"""Admin of versions, their items and approvals.

Versions are made and decided through the workflow (versioning.services), so
the admin adds and deletes none; only a version's notes can be corrected,
and not once it is approved (the model and database triggers refuse that too).
"""
from django.contrib import admin

from synapse.admin import BIG_TABLE_ORDERING, ListCostAdmin, ReadOnlyAdmin, ReadOnlyTabularInline
from versioning.models import Approval, Version, VersionItem, VersionStatus
from workflows.admin import temporal_ui_link

# Rows of a changelist page: hundreds of rows per page made the big tables slow to build and to read.
LIST_PER_PAGE = 50


class VersionItemInline(ReadOnlyTabularInline):
    model = VersionItem
    max_rows = 20
    verbose_name_plural = "items (the first 20 by key; the Version items list has every one)"
    fields = ("key", "data", "decision", "decision_note", "decided_by", "decided_at")
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("decided_by").order_by("key")


class ApprovalInline(ReadOnlyTabularInline):
    model = Approval
    fields = ("decision", "notes", "decided_by", "created_at")
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("decided_by")


@admin.register(Version)
class VersionAdmin(ListCostAdmin):
    list_per_page = LIST_PER_PAGE
    list_display = ("__str__", "cycle_report", "phase", "number", "status", "author", "created_at", "submitted_at",
                    "decided_at")
    list_filter = ("phase", "status")
    search_fields = ("cycle_report__report__name", "cycle_report__cycle__name", "author__username", "notes",
                     "workflow_id")
    list_select_related = ("cycle_report__report", "cycle_report__cycle", "author")
    date_hierarchy = "created_at"
    fields = ("cycle_report", "phase", "number", "status", "parent", "author", "notes", "workflow", "workflow_run_id",
              "workflow_step", "activity_name", "request_id", "created_at", "submitted_at", "decided_at")
    readonly_fields = tuple(f for f in fields if f != "notes")
    inlines = [ApprovalInline, VersionItemInline]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        if obj is not None and obj.status == VersionStatus.APPROVED:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Workflow", ordering="workflow_id")
    def workflow(self, version):
        return temporal_ui_link(version.workflow_id)


@admin.register(VersionItem)
class VersionItemAdmin(ReadOnlyAdmin):
    list_per_page = LIST_PER_PAGE
    ordering = BIG_TABLE_ORDERING
    show_full_result_count = False
    changelist_defer = ("data", "decision_note")
    list_display = ("key", "version", "decision", "decided_by", "decided_at")
    list_filter = ("decision", "version__phase", "version__status")
    search_fields = ("key", "decision_note", "version__cycle_report__report__name")
    list_select_related = ("version", "decided_by")
    # A version has hundreds of items: pick it by id, don't render every version in a select.
    raw_id_fields = ("version",)


@admin.register(Approval)
class ApprovalAdmin(ReadOnlyAdmin):
    list_per_page = LIST_PER_PAGE
    list_display = ("version", "cycle_report", "decision", "decided_by", "created_at", "workflow")
    list_filter = ("decision", "version__phase")
    search_fields = ("version__cycle_report__report__name", "decided_by__username", "notes", "workflow_id")
    list_select_related = ("version__cycle_report__report", "version__cycle_report__cycle", "decided_by")
    date_hierarchy = "created_at"

    @admin.display(description="Report in cycle", ordering="version__cycle_report")
    def cycle_report(self, approval):
        return approval.version.cycle_report

    @admin.display(description="Workflow", ordering="workflow_id")
    def workflow(self, approval):
        return temporal_ui_link(approval.workflow_id)
