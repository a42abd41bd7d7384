"""The Test Execution page: the test matrix with filters, a cell's result and history, bulk actions,
attribute rules, and the report owner's decision on a sample extension.

Same shape as cycles.views.sampling: the user must see the report (404) and be
its tester (or owner, for extensions) to act (403); one service call; a redirect
with a message; a refusal is a message or a form error, never a 500.
"""
from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.contenttypes.models import ContentType
from django.core.paginator import Paginator
from django.db.models import Exists, OuterRef, Q
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.timezone import localtime
from django.views.decorators.http import require_http_methods, require_POST

from cycles.forms.execution import BulkResultsForm, ExecutionRuleForm, ExtensionDecisionForm, TestResultForm
from cycles.models import (
    Attribute,
    ExecutionRule,
    Phase,
    PopulationFile,
    Sample,
    SampleExtension,
    TestResult,
    TestResultValue,
)
from cycles.permissions import can_approve, can_work_on
from cycles.services import execution as execution_services
from cycles.services.execution import evidence_by_cell, evidence_covering, execution_rule_set
from cycles.services.sample_extension import sample_extension_check
from cycles.views.pages import _cycle_report_or_404, _flash_outcome, _phase_context, _truncated, refuse
from cycles.views.sampling import object_q, related_audit_entries
from synapse.exceptions import ApplicationError
from synapse.pagination import paginate
from synapse.widgets import PythonSelect

TEMPLATE = "cycles/test_execution.html"
CELL_TEMPLATE = "cycles/test_execution_cell.html"
CELLS_PER_PAGE = 50
ATTRIBUTES_PER_PAGE = 25
FILTERS = {"": "All cells", "failed": "Failed only", "untested": "Not yet tested"}


def _id(raw) -> int:
    try:
        return max(int(raw or 0), 0)
    except ValueError:
        return 0


def _filters(request) -> dict:
    show = request.GET.get("show", "")
    if show not in FILTERS:
        show = ""
    return {"show": show, "attribute": _id(request.GET.get("attribute")), "sample": _id(request.GET.get("sample"))}


def _filter_select(name: str, everything: str, choices, value: int) -> str:
    """One of the matrix's filters (hundreds of attributes, a hundred samples), written in Python."""
    return PythonSelect(attrs={"id": f"filter-{name}"}, choices=[("", everything), *choices]).render(
        name, str(value or ""))


def _page_url(cycle_report, filters: dict | None = None, anchor: str = "") -> str:
    url = reverse("cycles:test-execution", args=[cycle_report.pk])
    query = {k: v for k, v in (filters or {}).items() if v}
    return f"{url}{'?' + urlencode(query) if query else ''}{'#' + anchor if anchor else ''}"


def _columns(cycle_report) -> list[str]:
    population_file = (
        PopulationFile.objects.filter(cycle_report=cycle_report, status=PopulationFile.Status.PROFILED)
        .order_by("-uploaded_at", "-pk").first()
    )
    return list(population_file.columns) if population_file else []


def _context(request, cycle_report, *, rule_form=None, bulk_form=None) -> dict:
    context = _phase_context(request, cycle_report, Phase.TEST_EXECUTION, audit=False)
    filters = _filters(request)
    cells = execution_services.test_results_for(
        user=request.user, cycle_report=cycle_report, failed_only=filters["show"] == "failed",
        untested_only=filters["show"] == "untested", attribute_id=filters["attribute"] or None,
        sample_id=filters["sample"] or None,
    )
    page = Paginator(execution_services.MatrixCells(cells), CELLS_PER_PAGE).get_page(request.GET.get("page"))
    execution_services.test_results_history_counts(page.object_list)
    coverage = evidence_by_cell(cycle_report=cycle_report,
                                cells={(cell.sample_id, cell.attribute_id) for cell in page.object_list})
    labels = {name: dict(TestResult._meta.get_field(name).flatchoices) for name in ("result", "failure_kind", "method")}
    for cell in page.object_list:
        cell.covering = coverage.get((cell.sample_id, cell.attribute_id), [])
        # What a row shows, formatted here rather than by a filter or a get_FOO_display per cell in the template.
        cell.expected_text = _truncated(cell.expected_value or "∅", 40)
        cell.observed_text = _truncated(cell.observed_value or "—", 40)
        cell.comment_text = _truncated(cell.comment or cell.rule_detail, 80)
        cell.tested_text = (f"{cell.tested_by or 'rule'} · {localtime(cell.tested_at).strftime('%Y-%m-%d %H:%M')}"
                            if cell.tested_at else "")
        cell.result_label = labels["result"].get(cell.result, cell.result)
        cell.failure_label = labels["failure_kind"].get(cell.failure_kind, cell.failure_kind)
        cell.method_label = labels["method"].get(cell.method, cell.method)
    # Every in-scope attribute by name (the filter, the rule form, the extension check); its rule, counts and
    # check for the table's page of them only.
    attributes = list(Attribute.objects.filter(cycle_report=cycle_report, scoping__in_scope=True)
                      .only("pk", "name", "cycle_report").order_by("name"))
    attribute_page = paginate(request, attributes, per_page=ATTRIBUTES_PER_PAGE, param="attributes")
    counts = execution_services.result_counts_by_attribute(cycle_report=cycle_report)
    extensions = list(SampleExtension.objects.filter(cycle_report=cycle_report)
                      .select_related("decided_by").prefetch_related("attributes"))
    # Each attribute's check is its own: the page's attributes only.
    checks = {row["attribute"].pk: row for row in sample_extension_check(
        cycle_report=cycle_report, attributes=attribute_page.object_list, counts_by_attribute=counts,
        extensions=extensions)}
    rules = {rule.attribute_id: rule for rule in ExecutionRule.objects.filter(
        attribute__in=[a.pk for a in attribute_page.object_list]).order_by()}
    for attribute in attribute_page.object_list:
        attribute.rule = rules.get(attribute.pk)
        attribute.counts = counts.get(attribute.pk, {})
        attribute.check = checks.get(attribute.pk)
    can_edit = context["can_edit"]
    pending = next((x for x in extensions if x.status == SampleExtension.Status.PROPOSED), None)
    context.update({
        "filters": filters,
        "filter_choices": FILTERS,
        "page": page,
        "cells": page.object_list,
        "attributes": attributes,
        "attribute_filter": _filter_select("attribute", "All attributes", ((a.pk, a.name) for a in attributes),
                                           filters["attribute"]),
        # Sample by sample: every sample of the matrix, in its order.
        "sample_filter": _filter_select("sample", "All samples", Sample.objects.filter(
            Exists(TestResult.objects.filter(sample=OuterRef("pk"))), cycle_report=cycle_report)
            .order_by("row_index", "pk").values_list("pk", "key"), filters["sample"]),
        # The attributes' table (a row per in-scope attribute: hundreds) a page at a time.
        "attribute_page": attribute_page,
        "matrix_progress": execution_services.test_execution_progress(cycle_report=cycle_report,
                                                                     counts_by_attribute=counts),
        "rule_form": (rule_form or ExecutionRuleForm(attributes=attributes, columns=_columns(cycle_report)))
        if can_edit else None,
        "bulk_form": (bulk_form or BulkResultsForm()) if can_edit else None,
        "pending_extension": pending,
        "extensions": extensions,
        "extension_form": ExtensionDecisionForm()
        if pending and can_approve(request.user, cycle_report, Phase.TEST_EXECUTION) else None,
        "query": urlencode({k: v for k, v in filters.items() if v}),
        "audit_events": related_audit_entries(
            object_q(cycle_report)
            | Q(content_type=ContentType.objects.get_for_model(TestResult), context__cycle_report=cycle_report.pk)
            | Q(content_type=ContentType.objects.get_for_model(ExecutionRule), context__cycle_report=cycle_report.pk)
            | Q(content_type=ContentType.objects.get_for_model(SampleExtension),
                context__cycle_report=cycle_report.pk)
        ),
    })
    return context


@login_required
@require_http_methods(["GET", "POST"])
def execution_page(request, pk: int):
    """The matrix (GET); the tester sets an attribute's rule (POST)."""
    cycle_report = _cycle_report_or_404(request.user, pk)
    if request.method == "GET":
        return render(request, TEMPLATE, _context(request, cycle_report))
    if not can_work_on(request.user, cycle_report):
        return refuse(request, "Only the report's assigned tester sets its execution rules.")
    attributes = list(Attribute.objects.filter(cycle_report=cycle_report, scoping__in_scope=True).order_by("name"))
    form = ExecutionRuleForm(request.POST, attributes=attributes, columns=_columns(cycle_report))
    if not form.is_valid():
        return render(request, TEMPLATE, _context(request, cycle_report, rule_form=form), status=400)
    attribute = next(a for a in attributes if a.pk == form.cleaned_data["attribute"])
    try:
        rule = execution_rule_set(user=request.user, attribute=attribute, **form.rule_fields())
    except ApplicationError as err:
        form.add_error(None, err.message)
        return render(request, TEMPLATE, _context(request, cycle_report, rule_form=form), status=err.status_code)
    # Cells still untested are tested by the new rule at once; tested ones wait for "Re-test by rule".
    execution_services.test_matrix_prepare(cycle_report_id=cycle_report.pk)
    messages.success(request, f"Rule saved for {attribute.name}: {rule.get_kind_display()}. Untested cells ran.")
    return redirect(_page_url(cycle_report, anchor="rules"))



def _cell_or_404(request, cycle_report, result_id: int) -> TestResult:
    cell = (
        TestResult.objects.filter(cycle_report=cycle_report, pk=result_id)
        .select_related("sample", "attribute", "tested_by").first()
    )
    if cell is None:
        raise Http404("No such cell in this report's matrix.")
    return cell


def _cell_context(request, cycle_report, cell, form=None) -> dict:
    context = _phase_context(request, cycle_report, Phase.TEST_EXECUTION)
    covering = evidence_covering(cycle_report=cycle_report, sample=cell.sample, attribute=cell.attribute)
    choices = [(e.pk, f"{e.original_name} v{e.version}") for e in covering]
    if form is None and context["can_edit"]:
        form = TestResultForm(evidence_choices=choices, initial={
            "outcome": cell.result if cell.result != TestResultValue.NOT_TESTED else "",
            "observed_value": cell.observed_value or cell.expected_value,
            "failure_kind": cell.failure_kind, "comment": cell.comment,
            "evidence": [e.pk for e in cell.evidence.all()],
        })
    context.update({
        "cell": cell,
        "form": form if context["can_edit"] else None,
        "covering": covering,
        "history": list(cell.history.select_related("tested_by", "replaced_by")),
        "back": _page_url(cycle_report, {"show": request.GET.get("show", ""),
                                         "attribute": request.GET.get("attribute", ""),
                                         "sample": request.GET.get("sample", "")}),
        "row_fields": list((cell.sample.row_data or {}).items())[:12],
    })
    return context


@login_required
@require_http_methods(["GET", "POST"])
def result_edit(request, pk: int, result_id: int):
    """One cell: its row, evidence and history (GET); the tester records a result (POST)."""
    cycle_report = _cycle_report_or_404(request.user, pk)
    cell = _cell_or_404(request, cycle_report, result_id)
    if request.method == "GET":
        return render(request, CELL_TEMPLATE, _cell_context(request, cycle_report, cell))
    if not can_work_on(request.user, cycle_report):
        return refuse(request, "Only the report's assigned tester records its test results.")
    covering = evidence_covering(cycle_report=cycle_report, sample=cell.sample, attribute=cell.attribute)
    form = TestResultForm(request.POST, evidence_choices=[(e.pk, e.original_name) for e in covering])
    if not form.is_valid():
        return render(request, CELL_TEMPLATE, _cell_context(request, cycle_report, cell, form), status=400)
    try:
        cell = execution_services.test_result_record(user=request.user, result=cell, **form.service_fields())
    except ApplicationError as err:
        form.add_error(None, err.message)
        return render(request, CELL_TEMPLATE, _cell_context(request, cycle_report, cell, form),
                      status=err.status_code)
    messages.success(request, f"Sample {cell.sample.key} × {cell.attribute.name}: {cell.get_result_display()}.")
    return redirect(_page_url(cycle_report, {"show": request.POST.get("show", ""),
                                             "attribute": request.POST.get("attribute_filter", ""),
                                             "sample": request.POST.get("sample_filter", "")},
                              anchor=f"cell-{cell.pk}"))



@login_required
@require_POST
def results_bulk(request, pk: int):
    cycle_report = _cycle_report_or_404(request.user, pk)
    if not can_work_on(request.user, cycle_report):
        return refuse(request, "Only the report's assigned tester records its test results.")
    ids = TestResult.objects.filter(cycle_report=cycle_report).values_list("pk", flat=True)
    form = BulkResultsForm(request.POST, cell_ids=list(ids))
    filters = {"show": request.POST.get("show", ""), "attribute": request.POST.get("attribute_filter", ""),
               "sample": request.POST.get("sample_filter", "")}
    if not form.is_valid():
        messages.error(request, "Choose an action and cells of this report's matrix.")
        return redirect(_page_url(cycle_report, filters))
    try:
        changed = execution_services.test_results_bulk(
            user=request.user, cycle_report=cycle_report, result_ids=form.cleaned_data["cells"],
            action=form.cleaned_data["action"], comment=form.cleaned_data["comment"],
        )
    except ApplicationError as err:
        messages.error(request, err.message)
    else:
        messages.success(request, f"{dict(form.fields['action'].choices)[form.cleaned_data['action']]}: "
                                  f"{changed} cell{'s' if changed != 1 else ''}.")
    return redirect(_page_url(cycle_report, filters))



@login_required
@require_POST
def sample_extension_decide_view(request, pk: int, extension_id: int):
    from workflows.services import workflow_decide_extension

    cycle_report = _cycle_report_or_404(request.user, pk)
    extension = SampleExtension.objects.filter(cycle_report=cycle_report, pk=extension_id) \
        .select_related("cycle_report__report", "cycle_report__cycle").first()
    if extension is None:
        raise Http404("No such sample extension.")
    if not can_approve(request.user, cycle_report, Phase.TEST_EXECUTION):
        return refuse(request, "Only the report's owner approves or rejects a sample extension.")
    form = ExtensionDecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose to approve or reject the extension.")
        return redirect(_page_url(cycle_report, anchor="extension"))
    try:
        outcome = workflow_decide_extension(user=request.user, extension=extension,
                                            approve=form.cleaned_data["decision"] == "approve",
                                            notes=form.cleaned_data["notes"])
    except ApplicationError as err:
        messages.error(request, err.message)
    else:
        _flash_outcome(request, outcome)
    return redirect(_page_url(cycle_report, anchor="extension"))
