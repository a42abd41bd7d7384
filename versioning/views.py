"""Pages of versions: the approval screen (items, diff to the previous version, decision) and history."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.text import Truncator
from django.views.decorators.http import require_GET, require_POST

from cycles.exceptions import NotFoundError
from cycles.forms.cycles import VersionDecisionForm
from cycles.forms.sampling import SampleDecisionForm
from cycles.models import Phase
from cycles.permissions import can_approve
from cycles.sampling.keys import natural_sorted
from cycles.selectors import cycle_report_get
from cycles.views.pages import audit_entries, phase_url, refuse
from synapse.exceptions import ApplicationError
from synapse.pagination import page_of, paginate
from versioning.models import Version, VersionItem, VersionStatus
from versioning.selectors import (
    version_diff,
    version_previous,
    version_with_items,
    versions_for,
)
from versioning.services import ITEM_DECISION_PHASES, version_item_decide
from workflows.services import workflow_decide_version

# Phases whose items the approver decides one by one before deciding the version.
ROW_PAIRS_SHOWN = 6
ITEMS_PER_PAGE = 50

def _visible_version_or_404(user, pk: int) -> Version:
    """The version if the user may see its report; 404 otherwise, so no existence leaks."""
    try:
        version = version_with_items(pk=pk)
        # Re-read the cycle report through the user's scope: it checks visibility and loads what the page shows.
        version.cycle_report = cycle_report_get(user=user, pk=version.cycle_report_id)
    except (Version.DoesNotExist, NotFoundError):
        raise Http404("No such version.") from None
    return version


def _may_decide(user, version: Version) -> bool:
    return (
        version.status == VersionStatus.SUBMITTED
        and version.author_id != user.pk
        and can_approve(user, version.cycle_report, version.phase)
    )


# Known item fields in reading order (stored JSON does not keep key order); others follow alphabetically.
COLUMN_ORDER = [
    "in_scope", "rationale", "description", "data_type", "mandatory", "primary_key", "cde", "historical_issues",
    "risk_score", "source", "row_index", "stratum", "method", "seed", "reason", "row_data",
]
COLUMN_LABELS = {"cde": "CDE", "primary_key": "PK", "historical_issues": "Hist. issues", "in_scope": "In scope",
                 "row_index": "Row", "row_data": "Population row"}


def _columns(items) -> list[tuple[str, str]]:
    names = {name for item in items for name in item.data}
    ordered = [n for n in COLUMN_ORDER if n in names] + sorted(names - set(COLUMN_ORDER))
    return [(n, COLUMN_LABELS.get(n, n.replace("_", " ").capitalize())) for n in ordered]


def _short(value, length: int = 30) -> str:
    """A population value as a cell shows it (the template's default_if_none:"∅"|truncatechars:30, done once here)."""
    text = "∅" if value is None else str(value)
    return text if len(text) <= length else Truncator(text).chars(length)


def _item_rows(items: list[VersionItem], diff) -> tuple[list[tuple[str, str]], list[dict]]:
    """Items of the version as table rows, each cell marked when it changed since the previous version."""
    columns = _columns(items)
    # In a first version everything is new; marking every row would say nothing.
    added = {item.key for item in diff.added} if diff.old is not None else set()
    changed = {change.key: change.fields for change in diff.changed}
    rows = []
    for item in items:
        fields = changed.get(item.key, {})
        rows.append(
            {
                "item": item,
                "state": "added" if item.key in added else "changed" if fields else "",
                "cells": [
                    {"value": item.data.get(name), "changed": name in fields,
                     "old": fields[name][0] if name in fields else None,
                     # A nested record (a sample's population row) reads as field: value pairs.
                     "pairs": [(k, _short(v)) for k, v in list(item.data[name].items())[:ROW_PAIRS_SHOWN]]
                     if isinstance(item.data.get(name), dict) else None}
                    for name, _ in columns
                ],
            }
        )
    return columns, rows


def _approval_context(request, version: Version, form: VersionDecisionForm | None = None,
                      item_form: SampleDecisionForm | None = None) -> dict:
    previous = version_previous(version=version)
    diff = version_diff(old=previous, new=version)
    # Sample keys read as people count: 186 before 1145.
    items = natural_sorted(version.items.all(), key=lambda item: item.key)
    # The diff needs every item; the table shows a page of them.
    page = paginate(request, items, per_page=ITEMS_PER_PAGE, param="items")
    columns, rows = _item_rows(list(page.object_list), diff)
    may_decide = _may_decide(request.user, version)
    item_decisions = version.phase in ITEM_DECISION_PHASES
    if item_decisions:
        bound_id = str(item_form.data.get("item")) if item_form is not None else None
        for row in rows:
            row["form"] = None
            if may_decide:
                row["form"] = item_form if str(row["item"].pk) == bound_id else SampleDecisionForm(
                    initial={"item": row["item"].pk, "note": row["item"].decision_note},
                    auto_id=f"id_%s_{row['item'].pk}",
                )
    approval = getattr(version, "approval", None) if version.status in (
        VersionStatus.APPROVED, VersionStatus.CHANGES_REQUESTED
    ) else None
    return {
        "version": version,
        "cycle_report": version.cycle_report,
        "cycle": version.cycle_report.cycle,
        "previous": previous,
        "diff": diff,
        "columns": columns,
        "rows": rows,
        "approval": approval,
        "may_decide": may_decide,
        "item_decisions": item_decisions,
        "decision_counts": {
            d: sum(1 for item in items if item.decision == d) for d in VersionItem.Decision.values
        },
        "page_obj": page,
        "form": (form or VersionDecisionForm()) if may_decide else None,
        "phase_url": phase_url(version.cycle_report, version.phase),
        "audit_events": audit_entries(version),
    }


@login_required
@require_GET
def version_detail(request, pk: int):
    """The approval screen: everyone who can see the report sees it; approvers also decide here."""
    version = _visible_version_or_404(request.user, pk)
    return render(request, "versioning/version_detail.html", _approval_context(request, version))


@login_required
@require_POST
def version_decide(request, pk: int):
    version = _visible_version_or_404(request.user, pk)
    if not can_approve(request.user, version.cycle_report, version.phase):
        return refuse(request, "Only the report's owner (or a configured approver) decides on its versions.")
    if "item" in request.POST:
        return _decide_item(request, version)
    if "remaining" in request.POST:
        return _decide_remaining(request, version)
    form = VersionDecisionForm(request.POST)
    if not form.is_valid():
        return render(request, "versioning/version_detail.html", _approval_context(request, version, form))
    try:
        outcome = workflow_decide_version(
            user=request.user, version=version, approve=form.approve, notes=form.cleaned_data["notes"]
        )
    except ApplicationError as err:
        messages.error(request, err.message)
    else:
        if outcome.delivered:
            messages.success(request, outcome.message)
        else:
            messages.warning(request, outcome.message)
    return redirect("versioning:version-detail", pk=version.pk)


def _decide_item(request, version: Version):
    """Approve or reject one sample; the version's own decision still goes through the workflow."""
    if version.phase not in ITEM_DECISION_PHASES:
        raise Http404("This version's items are not decided one by one.")
    form = SampleDecisionForm(request.POST, auto_id=f"id_%s_{request.POST.get('item', '')}")
    if not form.is_valid():
        return render(request, "versioning/version_detail.html", _approval_context(request, version, item_form=form))
    item = get_object_or_404(VersionItem, pk=form.cleaned_data["item"], version=version)
    if version.author_id == request.user.pk:
        return refuse(request, "Nobody approves their own version.")
    try:
        item = version_item_decide(item=item, user=request.user, approve=form.approve, note=form.cleaned_data["note"])
    except ApplicationError as err:
        messages.error(request, err.message)
    else:
        messages.success(request, f"Sample {item.key}: {item.get_decision_display().lower()}.")
    # Back to the page of the table that shows the item.
    keys = natural_sorted(VersionItem.objects.filter(version=version).values_list("key", flat=True), key=str)
    position = keys.index(item.key)
    page = page_of(position, per_page=ITEMS_PER_PAGE)
    return redirect(f"{reverse('versioning:version-detail', args=[version.pk])}?items={page}#item-{item.pk}")


def _decide_remaining(request, version: Version):
    """Approve or reject every sample not decided yet, with one note."""
    from cycles.services.sampling import samples_decide_remaining

    if version.phase not in ITEM_DECISION_PHASES:
        raise Http404("This version's items are not decided one by one.")
    choice = request.POST.get("remaining")
    if choice not in ("approve", "reject"):
        messages.error(request, "Choose whether to approve or reject the remaining samples.")
        return redirect("versioning:version-detail", pk=version.pk)
    try:
        count = samples_decide_remaining(user=request.user, version=version, approve=choice == "approve",
                                         note=request.POST.get("note", "")[:4000])
    except ApplicationError as err:
        messages.error(request, err.message)
    else:
        verb = "approved" if choice == "approve" else "rejected"
        messages.success(request, f"{count} remaining sample{'s' if count != 1 else ''} {verb}.")
    return redirect("versioning:version-detail", pk=version.pk)


@login_required
@require_GET
def version_history(request, pk: int, phase: str):
    try:
        cycle_report = cycle_report_get(user=request.user, pk=pk)
    except NotFoundError:
        raise Http404("No such report in a cycle you can see.") from None
    if phase not in Phase.values:
        raise Http404("No such phase.")
    versions = list(versions_for(cycle_report=cycle_report, phase=phase).annotate(item_count=Count("items")))
    return render(
        request,
        "versioning/version_history.html",
        {
            "cycle_report": cycle_report,
            "cycle": cycle_report.cycle,
            "phase": phase,
            "phase_label": Phase(phase).label,
            "versions": versions,
            "phase_url": phase_url(cycle_report, phase),
        },
    )
