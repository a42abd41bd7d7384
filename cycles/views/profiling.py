"""Data Profiling's review steps: map attributes to columns, resolve the key, edit validation rules.

Each view checks the user may see the report (404) and work on it (403),
calls one service in cycles.services.profiling_checks and redirects back to
the Data Profiling page with a message; a refused change is said there.
"""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from cycles.forms.profiling import ColumnMappingForm, KeyResolveForm, RuleForm
from cycles.models import Attribute, ColumnMapping, CycleReport, PopulationFile, ProfilingRule
from cycles.permissions import can_work_on
from cycles.services.profiling import population_file_current
from cycles.services.profiling_checks import (
    column_mapping_decide,
    column_mappings_confirm_matched,
    population_key_resolve,
    population_rules_recheck,
    profiling_open_points,
    profiling_rule_delete,
    profiling_rule_save,
)
from cycles.views.pages import _cycle_report_or_404, refuse
from synapse.exceptions import ApplicationError
from synapse.pagination import page_of, paginate


# The mapping and the rules are one row per attribute: hundreds, each with a form whose select lists every
# column or attribute. A page of each keeps the page's work bounded.
MAPPINGS_PER_PAGE = 25
RULES_PER_PAGE = 25


def profiling_review_context(request, cycle_report: CycleReport, current: PopulationFile | None, can_edit: bool,
                             pending: PopulationFile | None):
    """What the Data Profiling page shows of mapping, key and rules (forms only when the tester can edit);
    ``pending``: a newer file than ``current`` waiting for its profile."""
    if current is None:
        return {"mapping_rows": [], "rule_rows": [],
                "open_points": profiling_open_points(cycle_report=cycle_report, current=None)}
    # The mappings and those matched by name but not confirmed yet, counted in one query.
    mapping_counts = current.mappings.order_by().aggregate(
        total=Count("pk"), unconfirmed=Count("pk", filter=Q(status=ColumnMapping.Status.MATCHED)))
    mapping_page = paginate(
        request, current.mappings.select_related("attribute", "decided_by").order_by("attribute__name", "pk"),
        per_page=MAPPINGS_PER_PAGE, param="mappings", count=mapping_counts["total"],
    )
    mapping_rows = []
    for mapping in mapping_page.object_list:
        form = None
        if can_edit:
            form = ColumnMappingForm(
                initial={"mapping": mapping.pk, "column": mapping.column_name, "reason": mapping.reason},
                columns=current.columns, attribute_name=mapping.attribute.name,
                auto_id=f"id_mapping_{mapping.pk}_%s",
            )
        mapping_rows.append({"mapping": mapping, "form": form})
    attributes = list(current.mappings.order_by("attribute__name").values_list("attribute__name", flat=True)) \
        if can_edit else []
    rule_page = paginate(
        request,
        ProfilingRule.objects.filter(attribute__cycle_report=cycle_report).select_related("attribute")
        .order_by("attribute__name", "pk"),
        per_page=RULES_PER_PAGE, param="rules",
    )
    rules = list(rule_page.object_list)
    column_of = dict(
        current.mappings.filter(attribute_id__in={rule.attribute_id for rule in rules})
        .values_list("attribute_id", "column_name")
    ) if rules else {}
    # Only the outcomes of the columns on the page: a file's results are hundreds of rows of JSON.
    results = {
        r.column_name: r
        for r in current.profile_results.filter(column_name__in={c for c in column_of.values() if c})
        .only("population_file", "column_name", "rule_results")
    } if any(column_of.values()) else {}
    rule_rows = []
    for rule in rules:
        result = results.get(column_of.get(rule.attribute_id, ""))
        found = next((r for r in (result.rule_results if result else []) if r["rule"] == rule.pk), None)
        form = None
        if can_edit:
            form = RuleForm(initial=RuleForm.initial_for(rule), attributes=attributes, prefix=f"rule{rule.pk}")
        rule_rows.append({"rule": rule, "outcome": found, "form": form,
                          "unchecked": column_of.get(rule.attribute_id) in (None, "")})
    key_form = None
    if can_edit and current.key_problem:
        key_form = KeyResolveForm(
            initial={"key_column": current.key_column, "reason": current.key_reason}, columns=current.columns
        )
    return {
        "mapping_rows": mapping_rows,
        "mapping_page": mapping_page,
        "unconfirmed_count": mapping_counts["unconfirmed"],
        "rule_rows": rule_rows,
        "rule_page": rule_page,
        "new_rule_form": RuleForm(attributes=attributes, prefix="new") if can_edit and attributes else None,
        "key_form": key_form,
        "open_points": profiling_open_points(cycle_report=cycle_report, current=current, pending=pending),
    }


def _mapping_url(cycle_report: CycleReport, mapping: ColumnMapping) -> str:
    """The page of the mapping table that shows this mapping, at its row."""
    before = mapping.population_file.mappings.filter(
        Q(attribute__name__lt=mapping.attribute.name) | Q(attribute__name=mapping.attribute.name, pk__lt=mapping.pk)
    ).count()
    page = page_of(before, per_page=MAPPINGS_PER_PAGE)
    url = reverse("cycles:data-profiling", args=[cycle_report.pk])
    return f"{url}{f'?mappings={page}' if page > 1 else ''}#mapping-{mapping.pk}"


def _back(cycle_report: CycleReport, anchor: str = "") -> str:
    return reverse("cycles:data-profiling", args=[cycle_report.pk]) + (f"#{anchor}" if anchor else "")


def _current_or_refuse(request, cycle_report: CycleReport) -> PopulationFile | None:
    current = population_file_current(cycle_report=cycle_report)
    if current is None:
        messages.error(request, "There is no profiled population file yet: upload one first.")
    return current


def _form_errors(form) -> str:
    return " ".join(str(e) for errors in form.errors.values() for e in errors)


@login_required
@require_POST
def mapping_decide_view(request, pk: int):
    cycle_report = _cycle_report_or_404(request.user, pk)
    if not can_work_on(request.user, cycle_report):
        return refuse(request, "Only the report's assigned tester can map its attributes to columns.")
    current = _current_or_refuse(request, cycle_report)
    if current is None:
        return redirect(_back(cycle_report))
    mapping = get_object_or_404(ColumnMapping, pk=request.POST.get("mapping") or 0, population_file=current)
    form = ColumnMappingForm(request.POST, columns=current.columns)
    if not form.is_valid():
        messages.error(request, f"{mapping.attribute.name}: {_form_errors(form)}")
        return redirect(_mapping_url(cycle_report, mapping))
    try:
        column_mapping_decide(user=request.user, mapping=mapping, column_name=form.cleaned_data["column"],
                              not_in_file_reason=form.cleaned_data["reason"])
    except ApplicationError as err:
        messages.error(request, err.message)
    else:
        where = f"column {mapping.column_name}" if mapping.column_name else "not in this file"
        messages.success(request, f"{mapping.attribute.name}: {where}.")
    return redirect(_mapping_url(cycle_report, mapping))


@login_required
@require_POST
def mappings_confirm_view(request, pk: int):
    cycle_report = _cycle_report_or_404(request.user, pk)
    if not can_work_on(request.user, cycle_report):
        return refuse(request, "Only the report's assigned tester can map its attributes to columns.")
    current = _current_or_refuse(request, cycle_report)
    if current is not None:
        try:
            count = column_mappings_confirm_matched(user=request.user, population_file=current)
        except ApplicationError as err:
            messages.error(request, err.message)
        else:
            messages.success(request, f"{count} column{'s' if count != 1 else ''} confirmed.")
    return redirect(_back(cycle_report, "mapping"))


@login_required
@require_POST
def key_resolve_view(request, pk: int):
    cycle_report = _cycle_report_or_404(request.user, pk)
    if not can_work_on(request.user, cycle_report):
        return refuse(request, "Only the report's assigned tester can choose the key of its population.")
    current = _current_or_refuse(request, cycle_report)
    if current is None:
        return redirect(_back(cycle_report))
    form = KeyResolveForm(request.POST, columns=current.columns)
    if not form.is_valid():
        messages.error(request, _form_errors(form))
        return redirect(_back(cycle_report, "key"))
    try:
        population_key_resolve(user=request.user, population_file=current,
                               key_column=form.cleaned_data["key_column"], reason=form.cleaned_data["reason"])
    except ApplicationError as err:
        messages.error(request, err.message)
    else:
        messages.success(
            request,
            f"Rows are named by {current.key_column}." if current.key_column else "Rows are named by row number.",
        )
    return redirect(_back(cycle_report, "key"))


def _rule_attributes(cycle_report: CycleReport) -> list[str]:
    return list(cycle_report.attributes.order_by("name").values_list("name", flat=True))


@login_required
@require_POST
def rule_save_view(request, pk: int, rule_id: int | None = None):
    cycle_report = _cycle_report_or_404(request.user, pk)
    if not can_work_on(request.user, cycle_report):
        return refuse(request, "Only the report's assigned tester can change its validation rules.")
    rule = None
    if rule_id is not None:
        rule = get_object_or_404(ProfilingRule, pk=rule_id, attribute__cycle_report=cycle_report)
    form = RuleForm(request.POST, attributes=_rule_attributes(cycle_report),
                    prefix=f"rule{rule.pk}" if rule else "new")
    if not form.is_valid():
        messages.error(request, f"The rule was not saved: {_form_errors(form)}")
        return redirect(_back(cycle_report, "rules"))
    attribute = get_object_or_404(Attribute, cycle_report=cycle_report, name=form.cleaned_data["attribute"])
    try:
        saved = profiling_rule_save(user=request.user, attribute=attribute, kind=form.cleaned_data["kind"],
                                    params=form.params(), rule=rule)
        current = population_file_current(cycle_report=cycle_report)
        if current is not None:
            population_rules_recheck(user=request.user, population_file=current)
    except ApplicationError as err:
        messages.error(request, err.message)
    else:
        messages.success(request, f"Rule saved: {attribute.name} {saved.label}.")
    return redirect(_back(cycle_report, "rules"))


@login_required
@require_POST
def rule_delete_view(request, pk: int, rule_id: int):
    cycle_report = _cycle_report_or_404(request.user, pk)
    if not can_work_on(request.user, cycle_report):
        return refuse(request, "Only the report's assigned tester can change its validation rules.")
    rule = get_object_or_404(ProfilingRule, pk=rule_id, attribute__cycle_report=cycle_report)
    label = str(rule)
    try:
        profiling_rule_delete(user=request.user, rule=rule)
    except ApplicationError as err:
        messages.error(request, err.message)
    else:
        messages.success(request, f"Rule removed: {label}.")
    return redirect(_back(cycle_report, "rules"))
