"""The Observations page: drafted observations, shaped by the tester (edit, merge, split, add), then remediation.

Same shape as cycles.views.pages: the user must see the report (404) and be
allowed to act (403), one service call, a redirect with a message; a refused
action is a message, never a 500.
"""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from cycles.forms.observations import (
    MergeForm,
    ObservationForm,
    RemediationForm,
    SplitForm,
    cell_choices,
    owner_choices,
    remediation_owner_choices,
)
from cycles.models import Observation, Phase, TestResult, TestResultValue
from cycles.services.observations import (
    can_move_remediation,
    observation_create,
    observation_merge,
    observation_remediation_move,
    observation_split,
    observation_update,
    observations_visible,
)
from cycles.views.pages import _cycle_report_or_404, _phase_context, phase_url, refuse
from synapse.exceptions import ApplicationError
from synapse.pagination import page_of, paginate

TEMPLATE = "cycles/observations.html"


# Each observation carries its edit form (listing every failed cell of the report): a page of them.
OBSERVATIONS_PER_PAGE = 10


def _back(cycle_report, anchor: str = ""):
    """Back to the page, on the page of the list that holds the observation the anchor names."""
    query = ""
    if anchor.startswith("#observation-"):
        number = Observation.objects.filter(cycle_report=cycle_report, pk=anchor.removeprefix("#observation-")) \
            .values_list("number", flat=True).first()
        if number is not None:
            page = page_of(Observation.objects.filter(cycle_report=cycle_report, number__lt=number).count(),
                           per_page=OBSERVATIONS_PER_PAGE)
            query = f"?page={page}" if page > 1 else ""
    return redirect(phase_url(cycle_report, Phase.OBSERVATIONS) + query + anchor)


def _errors(form) -> str:
    """A form's errors in one line, each after its field's label."""
    return "; ".join(
        f"{form.fields[name].label or name.replace('_', ' ').capitalize()}: {' '.join(errors)}" if name in form.fields
        else " ".join(errors)
        for name, errors in form.errors.items()
    )


def _fields(form: ObservationForm) -> dict:
    data = dict(form.cleaned_data)
    data.pop("cells", None)
    return data


@login_required
@require_GET
def observations_page(request, pk: int):
    cycle_report = _cycle_report_or_404(request.user, pk)
    context = _phase_context(request, cycle_report, Phase.OBSERVATIONS)
    # Every observation's number and title (the count, the pages, the merge form), then a page of them with
    # their cells and history; failed cells are read as ids and labels, not model instances (hundreds of them
    # at 300 attributes).
    visible = observations_visible(user=request.user, cycle_report=cycle_report)
    every = list(visible.prefetch_related(None).select_related(None).only("pk", "number", "title", "cycle_report"))
    page = paginate(request, every, per_page=OBSERVATIONS_PER_PAGE)
    failed = list(TestResult.objects.filter(cycle_report=cycle_report, result=TestResultValue.FAIL)
                  .order_by("attribute__name", "sample__row_index").values_list("pk", "sample__key", "attribute__name"))
    covered = set(Observation.cells.through.objects.filter(observation__cycle_report=cycle_report)
                  .values_list("testresult_id", flat=True))
    owners = owner_choices(remediation_owner_choices()) if context["can_edit"] else []
    # Built once for every observation's form (each lists every failed cell).
    choices = cell_choices(failed) if context["can_edit"] else []
    rows = []
    for observation in visible.filter(pk__in=[o.pk for o in page.object_list]):
        rows.append({
            "observation": observation,
            "form": ObservationForm.for_observation(observation, cells=choices, owners=owners)
            if context["can_edit"] else None,
            "split_form": SplitForm(observation=observation) if context["can_edit"] and
            len(observation.cells.all()) > 1 else None,
            "remediation_form": RemediationForm() if observation.status in ("open", "in_progress")
            and can_move_remediation(request.user, observation) else None,
        })
    count = len(every)
    context.update({
        "rows": rows,
        "page_obj": page,
        "observation_count": count,
        "loose_cells": [f"{key} × {name}" for pk, key, name in failed if pk not in covered],
        "failed_count": len(failed),
        "merge_form": MergeForm(observations=every) if context["can_edit"] and count > 1 else None,
        "new_form": ObservationForm(prefix="new", cells=choices, owners=owners) if context["can_edit"] else None,
    })
    return render(request, TEMPLATE, context)


def _observation(cycle_report, observation_id: int) -> Observation | None:
    return Observation.objects.filter(cycle_report=cycle_report, pk=observation_id).first()


def _failed(cycle_report):
    return TestResult.objects.filter(cycle_report=cycle_report, result=TestResultValue.FAIL).select_related(
        "sample", "attribute")


@login_required
@require_POST
def observation_edit_view(request, pk: int, observation_id: int):
    cycle_report = _cycle_report_or_404(request.user, pk)
    observation = _observation(cycle_report, observation_id)
    if observation is None:
        return refuse(request, "No such observation in this report.", status=404)
    form = ObservationForm(request.POST, prefix=f"o{observation.pk}", cells=_failed(cycle_report))
    if not form.is_valid():
        messages.error(request, f"{observation.code}: {_errors(form)}")
        return _back(cycle_report, f"#observation-{observation.pk}")
    try:
        observation_update(user=request.user, observation=observation, cell_ids=form.cleaned_data["cells"],
                           **_fields(form))
    except ApplicationError as err:
        messages.error(request, err.message)
    else:
        messages.success(request, f"{observation.code} saved.")
    return _back(cycle_report, f"#observation-{observation.pk}")


@login_required
@require_POST
def observation_create_view(request, pk: int):
    cycle_report = _cycle_report_or_404(request.user, pk)
    form = ObservationForm(request.POST, prefix="new", cells=_failed(cycle_report))
    if not form.is_valid():
        messages.error(request, f"New observation: {_errors(form)}")
        return _back(cycle_report)
    try:
        observation = observation_create(user=request.user, cycle_report=cycle_report,
                                         cell_ids=form.cleaned_data["cells"], **_fields(form))
    except ApplicationError as err:
        messages.error(request, err.message)
        return _back(cycle_report)
    messages.success(request, f"{observation.code} added.")
    return _back(cycle_report, f"#observation-{observation.pk}")


@login_required
@require_POST
def observations_merge_view(request, pk: int):
    cycle_report = _cycle_report_or_404(request.user, pk)
    observations = list(Observation.objects.filter(cycle_report=cycle_report))
    form = MergeForm(request.POST, observations=observations)
    if not form.is_valid():
        messages.error(request, "Choose at least two observations to merge.")
        return _back(cycle_report)
    chosen = [o for o in observations if str(o.pk) in form.cleaned_data["observations"]]
    try:
        kept = observation_merge(user=request.user, observations=chosen)
    except ApplicationError as err:
        messages.error(request, err.message)
        return _back(cycle_report)
    messages.success(request, f"Merged into {kept.code}.")
    return _back(cycle_report, f"#observation-{kept.pk}")


@login_required
@require_POST
def observation_split_view(request, pk: int, observation_id: int):
    cycle_report = _cycle_report_or_404(request.user, pk)
    observation = _observation(cycle_report, observation_id)
    if observation is None:
        return refuse(request, "No such observation in this report.", status=404)
    form = SplitForm(request.POST, observation=observation)
    if not form.is_valid():
        messages.error(request, f"{observation.code}: choose the cells to move to a new observation.")
        return _back(cycle_report, f"#observation-{observation.pk}")
    try:
        new = observation_split(user=request.user, observation=observation, cell_ids=form.cleaned_data["cells"])
    except ApplicationError as err:
        messages.error(request, err.message)
        return _back(cycle_report, f"#observation-{observation.pk}")
    messages.success(request, f"{len(form.cleaned_data['cells'])} cell(s) moved from {observation.code} to {new.code}.")
    return _back(cycle_report, f"#observation-{new.pk}")


@login_required
@require_POST
def observation_remediation_view(request, pk: int, observation_id: int):
    cycle_report = _cycle_report_or_404(request.user, pk)
    observation = _observation(cycle_report, observation_id)
    if observation is None:
        return refuse(request, "No such observation in this report.", status=404)
    form = RemediationForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"{observation.code}: choose where the remediation moves.")
        return _back(cycle_report, f"#observation-{observation.pk}")
    try:
        observation_remediation_move(user=request.user, observation=observation,
                                     to_status=form.cleaned_data["to_status"], note=form.cleaned_data["note"])
    except ApplicationError as err:
        messages.error(request, err.message)
    else:
        observation.refresh_from_db()
        messages.success(request, f"{observation.code} is now {observation.get_status_display().lower()}.")
    return _back(cycle_report, f"#observation-{observation.pk}")
