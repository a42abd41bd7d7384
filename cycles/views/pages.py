"""Pages of test cycles and their reports' phases.

Each view parses input with a form, checks the user may see the object (404
otherwise) and may act on it (403 otherwise), calls one service and renders or
redirects with a message. Application errors become messages, never a 500.
"""
from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import floatformat, truncatechars
from django.urls import reverse
from django.utils import timezone
from django.utils.text import Truncator
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from cycles.exceptions import NotFoundError
from cycles.forms.cycles import (
    AddReportForm,
    AssignTesterForm,
    AttributeForm,
    CancelCycleForm,
    CycleCreateForm,
    PopulationUploadForm,
    ScopingDecisionForm,
    SubmitVersionForm,
    testers,
)
from cycles.models import (
    Attribute,
    ColumnMapping,
    CycleReport,
    InformationRequest,
    Phase,
    PhaseState,
    PopulationFile,
    ProfileResult,
    SamplingPlan,
    TestCycle,
)
from cycles.profiling.scan import COUNTED_MAX
from cycles.permissions import can_create_cycle, can_manage_cycle, can_work_on
from cycles.selectors import (
    FINISHED_STATUSES,
    cycle_report_get,
    cycle_report_progress,
    cycle_reports_progress,
    cycle_reports_visible_to,
    cycles_visible_to,
    phase_facts,
)
from cycles.services.artifacts import phase_is_active, phase_lock_reason
from cycles.services.cycles import (
    cycle_add_report,
    cycle_create,
    cycle_report_assign_tester,
)
from cycles.services.planning import (
    attribute_create,
    attribute_delete,
    attribute_update,
)
from cycles.services.profiling import population_file_current, population_file_upload
from cycles.services.profiling_checks import population_file_refuse, population_upload_check
from cycles.services.requests import information_requests_visible_to
from cycles.services.scoping import scoping_decide
from synapse.audit import audit_events_for
from synapse.exceptions import ApplicationError, ServiceUnavailableError
from synapse.pagination import page_of, paginate
from synapse.roles import Role, has_role
from versioning.selectors import version_latest, versions_awaiting_decision
from workflows.models import WorkflowDecision
from workflows.selectors import alerts_open_for_cycle
from workflows.services import (
    status_age,
    workflow_cancel,
    workflow_register_population,
    workflow_start,
    workflow_status,
    workflow_submit_version,
)
from workflows.temporal.contracts import REVIEWED_PHASES, State

# The workflow's states as the phase pages name them.
STATE_LABELS = {
    State.STARTING: "Starting",
    State.DRAFTING: "Drafting attributes",
    State.AWAITING_SUBMISSION: "Awaiting submission",
    State.SUBMITTING: "Creating the version",
    State.AWAITING_DECISION: "Awaiting decision",
    State.DECIDING: "Recording the decision",
    State.AWAITING_UPLOAD: "Awaiting the population file",
    State.PROFILING: "Profiling",
    State.AWAITING_ASSIGNMENT: "Awaiting data owner assignments",
    State.AWAITING_EVIDENCE: "Awaiting evidence from data owners",
    State.AWAITING_TEST_EXECUTION: "Awaiting test execution",
    State.COMPLETED: "Phase complete",
    State.AWAITING_EVIDENCE: "Awaiting evidence",
    State.AWAITING_EXTENSION_DECISION: "Awaiting the owner's decision on more samples",
}
DECISION_LABELS = {
    "submit_version": "Submit for approval",
    "decide_version": "Decision on a version",
    "register_population": "Profile a population file",
}

# The profile's own checks, as people read them.
PROFILE_CHECK_WORDS = {"mandatory": "empty though mandatory", "primary_key": "repeated key"}

AUDIT_LIMIT = 50
CYCLES_PER_PAGE = 25
# Rows of a phase page's table (attributes, profile columns, scoping decisions) shown at once.
ROWS_PER_PAGE = 50
CYCLE_ROWS_PER_PAGE = 25

# The phases that have a page of their own, and its URL name.
PHASE_PAGES = {
    Phase.PLANNING: "cycles:planning",
    Phase.DATA_PROFILING: "cycles:data-profiling",
    Phase.SCOPING: "cycles:scoping",
    Phase.SAMPLE_SELECTION: "cycles:sample-selection",
    Phase.DATA_OWNER_IDENTIFICATION: "cycles:data-owners",
    Phase.REQUEST_FOR_INFORMATION: "cycles:report-requests",
    Phase.TEST_EXECUTION: "cycles:test-execution",
    Phase.OBSERVATIONS: "cycles:observations",
    Phase.FINALIZE: "cycles:final-report",
}


# --- helpers ---------------------------------------------------------------------------------------


def audit_entries(obj) -> list[dict]:
    """The object's latest audit events for partials/audit_trail.html."""
    return audit_entries_of(audit_events_for(obj)[:AUDIT_LIMIT])


def audit_entries_of(events) -> list[dict]:
    """Audit events in words (who, what, before and after with names) for partials/audit_trail.html."""
    from cycles.services.audit_trail import audit_rows

    # What the template shows is formatted here, as plain strings in a dict: at 50 rows a template's date
    # filter, truncation and lookups through a model instance cost more than the rest of the trail.
    return [
        {"event": row["event"], "who": row["who"], "what": row["what"] or row["event"].action,
         "when": timezone.localtime(row["event"].created_at).strftime("%Y-%m-%d %H:%M:%S"),
         "before_text": _truncated(row["before"]), "after_text": _truncated(row["after"]),
         **_context_shown(row["event"].context)}
        for row in audit_rows(events)
    ]


def _context_shown(context) -> dict:
    context = context if isinstance(context, dict) else {}
    return {key: context.get(key) for key in ("workflow_id", "activity", "notes", "reason")}


def _truncated(text, length: int = 240) -> str:
    text = "" if text is None else str(text)
    return text if len(text) <= length else Truncator(text).chars(length)


def refuse(request, message: str, *, status: int = 403):
    """The page shown when the user may see the object but not do this to it."""
    return render(request, "cycles/refused.html", {"message": message}, status=status)


def _cycle_or_404(user, pk: int) -> TestCycle:
    cycle = cycles_visible_to(user=user).filter(pk=pk).first()
    if cycle is None:
        raise Http404("No such cycle.")
    return cycle


def _cycle_report_or_404(user, pk: int) -> CycleReport:
    try:
        return cycle_report_get(user=user, pk=pk)
    except NotFoundError as err:
        raise Http404(err.message) from None


def _flash_outcome(request, outcome) -> None:
    """A decision either reached the workflow or waits in the outbox: say which."""
    if outcome.delivered:
        messages.success(request, outcome.message)
    else:
        messages.warning(request, outcome.message)


def _refused_form(request, err: ApplicationError, form, template: str, context: dict, *, field: str | None = None):
    """Show a service's refusal beside the input; if the page no longer offers the form
    (the phase locked meanwhile), as a message on the page instead."""
    if not context.get("can_edit"):
        messages.error(request, err.message)
        return redirect(request.path)
    form.add_error(field, err.message)
    return render(request, template, context, status=err.status_code)


def phase_url(cycle_report: CycleReport, phase: str | None = None) -> str:
    phase = phase or cycle_report.phase or Phase.PLANNING
    return reverse(PHASE_PAGES.get(phase, "cycles:planning"), args=[cycle_report.pk])


def temporal_ui_url(workflow_id: str) -> str:
    if not workflow_id:
        return ""
    return f"{settings.TEMPORAL_UI_URL.rstrip('/')}/namespaces/{settings.TEMPORAL_NAMESPACE}/workflows/{workflow_id}"


# --- my work ---------------------------------------------------------------------------------------


def _doi_waiting(cycle_reports):
    """Reports whose Data Owner Identification is open (a queryset; see _doi_counts for their numbers)."""
    return cycle_reports.filter(
        phase_states__phase=Phase.DATA_OWNER_IDENTIFICATION, phase_states__status=PhaseState.Status.ACTIVE
    ).exclude(status__in=FINISHED_STATUSES).order_by("report__name", "pk")


def _doi_counts(open_doi: list[CycleReport]) -> list[tuple[CycleReport, int, int]]:
    """(report, in-scope attributes, still without an owner) for each report, in one query."""
    counts = {
        row["cycle_report"]: row
        for row in Attribute.objects.filter(cycle_report__in=[cr.pk for cr in open_doi], scoping__in_scope=True)
        .values("cycle_report")
        .annotate(total=Count("pk"), missing=Count("pk", filter=Q(data_owner_assignment__isnull=True)))
    }
    return [
        (cr, counts.get(cr.pk, {}).get("total", 0), counts.get(cr.pk, {}).get("missing", 0)) for cr in open_doi
    ]


MY_WORK_PER_PAGE = 20


@login_required
@require_GET
def my_work(request):
    """What waits for the user: reports to work on, versions to decide, cycles to run, decisions in flight.

    Each list is paged on its own (its own query parameter); ``report`` filters them all by report name.
    """
    user = request.user
    report = request.GET.get("report", "").strip()
    visible = cycle_reports_visible_to(user=user)
    requests = information_requests_visible_to(user=user).order_by("due_date", "pk")
    cycles = cycles_visible_to(user=user)
    if report:
        visible = visible.filter(report__name__icontains=report)
        requests = requests.filter(cycle_report__report__name__icontains=report)
        cycles = cycles.filter(cycle_reports__report__name__icontains=report).distinct()
    context = {"assigned": [], "approvals": [], "cycles": [], "lob_reports": [], "doi_reports": [],
               "my_requests": [], "review_requests": [], "report": report}

    def page(key: str, items, param: str) -> list:
        context[f"{key}_page"] = found = paginate(request, items, per_page=MY_WORK_PER_PAGE, param=param)
        context[key] = list(found.object_list)
        return context[key]

    if has_role(user, Role.TESTER):
        assigned = page("assigned", visible.filter(tester=user).exclude(status__in=FINISHED_STATUSES)
                        .order_by("cycle", "report__name"), "assigned")
        progress = cycle_reports_progress(assigned)
        context["assigned"] = [(cr, progress[cr.pk]) for cr in assigned]
    if has_role(user, Role.REPORT_OWNER):
        page("approvals", versions_awaiting_decision(cycle_reports=visible.filter(report__owner=user))
             .exclude(author=user).order_by("submitted_at", "pk"), "approvals")
    if has_role(user, Role.TEST_MANAGER):
        page("cycles", cycles.filter(test_manager=user, status__in=[TestCycle.Status.DRAFT, TestCycle.Status.RUNNING])
             .order_by("-created_at", "pk"), "cycles")
    if has_role(user, Role.DATA_EXECUTIVE):
        lob_reports = page("lob_reports", visible.filter(report__lob__data_executive=user)
                           .exclude(status__in=FINISHED_STATUSES).order_by("cycle", "report__name"), "lob")
        progress = cycle_reports_progress(lob_reports)
        context["lob_reports"] = [(cr, progress[cr.pk]) for cr in lob_reports]
        context["doi_reports"] = _doi_counts(
            page("doi_reports", _doi_waiting(visible.filter(report__lob__data_executive=user)), "doi")
        )
    if has_role(user, Role.DATA_OWNER):
        page("my_requests", requests.filter(
            data_owner=user, status__in=[InformationRequest.Status.OPEN, InformationRequest.Status.RETURNED]
        ), "requests")
    if has_role(user, Role.TESTER):
        # A row shows the report, its cycle, the data owner and two dates: not the request's attributes, nor
        # the report's people and field list.
        page("review_requests", requests.filter(cycle_report__tester=user, status=InformationRequest.Status.SUBMITTED)
             .select_related(None).select_related("cycle_report__report", "cycle_report__cycle", "data_owner")
             .prefetch_related(None).defer("sample_keys", "cycle_report__report__fields"), "review")
    context["today"] = timezone.localdate()
    context["decisions"] = list(
        WorkflowDecision.objects.filter(requested_by=user)
        .exclude(status__in=[WorkflowDecision.Status.DELIVERED, WorkflowDecision.Status.DUPLICATE])
        .select_related("cycle_report__report", "cycle_report__cycle")
        .order_by("-created_at")[:20]
    )
    for decision in context["decisions"]:
        decision.label = DECISION_LABELS.get(decision.update_name, decision.update_name)
    context["nothing"] = not any(
        context[k] for k in ("assigned", "approvals", "cycles", "lob_reports", "decisions", "doi_reports",
                             "my_requests", "review_requests")
    )
    return render(request, "cycles/my_work.html", context)


# --- cycles ----------------------------------------------------------------------------------------


@login_required
@require_GET
def cycle_list(request):
    cycles = cycles_visible_to(user=request.user).order_by("-created_at")
    page = Paginator(cycles, CYCLES_PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "cycles/cycle_list.html",
        {"page_obj": page, "cycles": page.object_list, "can_create": can_create_cycle(request.user)},
    )


@login_required
@require_http_methods(["GET", "POST"])
def cycle_create_view(request):
    if not can_create_cycle(request.user):
        return refuse(request, "Only a Test Manager can create a cycle.")
    form = CycleCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            cycle = cycle_create(
                user=request.user,
                name=form.cleaned_data["name"],
                period_start=form.cleaned_data["period_start"],
                period_end=form.cleaned_data["period_end"],
                configuration=form.configuration(),
            )
        except ApplicationError as err:
            form.add_error(None, err.message)
            return render(request, "cycles/cycle_form.html", {"form": form}, status=err.status_code)
        messages.success(request, f"Cycle {cycle} created. Add its reports and assign testers next.")
        return redirect("cycles:cycle-detail", pk=cycle.pk)
    return render(request, "cycles/cycle_form.html", {"form": form})


def _cycle_rows(request, cycle: TestCycle, manage: bool):
    """A page of the cycle's reports the user may see, each with its progress, in a constant number of queries."""
    if manage:
        qs = CycleReport.objects.filter(cycle=cycle).select_related(
            "cycle", "cycle__test_manager", "report", "report__owner", "report__lob", "tester"
        ).defer("report__fields")
    else:
        qs = cycle_reports_visible_to(user=request.user).filter(cycle=cycle)
    page = paginate(request, qs.order_by("report__name", "pk"), per_page=CYCLE_ROWS_PER_PAGE)
    cycle_reports = list(page.object_list)
    progress = cycle_reports_progress(cycle_reports)
    return [(cr, progress[cr.pk]) for cr in cycle_reports], page


def _cycle_context(request, cycle: TestCycle) -> dict:
    manage = can_manage_cycle(request.user, cycle)
    is_draft = cycle.status == TestCycle.Status.DRAFT
    rows, page = _cycle_rows(request, cycle, manage)
    return {
        "cycle": cycle,
        "rows": rows,
        "page_obj": page,
        "manage": manage,
        "can_start": manage and is_draft,
        "can_cancel": manage and cycle.status == TestCycle.Status.RUNNING and bool(cycle.workflow_id),
        "add_report_form": AddReportForm(cycle=cycle) if manage and is_draft else None,
        "testers": list(testers()) if manage else [],
        "reassign_tester_form": _reassign_tester_form(cycle) if manage else None,
        "temporal_url": temporal_ui_url(cycle.workflow_id),
        "skip_phases": [Phase(p).label for p in (cycle.configuration or {}).get("skip_phases", []) if p in Phase.values],
        "live": cycle.status == TestCycle.Status.RUNNING,
        "alerts": list(alerts_open_for_cycle(cycle=cycle)),
        "audit_events": audit_entries(cycle),
        **_cycle_results_context(request, cycle, manage),
        **_cycle_schedules_context(request, cycle, manage),
    }


def _cycle_schedules_context(request, cycle: TestCycle, manage: bool) -> dict:
    """The "Recurring" card: this cycle's schedules for its manager, and the schedule that made it."""
    from workflows.forms import CycleScheduleForm
    from workflows.models import ScheduledCycleRun
    from workflows.schedules import schedule_next_run
    from workflows.selectors import schedules_visible_to

    schedules = list(schedules_visible_to(user=request.user).filter(template=cycle)) if manage else []
    for schedule in schedules:
        schedule.next_run = schedule_next_run(schedule.frequency)
    made_by = ScheduledCycleRun.objects.filter(cycle=cycle).select_related("schedule__template").first()
    return {
        "schedules": schedules,
        "schedule_form": CycleScheduleForm() if manage and cycle.report_count else None,
        "made_by_schedule": made_by.schedule if made_by else None,
    }


def _reassignable_reports(cycle: TestCycle):
    from cycles.models import CycleReportRemoval

    removed = CycleReportRemoval.objects.filter(cycle_report__cycle=cycle).values("cycle_report_id")
    return (CycleReport.objects.filter(cycle=cycle, tester__isnull=False)
            .exclude(status__in=[CycleReport.Status.COMPLETED, CycleReport.Status.CANCELLED,
                                 CycleReport.Status.FAILED])
            .exclude(pk__in=removed).select_related("report", "tester").defer("report__fields")
            .order_by("report__name", "pk"))


def _reassign_tester_form(cycle: TestCycle, data=None):
    """The test manager's Reassign form (issue 7), on a running cycle only."""
    from cycles.forms.cycles import TesterReassignForm

    if cycle.status != TestCycle.Status.RUNNING:
        return None
    return TesterReassignForm(data, cycle_reports=_reassignable_reports(cycle), auto_id="id_reassign_%s")


@login_required
@require_POST
def cycle_reassign_tester_view(request, pk: int):
    """On a running cycle: the test manager gives a report's work to another tester, with a reason."""
    from cycles.services.reassignments import cycle_report_reassign_tester

    cycle = _cycle_or_404(request.user, pk)
    if not can_manage_cycle(request.user, cycle):
        return refuse(request, "Only the cycle's Test Manager reassigns its testers.")
    form = _reassign_tester_form(cycle, request.POST)
    if form is None:
        messages.error(request, "Testers are reassigned on a running cycle; before it starts, assign one instead.")
        return redirect("cycles:cycle-detail", pk=cycle.pk)

    def again(status: int):
        context = _cycle_context(request, cycle)
        context["reassign_tester_form"] = form
        return render(request, "cycles/cycle_detail.html", context, status=status)

    if not form.is_valid():
        return again(400)
    cycle_report = get_object_or_404(CycleReport, pk=form.cleaned_data["cycle_report"], cycle=cycle)
    try:
        cycle_report_reassign_tester(user=request.user, cycle_report=cycle_report, tester=form.cleaned_data["tester"],
                                     reason=form.cleaned_data["reason"])
    except ApplicationError as err:
        form.add_error(None, err.message)
        return again(err.status_code)
    messages.success(request, f"{form.cleaned_data['tester']} now tests {cycle_report.report}; both testers are "
                     "told by email.")
    return redirect("cycles:cycle-detail", pk=cycle.pk)


def _cycle_results_context(request, cycle: TestCycle, manage: bool) -> dict:
    """Results across the cycle's reports and their packages; removing a report while it runs (issue 6)."""
    from cycles.forms.final_report import RemoveReportForm
    from cycles.services.final_report import cycle_results_summary

    return {
        "results": cycle_results_summary(user=request.user, cycle=cycle),
        "remove_form": RemoveReportForm() if manage and cycle.status == TestCycle.Status.RUNNING else None,
    }


@login_required
@require_GET
def cycle_detail(request, pk: int):
    cycle = _cycle_or_404(request.user, pk)
    return render(request, "cycles/cycle_detail.html", _cycle_context(request, cycle))


@login_required
@require_GET
def cycle_progress(request, pk: int):
    """The progress rows alone, for the page's refresh."""
    cycle = _cycle_or_404(request.user, pk)
    manage = can_manage_cycle(request.user, cycle)
    rows, _ = _cycle_rows(request, cycle, manage)
    return render(
        request,
        "cycles/_progress_rows.html",
        {"cycle": cycle, "rows": rows, "manage": manage,
         "testers": list(testers()) if manage else []},
    )


@login_required
@require_POST
def cycle_add_report_view(request, pk: int):
    cycle = _cycle_or_404(request.user, pk)
    if not can_manage_cycle(request.user, cycle):
        return refuse(request, "Only the cycle's Test Manager can add reports.")
    form = AddReportForm(request.POST, cycle=cycle)
    if not form.is_valid():
        context = _cycle_context(request, cycle)
        context["add_report_form"] = form
        return render(request, "cycles/cycle_detail.html", context)
    try:
        cycle_report = cycle_add_report(
            user=request.user, cycle=cycle, report=form.cleaned_data["report"], tester=form.cleaned_data["tester"]
        )
    except ApplicationError as err:
        messages.error(request, err.message)
    else:
        messages.success(request, f"{cycle_report.report} added to the cycle.")
    return redirect("cycles:cycle-detail", pk=cycle.pk)


@login_required
@require_POST
def cycle_report_assign_tester_view(request, pk: int):
    cycle_report = _cycle_report_or_404(request.user, pk)
    if not can_manage_cycle(request.user, cycle_report.cycle):
        return refuse(request, "Only the cycle's Test Manager can assign testers.")
    form = AssignTesterForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a tester from the list.")
        return redirect("cycles:cycle-detail", pk=cycle_report.cycle_id)
    try:
        cycle_report_assign_tester(user=request.user, cycle_report=cycle_report, tester=form.cleaned_data["tester"])
    except ApplicationError as err:
        messages.error(request, err.message)
    else:
        messages.success(request, f"{form.cleaned_data['tester']} now tests {cycle_report.report}.")
    return redirect("cycles:cycle-detail", pk=cycle_report.cycle_id)


@login_required
@require_POST
def cycle_start(request, pk: int):
    cycle = _cycle_or_404(request.user, pk)
    if not can_manage_cycle(request.user, cycle):
        return refuse(request, "Only the cycle's Test Manager can start its workflow.")
    if cycle.status != TestCycle.Status.DRAFT:
        messages.error(request, f"The cycle is {cycle.get_status_display().lower()}; only a draft cycle starts.")
        return redirect("cycles:cycle-detail", pk=cycle.pk)
    try:
        result = workflow_start(user=request.user, cycle=cycle)
    except ApplicationError as err:
        messages.error(request, err.message)
    else:
        messages.success(
            request, f"Workflow {result.workflow_id} started for {len(result.report_workflow_ids)} report(s)."
        )
    return redirect("cycles:cycle-detail", pk=cycle.pk)


@login_required
@require_POST
def cycle_cancel(request, pk: int):
    cycle = _cycle_or_404(request.user, pk)
    if not can_manage_cycle(request.user, cycle):
        return refuse(request, "Only the cycle's Test Manager can cancel its workflow.")
    form = CancelCycleForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    try:
        workflow_cancel(user=request.user, cycle=cycle, reason=reason)
    except ApplicationError as err:
        messages.error(request, err.message)
    else:
        messages.success(request, "Cancellation requested; the reports stop at their next step.")
    return redirect("cycles:cycle-detail", pk=cycle.pk)


# --- phase pages -----------------------------------------------------------------------------------


def _live_status(user, cycle_report: CycleReport):
    """The workflow's own view of the report, or a notice why it isn't available."""
    try:
        status = workflow_status(user=user, cycle_report=cycle_report)
        if status and status.unavailable:  # the last stored answer, while Temporal or the worker is away
            return status, f"{status.unavailable} Showing the last known status, from {status_age(status)} ago."
        return status, ""
    except ServiceUnavailableError as err:
        return None, err.message
    except ApplicationError as err:
        return None, err.message


def _phase_context(request, cycle_report: CycleReport, phase: str, *, audit: bool = True) -> dict:
    """What every phase page shows; ``audit=False`` for a page that shows an audit trail of its own."""
    user = request.user
    can_work = can_work_on(user, cycle_report)
    # The report's phase states and latest versions, read once for the lock, the progress and the box.
    facts = phase_facts([cycle_report.pk])[cycle_report.pk]
    lock_reason = phase_lock_reason(cycle_report, phase, facts=facts)
    editable = lock_reason is None
    live_status, status_notice = _live_status(user, cycle_report)
    latest = version_latest(cycle_report=cycle_report, phase=phase) if phase in REVIEWED_PHASES else None
    # The box speaks of the phase on the screen (in the parallel step the report runs two), in words.
    active_phases = set(facts.active()) or ({cycle_report.phase} if cycle_report.phase else set())
    viewed_state = viewed_waiting = ""
    if live_status is not None:
        from workflows.temporal.report_workflow import WAITING_ON

        if phase in live_status.active:
            state = live_status.active[phase]
            viewed_state = STATE_LABELS.get(state, state.replace("_", " ").capitalize())
            viewed_waiting = WAITING_ON.get(state, "")
        elif phase in live_status.completed_phases:
            viewed_state = "Phase complete"
        elif phase in live_status.skipped_phases:
            viewed_state = "Skipped in this cycle"
        else:
            viewed_state = "Not started yet"
    return {
        "cycle_report": cycle_report,
        "cycle": cycle_report.cycle,
        "phase": phase,
        "phase_label": Phase(phase).label,
        "progress": cycle_report_progress(cycle_report, facts=facts),
        "live_status": live_status,
        "live_state_label": viewed_state,
        "live_waiting_on": viewed_waiting,
        "active_phases": active_phases,
        "status_notice": status_notice,
        "can_work": can_work,
        "editable": editable,
        "lock_reason": lock_reason,
        "can_edit": can_work and editable,
        "reviewed": phase in REVIEWED_PHASES,
        "latest_version": latest,
        "submit_form": SubmitVersionForm() if can_work and editable and phase in REVIEWED_PHASES else None,
        "phase_tabs": [(p, Phase(p).label, reverse(url, args=[cycle_report.pk])) for p, url in PHASE_PAGES.items()],
        "audit_events": audit_entries(cycle_report) if audit else [],
        "phase_facts": facts,  # for the page's own checks (a template has no use for it)
    }


@login_required
@require_GET
def cycle_report_detail(request, pk: int):
    """A report in a cycle opens on the page of the phase it is in."""
    cycle_report = _cycle_report_or_404(request.user, pk)
    user = request.user
    # During the parallel step the data executive's part is Data Owner Identification, not the samples.
    if (
        has_role(user, Role.DATA_EXECUTIVE)
        and cycle_report.report.lob.data_executive_id == user.pk
        and phase_is_active(cycle_report, Phase.DATA_OWNER_IDENTIFICATION)
    ):
        return redirect(phase_url(cycle_report, Phase.DATA_OWNER_IDENTIFICATION))
    return redirect(phase_url(cycle_report))


@login_required
@require_POST
def phase_submit(request, pk: int, phase: str):
    cycle_report = _cycle_report_or_404(request.user, pk)
    if phase not in REVIEWED_PHASES:
        raise Http404("This phase has no version to submit.")
    if not can_work_on(request.user, cycle_report):
        return refuse(request, "Only the report's assigned tester can submit it for approval.")
    form = SubmitVersionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Notes can be at most 2000 characters.")
        return redirect(phase_url(cycle_report, phase))
    try:
        outcome = workflow_submit_version(
            user=request.user, cycle_report=cycle_report, phase=phase, notes=form.cleaned_data["notes"]
        )
    except ApplicationError as err:
        messages.error(request, err.message)
    else:
        _flash_outcome(request, outcome)
    return redirect(phase_url(cycle_report, phase))


def _planning_context(request, cycle_report: CycleReport, form: AttributeForm | None = None) -> dict:
    context = _phase_context(request, cycle_report, Phase.PLANNING)
    context["page_obj"] = paginate(request, cycle_report.attributes.order_by("name", "pk"), per_page=ROWS_PER_PAGE)
    context["attributes"] = list(context["page_obj"].object_list)
    if context["can_edit"]:
        context["form"] = form or AttributeForm()
    return context


@login_required
@require_http_methods(["GET", "POST"])
def planning(request, pk: int):
    """The report's attributes; the tester adds them here (POST) while Planning is editable."""
    cycle_report = _cycle_report_or_404(request.user, pk)
    if request.method == "GET":
        return render(request, "cycles/planning.html", _planning_context(request, cycle_report))
    if not can_work_on(request.user, cycle_report):
        return refuse(request, "Only the report's assigned tester can change its attributes.")
    form = AttributeForm(request.POST)
    if not form.is_valid():
        return render(request, "cycles/planning.html", _planning_context(request, cycle_report, form))
    try:
        attribute = attribute_create(user=request.user, cycle_report=cycle_report, **form.cleaned_data)
    except ApplicationError as err:
        return _refused_form(request, err, form, "cycles/planning.html", _planning_context(request, cycle_report, form))
    messages.success(request, f"Attribute {attribute.name} added.")
    return redirect("cycles:planning", pk=cycle_report.pk)


@login_required
@require_http_methods(["GET", "POST"])
def attribute_edit(request, pk: int, attribute_id: int):
    cycle_report = _cycle_report_or_404(request.user, pk)
    attribute = get_object_or_404(Attribute, pk=attribute_id, cycle_report=cycle_report)
    if not can_work_on(request.user, cycle_report):
        return refuse(request, "Only the report's assigned tester can change its attributes.")
    context = {"cycle_report": cycle_report, "cycle": cycle_report.cycle, "attribute": attribute}
    if request.method == "GET":
        context["form"] = AttributeForm(initial=AttributeForm.initial_for(attribute))
        return render(request, "cycles/attribute_form.html", context)
    form = AttributeForm(request.POST)
    context["form"] = form
    if not form.is_valid():
        return render(request, "cycles/attribute_form.html", context)
    try:
        attribute = attribute_update(user=request.user, attribute=attribute, **form.cleaned_data)
    except ApplicationError as err:
        form.add_error(None, err.message)
        return render(request, "cycles/attribute_form.html", context, status=err.status_code)
    messages.success(request, f"Attribute {attribute.name} saved.")
    return redirect("cycles:planning", pk=cycle_report.pk)


@login_required
@require_POST
def attribute_delete_view(request, pk: int, attribute_id: int):
    cycle_report = _cycle_report_or_404(request.user, pk)
    attribute = get_object_or_404(Attribute, pk=attribute_id, cycle_report=cycle_report)
    if not can_work_on(request.user, cycle_report):
        return refuse(request, "Only the report's assigned tester can change its attributes.")
    name = attribute.name
    try:
        attribute_delete(user=request.user, attribute=attribute)
    except ApplicationError as err:
        messages.error(request, err.message)
    else:
        messages.success(request, f"Attribute {name} removed.")
    return redirect("cycles:planning", pk=cycle_report.pk)


def _profiling_context(request, cycle_report: CycleReport, form: PopulationUploadForm | None = None) -> dict:
    from cycles.views.profiling import profiling_review_context

    context = _phase_context(request, cycle_report, Phase.DATA_PROFILING)
    files = list(cycle_report.population_files.select_related("uploaded_by", "key_resolved_by")
                 .order_by("-uploaded_at", "-pk"))
    # As population_file_current, from the files the page lists anyway: the newest profiled one.
    current = next((f for f in files if f.status == PopulationFile.Status.PROFILED), None)
    context["population_file"] = current
    context["pending_file"] = next(
        (f for f in files if f.status in (PopulationFile.Status.UPLOADED, PopulationFile.Status.PROFILING)
         and (current is None or f.uploaded_at > current.uploaded_at)),
        None,
    )
    context["file_history"] = files
    context["drawn_from"] = (
        SamplingPlan.objects.filter(cycle_report=cycle_report).values_list("population_file_id", flat=True).first()
    )
    context["page_obj"] = paginate(
        request,
        ProfileResult.objects.filter(population_file=current).select_related("attribute").order_by("id")
        if current else ProfileResult.objects.none(),
        per_page=ROWS_PER_PAGE,
    )
    results = list(context["page_obj"].object_list)
    for result in results:
        result.null_pct = result.null_rate * 100
        # Rules are recorded with zero counts too; the page shows only those that failed.
        result.failing_rules = {
            PROFILE_CHECK_WORDS.get(rule, rule): count for rule, count in (result.rule_failures or {}).items() if count
        }
        result.failing_checks = [r for r in result.rule_results or [] if r["failing"]]
        # Past the exact tally the engine estimates a column's distinct values (a primary key's stay exact).
        result.distinct_estimated = result.distinct_count > COUNTED_MAX and not (
            result.attribute and result.attribute.primary_key)
        top = max((t["count"] for t in result.top_values), default=0)
        # A bar's label and share as the template's filters wrote them (truncatechars, floatformat), in the view.
        result.bars = [
            {**t, "pct": round(100 * t["count"] / top) if top else 0,
             "label": truncatechars("∅" if t.get("value", "") is None else t.get("value", ""), 18),
             "share_text": floatformat(100 * t["count"] / result.row_count if result.row_count else 0, 1)}
            for t in result.top_values
        ]
    context["profile_results"] = results
    context.update(profiling_review_context(request, cycle_report, current, context["can_edit"],
                                            context["pending_file"]))
    upload_closed = None
    if context["can_work"]:
        try:
            population_upload_check(cycle_report=cycle_report, facts=context["phase_facts"], files=files)
        except ApplicationError as err:
            upload_closed = err.message
        else:
            context["form"] = form or PopulationUploadForm()
    context["upload_closed"] = upload_closed
    return context


@login_required
@require_http_methods(["GET", "POST"])
def data_profiling(request, pk: int):
    """The population file and its profile; the tester uploads here (POST), then the workflow profiles it.

    Whether the workflow can take a file now is checked before anything is
    stored; if it still refuses (a race with another tab), the file is kept
    in the history as refused and never becomes the current file.
    """
    cycle_report = _cycle_report_or_404(request.user, pk)
    if request.method == "GET":
        return render(request, "cycles/data_profiling.html", _profiling_context(request, cycle_report))
    if not can_work_on(request.user, cycle_report):
        return refuse(request, "Only the report's assigned tester can upload its population file.")
    form = PopulationUploadForm(request.POST, request.FILES)
    if not form.is_valid():
        return render(request, "cycles/data_profiling.html", _profiling_context(request, cycle_report, form))
    try:
        population_file = population_file_upload(
            user=request.user,
            cycle_report=cycle_report,
            uploaded_file=form.cleaned_data["file"],
            declared_format=form.cleaned_data["declared_format"] or None,
        )
    except ApplicationError as err:
        return _refused_form(
            request, err, form, "cycles/data_profiling.html", _profiling_context(request, cycle_report, form),
            field="file",
        )
    try:
        outcome = workflow_register_population(user=request.user, population_file=population_file)
    except ApplicationError as err:
        population_file_refuse(population_file=population_file, message=err.message)
        messages.error(request, f"{population_file} was not profiled: {err.message}")
    else:
        _flash_outcome(request, outcome)
    return redirect("cycles:data-profiling", pk=cycle_report.pk)


@login_required
@require_GET
def population_download(request, pk: int, file_id: int):
    """Population files are private: served only to people who can see the report."""
    cycle_report = _cycle_report_or_404(request.user, pk)
    population_file = get_object_or_404(PopulationFile, pk=file_id, cycle_report=cycle_report)
    try:
        handle = population_file.file.open("rb")
    except FileNotFoundError:
        raise Http404("The stored file is missing.") from None
    return FileResponse(handle, as_attachment=True, filename=population_file.original_name)


def _scoping_context(request, cycle_report: CycleReport, bound: ScopingDecisionForm | None = None) -> dict:
    context = _phase_context(request, cycle_report, Phase.SCOPING)
    all_attributes = cycle_report.attributes.select_related("scoping", "scoping__decided_by").order_by("name", "pk")
    page = paginate(request, all_attributes, per_page=ROWS_PER_PAGE)
    bound_id = bound.data.get("attribute") if bound is not None else None
    if bound_id and str(bound_id).isdigit() and not any(str(a.pk) == str(bound_id) for a in page.object_list):
        # Show the page that holds the row whose form was refused.
        name = all_attributes.filter(pk=bound_id).values_list("name", flat=True).first()
        if name is not None:
            page = page.paginator.page(page_of(all_attributes.filter(name__lt=name).count(), per_page=ROWS_PER_PAGE))
            page.param, page.query_prefix = "page", ""
    attributes = list(page.object_list)
    latest = population_file_current(cycle_report=cycle_report)
    findings = {}
    if latest is not None:
        for result in ProfileResult.objects.filter(population_file=latest, attribute__in=attributes):
            result.failing_rules = {
                PROFILE_CHECK_WORDS.get(rule, rule): count
                for rule, count in (result.rule_failures or {}).items() if count
            }
            result.failing_checks = [r for r in result.rule_results or [] if r["failing"]]
            findings[result.attribute_id] = result
    absent = {
        m.attribute_id: m.reason or "no column of the file holds it"
        for m in ColumnMapping.objects.filter(population_file=latest).exclude(
            status__in=[ColumnMapping.Status.MATCHED, ColumnMapping.Status.CONFIRMED]
        )
    } if latest is not None else {}
    bound_id = bound.data.get("attribute") if bound is not None else None
    rows = []
    for attribute in attributes:
        decision = getattr(attribute, "scoping", None)
        form = None
        if context["can_edit"]:
            if bound is not None and str(attribute.pk) == str(bound_id):
                form = bound
            else:
                form = ScopingDecisionForm(
                    initial={
                        "attribute": attribute.pk,
                        "in_scope": ScopingDecisionForm.IN if decision is None or decision.in_scope
                        else ScopingDecisionForm.OUT,
                        "rationale": decision.rationale if decision else "",
                    },
                    auto_id=f"id_%s_{attribute.pk}",
                )
        rows.append({"attribute": attribute, "decision": decision, "finding": findings.get(attribute.pk), "form": form,
                     "absent": absent.get(attribute.pk)})
    context["rows"] = rows
    context["page_obj"] = page
    counts = cycle_report.attributes.aggregate(
        in_scope=Count("pk", filter=Q(scoping__in_scope=True)), undecided=Count("pk", filter=Q(scoping__isnull=True))
    )
    context["row_count"] = page.paginator.count
    context["in_scope_count"] = counts["in_scope"]
    context["undecided_count"] = counts["undecided"]
    return context


@login_required
@require_http_methods(["GET", "POST"])
def scoping(request, pk: int):
    """Which attributes are tested and why; the tester decides each (POST) while Scoping is editable."""
    cycle_report = _cycle_report_or_404(request.user, pk)
    if request.method == "GET":
        return render(request, "cycles/scoping.html", _scoping_context(request, cycle_report))
    if not can_work_on(request.user, cycle_report):
        return refuse(request, "Only the report's assigned tester can scope its attributes.")
    form = ScopingDecisionForm(request.POST, auto_id=f"id_%s_{request.POST.get('attribute', '')}")
    if not form.is_valid():
        return render(request, "cycles/scoping.html", _scoping_context(request, cycle_report, form))
    attribute = get_object_or_404(Attribute, pk=form.cleaned_data["attribute"], cycle_report=cycle_report)
    try:
        decision = scoping_decide(
            user=request.user,
            attribute=attribute,
            in_scope=form.cleaned_data["in_scope"] == ScopingDecisionForm.IN,
            rationale=form.cleaned_data["rationale"],
        )
    except ApplicationError as err:
        return _refused_form(request, err, form, "cycles/scoping.html", _scoping_context(request, cycle_report, form))
    messages.success(request, f"{attribute.name}: {'in' if decision.in_scope else 'out of'} scope.")
    return redirect(f"{reverse('cycles:scoping', args=[cycle_report.pk])}#attribute-{attribute.pk}")
