"""Reassignments on a running cycle (issue 7): an attribute's data owner, a report's tester.

Before "Assignments complete" the data executive changes owners freely (cycles.services.requests);
afterwards a change needs a reason and moves the work already sent out:

- The attribute's request is moved whole when it covers only attributes being moved: the same
  request, its evidence (each file keeps who uploaded it) and its place in the workflow. Its emails
  read the data owner when they are sent, so reminders and escalation go to the new owner with no
  message to the workflow.
- When the request also covers other attributes, the moved attribute is split off into a new
  request for the new owner (same samples, same due date); the workflow learns of it through a
  stored decision (request_added) and chases it like the others. Evidence already uploaded stays
  on the request it was uploaded to.

A tester reassignment changes CycleReport.tester: every object check reads the current tester, so
the new one may act at once and the old one no longer may; "Waiting on" is read from the database.
Both people are emailed; a Reassignment row and the audit trail record who, when, from whom, to
whom and why.
"""
from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from cycles.exceptions import ApplicationError, ConflictError, NotFoundError, PermissionDeniedError
from cycles.models import (
    Attribute,
    CycleReport,
    DataOwnerAssignment,
    InformationRequest,
    Phase,
    PhaseState,
    Reassignment,
    TestCycle,
)
from cycles.permissions import can_manage_cycle
from cycles.services.requests import ASSIGNMENT_FIELDS, attributes_in_scope
from synapse.audit import audit_record, snapshot
from synapse.roles import Role, has_role

REASON_MAX = 2000
FINISHED = (CycleReport.Status.COMPLETED, CycleReport.Status.CANCELLED, CycleReport.Status.FAILED)


@dataclass
class DataOwnerReassigned:
    reassignment: Reassignment
    assignment: DataOwnerAssignment
    # The request the attribute is in now (the moved one, or the one split off); None before requests.
    request: InformationRequest | None
    split: bool
    decision: object = None  # the stored request_added message, delivered by the caller after commit


def _clean_reason(reason: str) -> str:
    reason = " ".join((reason or "").split())
    if not reason:
        raise ApplicationError("Say why the work is reassigned: a reason is required.")
    if len(reason) > REASON_MAX:
        raise ApplicationError(f"Keep the reason under {REASON_MAX} characters.")
    return reason


def _notify_on_commit(reassignment: Reassignment) -> None:
    from cycles.services.notifications import reassignment_notify

    pk = reassignment.pk
    transaction.on_commit(lambda: reassignment_notify(reassignment_id=pk), robust=True)


def data_owner_reassign(*, user, attribute: Attribute, data_owner, reason: str) -> DataOwnerReassigned:
    """After "Assignments complete": give the attribute another data owner and move its open request."""
    cycle_report = CycleReport.objects.select_related("report__lob").get(pk=attribute.cycle_report_id)
    if not (has_role(user, Role.DATA_EXECUTIVE) and cycle_report.report.lob.data_executive_id == user.pk):
        raise PermissionDeniedError(
            f"Only the data executive of {cycle_report.report.lob} reassigns data owners for {cycle_report.report}."
        )
    reason = _clean_reason(reason)
    if data_owner is None or not data_owner.is_active or not has_role(data_owner, Role.DATA_OWNER):
        raise ApplicationError(
            f"{data_owner or 'Nobody'} is not a data owner of {cycle_report.report.lob}: choose an active user "
            "with the Data Owner role."
        )
    doi = PhaseState.objects.filter(cycle_report=cycle_report, phase=Phase.DATA_OWNER_IDENTIFICATION).first()
    if doi is None or doi.status != PhaseState.Status.COMPLETED:
        raise ConflictError(
            "Data Owner Identification is not complete yet: change the data owner on its page (no reason needed)."
        )
    if cycle_report.status in FINISHED:
        raise ConflictError(f"{cycle_report.report} is {cycle_report.get_status_display().lower()}: nothing moves now.")
    if not attributes_in_scope(cycle_report=cycle_report).filter(pk=attribute.pk).exists():
        raise ApplicationError(f"{attribute.name} is not in scope: it has no data owner to reassign.")

    with transaction.atomic():
        # The report's lock orders this with the creation of the requests (information_requests_create).
        CycleReport.objects.select_for_update(no_key=True).get(pk=cycle_report.pk)
        assignment = DataOwnerAssignment.objects.select_for_update().filter(attribute=attribute).first()
        if assignment is None:
            raise NotFoundError(f"{attribute.name} has no data owner to reassign.")
        if assignment.data_owner_id == data_owner.pk:
            raise ApplicationError(f"{data_owner} is already the data owner of {attribute.name}.")
        previous_owner = assignment.data_owner
        request = (
            InformationRequest.objects.select_for_update()
            .filter(cycle_report=cycle_report, attributes=attribute).order_by("pk").first()
        )
        if request is not None and request.status == InformationRequest.Status.ACCEPTED:
            raise ConflictError(
                f"The request for {attribute.name} was already accepted: its evidence is final, so its data owner "
                "can't change now."
            )

        before = snapshot(assignment, ASSIGNMENT_FIELDS)
        assignment.data_owner = data_owner
        assignment.assigned_by = user
        assignment.save()
        context = {"cycle_report": cycle_report.pk, "attribute": attribute.name, "reason": reason}
        audit_record(actor=user, action="data_owner.reassign", obj=assignment, before=before,
                     after=snapshot(assignment, ASSIGNMENT_FIELDS), context=context)

        moved_to, split, decision, new_request = request, False, None, None
        if request is not None:
            other_attributes = request.attributes.exclude(pk=attribute.pk).exists()
            if not other_attributes:
                request.data_owner = data_owner
                request.save(update_fields=["data_owner"])
                audit_record(actor=user, action="information_request.reassign", obj=request,
                             before={"data_owner_id": previous_owner.pk},
                             after={"data_owner_id": data_owner.pk, "status": request.status}, context=context)
            else:
                rfi_active = PhaseState.objects.filter(
                    cycle_report=cycle_report, phase=Phase.REQUEST_FOR_INFORMATION, status=PhaseState.Status.ACTIVE
                ).exists()
                if not rfi_active:
                    raise ConflictError(
                        f"The request to {previous_owner} also covers other attributes and Requests for Information "
                        f"is not running, so {attribute.name} can't be split off now."
                    )
                new_request = InformationRequest.objects.create(
                    cycle_report=cycle_report, data_owner=data_owner, due_date=request.due_date,
                    sample_keys=list(request.sample_keys or []),
                )
                new_request.attributes.set([attribute])
                request.attributes.remove(attribute)
                audit_record(actor=user, action="information_request.split", obj=request,
                             before={"data_owner_id": previous_owner.pk, "attribute": attribute.pk},
                             after={"data_owner_id": data_owner.pk, "new_request": new_request.pk}, context=context)
                audit_record(actor=None, action="information_request.create", obj=new_request,
                             after={**snapshot(new_request, ["data_owner_id", "due_date", "status"]),
                                    "attributes": [attribute.pk], "samples": len(new_request.sample_keys),
                                    "split_from": request.pk},
                             context={"cycle_report": cycle_report.pk})
                from workflows.services import request_added_decision_store

                decision = request_added_decision_store(user=user, request=new_request, from_request=request)
                moved_to, split = new_request, True

        reassignment = Reassignment.objects.create(
            kind=Reassignment.Kind.DATA_OWNER, cycle_report=cycle_report, attribute=attribute,
            from_user=previous_owner, to_user=data_owner, reason=reason, reassigned_by=user,
            request=request, new_request=new_request,
        )
        audit_record(actor=user, action="reassignment.data_owner", obj=reassignment,
                     before={"data_owner_id": previous_owner.pk},
                     after={"data_owner_id": data_owner.pk, "request": getattr(moved_to, "pk", None),
                            "split": split},
                     context=context)
        _notify_on_commit(reassignment)
    return DataOwnerReassigned(reassignment=reassignment, assignment=assignment, request=moved_to, split=split,
                               decision=decision)


def cycle_report_reassign_tester(*, user, cycle_report: CycleReport, tester, reason: str) -> Reassignment:
    """On a running cycle: the test manager gives the report's work to another tester, with a reason."""
    cycle_report = CycleReport.objects.select_related("cycle", "report", "tester").get(pk=cycle_report.pk)
    if not can_manage_cycle(user, cycle_report.cycle):
        raise PermissionDeniedError("Only the cycle's Test Manager reassigns its testers.")
    reason = _clean_reason(reason)
    if tester is None or not tester.is_active or not has_role(tester, Role.TESTER):
        raise ApplicationError(f"{tester or 'Nobody'} is not an active Tester.")
    if cycle_report.cycle.status != TestCycle.Status.RUNNING:
        raise ConflictError("Testers are reassigned on a running cycle; before it starts, assign one instead.")
    from cycles.models import CycleReportRemoval

    if cycle_report.status in FINISHED or CycleReportRemoval.objects.filter(cycle_report=cycle_report).exists():
        raise ConflictError(
            f"{cycle_report.report} is finished (signed off or removed): its tester can't change now."
        )
    with transaction.atomic():
        locked = CycleReport.objects.select_for_update(no_key=True).get(pk=cycle_report.pk)
        if locked.tester_id is None:
            raise ConflictError(f"{cycle_report.report} has no tester yet: assign one instead.")
        if locked.tester_id == tester.pk:
            raise ApplicationError(f"{tester} already tests {cycle_report.report}.")
        previous = locked.tester
        before = snapshot(locked, ["tester_id"])
        locked.tester = tester
        locked.save(update_fields=["tester", "updated_at"])
        reassignment = Reassignment.objects.create(
            kind=Reassignment.Kind.TESTER, cycle_report=locked, from_user=previous, to_user=tester, reason=reason,
            reassigned_by=user,
        )
        context = {"cycle_report": locked.pk, "reason": reason}
        audit_record(actor=user, action="cycle_report.reassign_tester", obj=locked, before=before,
                     after=snapshot(locked, ["tester_id"]), context=context)
        audit_record(actor=user, action="reassignment.tester", obj=reassignment,
                     before={"tester_id": previous.pk}, after={"tester_id": tester.pk}, context=context)
        _notify_on_commit(reassignment)
    cycle_report.tester = tester
    return reassignment


def reassignments_of(*, cycle_report: CycleReport, kind: str | None = None):
    """The report's reassignments, newest first, with the people and attribute loaded."""
    qs = Reassignment.objects.filter(cycle_report=cycle_report).select_related(
        "attribute", "from_user", "to_user", "reassigned_by")
    return qs.filter(kind=kind) if kind else qs
