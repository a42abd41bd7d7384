"""A phase's working data frozen as version items, and when that data may change."""
from __future__ import annotations

from cycles.exceptions import ApplicationError, PhaseLockedError
from cycles.models import Attribute, CycleReport, Phase, Sample, SamplingPlan


def _phase_state(cycle_report: CycleReport, phase: str) -> str | None:
    from cycles.models import PhaseState

    return PhaseState.objects.filter(cycle_report=cycle_report, phase=phase).values_list("status", flat=True).first()


_UNREAD = object()


def phase_is_active(cycle_report: CycleReport, phase: str, *, state: str | None = _UNREAD) -> bool:
    """The phase is running now (two phases are, during the parallel step); ``state`` as read already
    (None: the phase has no state row)."""
    from cycles.models import PhaseState

    state = _phase_state(cycle_report, phase) if state is _UNREAD else state
    if state is None:
        # Reports moved by hand (fixtures, data from before phase states) have only their current phase.
        return cycle_report.phase == phase
    return state == PhaseState.Status.ACTIVE


def phase_lock_reason(cycle_report: CycleReport, phase: str, *, facts=None) -> str | None:
    """Why the phase's working data can't change now, or None when it can.

    ``facts`` (cycles.selectors.PhaseFacts) answers from the report's phases as a page has read them already.
    """
    from cycles.models import PhaseState
    from versioning.models import Version, VersionStatus

    label = Phase(phase).label
    state = facts.states.get(phase) if facts is not None else _phase_state(cycle_report, phase)
    if not phase_is_active(cycle_report, phase, state=state):
        if state == PhaseState.Status.COMPLETED:
            return f"{label} is complete; its data can't change any more."
        if state == PhaseState.Status.SKIPPED:
            return f"{label} was skipped in this cycle."
        where = cycle_report.get_phase_display() or "not started"
        return f"{label} data can change only while {label} is running; this report is in {where}."
    # The latest version's number and status only (every edit of the phase's data asks).
    number, status = (
        facts.versions.get(phase) if facts is not None
        else Version.objects.filter(cycle_report=cycle_report, phase=phase).order_by("-number")
        .values_list("number", "status").first()
    ) or (None, None)
    if status == VersionStatus.SUBMITTED:
        return (
            f"{label} version {number} is submitted for approval; it can't change until the "
            "report owner approves it or sends it back."
        )
    if status == VersionStatus.APPROVED:
        from cycles.services.final_report import phase_is_reopened

        if not phase_is_reopened(cycle_report, phase):
            return f"{label} version {number} is approved; it can't change."
    return None


def phase_is_editable(cycle_report: CycleReport, phase: str) -> bool:
    """Working data can change while the phase runs and no version of it awaits or has approval."""
    return phase_lock_reason(cycle_report, phase) is None


def phase_require_editable(cycle_report: CycleReport, phase: str) -> None:
    reason = phase_lock_reason(cycle_report, phase)
    if reason:
        raise PhaseLockedError(reason)


def _require_attributes(present: bool) -> None:
    if not present:
        raise ApplicationError("Add at least one attribute before submitting Planning.")


def _planning_check(cycle_report: CycleReport) -> None:
    _require_attributes(Attribute.objects.filter(cycle_report=cycle_report).exists())


def _planning_items(cycle_report: CycleReport) -> list[tuple[str, dict]]:
    attributes = list(Attribute.objects.filter(cycle_report=cycle_report).order_by("name"))
    _require_attributes(bool(attributes))
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


def _require_samples(cycle_report: CycleReport, drawn: int) -> None:
    """Samples are drawn, as many as the plan calls for."""
    if not drawn:
        raise ApplicationError("Draw or pick samples before submitting Sample Selection.")
    plan = SamplingPlan.objects.filter(cycle_report=cycle_report).select_related("population_file").first()
    required = plan.sample_size if plan else 0
    rows = plan.population_file.row_count if plan and plan.population_file else None
    if rows is not None and rows < required:
        # A population smaller than the size is tested in full.
        required = rows
    if drawn < required:
        raise ApplicationError(
            f"The plan calls for {required} samples but there are {drawn}: "
            f"add {required - drawn} more before submitting."
        )


def _sample_selection_check(cycle_report: CycleReport) -> None:
    _require_samples(cycle_report, Sample.objects.filter(cycle_report=cycle_report).count())


def _sample_selection_items(cycle_report: CycleReport) -> list[tuple[str, dict]]:
    samples = list(Sample.objects.filter(cycle_report=cycle_report).order_by("row_index"))
    _require_samples(cycle_report, len(samples))
    return [
        (
            s.key,
            {
                "row_index": s.row_index,
                "row_data": s.row_data,
                "stratum": s.stratum,
                "method": s.method,
                "seed": s.seed,
                "reason": s.reason,
            },
        )
        for s in samples
    ]


def _data_profiling_check(cycle_report: CycleReport) -> None:
    from cycles.services.profiling_checks import profiling_open_points

    points = profiling_open_points(cycle_report=cycle_report)
    if points:
        raise ApplicationError("Data Profiling isn't finished: " + " ".join(points))


def _data_profiling_items(cycle_report: CycleReport) -> list[tuple[str, dict]]:
    """The file profiled, each attribute's column and rules with their failures: what the owner approves."""
    from cycles.models import ColumnMapping, ProfileResult, ProfilingRule
    from cycles.services.profiling import population_file_current

    _data_profiling_check(cycle_report)
    current = population_file_current(cycle_report=cycle_report)
    mappings = {m.attribute_id: m for m in ColumnMapping.objects.filter(population_file=current)}
    results = {r.column_name: r for r in ProfileResult.objects.filter(population_file=current)}
    rules: dict[int, list] = {}
    for rule in ProfilingRule.objects.filter(attribute__cycle_report=cycle_report).order_by("id"):
        rules.setdefault(rule.attribute_id, []).append(rule)
    items = [(
        "population file",
        {
            "file": current.original_name, "sha256": current.sha256, "rows": current.row_count,
            "key_column": current.key_column, "key_resolution": current.key_resolution,
            "key_reason": current.key_reason, "population_file_id": current.pk,
        },
    )]
    for attribute in Attribute.objects.filter(cycle_report=cycle_report).order_by("name"):
        mapping = mappings[attribute.pk]
        result = results.get(mapping.column_name)
        failing = {r["rule"]: r["failing"] for r in (result.rule_results if result else [])}
        items.append((
            attribute.name,
            {
                "column": mapping.column_name,
                "mapping": mapping.status,
                "not_in_file_reason": mapping.reason,
                "rules": [
                    {"kind": r.kind, "params": r.params, "label": r.label, "source": r.source,
                     "failing": failing.get(r.pk)}
                    for r in rules.get(attribute.pk, [])
                ],
            },
        ))
    return items


def _test_execution_items(cycle_report: CycleReport) -> list[tuple[str, dict]]:
    # Imported here: the execution service imports this module's phase locks.
    from cycles.services.execution import test_execution_version_items

    return test_execution_version_items(cycle_report=cycle_report)


def _test_execution_check(cycle_report: CycleReport) -> None:
    from cycles.services.execution import test_execution_check

    test_execution_check(cycle_report=cycle_report)


def _observations_check(cycle_report: CycleReport) -> None:
    from cycles.services.observations import observations_require_complete

    observations_require_complete(cycle_report=cycle_report)


def _observation_items(cycle_report: CycleReport) -> list[tuple[str, dict]]:
    from cycles.services.observations import observation_items

    return observation_items(cycle_report=cycle_report)


ARTIFACT_BUILDERS = {
    Phase.PLANNING: _planning_items,
    Phase.DATA_PROFILING: _data_profiling_items,
    Phase.SCOPING: _scoping_items,
    Phase.SAMPLE_SELECTION: _sample_selection_items,
    Phase.TEST_EXECUTION: _test_execution_items,
    Phase.OBSERVATIONS: _observation_items,
}


# What each builder refuses, checked without building the items: the same messages, from the same helpers.
ARTIFACT_CHECKS = {
    Phase.PLANNING: _planning_check,
    Phase.DATA_PROFILING: _data_profiling_check,
    Phase.SCOPING: _scoping_items,  # a row per attribute, read either way
    Phase.SAMPLE_SELECTION: _sample_selection_check,
    Phase.TEST_EXECUTION: _test_execution_check,
    Phase.OBSERVATIONS: _observations_check,
}


def phase_artifact_check(*, cycle_report: CycleReport, phase: str) -> None:
    """Raise what phase_artifact_items would refuse (the data isn't ready), without building the items.

    A tester's submission is checked so before anything is sent to the workflow, whose worker then builds
    the items: building them in the request too made a submission of a 300 × 100 matrix read every cell
    and its evidence twice.
    """
    try:
        check = ARTIFACT_CHECKS[phase]
    except KeyError:
        raise ApplicationError(f"{Phase(phase).label} has no versioned artifact.") from None
    check(cycle_report)


def phase_artifact_items(*, cycle_report: CycleReport, phase: str) -> list[tuple[str, dict]]:
    """The items a new version of the phase's artifact freezes (raises if the data isn't ready)."""
    try:
        builder = ARTIFACT_BUILDERS[phase]
    except KeyError:
        raise ApplicationError(f"{Phase(phase).label} has no versioned artifact.") from None
    return builder(cycle_report)
