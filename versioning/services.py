"""Creating versions, moving them through their statuses, recording decisions.

Versioning does not know which phase comes next: callers (the workflow's
activities) pass the phase and the items; this module keeps numbering, status
rules, immutability and the audit trail.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from cycles.models import CycleReport
from synapse.audit import audit_record
from synapse.exceptions import ApplicationError, ConflictError, PermissionDeniedError
from versioning.models import ALLOWED_TRANSITIONS, Approval, Version, VersionItem, VersionStatus


@dataclass(frozen=True)
class WorkflowContext:
    """Where a version or decision came from in Temporal."""

    workflow_id: str = ""
    run_id: str = ""
    step: str = ""
    activity: str = ""

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v}


def version_set_status(*, version: Version, status: str, actor=None, context: dict | None = None) -> Version:
    """The one place a version's status changes; refuses moves ALLOWED_TRANSITIONS lacks."""
    if status == version.status:
        return version
    if status not in ALLOWED_TRANSITIONS.get(version.status, set()):
        raise ConflictError(
            f"{version} can't become {VersionStatus(status).label.lower()}: it is {version.get_status_display().lower()}."
        )
    before = version.status
    changes = {"status": status, **_status_times(status)}
    # Conditional on the status the caller read, instead of save()'s read first: a version that moved meanwhile
    # is not overwritten (and the database refuses any change to an approved one).
    if not Version.objects.filter(pk=version.pk, status=before).update(**changes):
        raise ConflictError(f"{version} changed meanwhile; load it again.")
    for name, value in changes.items():
        setattr(version, name, value)
    _audit_status(version, before=before, actor=actor, context=context)
    return version


def _status_times(status: str) -> dict:
    """The time a status stamps on its version (submitted, decided), as fields to write."""
    if status == VersionStatus.SUBMITTED:
        return {"submitted_at": timezone.now()}
    if status in (VersionStatus.APPROVED, VersionStatus.CHANGES_REQUESTED):
        return {"decided_at": timezone.now()}
    return {}


def _audit_status(version: Version, *, before: str, actor, context: dict | None) -> None:
    audit_record(actor=actor, action=f"version.{version.status}", obj=version, before={"status": before},
                 after={"status": version.status}, context=context)


def version_create(
    *,
    cycle_report: CycleReport,
    phase: str,
    author,
    items: list[tuple[str, dict]],
    notes: str = "",
    request_id: uuid.UUID | str | None = None,
    submit: bool = True,
    workflow: WorkflowContext | None = None,
    after_approved: bool = False,
) -> Version:
    """Freeze `items` as the next version of the phase's artifact.

    Numbers are unique per (cycle report, phase) even under concurrent calls:
    the cycle report row is locked while the next number is taken, and the
    unique constraint backs it. With a `request_id` the call is idempotent:
    a retry returns the version the first call made. `after_approved` lets a
    version follow an approved one (the caller reopened the phase); the approved
    version stays as it is.
    """
    if request_id is not None:
        existing = Version.objects.filter(request_id=request_id).first()
        if existing:
            return existing
    keys = [key for key, _ in items]
    if len(set(keys)) != len(keys):
        raise ApplicationError("Two items of the version have the same key.")
    workflow = workflow or WorkflowContext()
    try:
        with transaction.atomic():
            # Lock the parent row so two writers can't take the same number.
            CycleReport.objects.select_for_update(no_key=True).get(pk=cycle_report.pk)
            previous = (
                Version.objects.filter(cycle_report=cycle_report, phase=phase).order_by("-number").first()
            )
            if previous and previous.status == VersionStatus.APPROVED and not after_approved:
                raise ConflictError(f"{previous} is already approved; the phase is closed.")
            if previous and previous.status in (VersionStatus.DRAFT, VersionStatus.SUBMITTED):
                version_set_status(version=previous, status=VersionStatus.SUPERSEDED, actor=author,
                                   context=workflow.as_dict())
            # Submitted at once it is written so (one INSERT), its creation and its submission audited as ever.
            status = VersionStatus.SUBMITTED if submit else VersionStatus.DRAFT
            version = Version.objects.create(
                cycle_report=cycle_report,
                phase=phase,
                number=(previous.number + 1) if previous else 1,
                parent=previous,
                author=author,
                notes=notes,
                request_id=request_id,
                workflow_id=workflow.workflow_id,
                workflow_run_id=workflow.run_id,
                workflow_step=workflow.step or phase,
                activity_name=workflow.activity,
                status=status,
                **_status_times(status),
            )
            VersionItem.objects.bulk_create(
                VersionItem(version=version, key=key, data=data) for key, data in items
            )
            if previous and previous.status == VersionStatus.CHANGES_REQUESTED:
                _carry_item_decisions(previous=previous, version=version, actor=author)
            # Audited as ever: created (a draft, as its entry names it), then submitted.
            version.status = VersionStatus.DRAFT
            audit_record(actor=author, action="version.create", obj=version,
                         after={"number": version.number, "items": len(items)}, context=workflow.as_dict())
            version.status = status
            if submit:
                _audit_status(version, before=VersionStatus.DRAFT, actor=author, context=workflow.as_dict())
    except IntegrityError:
        # A concurrent call with the same request id won the race: return its version.
        if request_id is not None:
            existing = Version.objects.filter(request_id=request_id).first()
            if existing:
                return existing
        raise
    return version


def _carry_item_decisions(*, previous: Version, version: Version, actor) -> int:
    """Items that did not change since the sent-back version keep the approver's decision on them."""
    decided = {
        item.key: item for item in previous.items.exclude(decision=VersionItem.Decision.PENDING)
    }
    carried = []
    for item in version.items.filter(key__in=list(decided)):
        before = decided[item.key]
        if before.data != item.data:
            continue
        item.decision = before.decision
        item.decision_note = before.decision_note
        item.decided_by_id = before.decided_by_id
        item.decided_at = before.decided_at
        carried.append(item)
    VersionItem.objects.bulk_update(carried, ["decision", "decision_note", "decided_by", "decided_at"])
    if carried:
        audit_record(actor=actor, action="version.carry_decisions", obj=version,
                     after={"from_version": previous.number, "items": sorted(i.key for i in carried)})
    return len(carried)


# Phases whose versions are decided item by item (each sample) as well as as a whole.
ITEM_DECISION_PHASES = frozenset({"sample_selection"})


def version_decide_check(*, version: Version, approve: bool) -> None:
    """Raise what version_decide would refuse, so a person's mistake is said before anything is sent."""
    if version.status != VersionStatus.SUBMITTED:
        raise ConflictError(f"{version} is not waiting for a decision.")
    # Items are decided one by one (and so can be rejected) only in ITEM_DECISION_PHASES: elsewhere nothing to read.
    if approve and version.phase in ITEM_DECISION_PHASES:
        rejected = list(version.items.filter(decision=VersionItem.Decision.REJECTED).values_list("key", flat=True))
        if rejected:
            raise ConflictError(
                f"{len(rejected)} item(s) are rejected ({', '.join(rejected[:5])}): send the version back "
                "so they can be replaced."
            )


def version_decide(
    *,
    version: Version,
    user,
    approve: bool,
    notes: str = "",
    request_id: uuid.UUID | str | None = None,
    workflow: WorkflowContext | None = None,
) -> Approval:
    """Record the approver's decision on a submitted version (idempotent by request id).

    Permission to decide is checked by the caller (cycles.permissions.can_approve)
    before the decision is accepted; this re-checks the state.
    """
    if request_id is not None:
        existing = Approval.objects.filter(request_id=request_id).first()
        if existing:
            return existing
    if not approve and not notes.strip():
        raise ApplicationError("Say what needs to change: notes are required when sending a version back.")
    if version.author_id == user.pk:
        raise PermissionDeniedError("Nobody approves their own version.")
    workflow = workflow or WorkflowContext()
    with transaction.atomic():
        version = Version.objects.select_for_update().get(pk=version.pk)
        version_decide_check(version=version, approve=approve)
        if approve:
            # Approving the whole version approves every item nobody decided on one by one.
            version.items.filter(decision=VersionItem.Decision.PENDING).update(
                decision=VersionItem.Decision.APPROVED, decided_by=user, decided_at=timezone.now()
            )
        decision = Approval.Decision.APPROVED if approve else Approval.Decision.CHANGES_REQUESTED
        approval = Approval.objects.create(
            version=version, decision=decision, notes=notes, decided_by=user,
            request_id=request_id, workflow_id=workflow.workflow_id,
        )
        version_set_status(
            version=version,
            status=VersionStatus.APPROVED if approve else VersionStatus.CHANGES_REQUESTED,
            actor=user,
            context={**workflow.as_dict(), "notes": notes},
        )
    return approval


def version_item_decide(*, item: VersionItem, user, approve: bool, note: str = "") -> VersionItem:
    """Approve or reject one item (a sample) of a submitted version: its approvers, never its author."""
    from cycles.permissions import can_approve

    with transaction.atomic():
        # The item and its version are locked (a decision on the whole version waits for this one); the report,
        # and the cycle every report of it shares, are read, not locked.
        item = VersionItem.objects.select_for_update(of=("self", "version")).select_related(
            "version__cycle_report__report", "version__cycle_report__cycle"
        ).get(pk=item.pk)
        version = item.version
        if version.phase not in ITEM_DECISION_PHASES:
            raise ConflictError(f"The items of {version} are not decided one by one.")
        if version.author_id == user.pk:
            raise PermissionDeniedError("Nobody decides on their own version.")
        if not can_approve(user, version.cycle_report, version.phase):
            raise PermissionDeniedError("Only the report's owner or a configured approver decides on its items.")
        if item.version.status != VersionStatus.SUBMITTED:
            raise ConflictError(f"{item.version} is not waiting for a decision.")
        if not approve and not note.strip():
            raise ApplicationError(f"Say why {item.key} is rejected.")
        before = {"decision": item.decision}
        item.decision = VersionItem.Decision.APPROVED if approve else VersionItem.Decision.REJECTED
        item.decision_note = note
        item.decided_by = user
        item.decided_at = timezone.now()
        item.save(update_fields=["decision", "decision_note", "decided_by", "decided_at"])
        audit_record(actor=user, action="version_item.decide", obj=item, before=before,
                     after={"decision": item.decision, "note": note})
    return item
