"""Undoing what a phase wrote, for compensation (workflows.compensation chooses when and logs it).

Each function returns {what: how many} removed. Approved versions are never
touched: they are the record of what was approved, and an earlier phase
reopened gets a new version on top of them.
"""
from __future__ import annotations

from django.db import transaction

from cycles.models import Attribute, CycleReport, PhaseState, ProfileResult, Sample, SamplingPlan, ScopingDecision


def planning_rollback_draft(*, cycle_report: CycleReport) -> dict[str, int]:
    """Partial rollback of Planning: the LLM's draft goes, attributes the tester entered by hand stay.

    A drafted attribute that later phases already use (a scoping decision, a data owner) stays too.
    """
    drafted = Attribute.objects.filter(
        cycle_report=cycle_report, source=Attribute.Source.LLM, scoping__isnull=True,
        data_owner_assignment__isnull=True,
    )
    removed = drafted.count()
    drafted.delete()
    return {"drafted_attributes": removed}


def profiling_rollback(*, cycle_report: CycleReport) -> dict[str, int]:
    """Rollback of Data Profiling: the profiles go (the uploaded files stay, as evidence of what was given)."""
    results = ProfileResult.objects.filter(population_file__cycle_report=cycle_report)
    removed = results.count()
    results.delete()
    return {"profile_results": removed}


def scoping_rollback(*, cycle_report: CycleReport) -> dict[str, int]:
    """Rollback of Scoping: every recommendation and decision goes; the phase starts over."""
    decisions = ScopingDecision.objects.filter(attribute__cycle_report=cycle_report)
    removed = decisions.count()
    decisions.delete()
    return {"scoping_decisions": removed}


def sampling_rollback_drawn(*, cycle_report: CycleReport) -> dict[str, int]:
    """Partial rollback of Sample Selection: drawn samples go, hand-picked ones (with their reasons) stay."""
    drawn = Sample.objects.filter(cycle_report=cycle_report).exclude(method=SamplingPlan.Method.MANUAL)
    removed = drawn.count()
    drawn.delete()
    return {"drawn_samples": removed}


ROLLBACKS = {
    "planning": planning_rollback_draft,
    "data_profiling": profiling_rollback,
    "scoping": scoping_rollback,
    "sample_selection": sampling_rollback_drawn,
}


def phase_rollback(*, cycle_report: CycleReport, phase: str) -> dict[str, int]:
    """Remove what `phase` created by its rollback function (nothing for phases that only notify)."""
    rollback = ROLLBACKS.get(phase)
    with transaction.atomic():
        return rollback(cycle_report=cycle_report) if rollback else {}


def phase_states_reopen(*, cycle_report: CycleReport, phases: list[str]) -> int:
    """Forget where `phases` stood, so the workflow enters them afresh after a reset; returns rows removed."""
    removed, _ = PhaseState.objects.filter(cycle_report=cycle_report, phase__in=phases).delete()
    skipped = [p for p in cycle_report.skipped_phases if p not in phases]
    if skipped != cycle_report.skipped_phases:
        CycleReport.objects.filter(pk=cycle_report.pk).update(skipped_phases=skipped)
    return removed
