"""Reconciliation of a report's reviewed phases, sign-offs and sample extension with its workflow (issue 10).

workflows.services.workflows_reconcile calls `steps_reconcile` for each running report whose messages
are all answered. Each check compares what the workflow's status says it has with the rows its
activities wrote. Where the database is the truth (a row written by the workflow's own activity, keyed
by the decision that asked for it, while the workflow never took in the activity's result: a
version submitted or decided, an extension decided, a sign-off recorded), the step is sent again
through the protocol carrying that decision's id, so the idempotent activity returns the same row and
the workflow moves on. Anything else that disagrees raises an alert for a person.
"""
from __future__ import annotations

from dataclasses import dataclass

from cycles.models import CycleReport
from versioning.models import Approval, Version, VersionStatus
from workflows.models import WorkflowDecision
from workflows.temporal.contracts import (
    FINALIZE,
    REVIEWED_PHASES,
    SIGN_OFF_ORDER,
    SIGN_OFF_STATES,
    TEST_EXECUTION,
    UPDATE_DECIDE_EXTENSION,
    UPDATE_DECIDE_VERSION,
    UPDATE_SIGN_OFF,
    UPDATE_SUBMIT_VERSION,
    DecideExtensionInput,
    DecideVersionInput,
    ReportStatus,
    SignOffInput,
    State,
    SubmitVersionInput,
)

# Answers that mean the workflow applied a decision (so a row it made is known to it).
APPLIED = (WorkflowDecision.Status.DELIVERED, WorkflowDecision.Status.DUPLICATE, WorkflowDecision.Status.ACCEPTED)


@dataclass
class Repair:
    """A step to send again: `make_input(new decision id)` carries the original decision's id."""

    what: str
    user_id: int
    update_name: str
    make_input: object
    subject: str


@dataclass
class Finding:
    repairs: list[Repair]
    alerts: list[tuple[str, str]]  # (key, message)


def _applied(decision_id) -> bool:
    return WorkflowDecision.objects.filter(pk=decision_id, status__in=APPLIED).exists()


def steps_reconcile(*, cycle_report: CycleReport, status: ReportStatus) -> Finding:
    """What to send again, and what to alert on, for the report's reviewed phases, extension and sign-offs."""
    found = Finding(repairs=[], alerts=[])
    for phase, state in status.active.items():
        if phase in REVIEWED_PHASES:
            _review(cycle_report, status, phase, state, found)
    if status.pending_extension_id and status.active.get(TEST_EXECUTION) == State.AWAITING_EXTENSION_DECISION:
        _extension(cycle_report, status.pending_extension_id, found)
    if status.final_report_id and FINALIZE in status.active:
        _sign_offs(cycle_report, status, found)
    return found


def _review(cycle_report: CycleReport, status: ReportStatus, phase: str, state: str, found: Finding) -> None:
    known = status.versions.get(phase)
    label = phase.replace("_", " ")
    if state == State.AWAITING_DECISION and known:
        version = Version.objects.filter(pk=known).first()
        if version is None:
            found.alerts.append((f"{phase}-version-{known}-missing",
                                 f"The workflow waits for a decision on {label} version {known}, which the database "
                                 "doesn't have."))
            return
        approval = Approval.objects.filter(version=version).first()
        if approval is None:
            return  # waiting for the owner, as the database says too
        if approval.request_id is None or _applied(approval.request_id):
            found.alerts.append((f"{phase}-version-{known}-decided",
                                 f"{label.capitalize()} version {version.number} is {version.get_status_display()} "
                                 "in the database, but the workflow still waits for its decision."))
            return
        approve = approval.decision == Approval.Decision.APPROVED
        found.repairs.append(Repair(
            what=f"{label} version {version.number} {'approved' if approve else 'sent back'}",
            user_id=approval.decided_by_id, update_name=UPDATE_DECIDE_VERSION, subject=f"version:{version.pk}",
            make_input=lambda _id, a=approval, v=version, ok=approve: DecideVersionInput(
                decision_id=str(a.request_id), phase=phase, version_id=v.pk, user_id=a.decided_by_id,
                approve=ok, notes=a.notes),
        ))
    elif state == State.AWAITING_SUBMISSION:
        latest = Version.objects.filter(cycle_report=cycle_report, phase=phase).order_by("-number").first()
        if latest is None or latest.pk == known:
            return
        if latest.status == VersionStatus.SUBMITTED and latest.request_id and not _applied(latest.request_id):
            found.repairs.append(Repair(
                what=f"{label} version {latest.number} submitted",
                user_id=latest.author_id, update_name=UPDATE_SUBMIT_VERSION, subject=f"version:{latest.pk}",
                make_input=lambda _id, v=latest: SubmitVersionInput(
                    decision_id=str(v.request_id), phase=phase, user_id=v.author_id, notes=v.notes),
            ))
        elif latest.status in (VersionStatus.SUBMITTED, VersionStatus.APPROVED) and (
            latest.number > (Version.objects.filter(pk=known).values_list("number", flat=True).first() or 0)
        ) and not (latest.request_id and _applied(latest.request_id)):
            found.alerts.append((f"{phase}-version-{latest.pk}-unknown",
                                 f"{label.capitalize()} version {latest.number} is {latest.get_status_display()} in "
                                 "the database, but the workflow waits for a submission and doesn't know it."))


def _extension(cycle_report: CycleReport, extension_id: int, found: Finding) -> None:
    from cycles.models import SampleExtension

    extension = SampleExtension.objects.filter(pk=extension_id, cycle_report=cycle_report).first()
    if extension is None:
        found.alerts.append((f"extension-{extension_id}-missing",
                             f"The workflow waits for a decision on sample extension {extension_id}, which the "
                             "database doesn't have."))
        return
    if extension.status == SampleExtension.Status.PROPOSED:
        return
    approve = extension.status == SampleExtension.Status.APPROVED
    if extension.decision_id is None or extension.decided_by_id is None or _applied(extension.decision_id):
        found.alerts.append((f"extension-{extension.pk}-decided",
                             f"Sample extension {extension.number} is {extension.get_status_display()} in the "
                             "database, but the workflow still waits for its decision."))
        return
    found.repairs.append(Repair(
        what=f"sample extension {extension.number} {'approved' if approve else 'rejected'}",
        user_id=extension.decided_by_id, update_name=UPDATE_DECIDE_EXTENSION, subject=f"extension:{extension.pk}",
        make_input=lambda _id: DecideExtensionInput(
            decision_id=str(extension.decision_id), extension_id=extension.pk, user_id=extension.decided_by_id,
            approve=approve, notes=extension.decision_note),
    ))


def _sign_offs(cycle_report: CycleReport, status: ReportStatus, found: Finding) -> None:
    from cycles.models import SignOff

    rows = {s.role: s for s in SignOff.objects.filter(final_report_id=status.final_report_id)}
    unknown_to_db = [role for role in status.signatures if role not in rows]
    if unknown_to_db:
        found.alerts.append((f"sign-off-{status.final_report_id}-{'-'.join(unknown_to_db)}-missing",
                             f"The workflow has the final report signed by {', '.join(unknown_to_db)}, which the "
                             "database doesn't have."))
        return
    state = status.active.get(FINALIZE)
    waiting = next((role for role in SIGN_OFF_ORDER if SIGN_OFF_STATES[role] == state), None)
    if waiting is None or waiting not in rows:
        return
    sign_off = rows[waiting]
    if _applied(sign_off.request_id):
        found.alerts.append((f"sign-off-{sign_off.pk}-unknown",
                             f"The {waiting.replace('_', ' ')}'s sign-off is in the database, but the workflow "
                             "still waits for it."))
        return
    sign = sign_off.decision == SignOff.Decision.SIGNED
    found.repairs.append(Repair(
        what=f"{waiting.replace('_', ' ')} {'signed' if sign else 'sent back'}",
        user_id=sign_off.signer_id, update_name=UPDATE_SIGN_OFF, subject=f"sign_off:{sign_off.pk}",
        make_input=lambda _id: SignOffInput(
            decision_id=str(sign_off.request_id), role=waiting, user_id=sign_off.signer_id, sign=sign,
            send_back_to=sign_off.send_back_to, notes=sign_off.notes),
    ))
