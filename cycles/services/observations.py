"""Observation Management: draft observations from failed cells, shape them, and their remediation."""
from __future__ import annotations

import datetime

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F, Prefetch, QuerySet
from django.utils import timezone

from cycles.exceptions import ApplicationError, ConflictError, PermissionDeniedError
from cycles.models import (
    CycleReport,
    FailureKind,
    Observation,
    ObservationType,
    Phase,
    RemediationEvent,
    Severity,
    TestResult,
    TestResultValue,
)
from cycles.models.observations import TYPE_FOR_KIND
from cycles.permissions import can_manage_cycle, can_view_cycle_report, can_work_on, is_admin
from cycles.services.artifacts import phase_require_editable
from cycles.services.final_report import cycle_report_require_unsealed
from synapse.audit import audit_record, snapshot

EDITABLE_FIELDS = (
    "title", "severity", "type", "description", "impact", "root_cause", "remediation_owner",
    "remediation_target_date",
)
# The remediation lifecycle after approval; observation_remediation_move owns it.
REMEDIATION_TRANSITIONS: dict[str, set[str]] = {
    Observation.Status.OPEN: {Observation.Status.IN_PROGRESS},
    Observation.Status.IN_PROGRESS: {Observation.Status.CLOSED, Observation.Status.OPEN},
    Observation.Status.CLOSED: set(),
}


def _failed_cells(cycle_report: CycleReport) -> QuerySet[TestResult]:
    return TestResult.objects.filter(cycle_report=cycle_report, result=TestResultValue.FAIL)


def _next_number(cycle_report: CycleReport) -> int:
    """The report's next observation number; never one an observation had before (merged away or reset)."""
    rows = CycleReport.objects.filter(pk=cycle_report.pk)
    rows.update(last_observation_number=F("last_observation_number") + 1)
    return rows.values_list("last_observation_number", flat=True).get()


def _require_tester(user, cycle_report: CycleReport) -> None:
    if not can_work_on(user, cycle_report):
        raise PermissionDeniedError("Only the report's assigned tester shapes its observations.")
    cycle_report_require_unsealed(cycle_report)
    phase_require_editable(cycle_report, Phase.OBSERVATIONS)


def observations_draft(*, cycle_report_id: int) -> tuple[int, int]:
    """Group failed cells not yet in an observation by attribute and kind of failure (idempotent).

    A group joins the observation already drafted for the same attribute and kind,
    otherwise it becomes a new draft. Returns (observations created, failed cells).
    """
    with transaction.atomic():
        cycle_report = CycleReport.objects.select_for_update(no_key=True).get(pk=cycle_report_id)
        failed = list(_failed_cells(cycle_report).select_related("attribute", "sample")
                      .order_by("attribute__name", "failure_kind", "sample__row_index"))
        covered = set(
            Observation.cells.through.objects.filter(observation__cycle_report=cycle_report)
            .values_list("testresult_id", flat=True)
        )
        groups: dict[tuple[int, str], list[TestResult]] = {}
        for cell in failed:
            if cell.pk not in covered:
                groups.setdefault((cell.attribute_id, cell.failure_kind or FailureKind.OTHER), []).append(cell)
        created = 0
        for (attribute_id, kind), cells in groups.items():
            observation = Observation.objects.filter(
                cycle_report=cycle_report, attribute_id=attribute_id, failure_kind=kind, drafted=True
            ).first()
            attribute = cells[0].attribute
            if observation is None:
                label = FailureKind(kind).label
                observation = Observation.objects.create(
                    cycle_report=cycle_report,
                    number=_next_number(cycle_report),
                    title=f"{attribute.name}: {label.lower()}",
                    attribute=attribute,
                    failure_kind=kind,
                    severity=Severity.HIGH if attribute.cde or attribute.primary_key else Severity.MEDIUM,
                    type=TYPE_FOR_KIND.get(kind, ObservationType.OTHER),
                    description=(
                        f"{len(cells)} of the tested samples failed {attribute.name} ({label.lower()}): "
                        + ", ".join(c.sample.key for c in cells[:20]) + ("…" if len(cells) > 20 else "") + "."
                    ),
                    drafted=True,
                )
                created += 1
                audit_record(actor=None, action="observation.draft", obj=observation,
                             after={"cells": [c.pk for c in cells], "kind": kind})
            else:
                audit_record(actor=None, action="observation.add_cells", obj=observation,
                             after={"cells": [c.pk for c in cells]})
            observation.cells.add(*cells)
    return created, len(failed)


def _clean(fields: dict, cycle_report: CycleReport) -> dict:
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise ApplicationError(f"Unknown observation fields: {', '.join(sorted(unknown))}.")
    if "title" in fields:
        fields["title"] = (fields["title"] or "").strip()
        if not fields["title"]:
            raise ApplicationError("An observation needs a title.")
    if "severity" in fields and fields["severity"] not in Severity.values:
        raise ApplicationError(f"Severity must be one of: {', '.join(Severity.values)}.")
    if "type" in fields and fields["type"] not in ObservationType.values:
        raise ApplicationError(f"Type must be one of: {', '.join(ObservationType.values)}.")
    owner = fields.get("remediation_owner")
    if owner is not None and not isinstance(owner, get_user_model()):
        try:
            fields["remediation_owner"] = get_user_model().objects.get(pk=owner)
        except (get_user_model().DoesNotExist, ValueError, TypeError):
            raise ApplicationError("The remediation owner is not a known user.") from None
    target = fields.get("remediation_target_date")
    if isinstance(target, str):
        try:
            fields["remediation_target_date"] = datetime.date.fromisoformat(target) if target else None
        except ValueError:
            raise ApplicationError("The remediation target date must be a date (YYYY-MM-DD).") from None
    return fields


def _cells_of(cycle_report: CycleReport, cell_ids) -> list[TestResult]:
    cell_ids = {int(i) for i in cell_ids}
    cells = list(_failed_cells(cycle_report).filter(pk__in=cell_ids))
    if len(cells) != len(cell_ids):
        raise ApplicationError("An observation rests only on failed cells of its own report.")
    return cells


def observation_create(*, user, cycle_report: CycleReport, cell_ids=(), **fields) -> Observation:
    """An observation the tester adds by hand (e.g. a finding beside the failed cells)."""
    _require_tester(user, cycle_report)
    fields = _clean(fields, cycle_report)
    if not fields.get("title"):
        raise ApplicationError("An observation needs a title.")
    with transaction.atomic():
        CycleReport.objects.select_for_update(no_key=True).get(pk=cycle_report.pk)
        observation = Observation.objects.create(cycle_report=cycle_report, number=_next_number(cycle_report),
                                                 **fields)
        cells = _cells_of(cycle_report, cell_ids)
        observation.cells.set(cells)
        audit_record(actor=user, action="observation.create", obj=observation,
                     after={**snapshot(observation, ["title", "severity", "type"]), "cells": [c.pk for c in cells]})
    return observation


def observation_update(*, user, observation: Observation, cell_ids=None, **fields) -> Observation:
    cycle_report = observation.cycle_report
    _require_tester(user, cycle_report)
    fields = _clean(fields, cycle_report)
    names = [f if f != "remediation_owner" else "remediation_owner_id" for f in fields]
    with transaction.atomic():
        before = snapshot(observation, names)
        for name, value in fields.items():
            setattr(observation, name, value)
        observation.save()
        after = snapshot(observation, names)
        if cell_ids is not None:
            cells = _cells_of(cycle_report, cell_ids)
            before["cells"] = sorted(observation.cells.values_list("pk", flat=True))
            observation.cells.set(cells)
            after["cells"] = sorted(c.pk for c in cells)
        audit_record(actor=user, action="observation.update", obj=observation, before=before, after=after)
    return observation


def observation_merge(*, user, observations: list[Observation]) -> Observation:
    """Merge observations into the first (lowest number): its fields stay, every cell joins it."""
    if len(observations) < 2:
        raise ApplicationError("Choose at least two observations to merge.")
    cycle_report = observations[0].cycle_report
    if any(o.cycle_report_id != cycle_report.pk for o in observations):
        raise ApplicationError("Only observations of the same report can be merged.")
    _require_tester(user, cycle_report)
    observations = sorted(observations, key=lambda o: o.number)
    keep, others = observations[0], observations[1:]
    with transaction.atomic():
        cells = [c for o in others for c in o.cells.all()]
        keep.cells.add(*cells)
        if any(o.attribute_id != keep.attribute_id for o in others):
            keep.attribute = None
        if any(o.failure_kind != keep.failure_kind for o in others):
            keep.failure_kind = ""
        keep.drafted = False
        extra = "\n".join(f"{o.code}: {o.description}" for o in others if o.description)
        if extra:
            keep.description = f"{keep.description}\n{extra}".strip()
        keep.save()
        for other in others:
            other.cells.clear()
            audit_record(actor=user, action="observation.merged_into", obj=other, after={"into": keep.pk})
            other.delete()
        audit_record(actor=user, action="observation.merge", obj=keep,
                     after={"merged": [o.code for o in others], "cells": sorted(keep.cells.values_list("pk", flat=True))})
    return keep


def observation_split(*, user, observation: Observation, cell_ids) -> Observation:
    """Move some cells of an observation to a new one with the same fields (the tester then edits it)."""
    cycle_report = observation.cycle_report
    _require_tester(user, cycle_report)
    ids = {int(i) for i in cell_ids}
    current = set(observation.cells.values_list("pk", flat=True))
    if not ids or not ids <= current:
        raise ApplicationError("Choose some of the observation's own cells to split off.")
    if ids == current:
        raise ApplicationError("Leave at least one cell in the observation: choose fewer to split off.")
    with transaction.atomic():
        CycleReport.objects.select_for_update(no_key=True).get(pk=cycle_report.pk)
        fields = {f: getattr(observation, f) for f in EDITABLE_FIELDS}
        fields["title"] = f"{observation.title} (split)"[:200]
        new = Observation.objects.create(
            cycle_report=cycle_report, number=_next_number(cycle_report), attribute=observation.attribute,
            failure_kind=observation.failure_kind, **fields,
        )
        moving = list(observation.cells.filter(pk__in=ids))
        observation.cells.remove(*moving)
        new.cells.add(*moving)
        if observation.drafted:
            observation.drafted = False
            observation.save(update_fields=["drafted", "updated_at"])
        audit_record(actor=user, action="observation.split", obj=observation,
                     after={"into": new.code, "cells": sorted(ids)})
    return new


def observations_require_complete(*, cycle_report: CycleReport) -> list[Observation]:
    """What Observations' version freezes, checked: every failed cell is in an observation, each is filled in."""
    observations = list(
        Observation.objects.filter(cycle_report=cycle_report)
        .select_related("remediation_owner", "attribute")
        .prefetch_related(Prefetch("cells", queryset=TestResult.objects.select_related("sample", "attribute")))
    )
    covered = {c.pk for o in observations for c in o.cells.all()}
    loose = [c for c in _failed_cells(cycle_report).select_related("sample", "attribute") if c.pk not in covered]
    if loose:
        names = ", ".join(f"{c.sample.key} × {c.attribute.name}" for c in loose[:5])
        raise ApplicationError(f"{len(loose)} failed cell(s) are in no observation: {names}.")
    problems = []
    for o in observations:
        missing = [label for label, value in (("description", o.description), ("impact", o.impact),
                                              ("root cause", o.root_cause)) if not value.strip()]
        if o.severity != Severity.INFORMATIONAL:
            if o.remediation_owner_id is None:
                missing.append("remediation owner")
            if o.remediation_target_date is None:
                missing.append("target date")
        if missing:
            problems.append(f"{o.code} needs {', '.join(missing)}")
    if problems:
        raise ApplicationError("Fill in every observation first: " + "; ".join(problems) + ".")
    return observations


def observation_items(*, cycle_report: CycleReport) -> list[tuple[str, dict]]:
    """The items of an Observations version (see cycles.services.artifacts)."""
    return [
        (
            o.code,
            {
                "title": o.title,
                "severity": o.severity,
                "type": o.type,
                "description": o.description,
                "impact": o.impact,
                "root_cause": o.root_cause,
                "remediation_owner": o.remediation_owner.username if o.remediation_owner else "",
                "remediation_target_date": o.remediation_target_date.isoformat() if o.remediation_target_date else "",
                "attribute": o.attribute.name if o.attribute else "",
                "failure_kind": o.failure_kind,
                "cells": sorted(f"{c.sample.key} × {c.attribute.name}" for c in o.cells.all()),
            },
        )
        for o in observations_require_complete(cycle_report=cycle_report)
    ]


def observations_open(*, cycle_report_id: int) -> int:
    """After approval every draft observation becomes open: its remediation starts (idempotent)."""
    with transaction.atomic():
        drafts = list(Observation.objects.select_for_update().filter(cycle_report_id=cycle_report_id,
                                                                     status=Observation.Status.DRAFT))
        for observation in drafts:
            observation.status = Observation.Status.OPEN
            observation.save(update_fields=["status", "updated_at"])
            RemediationEvent.objects.create(observation=observation, from_status=Observation.Status.DRAFT,
                                            to_status=Observation.Status.OPEN, note="Observations approved.")
            audit_record(actor=None, action="observation.open", obj=observation,
                         before={"status": Observation.Status.DRAFT}, after={"status": Observation.Status.OPEN})
    return len(drafts)


def can_move_remediation(user, observation: Observation) -> bool:
    cycle_report = observation.cycle_report
    return (
        observation.remediation_owner_id == user.pk
        or can_work_on(user, cycle_report)
        or can_manage_cycle(user, cycle_report.cycle)
        or cycle_report.report.owner_id == user.pk
        or is_admin(user)
    )


def observation_remediation_move(*, user, observation: Observation, to_status: str, note: str = "") -> Observation:
    """Move an approved observation along open → remediation in progress → closed, recording who and when."""
    if not can_move_remediation(user, observation):
        raise PermissionDeniedError("Only the remediation owner, the tester, the test manager or the report owner "
                                    "moves an observation's remediation.")
    with transaction.atomic():
        observation = Observation.objects.select_for_update().get(pk=observation.pk)
        if observation.status == Observation.Status.DRAFT:
            raise ConflictError(f"{observation.code} is not approved yet; remediation starts after approval.")
        if to_status not in REMEDIATION_TRANSITIONS.get(observation.status, set()):
            raise ConflictError(
                f"{observation.code} can't go from {observation.get_status_display().lower()} to "
                f"{Observation.Status(to_status).label.lower() if to_status in Observation.Status.values else to_status}."
            )
        if to_status == Observation.Status.CLOSED and not note.strip():
            raise ApplicationError("Say how the remediation was done: a note is required to close an observation.")
        before = observation.status
        observation.status = to_status
        observation.save(update_fields=["status", "updated_at"])
        RemediationEvent.objects.create(observation=observation, from_status=before, to_status=to_status,
                                        actor=user, note=note.strip())
        audit_record(actor=user, action="observation.remediation", obj=observation, before={"status": before},
                     after={"status": to_status, "note": note.strip(), "at": timezone.now()})
    return observation


def observations_visible(*, user, cycle_report: CycleReport) -> QuerySet[Observation]:
    """A report's observations with what their page shows, if the user may see the report."""
    if not can_view_cycle_report(user, cycle_report) and not Observation.objects.filter(
        cycle_report=cycle_report, remediation_owner=user
    ).exists():
        raise PermissionDeniedError("You can't see this report's observations.")
    # Through the report's manager, so each observation's cycle_report is this one (with its cycle and report
    # loaded): the remediation check per row reads them.
    return (
        cycle_report.observations.all()
        .select_related("attribute", "remediation_owner")
        .prefetch_related(
            # A cell is shown as "sample × attribute": hundreds of them, so only those columns are read.
            Prefetch("cells", queryset=TestResult.objects.select_related("sample", "attribute")
                     .only("pk", "sample__key", "attribute__name")),
            Prefetch("remediation_events", queryset=RemediationEvent.objects.select_related("actor")),
        )
    )
