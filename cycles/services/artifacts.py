"""A phase's working data frozen as version items, and when that data may change."""
from __future__ import annotations

from cycles.exceptions import ApplicationError, PhaseLockedError
from cycles.models import Attribute, CycleReport, Phase


def phase_is_editable(cycle_report: CycleReport, phase: str) -> bool:
    """Working data can change while the report is in the phase and no version of it awaits or has approval."""
    from versioning.models import VersionStatus
    from versioning.selectors import version_latest

    if cycle_report.phase != phase:
        return False
    latest = version_latest(cycle_report=cycle_report, phase=phase)
    return latest is None or latest.status not in (VersionStatus.SUBMITTED, VersionStatus.APPROVED)


def phase_require_editable(cycle_report: CycleReport, phase: str) -> None:
    if cycle_report.phase != phase:
        raise PhaseLockedError(
            f"{cycle_report.report} is in {cycle_report.get_phase_display() or 'no phase yet'}, "
            f"not {Phase(phase).label}."
        )
    if not phase_is_editable(cycle_report, phase):
        raise PhaseLockedError(f"{Phase(phase).label} is submitted or approved; it can't change now.")


def _planning_items(cycle_report: CycleReport) -> list[tuple[str, dict]]:
    attributes = list(Attribute.objects.filter(cycle_report=cycle_report).order_by("name"))
    if not attributes:
        raise ApplicationError("Add at least one attribute before submitting Planning.")
    return [
        (
            a.name,
            {
                "description": a.description,
                "data_type": a.data_type,
                "mandatory": a.mandatory,
                "primary_key": a.primary_key,
                "cde": a.cde,
                "historical_issues": a.historical_issues,
                "risk_score": a.risk_score,
                "source": a.source,
            },
        )
        for a in attributes
    ]


def _scoping_items(cycle_report: CycleReport) -> list[tuple[str, dict]]:
    attributes = list(
        Attribute.objects.filter(cycle_report=cycle_report).select_related("scoping").order_by("name")
    )
    undecided = [a.name for a in attributes if not hasattr(a, "scoping")]
    if undecided:
        raise ApplicationError(f"Decide the scope of every attribute first: {', '.join(undecided)}.")
    if not any(a.scoping.in_scope for a in attributes):
        raise ApplicationError("At least one attribute must be in scope.")
    return [
        (
            a.name,
            {
                "in_scope": a.scoping.in_scope,
                "rationale": a.scoping.rationale,
                "risk_score": a.risk_score,
                "cde": a.cde,
                "primary_key": a.primary_key,
            },
        )
        for a in attributes
    ]


ARTIFACT_BUILDERS = {
    Phase.PLANNING: _planning_items,
    Phase.SCOPING: _scoping_items,
}


def phase_artifact_items(*, cycle_report: CycleReport, phase: str) -> list[tuple[str, dict]]:
    """The items a new version of the phase's artifact freezes (raises if the data isn't ready)."""
    try:
        builder = ARTIFACT_BUILDERS[phase]
    except KeyError:
        raise ApplicationError(f"{Phase(phase).label} has no versioned artifact.") from None
    return builder(cycle_report)
