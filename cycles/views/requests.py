"""Pages of Data Owner Identification, Requests for Information and evidence.

The data executive of the report's LOB assigns data owners; a data owner sees
only their own requests (never the report's other pages) and uploads evidence
there; the report's tester accepts or returns each file. What a person saves
is stored by the service first; telling the workflow comes after, and its
refusal or absence is a message beside what was saved, never a 500.
"""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.contenttypes.models import ContentType
from django.db.models import Case, Count, F, Func, IntegerField, OuterRef, Q, Subquery, When
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from cycles.forms.requests import (
    BulkDataOwnerForm,
    DataOwnerAssignForm,
    DataOwnerReassignForm,
    EvidenceReviewForm,
    EvidenceUploadForm,
    data_owners,
)
from cycles.models import (
    Attribute,
    CycleReport,
    DataOwnerAssignment,
    Evidence,
    InformationRequest,
    Phase,
    PhaseState,
)
from cycles.permissions import can_view_cycle_report, can_work_on
from cycles.profiling import match_column
from cycles.services.execution import request_coverage
from cycles.services.reassignments import data_owner_reassign, reassignments_of
from cycles.services.requests import (
    attributes_in_scope,
    data_owner_assign,
    data_owner_identification_complete,
    data_owner_identification_missing,
    data_owners_assign_bulk,
    evidence_can_download,
    evidence_latest,
    evidence_review,
    evidence_upload,
    information_request_review,
    information_request_submit,
    information_requests_listed,
    information_requests_visible_to,
    request_attribute_rows,
)
from cycles.views.pages import (
    _cycle_report_or_404,
    _flash_outcome,
    _phase_context,
    refuse,
)
from cycles.views.sampling import object_q, related_audit_entries
from synapse.exceptions import ApplicationError
from synapse.pagination import page_of, paginate
from synapse.roles import Role, has_role
from versioning.models import VersionItem, VersionStatus
from workflows.models import WorkflowDecision
from workflows.services import (
    workflow_complete_data_owners,
    workflow_request_added,
    workflow_request_reviewed,
    workflow_request_submitted,
)
from workflows.temporal.contracts import UPDATE_COMPLETE_DATA_OWNERS

DOI_TEMPLATE = "cycles/data_owners.html"
DETAIL_TEMPLATE = "cycles/request_detail.html"
ANSWERABLE = (InformationRequest.Status.OPEN, InformationRequest.Status.RETURNED)
# A Data Owners row carries a form with the data owners' list: a smaller page keeps it quick to render.
ROWS_PER_PAGE = 25
REQUESTS_PER_PAGE = 25


def is_report_data_executive(user, cycle_report: CycleReport) -> bool:
    return has_role(user, Role.DATA_EXECUTIVE) and cycle_report.report.lob.data_executive_id == user.pk


# --- Data Owner Identification ------------------------------------------------------------------


def _reassignable(cycle_report: CycleReport):
    # The select names each attribute and its data owner: hundreds of rows, of which nothing else is read.
    return (attributes_in_scope(cycle_report=cycle_report).filter(data_owner_assignment__isnull=False)
            .select_related("data_owner_assignment__data_owner").order_by("name")
            .only("id", "name", "data_owner_assignment__id", "data_owner_assignment__attribute_id",
                  "data_owner_assignment__data_owner_id", "data_owner_assignment__data_owner__username",
                  "data_owner_assignment__data_owner__first_name", "data_owner_assignment__data_owner__last_name"))


def _doi_context(request, cycle_report: CycleReport, *, bound: DataOwnerAssignForm | None = None,
                 bulk_form: BulkDataOwnerForm | None = None,
                 reassign_form: DataOwnerReassignForm | None = None) -> dict:
    context = _phase_context(request, cycle_report, Phase.DATA_OWNER_IDENTIFICATION, audit=False)
    # The data executive acts here, not the tester; the lock reason still says when the phase isn't open.
    can_assign = is_report_data_executive(request.user, cycle_report) and context["editable"]
    in_scope = (
        attributes_in_scope(cycle_report=cycle_report)
        .select_related("data_owner_assignment__data_owner", "data_owner_assignment__assigned_by")
        .order_by("name")
    )
    bound_id = bound.data.get("attribute") if bound is not None else None
    # The rows and those still without a data owner, counted in one query.
    counts = in_scope.order_by().aggregate(
        total=Count("pk"), missing=Count("pk", filter=Q(data_owner_assignment__isnull=True)))
    page = paginate(request, in_scope, per_page=ROWS_PER_PAGE, count=counts["total"])
    if bound_id and str(bound_id).isdigit() and not any(str(a.pk) == str(bound_id) for a in page.object_list):
        # Show the page that holds the row whose form was refused.
        name = in_scope.filter(pk=bound_id).values_list("name", flat=True).first()
        if name is not None:
            page = page.paginator.page(page_of(in_scope.filter(name__lt=name).count(), per_page=ROWS_PER_PAGE))
            page.param, page.query_prefix = "page", ""
    # One list of choices for every row's select, instead of a query per row's form.
    owners = list(data_owners()) if can_assign else []
    owner_choices = [("", "— choose —")] + [(u.pk, str(u)) for u in owners]
    rows = []
    for attribute in page.object_list:
        assignment = getattr(attribute, "data_owner_assignment", None)
        form = None
        if can_assign:
            if bound is not None and str(attribute.pk) == str(bound_id):
                form = bound
            else:
                form = DataOwnerAssignForm(
                    initial={"attribute": attribute.pk, "data_owner": assignment.data_owner_id if assignment else None},
                    auto_id=f"id_%s_{attribute.pk}", choices=owner_choices,
                )
        rows.append({"attribute": attribute, "assignment": assignment, "form": form})
    total, missing = counts["total"], counts["missing"]
    queued = WorkflowDecision.objects.filter(
        cycle_report=cycle_report, update_name=UPDATE_COMPLETE_DATA_OWNERS,
    ).exclude(status=WorkflowDecision.Status.REJECTED).exists()
    # After "Assignments complete" the data executive reassigns with a reason (issue 7).
    doi_done = context["phase_facts"].states.get(Phase.DATA_OWNER_IDENTIFICATION) == PhaseState.Status.COMPLETED
    can_reassign = (doi_done and is_report_data_executive(request.user, cycle_report)
                    and cycle_report.status not in ("completed", "cancelled", "failed"))
    if can_reassign and reassign_form is None:
        reassign_form = DataOwnerReassignForm(attributes=_reassignable(cycle_report), auto_id="id_reassign_%s")
    reassignments = paginate(request, reassignments_of(cycle_report=cycle_report, kind="data_owner"),
                             per_page=REQUESTS_PER_PAGE, param="reassignments_page")
    context.update(
        {
            "reassign_form": reassign_form if can_reassign else None,
            "reassignments": reassignments,
            "can_edit": can_assign,
            "can_assign": can_assign,
            "rows": rows,
            "row_count": total,
            "page_obj": page,
            "owners": owners,
            "missing_count": missing,
            "complete": bool(total) and missing == 0,
            "completion_sent": queued,
            "bulk_form": (bulk_form or BulkDataOwnerForm()) if can_assign and rows else None,
            "data_executive": cycle_report.report.lob.data_executive,
            "audit_events": related_audit_entries(
                object_q(cycle_report)
                | Q(content_type=ContentType.objects.get_for_model(DataOwnerAssignment),
                    context__cycle_report=cycle_report.pk)
            ),
        }
    )
    return context


# Assigning the last attribute doesn't close the phase: the data executive confirms it.
ASSIGNED_ALL = (
    "Every in-scope attribute has a data owner. Check them, then confirm with \"Assignments complete\": "
    "the requests go out then."
)


def _tell_workflow_complete(request, cycle_report: CycleReport) -> None:
    """Every in-scope attribute has an owner: let the workflow move on (the assignments are saved already)."""
    try:
        outcome = workflow_complete_data_owners(user=request.user, cycle_report=cycle_report)
    except ApplicationError as err:
        messages.warning(
            request, f"Every in-scope attribute has a data owner, but the workflow was not told: {err.message}"
        )
    else:
        _flash_outcome(request, outcome)


def _doi_url(cycle_report: CycleReport, anchor: str = "") -> str:
    url = reverse("cycles:data-owners", args=[cycle_report.pk])
    return f"{url}#{anchor}" if anchor else url


@login_required
@require_http_methods(["GET", "POST"])
def data_owners_page(request, pk: int):
    """In-scope attributes and their data owners; the LOB's data executive assigns one (POST)."""
    cycle_report = _cycle_report_or_404(request.user, pk)
    if request.method == "GET":
        return render(request, DOI_TEMPLATE, _doi_context(request, cycle_report))
    if not is_report_data_executive(request.user, cycle_report):
        return refuse(request, f"Only the data executive of {cycle_report.report.lob} assigns data owners.")
    form = DataOwnerAssignForm(request.POST, auto_id=f"id_%s_{request.POST.get('attribute', '')}")
    if not form.is_valid():
        return render(request, DOI_TEMPLATE, _doi_context(request, cycle_report, bound=form))
    attribute = get_object_or_404(Attribute, pk=form.cleaned_data["attribute"], cycle_report=cycle_report)
    was_complete = data_owner_identification_complete(cycle_report=cycle_report)
    try:
        assignment = data_owner_assign(
            user=request.user, attribute=attribute, data_owner=form.cleaned_data["data_owner"]
        )
    except ApplicationError as err:
        messages.error(request, err.message)
        return redirect(_doi_url(cycle_report))
    messages.success(request, f"{attribute.name}: {assignment.data_owner} is its data owner.")
    if not was_complete and data_owner_identification_complete(cycle_report=cycle_report):
        messages.info(request, ASSIGNED_ALL)
    return redirect(_doi_url(cycle_report, f"attribute-{attribute.pk}"))


@login_required
@require_POST
def data_owners_bulk(request, pk: int):
    """One data owner for every ticked attribute: all are assigned, or none."""
    cycle_report = _cycle_report_or_404(request.user, pk)
    if not is_report_data_executive(request.user, cycle_report):
        return refuse(request, f"Only the data executive of {cycle_report.report.lob} assigns data owners.")
    ids = list(attributes_in_scope(cycle_report=cycle_report).values_list("pk", flat=True))
    form = BulkDataOwnerForm(request.POST, attribute_ids=ids)
    if not form.is_valid():
        return render(request, DOI_TEMPLATE, _doi_context(request, cycle_report, bulk_form=form))
    was_complete = data_owner_identification_complete(cycle_report=cycle_report)
    try:
        assignments = data_owners_assign_bulk(
            user=request.user, cycle_report=cycle_report, data_owner=form.cleaned_data["data_owner"],
            attribute_ids=form.cleaned_data["attributes"],
        )
    except ApplicationError as err:
        messages.error(request, err.message)
        return redirect(_doi_url(cycle_report))
    messages.success(
        request, f"{form.cleaned_data['data_owner']} is the data owner of {len(assignments)} attribute(s)."
    )
    if not was_complete and data_owner_identification_complete(cycle_report=cycle_report):
        messages.info(request, ASSIGNED_ALL)
    return redirect(_doi_url(cycle_report))


@login_required
@require_POST
def data_owners_complete(request, pk: int):
    """"Assignments complete": the data executive confirms every in-scope attribute has its owner."""
    cycle_report = _cycle_report_or_404(request.user, pk)
    if not is_report_data_executive(request.user, cycle_report):
        return refuse(request, f"Only the data executive of {cycle_report.report.lob} completes this phase.")
    missing = data_owner_identification_missing(cycle_report=cycle_report)
    if missing:
        messages.error(request, "Assign a data owner to every in-scope attribute first; missing: "
                       + ", ".join(a.name for a in missing) + ".")
    elif not attributes_in_scope(cycle_report=cycle_report).exists():
        messages.error(request, "No attribute is in scope: there is nothing to assign.")
    else:
        _tell_workflow_complete(request, cycle_report)
    return redirect(_doi_url(cycle_report))


@login_required
@require_POST
def data_owners_reassign(request, pk: int):
    """After "Assignments complete": the data executive moves an attribute (and its open request) to
    another data owner, with a reason."""
    cycle_report = _cycle_report_or_404(request.user, pk)
    if not is_report_data_executive(request.user, cycle_report):
        return refuse(request, f"Only the data executive of {cycle_report.report.lob} reassigns data owners.")
    form = DataOwnerReassignForm(request.POST, attributes=_reassignable(cycle_report), auto_id="id_reassign_%s")
    if not form.is_valid():
        return render(request, DOI_TEMPLATE, _doi_context(request, cycle_report, reassign_form=form), status=400)
    attribute = get_object_or_404(Attribute, pk=form.cleaned_data["attribute"], cycle_report=cycle_report)
    try:
        result = data_owner_reassign(user=request.user, attribute=attribute, data_owner=form.cleaned_data["data_owner"],
                                     reason=form.cleaned_data["reason"])
    except ApplicationError as err:
        # Shown beside what was typed, so the reason is not lost.
        form.add_error(None, err.message)
        return render(request, DOI_TEMPLATE, _doi_context(request, cycle_report, reassign_form=form),
                      status=err.status_code)
    moved = (" Its request was split: the new owner has a request for it alone." if result.split
             else " Its open request moved with it." if result.request else "")
    messages.success(request, f"{attribute.name}: {result.assignment.data_owner} is its data owner now.{moved} "
                     "Both data owners are told by email.")
    if result.decision is not None:
        try:
            outcome = workflow_request_added(decision=result.decision)
        except ApplicationError as err:
            messages.warning(request, f"The reassignment is saved, but the workflow refused the new request: "
                             f"{err.message}")
        else:
            if not outcome.delivered:
                messages.warning(request, outcome.message)
    return redirect(_doi_url(cycle_report, "reassignments"))


# --- Requests for Information: lists ------------------------------------------------------------


def _count(qs):
    """COUNT(*) of a queryset correlated to the outer row: one number per row, no GROUP BY of the outer query."""
    return Subquery(qs.order_by().annotate(n=Func(F("pk"), function="COUNT")).values("n"),
                    output_field=IntegerField())


def _with_counts(qs):
    # A subquery per row rather than a join and GROUP BY over every visible request: PostgreSQL runs it for
    # the rows a page shows only, after the sort and the limit.
    evidence = Evidence.objects.filter(request=OuterRef("pk"))
    return qs.annotate(
        evidence_count=_count(evidence),
        pending_count=_count(evidence.filter(status=Evidence.Status.PENDING)),
    )


def _with_attribute_rows(requests) -> list[InformationRequest]:
    """The requests, each with ``attribute_rows`` (its attributes' id, name and description by name) for
    cycles/_request_rows.html: read for all of them in one query, without a model instance per attribute."""
    requests = list(requests)
    rows = request_attribute_rows(r.pk for r in requests)
    for r in requests:
        r.attribute_rows = rows.get(r.pk, [])
    return requests


@login_required
@require_GET
def request_list(request):
    """Every request the user may see (a data owner's own), open ones first, by due date; filtered and paged."""
    requests = information_requests_listed(information_requests_visible_to(user=request.user), attributes=False)
    status = request.GET.get("status", "")
    if status in InformationRequest.Status.values:
        requests = requests.filter(status=status)
    else:
        status = ""
    report = request.GET.get("report", "").strip()
    if report:
        requests = requests.filter(cycle_report__report__name__icontains=report)
    requests = _with_counts(requests).order_by(
        Case(When(status=InformationRequest.Status.ACCEPTED, then=1), default=0),
        "due_date", "cycle_report__report__name", "data_owner__username", "pk",
    )
    page = paginate(request, requests, per_page=REQUESTS_PER_PAGE)
    return render(request, "cycles/requests_list.html", {
        "requests": _with_attribute_rows(page.object_list), "page_obj": page, "today": timezone.localdate(),
        "status": status, "report": report, "statuses": InformationRequest.Status.choices,
    })


@login_required
@require_GET
def report_requests(request, pk: int):
    """The Request for Information phase of one report: its requests and their state."""
    cycle_report = _cycle_report_or_404(request.user, pk)
    context = _phase_context(request, cycle_report, Phase.REQUEST_FOR_INFORMATION, audit=False)
    requests = _with_attribute_rows(
        _with_counts(information_requests_visible_to(user=request.user).filter(cycle_report=cycle_report))
        .prefetch_related(None).order_by("data_owner__username")
    )
    context.update(
        {
            "requests": requests,
            "today": timezone.localdate(),
            "doi_done": context["phase_facts"].states.get(Phase.DATA_OWNER_IDENTIFICATION)
            == PhaseState.Status.COMPLETED,
            "audit_events": related_audit_entries(
                object_q(cycle_report)
                | Q(content_type=ContentType.objects.get_for_model(InformationRequest), object_id__in=[
                    str(r.pk) for r in requests
                ])
            ),
        }
    )
    return render(request, "cycles/report_requests.html", context)


# --- a request ------------------------------------------------------------------------------------


def _request_or_404(user, pk: int) -> InformationRequest:
    found = information_requests_visible_to(user=user).filter(pk=pk).first()
    if found is None:
        raise Http404("No such request among those you can see.")
    return found


def _is_request_owner(user, info_request: InformationRequest) -> bool:
    return has_role(user, Role.DATA_OWNER) and info_request.data_owner_id == user.pk


def _wanted_table(info_request: InformationRequest, attributes: list[Attribute], keys: list[str]) -> list[dict]:
    """Each of the given samples with the reported value of each requested attribute, from the approved version."""
    frozen = {
        item.key: item.data.get("row_data") or {}
        for item in VersionItem.objects.filter(
            version__cycle_report_id=info_request.cycle_report_id, version__phase=Phase.SAMPLE_SELECTION,
            version__status=VersionStatus.APPROVED, key__in=keys,
        )
    }
    rows = []
    for key in keys:
        row = frozen.get(key, {})
        columns = list(row)
        cells = []
        for attribute in attributes:
            column = match_column(attribute.name, columns) if columns else None
            cells.append({"found": column is not None, "value": row.get(column) if column else None})
        rows.append({"key": key, "cells": cells})
    return rows


def _detail_context(request, info_request: InformationRequest, *, upload_form=None,
                    review_forms: dict | None = None) -> dict:
    user = request.user
    cycle_report = info_request.cycle_report
    attributes = sorted(info_request.attributes.all(), key=lambda a: a.name)
    evidence = list(
        Evidence.objects.filter(request=info_request)
        .select_related("uploaded_by", "reviewed_by")
        .order_by("original_name", "-version")
    )
    latest_ids = {e.pk for e in evidence_latest(request=info_request)}
    wanted_page = paginate(request, list(info_request.sample_keys or []), per_page=ROWS_PER_PAGE, param="samples")
    is_owner = _is_request_owner(user, info_request)
    is_tester = can_work_on(user, cycle_report)
    answerable = info_request.status in ANSWERABLE
    reviewing = is_tester and info_request.status == InformationRequest.Status.SUBMITTED
    review_forms = review_forms or {}
    for e in evidence:
        e.is_latest = e.pk in latest_ids
        e.review_form = None
        if reviewing and e.is_latest:
            e.review_form = review_forms.get(e.pk) or EvidenceReviewForm(
                initial={"decision": EvidenceReviewForm.ACCEPT if e.status != Evidence.Status.RETURNED
                         else EvidenceReviewForm.RETURN, "note": e.review_note},
                prefix=f"e{e.pk}",
            )
    latest = [e for e in evidence if e.is_latest]
    newest_status = {e.original_name: e.status for e in latest}
    # What the last review sent back, still shown after the data owner uploaded a replacement.
    returned = [
        e for e in evidence
        if e.status == Evidence.Status.RETURNED
        and (e.is_latest or newest_status.get(e.original_name) == Evidence.Status.PENDING)
    ]
    return {
        "info_request": info_request,
        "today": timezone.localdate(),
        "cycle_report": cycle_report,
        "cycle": cycle_report.cycle,
        "attributes": attributes,
        "wanted": _wanted_table(info_request, attributes, list(wanted_page.object_list)),
        "wanted_count": wanted_page.paginator.count,
        "wanted_page": wanted_page,
        "evidence": evidence,
        "returned": returned,
        "is_owner": is_owner,
        "is_tester": is_tester,
        "sees_report": can_view_cycle_report(user, cycle_report),
        "upload_form": (upload_form or EvidenceUploadForm(info_request=info_request))
        if is_owner and answerable else None,
        # The page of samples the wanted table shows; the counts are the whole request's.
        "coverage": request_coverage(request=info_request, keys=list(wanted_page.object_list)),
        "can_submit": is_owner and answerable and any(e.status == Evidence.Status.PENDING for e in latest),
        "reviewing": reviewing,
        "can_finish_review": reviewing and bool(latest)
        and not any(e.status == Evidence.Status.PENDING for e in latest),
        "pending_review": sum(1 for e in latest if e.status == Evidence.Status.PENDING),
        "can_edit": is_owner and answerable,
        "audit_events": related_audit_entries(
            object_q(info_request)
            | Q(content_type=ContentType.objects.get_for_model(Evidence), context__request=info_request.pk)
        ),
    }


def _detail_url(info_request: InformationRequest, anchor: str = "") -> str:
    url = reverse("cycles:request-detail", args=[info_request.pk])
    return f"{url}#{anchor}" if anchor else url


@login_required
@require_GET
def request_detail(request, pk: int):
    info_request = _request_or_404(request.user, pk)
    return render(request, DETAIL_TEMPLATE, _detail_context(request, info_request))


@login_required
@require_POST
def request_upload(request, pk: int):
    """The data owner's files; if one is refused, none is stored and the page says which and why."""
    info_request = _request_or_404(request.user, pk)
    if not _is_request_owner(request.user, info_request):
        return refuse(request, "Only the data owner the request was sent to uploads its evidence.")
    form = EvidenceUploadForm(request.POST, request.FILES, info_request=info_request)
    if not form.is_valid():
        return render(request, DETAIL_TEMPLATE, _detail_context(request, info_request, upload_form=form))
    try:
        stored = evidence_upload(user=request.user, request=info_request, files=form.cleaned_data["files"],
                                 sample_keys=form.cleaned_data["samples"],
                                 attribute_ids=form.cleaned_data["attributes"])
    except ApplicationError as err:
        context = _detail_context(request, info_request, upload_form=form)
        if context["upload_form"] is None:
            messages.error(request, err.message)
            return redirect(_detail_url(info_request))
        form.add_error("files", err.message)
        return render(request, DETAIL_TEMPLATE, context, status=err.status_code)
    names = ", ".join(f"{e.original_name} v{e.version}" for e in stored)
    messages.success(request, f"Uploaded {names}. Submit your evidence when it is complete.")
    return redirect(_detail_url(info_request, "evidence"))


@login_required
@require_POST
def request_submit(request, pk: int):
    info_request = _request_or_404(request.user, pk)
    if not _is_request_owner(request.user, info_request):
        return refuse(request, "Only the data owner the request was sent to submits its evidence.")
    try:
        info_request = information_request_submit(user=request.user, request=info_request)
    except ApplicationError as err:
        messages.error(request, err.message)
        return redirect(_detail_url(info_request))
    try:
        outcome = workflow_request_submitted(user=request.user, request=info_request)
    except ApplicationError as err:
        messages.warning(request, f"Your evidence is submitted, but the workflow was not told: {err.message}")
    else:
        if outcome.delivered:
            messages.success(request, "Your evidence is submitted; the tester reviews it next.")
        else:
            messages.warning(request, outcome.message)
    return redirect(_detail_url(info_request))


@login_required
@require_POST
def evidence_review_view(request, pk: int, evidence_id: int):
    info_request = _request_or_404(request.user, pk)
    evidence = get_object_or_404(Evidence, pk=evidence_id, request=info_request)
    if not can_work_on(request.user, info_request.cycle_report):
        return refuse(request, "Only the tester assigned to the report reviews its evidence.")
    form = EvidenceReviewForm(request.POST, prefix=f"e{evidence.pk}")
    if not form.is_valid():
        return render(request, DETAIL_TEMPLATE,
                      _detail_context(request, info_request, review_forms={evidence.pk: form}))
    try:
        evidence = evidence_review(user=request.user, evidence=evidence, accept=form.accept,
                                   note=form.cleaned_data["note"])
    except ApplicationError as err:
        messages.error(request, err.message)
    else:
        messages.success(request, f"{evidence}: {evidence.get_status_display().lower()}.")
    return redirect(_detail_url(info_request, f"evidence-{evidence.pk}"))


@login_required
@require_POST
def request_review(request, pk: int):
    """'Finish review': accepted if every file is, else the request goes back to its data owner."""
    info_request = _request_or_404(request.user, pk)
    if not can_work_on(request.user, info_request.cycle_report):
        return refuse(request, "Only the tester assigned to the report reviews its evidence.")
    try:
        info_request = information_request_review(user=request.user, request=info_request)
    except ApplicationError as err:
        messages.error(request, err.message)
        return redirect(_detail_url(info_request))
    done = ("accepted" if info_request.status == InformationRequest.Status.ACCEPTED
            else f"returned to {info_request.data_owner}")
    try:
        outcome = workflow_request_reviewed(user=request.user, request=info_request)
    except ApplicationError as err:
        messages.warning(request, f"The request is {done}, but the workflow was not told: {err.message}")
    else:
        if outcome.delivered:
            messages.success(request, f"The request is {done}.")
        else:
            messages.warning(request, outcome.message)
    return redirect(_detail_url(info_request))


@login_required
@require_GET
def evidence_download(request, pk: int, evidence_id: int):
    """Evidence is private: served only to who may read it, as an attachment under its original name."""
    info_request = _request_or_404(request.user, pk)
    evidence = get_object_or_404(Evidence.objects.select_related("request"), pk=evidence_id, request=info_request)
    evidence.request = info_request
    if not evidence_can_download(request.user, evidence):
        raise Http404("No such evidence among what you can see.")
    try:
        handle = evidence.file.open("rb")
    except FileNotFoundError:
        raise Http404("The stored file is missing.") from None
    return FileResponse(handle, as_attachment=True, filename=evidence.original_name,
                        content_type=evidence.content_type or "application/octet-stream")
