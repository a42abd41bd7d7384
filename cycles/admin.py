"""Admin of LOBs, reports, cycles and their phase records.

Anything with rules goes through cycles.services: the admin's forms call the
service while the form validates, so a refusal is shown on the form and
nothing is saved. Phase records (attributes, population files, profiles,
scoping) belong to the tester's work and the workflow, so they are read-only
here.
"""
from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.db.models import Count, Func, IntegerField, Q
from django.urls import reverse
from django.utils.html import format_html_join

from cycles.models import (
    LOB,
    Attribute,
    ColumnMapping,
    CycleReport,
    DataOwnerAssignment,
    Evidence,
    InformationRequest,
    PhaseState,
    PopulationFile,
    ProfileResult,
    ProfilingRule,
    Report,
    RequestNotification,
    Sample,
    SampleSizeRule,
    SamplingPlan,
    ScopingDecision,
    TestCycle,
)
from cycles.services.cycles import (
    cycle_add_report,
    cycle_create,
    cycle_report_assign_tester,
    cycle_update_configuration,
    lob_create,
    report_create,
)
from synapse.admin import (
    BIG_TABLE_ORDERING,
    EstimatedCountPaginator,
    ListCostAdmin,
    ReadOnlyAdmin,
    ReadOnlyTabularInline,
)
from synapse.exceptions import ApplicationError
from synapse.roles import Role
from workflows.admin import temporal_ui_link
from workflows.services import workflow_cancel, workflow_start

# Rows of a changelist page: hundreds of rows per page made the big tables slow to build and to read.
LIST_PER_PAGE = 50

# Foreign keys to users that must hold a role, by model field. An Admin may
# manage a cycle (cycles.permissions.can_manage_cycle), so may be its manager.
ROLE_OF_USER_FIELD = {
    (LOB, "data_executive"): [Role.DATA_EXECUTIVE],
    (Report, "owner"): [Role.REPORT_OWNER],
    (TestCycle, "test_manager"): [Role.TEST_MANAGER, Role.ADMIN],
    (CycleReport, "tester"): [Role.TESTER],
}


class ServiceModelForm(forms.ModelForm):
    """A ModelForm whose writes go through a service.

    call_service() runs when the form validates, inside the admin's
    transaction: an ApplicationError becomes a form error and the service's
    own transaction leaves nothing behind. When it returns the saved object,
    the admin saves nothing more; when it returns None, the admin saves the
    plain field edits as usual. Only for admins without editable inlines
    (an invalid inline would leave the service's write committed).
    """

    request = None  # set per request by ServiceModelAdmin.get_form
    saved_by_service = False

    def call_service(self, *, user, adding: bool):
        return None

    def _post_clean(self):
        adding = self.instance._state.adding
        super()._post_clean()
        if self._errors:
            return
        try:
            saved = self.call_service(user=self.request.user, adding=adding)
        except ApplicationError as err:
            self.add_error(None, err.message)
            return
        if saved is not None:
            self.instance = saved
            self.saved_by_service = True


class ServiceModelAdmin(ListCostAdmin):
    """Saves through ServiceModelForm. No inlines: their formsets validate after the service has written."""

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        return type(form.__name__, (form,), {"request": request})

    def save_model(self, request, obj, form, change):
        if not getattr(form, "saved_by_service", False):
            super().save_model(request, obj, form, change)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        roles = ROLE_OF_USER_FIELD.get((self.model, db_field.name))
        if roles:
            holders = Q(groups__name__in=roles) | (Q(is_superuser=True) if Role.ADMIN in roles else Q(pk__in=[]))
            kwargs["queryset"] = get_user_model().objects.filter(holders, is_active=True).distinct()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


# --- LOBs and reports ----------------------------------------------------------


class LOBAdminForm(ServiceModelForm):
    class Meta:
        model = LOB
        fields = ["name", "code", "data_executive"]

    def call_service(self, *, user, adding):
        if not adding:
            return None
        data = self.cleaned_data
        return lob_create(name=data["name"], code=data["code"], data_executive=data["data_executive"], actor=user)


@admin.register(LOB)
class LOBAdmin(ServiceModelAdmin):
    form = LOBAdminForm
    list_per_page = LIST_PER_PAGE
    list_display = ("name", "code", "data_executive", "report_count")
    search_fields = ("name", "code", "data_executive__username", "data_executive__last_name")
    list_select_related = ("data_executive",)
    prepopulated_fields = {"code": ("name",)}

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(report_count=Count("reports"))

    @admin.display(description="Reports", ordering="report_count")
    def report_count(self, lob):
        return lob.report_count


class ReportAdminForm(ServiceModelForm):
    class Meta:
        model = Report
        fields = ["name", "regulation", "description", "owner", "lob", "frequency", "fields"]

    def call_service(self, *, user, adding):
        if not adding:
            return None
        data = self.cleaned_data
        return report_create(
            name=data["name"], regulation=data["regulation"], owner=data["owner"], lob=data["lob"],
            frequency=data["frequency"], fields=data["fields"] or [], description=data["description"], actor=user,
        )


class JSONArrayLength(Func):
    """The number of items of a JSON array column (0 when it holds anything else), counted by the database."""

    output_field = IntegerField()

    def as_postgresql(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection, template=(
            "CASE WHEN jsonb_typeof(%(expressions)s) = 'array' THEN jsonb_array_length(%(expressions)s) ELSE 0 END"
        ), **extra)

    def as_sqlite(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection, template="COALESCE(json_array_length(%(expressions)s), 0)", **extra)


@admin.register(Report)
class ReportAdmin(ServiceModelAdmin):
    form = ReportAdminForm
    list_per_page = LIST_PER_PAGE
    list_display = ("name", "regulation", "lob", "owner", "frequency", "field_count")
    list_filter = ("lob", "frequency", "regulation")
    search_fields = ("name", "regulation", "description", "owner__username", "owner__last_name")
    list_select_related = ("lob", "owner")
    # The list counts the fields in the database: the field list is some 20 KB of JSON a report.
    changelist_defer = ("fields", "description")

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(field_total=JSONArrayLength("fields"))

    @admin.display(description="Fields", ordering="field_total")
    def field_count(self, report):
        return report.field_total


# --- cycles ----------------------------------------------------------------------


def _change_links(rows, describe) -> str:
    """Rows as links to their admin change pages, one a line."""
    links = [
        (reverse(f"admin:{row._meta.app_label}_{row._meta.model_name}_change", args=[row.pk]), str(row), describe(row))
        for row in rows
    ]
    return format_html_join("", '<div><a href="{}">{}</a> {}</div>', links) or "—"


class TestCycleAdminForm(ServiceModelForm):
    class Meta:
        model = TestCycle
        fields = ["name", "period_start", "period_end", "test_manager", "configuration"]

    def call_service(self, *, user, adding):
        data = self.cleaned_data
        if adding:
            # The creator becomes the cycle's test manager (cycle_create); an admin can hand it over after.
            return cycle_create(
                user=user, name=data["name"], period_start=data["period_start"], period_end=data["period_end"],
                configuration=data.get("configuration") or {},
            )
        if "configuration" in self.changed_data:
            stored = TestCycle.objects.get(pk=self.instance.pk)
            stored = cycle_update_configuration(user=user, cycle=stored, configuration=data["configuration"])
            # The other field edits are saved by the admin, with the configuration as the service left it.
            self.instance.configuration = stored.configuration
        return None


@admin.register(TestCycle)
class TestCycleAdmin(ServiceModelAdmin):
    """Cycles; the workflow is started and cancelled with the actions, through workflows.services."""

    form = TestCycleAdminForm
    list_per_page = LIST_PER_PAGE
    list_display = ("name", "period_start", "period_end", "test_manager", "status", "report_count", "workflow")
    list_filter = ("status", "test_manager")
    search_fields = ("name", "workflow_id", "test_manager__username")
    list_select_related = ("test_manager",)
    date_hierarchy = "period_start"
    actions = ["start_workflow", "cancel_workflow"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(report_count=Count("cycle_reports"))

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["name", "period_start", "period_end", "configuration"]
        return ["name", "period_start", "period_end", "test_manager", "configuration", "status", "workflow",
                "reports", "created_at", "started_at", "completed_at"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        readonly = ["status", "workflow", "reports", "created_at", "started_at", "completed_at"]
        if obj.status != TestCycle.Status.DRAFT:
            readonly.append("configuration")
        return readonly

    def has_delete_permission(self, request, obj=None):
        # A started cycle has a workflow and an audit trail to answer to; only drafts go.
        return super().has_delete_permission(request, obj) and (obj is None or obj.status == TestCycle.Status.DRAFT)

    @admin.display(description="Reports", ordering="report_count")
    def report_count(self, cycle):
        return cycle.report_count

    @admin.display(description="Workflow", ordering="workflow_id")
    def workflow(self, cycle):
        return temporal_ui_link(cycle.workflow_id)

    @admin.display(description="Reports in the cycle")
    def reports(self, cycle):
        rows = cycle.cycle_reports.select_related("report", "cycle", "tester")
        return _change_links(
            rows, lambda cr: f"— {cr.tester or 'no tester'}, {cr.get_phase_display() or 'not started'}, "
                             f"{cr.get_status_display()}"
        )

    @admin.action(description="Start workflow")
    def start_workflow(self, request, queryset):
        for cycle in queryset:
            try:
                result = workflow_start(user=request.user, cycle=cycle)
            except ApplicationError as err:
                self.message_user(request, f"{cycle}: {err.message}", level=messages.ERROR)
            else:
                self.message_user(
                    request,
                    f"{cycle}: started {result.workflow_id} for {len(result.report_workflow_ids)} report(s).",
                    level=messages.SUCCESS,
                )

    @admin.action(description="Cancel workflow")
    def cancel_workflow(self, request, queryset):
        for cycle in queryset:
            try:
                workflow_cancel(user=request.user, cycle=cycle, reason="Cancelled from the admin.")
            except ApplicationError as err:
                self.message_user(request, f"{cycle}: {err.message}", level=messages.ERROR)
            else:
                self.message_user(request, f"{cycle}: cancellation of {cycle.workflow_id} requested.",
                                  level=messages.SUCCESS)


class CycleReportAdminForm(ServiceModelForm):
    class Meta:
        model = CycleReport
        fields = ["cycle", "report", "tester"]

    def call_service(self, *, user, adding):
        data = self.cleaned_data
        if adding:
            return cycle_add_report(user=user, cycle=data["cycle"], report=data["report"], tester=data["tester"])
        if "tester" in self.changed_data:
            if data["tester"] is None:
                raise ApplicationError("A report in a cycle keeps a tester once assigned; choose another tester.")
            stored = CycleReport.objects.select_related("cycle").get(pk=self.instance.pk)
            return cycle_report_assign_tester(user=user, cycle_report=stored, tester=data["tester"])
        return None


@admin.register(CycleReport)
class CycleReportAdmin(ServiceModelAdmin):
    """A report in a cycle: the tester can be (re)assigned; phase and status belong to the workflow."""

    form = CycleReportAdminForm
    list_per_page = LIST_PER_PAGE
    list_display = ("report", "cycle", "tester", "phase", "status", "workflow", "updated_at")
    list_filter = ("phase", "status", "cycle")
    search_fields = ("report__name", "cycle__name", "tester__username", "workflow_id")
    list_select_related = ("report", "cycle", "tester")

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["cycle", "report", "tester"]
        return ["cycle", "report", "tester", "phase", "status", "workflow", "skipped_phases", "attributes",
                "updated_at"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return ["cycle", "report", "phase", "status", "workflow", "skipped_phases", "attributes", "updated_at"]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "cycle":
            kwargs["queryset"] = TestCycle.objects.filter(status=TestCycle.Status.DRAFT)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and (
            obj is None or obj.cycle.status == TestCycle.Status.DRAFT
        )

    @admin.display(description="Workflow", ordering="workflow_id")
    def workflow(self, cycle_report):
        return temporal_ui_link(cycle_report.workflow_id)

    @admin.display(description="Attributes")
    def attributes(self, cycle_report):
        return _change_links(
            cycle_report.attributes.all(), lambda a: f"— {a.get_data_type_display()}, risk {a.risk_score}"
        )


# --- phase records: the tester's work and the workflow's, read-only here ----------


@admin.register(Attribute)
class AttributeAdmin(ReadOnlyAdmin):
    list_per_page = LIST_PER_PAGE
    ordering = BIG_TABLE_ORDERING
    show_full_result_count = False
    changelist_defer = ("description",)
    list_display = ("name", "cycle_report", "data_type", "mandatory", "primary_key", "cde", "historical_issues",
                    "risk_score", "source", "updated_at")
    list_filter = ("data_type", "mandatory", "primary_key", "cde", "historical_issues", "source")
    search_fields = ("name", "description", "cycle_report__report__name", "cycle_report__cycle__name")
    list_select_related = ("cycle_report__report", "cycle_report__cycle")


class ProfileResultInline(ReadOnlyTabularInline):
    model = ProfileResult
    max_rows = 20
    verbose_name_plural = "profile results (the first 20 columns; the Profile results list has every one)"
    fields = ("column_name", "attribute", "dtype", "row_count", "null_count", "distinct_count", "format_violations")
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("attribute")


@admin.register(PopulationFile)
class PopulationFileAdmin(ReadOnlyAdmin):
    list_per_page = LIST_PER_PAGE
    changelist_defer = ("columns", "key_problem", "key_reason", "mapping_warning", "error")
    list_display = ("original_name", "cycle_report", "format", "size_bytes", "row_count", "status",
                    "uploaded_by", "uploaded_at", "profile_seconds")
    list_filter = ("format", "status")
    search_fields = ("original_name", "sha256", "cycle_report__report__name")
    list_select_related = ("cycle_report__report", "cycle_report__cycle", "uploaded_by")
    exclude = ("file",)  # served only through views that check permissions, never by a media link
    inlines = [ProfileResultInline]


@admin.register(ProfileResult)
class ProfileResultAdmin(ReadOnlyAdmin):
    list_per_page = LIST_PER_PAGE
    ordering = BIG_TABLE_ORDERING
    show_full_result_count = False
    changelist_defer = ("top_values", "rule_failures", "rule_results")
    list_display = ("column_name", "population_file", "attribute", "dtype", "row_count", "null_count",
                    "distinct_count", "format_violations")
    list_filter = ("dtype",)
    search_fields = ("column_name", "population_file__original_name", "attribute__name")
    list_select_related = ("population_file", "attribute")


@admin.register(ScopingDecision)
class ScopingDecisionAdmin(ReadOnlyAdmin):
    list_per_page = LIST_PER_PAGE
    ordering = BIG_TABLE_ORDERING
    show_full_result_count = False
    changelist_defer = ("rationale",)
    list_display = ("attribute", "report", "in_scope", "decided_by", "updated_at")
    list_filter = ("in_scope",)
    search_fields = ("attribute__name", "rationale", "attribute__cycle_report__report__name")
    list_select_related = ("attribute__cycle_report__report", "attribute__cycle_report__cycle", "decided_by")

    @admin.display(description="Report", ordering="attribute__cycle_report")
    def report(self, decision):
        return decision.attribute.cycle_report


# --- data profiling: column mapping and validation rules (changed through the Data Profiling page) ---


@admin.register(ColumnMapping)
class ColumnMappingAdmin(ReadOnlyAdmin):
    list_per_page = LIST_PER_PAGE
    ordering = BIG_TABLE_ORDERING
    show_full_result_count = False
    list_display = ("attribute", "column_name", "status", "population_file", "decided_by", "decided_at")
    list_filter = ("status",)
    search_fields = ("attribute__name", "column_name", "population_file__original_name")
    list_select_related = ("attribute", "population_file", "decided_by")


@admin.register(ProfilingRule)
class ProfilingRuleAdmin(ReadOnlyAdmin):
    list_per_page = LIST_PER_PAGE
    ordering = BIG_TABLE_ORDERING
    show_full_result_count = False
    list_display = ("attribute", "kind", "label", "source", "created_by", "updated_at")
    list_filter = ("kind", "source")
    search_fields = ("attribute__name", "source_detail")
    list_select_related = ("attribute", "created_by")


@admin.register(PhaseState)
class PhaseStateAdmin(ReadOnlyAdmin):
    list_per_page = LIST_PER_PAGE
    list_display = ("cycle_report", "phase", "status", "started_at", "completed_at")
    list_filter = ("phase", "status")
    search_fields = ("cycle_report__report__name", "cycle_report__cycle__name")
    list_select_related = ("cycle_report__report", "cycle_report__cycle")


# --- sample selection --------------------------------------------------------------


@admin.register(SampleSizeRule)
class SampleSizeRuleAdmin(admin.ModelAdmin):
    """The sample size table by frequency and risk: configuration, edited here."""

    list_per_page = LIST_PER_PAGE
    list_display = ("frequency", "risk", "sample_count", "note")
    list_editable = ("sample_count",)
    list_filter = ("frequency", "risk")
    search_fields = ("note",)


@admin.register(SamplingPlan)
class SamplingPlanAdmin(ReadOnlyAdmin):
    list_per_page = LIST_PER_PAGE
    list_display = ("cycle_report", "size_rule", "risk", "computed_size", "override_size", "method", "seed",
                    "updated_by", "updated_at")
    list_filter = ("size_rule", "method", "risk")
    search_fields = ("cycle_report__report__name", "cycle_report__cycle__name", "override_reason")
    list_select_related = ("cycle_report__report", "cycle_report__cycle", "updated_by")


@admin.register(Sample)
class SampleAdmin(ReadOnlyAdmin):
    list_per_page = LIST_PER_PAGE
    ordering = BIG_TABLE_ORDERING
    show_full_result_count = False
    changelist_defer = ("row_data", "reason")
    list_display = ("key", "cycle_report", "row_index", "stratum", "method", "seed", "added_by", "added_at")
    list_filter = ("method",)
    search_fields = ("key", "stratum", "reason", "cycle_report__report__name")
    list_select_related = ("cycle_report__report", "cycle_report__cycle", "added_by")


# --- data owners, requests for information, evidence ------------------------------


@admin.register(DataOwnerAssignment)
class DataOwnerAssignmentAdmin(ReadOnlyAdmin):
    list_per_page = LIST_PER_PAGE
    ordering = BIG_TABLE_ORDERING
    show_full_result_count = False
    list_display = ("attribute", "report", "data_owner", "assigned_by", "assigned_at")
    search_fields = ("attribute__name", "data_owner__username", "attribute__cycle_report__report__name")
    list_select_related = ("attribute__cycle_report__report", "attribute__cycle_report__cycle", "data_owner",
                           "assigned_by")

    @admin.display(description="Report", ordering="attribute__cycle_report")
    def report(self, assignment):
        return assignment.attribute.cycle_report


class EvidenceInline(ReadOnlyTabularInline):
    model = Evidence
    fields = ("original_name", "version", "status", "size_bytes", "sha256", "uploaded_by", "uploaded_at")
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("uploaded_by")


class RequestNotificationInline(ReadOnlyTabularInline):
    model = RequestNotification
    fields = ("sent_at", "kind", "subject", "recipients")
    readonly_fields = fields
    show_change_link = False


@admin.register(InformationRequest)
class InformationRequestAdmin(ReadOnlyAdmin):
    list_per_page = LIST_PER_PAGE
    changelist_defer = ("sample_keys",)
    list_display = ("cycle_report", "data_owner", "due_date", "status", "created_at", "submitted_at",
                    "escalated_at")
    list_filter = ("status", "due_date")
    search_fields = ("cycle_report__report__name", "data_owner__username")
    list_select_related = ("cycle_report__report", "cycle_report__cycle", "data_owner")
    date_hierarchy = "due_date"
    inlines = [EvidenceInline, RequestNotificationInline]


@admin.register(RequestNotification)
class RequestNotificationAdmin(ReadOnlyAdmin):
    list_per_page = LIST_PER_PAGE
    list_display = ("sent_at", "kind", "subject", "cycle_report", "request")
    list_filter = ("kind",)
    search_fields = ("subject", "key", "cycle_report__report__name")
    list_select_related = ("cycle_report__report", "cycle_report__cycle", "request__data_owner",
                           "request__cycle_report__report")
    date_hierarchy = "sent_at"


@admin.register(Evidence)
class EvidenceAdmin(ReadOnlyAdmin):
    list_per_page = LIST_PER_PAGE
    ordering = BIG_TABLE_ORDERING
    show_full_result_count = False
    changelist_defer = ("review_note",)
    list_display = ("original_name", "version", "request", "status", "size_bytes", "uploaded_by", "uploaded_at",
                    "reviewed_by")
    list_filter = ("status",)
    search_fields = ("original_name", "sha256", "request__data_owner__username", "request__cycle_report__report__name")
    list_select_related = ("request__data_owner", "request__cycle_report__report", "uploaded_by", "reviewed_by")
    exclude = ("file",)  # served only through views that check permissions, never by a media link


# --- Reassignments (issue 7): the history, read-only; the data executive's and test manager's pages make them

from cycles.models import Reassignment  # noqa: E402


@admin.register(Reassignment)
class ReassignmentAdmin(ReadOnlyAdmin):
    list_per_page = LIST_PER_PAGE
    ordering = BIG_TABLE_ORDERING  # the model's newest first (-reassigned_at) has no index to serve it
    show_full_result_count = False
    list_display = ("reassigned_at", "kind", "cycle_report", "attribute", "from_user", "to_user", "reassigned_by",
                    "reason")
    list_filter = ("kind",)
    search_fields = ("reason", "attribute__name", "from_user__username", "to_user__username",
                     "cycle_report__report__name")
    list_select_related = ("cycle_report__report", "cycle_report__cycle", "attribute")
    date_hierarchy = "reassigned_at"

    def get_queryset(self, request):
        # The three people from a small table of their own: joined too, the query took longer to plan than to run.
        return super().get_queryset(request).prefetch_related("from_user", "to_user", "reassigned_by")


# --- Test Execution (issue 6): read-only here; the tester's page and the workflow change them ------

from cycles.models import (  # noqa: E402
    EvidenceLink,
    ExecutionRule,
    SampleExtension,
    TestResult,
    TestResultCount,
    TestResultHistory,
)


class TestResultHistoryInline(ReadOnlyTabularInline):
    __test__ = False  # not a pytest class
    model = TestResultHistory
    fields = ("attempt", "result", "failure_kind", "observed_value", "comment", "method", "tested_by", "tested_at",
              "replaced_by", "replaced_at")
    readonly_fields = fields
    show_change_link = False


@admin.register(TestResult)
class TestResultAdmin(ReadOnlyAdmin):
    __test__ = False  # not a pytest class
    list_per_page = LIST_PER_PAGE
    list_display = ("sample", "attribute", "cycle_report", "result", "failure_kind", "method", "attempt",
                    "tested_by", "tested_at")
    list_filter = ("result", "failure_kind", "method")
    search_fields = ("sample__key", "attribute__name", "comment", "cycle_report__report__name")
    list_select_related = ("sample", "attribute", "cycle_report__report", "cycle_report__cycle", "tested_by")
    # Newest first by key: the model's order (report, sample row, attribute name) sorts every cell of every
    # report through two joins before the first page; and no second count of the whole table when filtered.
    ordering = BIG_TABLE_ORDERING
    show_full_result_count = False
    paginator = EstimatedCountPaginator  # a cell per sample × attribute: hundreds of thousands of rows
    inlines = [TestResultHistoryInline]


@admin.register(TestResultCount)
class TestResultCountAdmin(ReadOnlyAdmin):
    """The matrix's stored counts, kept by database triggers (cycles migration 0012): to look at, never to edit."""

    __test__ = False  # not a pytest class
    list_per_page = LIST_PER_PAGE
    list_display = ("cycle_report", "attribute", "result", "n")
    list_filter = ("result",)
    search_fields = ("attribute__name", "cycle_report__report__name")
    list_select_related = ("cycle_report__report", "cycle_report__cycle", "attribute")
    ordering = ("-pk",)
    show_full_result_count = False


@admin.register(TestResultHistory)
class TestResultHistoryAdmin(ReadOnlyAdmin):
    __test__ = False  # not a pytest class
    list_per_page = LIST_PER_PAGE
    list_display = ("test_result", "attempt", "result", "failure_kind", "method", "tested_by", "tested_at",
                    "replaced_by", "replaced_at")
    list_filter = ("result", "failure_kind")
    list_select_related = ("test_result__sample", "test_result__attribute", "tested_by", "replaced_by")


@admin.register(ExecutionRule)
class ExecutionRuleAdmin(ReadOnlyAdmin):
    list_per_page = LIST_PER_PAGE
    list_display = ("attribute", "kind", "source_column", "tolerance", "pattern", "min_value", "max_value",
                    "updated_by", "updated_at")
    list_filter = ("kind",)
    list_select_related = ("attribute", "updated_by")


@admin.register(SampleExtension)
class SampleExtensionAdmin(ReadOnlyAdmin):
    list_per_page = LIST_PER_PAGE
    list_display = ("cycle_report", "number", "status", "current_size", "new_size", "seed", "proposed_at",
                    "decided_by", "decided_at")
    list_filter = ("status",)
    list_select_related = ("cycle_report__report", "cycle_report__cycle", "decided_by")


@admin.register(EvidenceLink)
class EvidenceLinkAdmin(ReadOnlyAdmin):
    list_per_page = LIST_PER_PAGE
    list_display = ("evidence", "sample", "attribute", "created_by", "created_at")
    list_select_related = ("evidence", "sample", "attribute", "created_by")


# --- Observations, Final Test Report, packages (issue 6) ------------------------------------------
# Read-only: observations change through the tester's page and API (services check phase and seal);
# sign-offs, reports and packages are records the database keeps append-only.

from cycles.models import (  # noqa: E402
    CycleReportRemoval,
    EvidencePackage,
    FinalReport,
    Observation,
    PhaseReopening,
    RemediationEvent,
    SignOff,
)


class RemediationEventInline(ReadOnlyTabularInline):
    model = RemediationEvent
    fields = ("at", "from_status", "to_status", "actor", "note")
    readonly_fields = fields
    show_change_link = False


@admin.register(Observation)
class ObservationAdmin(ReadOnlyAdmin):
    list_per_page = LIST_PER_PAGE
    list_display = ("code", "title", "cycle_report", "severity", "type", "status", "remediation_owner",
                    "remediation_target_date")
    list_filter = ("severity", "type", "status")
    search_fields = ("title", "description", "cycle_report__report__name")
    list_select_related = ("cycle_report__report", "cycle_report__cycle", "remediation_owner")
    exclude = ("cells",)
    inlines = [RemediationEventInline]


class SignOffInline(ReadOnlyTabularInline):
    model = SignOff
    fields = ("signed_at", "role", "decision", "printed_name", "meaning", "send_back_to", "notes")
    readonly_fields = fields
    show_change_link = False


@admin.register(FinalReport)
class FinalReportAdmin(ReadOnlyAdmin):
    list_per_page = LIST_PER_PAGE
    changelist_defer = ("data", "html")
    list_display = ("cycle_report", "number", "status", "generated_at", "signed_at", "pdf_sha256")
    list_filter = ("status",)
    search_fields = ("cycle_report__report__name", "pdf_sha256")
    list_select_related = ("cycle_report__report", "cycle_report__cycle")
    exclude = ("html", "data", "pdf")  # the page shows them to those allowed; the PDF through its view
    inlines = [SignOffInline]


@admin.register(EvidencePackage)
class EvidencePackageAdmin(ReadOnlyAdmin):
    list_per_page = LIST_PER_PAGE
    list_display = ("file_name", "final_report", "sha256", "size_bytes", "built_at")
    search_fields = ("file_name", "sha256")
    list_select_related = ("final_report__cycle_report__report", "final_report__cycle_report__cycle")
    exclude = ("file", "manifest")


@admin.register(CycleReportRemoval)
class CycleReportRemovalAdmin(ReadOnlyAdmin):
    list_per_page = LIST_PER_PAGE
    list_display = ("cycle_report", "reason", "removed_by", "removed_at")
    list_select_related = ("cycle_report__report", "cycle_report__cycle", "removed_by")


@admin.register(SignOff)
class SignOffAdmin(ReadOnlyAdmin):
    list_per_page = LIST_PER_PAGE
    changelist_defer = ("meaning", "notes")
    list_display = ("final_report", "role", "decision", "printed_name", "signed_at", "send_back_to")
    list_filter = ("role", "decision")
    search_fields = ("printed_name", "final_report__cycle_report__report__name")
    list_select_related = ("final_report__cycle_report__report", "final_report__cycle_report__cycle")


@admin.register(RemediationEvent)
class RemediationEventAdmin(ReadOnlyAdmin):
    list_per_page = LIST_PER_PAGE
    list_display = ("observation", "from_status", "to_status", "actor", "at")
    list_filter = ("to_status",)
    list_select_related = ("observation", "actor")


@admin.register(PhaseReopening)
class PhaseReopeningAdmin(ReadOnlyAdmin):
    list_per_page = LIST_PER_PAGE
    list_display = ("cycle_report", "phase", "sign_off", "reopened_at")
    list_select_related = ("cycle_report__report", "cycle_report__cycle", "sign_off__final_report")
