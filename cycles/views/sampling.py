"""The Sample Selection page: the sampling plan and its size, the draw, hand-picked samples, submission.

Same shape as cycles.views.pages: a form parses, the user must see the report (404)
and be its tester to act (403), one service call, then a redirect with a
message; a refused action is a message or a form error, never a 500.
"""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.contenttypes.models import ContentType
from django.db.models import Q
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from cycles.forms.sampling import ManualSampleForm, SamplingPlanForm
from cycles.models import CycleReport, Phase, PopulationFile, Sample, SamplingPlan
from cycles.permissions import can_work_on
from cycles.sampling.keys import natural_sorted
from cycles.services.sampling import (
    frequency_table,
    sample_add_manual,
    sample_remove,
    samples_draw,
    samples_for,
    sampling_plan_explanation,
    sampling_plan_update,
)
from cycles.views.pages import (
    AUDIT_LIMIT,
    _cycle_report_or_404,
    _phase_context,
    _refused_form,
    audit_entries_of,
    refuse,
)
from synapse.exceptions import ApplicationError
from synapse.pagination import paginate
from synapse.models import AuditEvent
from versioning.models import VersionItem

TEMPLATE = "cycles/sample_selection.html"
# Row fields shown beside each sample; the whole row is in the version the owner approves.
ROW_FIELDS_SHOWN = 4
SAMPLES_PER_PAGE = 50


def related_audit_entries(q: Q) -> list[dict]:
    """Audit events matching q, newest first, shaped for partials/audit_trail.html.

    A phase's trail spans several objects (the plan, samples since removed,
    assignments), so it is gathered by the ids its services record in context.
    """
    events = AuditEvent.objects.filter(q).select_related("actor")[:AUDIT_LIMIT]
    return audit_entries_of(events)


def object_q(obj) -> Q:
    return Q(content_type=ContentType.objects.get_for_model(type(obj)), object_id=str(obj.pk))


def _plan(cycle_report: CycleReport) -> SamplingPlan | None:
    return (
        SamplingPlan.objects.filter(cycle_report=cycle_report)
        .select_related("population_file", "updated_by")
        .first()
    )


def _population_columns(cycle_report: CycleReport, plan: SamplingPlan | None) -> tuple[PopulationFile | None, list]:
    population_file = plan.population_file if plan else None
    if population_file is None:
        population_file = (
            PopulationFile.objects.filter(cycle_report=cycle_report, status=PopulationFile.Status.PROFILED)
            .order_by("-uploaded_at", "-pk")
            .first()
        )
    return population_file, list(population_file.columns) if population_file else []


def _default_plan_initial() -> dict:
    defaults = {name: SamplingPlan._meta.get_field(name).get_default() for name in SamplingPlanForm.base_fields}
    return {**defaults, "override_size": None, "seed": None}


def _context(request, cycle_report: CycleReport, *, plan_form=None, manual_form=None) -> dict:
    context = _phase_context(request, cycle_report, Phase.SAMPLE_SELECTION, audit=False)
    plan = _plan(cycle_report)
    population_file, columns = _population_columns(cycle_report, plan)
    explanation = ""
    if plan is not None:
        try:
            explanation = sampling_plan_explanation(plan=plan)
        except ApplicationError:
            explanation = plan.size_explanation
    samples = natural_sorted(samples_for(cycle_report=cycle_report), key=lambda s: s.key)
    shown = columns or (list(samples[0].row_data) if samples else [])
    if samples:
        # The column that names the samples is already the Key column.
        first = samples[0]
        shown = [c for c in shown if str(first.row_data.get(c)) != first.key]
    shown = shown[:ROW_FIELDS_SHOWN]

    latest = context["latest_version"]
    decided_items = {}
    if latest is not None:
        decided_items = {
            item.key: item
            for item in VersionItem.objects.filter(version=latest).exclude(decision=VersionItem.Decision.PENDING)
            .select_related("decided_by")
        }
    page = paginate(request, samples, per_page=SAMPLES_PER_PAGE)
    for sample in page.object_list:
        sample.shown = [sample.row_data.get(c) for c in shown]
        sample.decision = decided_items.get(sample.key)
    rejected = natural_sorted((i for i in decided_items.values() if i.decision == VersionItem.Decision.REJECTED),
                              key=lambda i: i.key)

    can_edit = context["can_edit"]
    if can_edit:
        if plan_form is None:
            initial = SamplingPlanForm.initial_for(plan) if plan else _default_plan_initial()
            plan_form = SamplingPlanForm(initial=initial, columns=columns)
        manual_form = manual_form or ManualSampleForm()
    else:
        plan_form = manual_form = None
    frequency = cycle_report.report.frequency
    context.update(
        {
            "plan": plan,
            "population_file": population_file,
            "explanation": explanation,
            "frequency_row": frequency_table().get(frequency, {}),
            "frequency_label": cycle_report.report.get_frequency_display(),
            "samples": list(page.object_list),
            "sample_count": len(samples),
            "page_obj": page,
            "shown_columns": shown,
            "drawn_count": sum(1 for s in samples if s.method != SamplingPlan.Method.MANUAL),
            "manual_count": sum(1 for s in samples if s.method == SamplingPlan.Method.MANUAL),
            "decided_items": decided_items,
            "rejected_items": rejected,
            "plan_form": plan_form,
            "manual_form": manual_form,
            "can_draw": can_edit and population_file is not None
            and (plan is None or plan.method != SamplingPlan.Method.MANUAL),
            "audit_events": related_audit_entries(
                object_q(cycle_report)
                | (object_q(plan) if plan else Q(pk__in=[]))
                | Q(content_type=ContentType.objects.get_for_model(Sample), context__cycle_report=cycle_report.pk)
            ),
        }
    )
    return context


def _page(cycle_report: CycleReport, anchor: str = "") -> str:
    url = reverse("cycles:sample-selection", args=[cycle_report.pk])
    return f"{url}#{anchor}" if anchor else url


@login_required
@require_http_methods(["GET", "POST"])
def sample_selection(request, pk: int):
    """The plan and the samples; the tester saves the plan here (POST) while Sample Selection is editable."""
    cycle_report = _cycle_report_or_404(request.user, pk)
    if request.method == "GET":
        return render(request, TEMPLATE, _context(request, cycle_report))
    if not can_work_on(request.user, cycle_report):
        return refuse(request, "Only the report's assigned tester can change its sampling plan.")
    _, columns = _population_columns(cycle_report, _plan(cycle_report))
    form = SamplingPlanForm(request.POST, columns=columns)
    if not form.is_valid():
        return render(request, TEMPLATE, _context(request, cycle_report, plan_form=form))
    try:
        plan = sampling_plan_update(user=request.user, cycle_report=cycle_report, **form.plan_fields())
    except ApplicationError as err:
        return _refused_form(request, err, form, TEMPLATE, _context(request, cycle_report, plan_form=form))
    messages.success(request, f"Sampling plan saved: {plan.sample_size} samples.")
    return redirect(_page(cycle_report, "plan"))


@login_required
@require_POST
def samples_draw_view(request, pk: int):
    cycle_report = _cycle_report_or_404(request.user, pk)
    if not can_work_on(request.user, cycle_report):
        return refuse(request, "Only the report's assigned tester can draw its samples.")
    try:
        samples = samples_draw(user=request.user, cycle_report=cycle_report)
    except ApplicationError as err:
        messages.error(request, err.message)
    else:
        drawn = sum(1 for s in samples if s.method != SamplingPlan.Method.MANUAL)
        plan = SamplingPlan.objects.get(cycle_report=cycle_report)
        seed = f" with seed {plan.seed}" if plan.seed is not None and plan.method != SamplingPlan.Method.RISK_BASED else ""
        messages.success(request, f"Drew {drawn} samples{seed}; {len(samples)} in the set.")
    return redirect(_page(cycle_report, "samples"))


@login_required
@require_POST
def sample_add_view(request, pk: int):
    cycle_report = _cycle_report_or_404(request.user, pk)
    if not can_work_on(request.user, cycle_report):
        return refuse(request, "Only the report's assigned tester can pick its samples.")
    form = ManualSampleForm(request.POST)
    if not form.is_valid():
        return render(request, TEMPLATE, _context(request, cycle_report, manual_form=form))
    try:
        sample = sample_add_manual(user=request.user, cycle_report=cycle_report, **form.cleaned_data)
    except ApplicationError as err:
        return _refused_form(request, err, form, TEMPLATE, _context(request, cycle_report, manual_form=form),
                             field="key")
    messages.success(request, f"Sample {sample.key} added by hand.")
    return redirect(_page(cycle_report, "samples"))


@login_required
@require_POST
def sample_remove_view(request, pk: int, sample_id: int):
    cycle_report = _cycle_report_or_404(request.user, pk)
    sample = get_object_or_404(Sample, pk=sample_id, cycle_report=cycle_report)
    if not can_work_on(request.user, cycle_report):
        return refuse(request, "Only the report's assigned tester can remove its samples.")
    key = sample.key
    try:
        sample_remove(user=request.user, sample=sample)
    except ApplicationError as err:
        messages.error(request, err.message)
    else:
        messages.success(request, f"Sample {key} removed.")
    return redirect(_page(cycle_report, "samples"))
