"""Reassignments on a running cycle (issue 7): an attribute's data owner after "Assignments complete",
a report's tester; each refusal, what moves and what stays, who is told."""
import pytest
from django.core import mail

from cycles.exceptions import ApplicationError, ConflictError, PermissionDeniedError
from cycles.models import (
    CycleReport,
    CycleReportRemoval,
    DataOwnerAssignment,
    Evidence,
    InformationRequest,
    Phase,
    PhaseState,
    Reassignment,
    TestCycle,
)
from cycles.permissions import can_work_on
from cycles.selectors import cycle_report_progress
from cycles.services.notifications import request_notify
from cycles.services.reassignments import cycle_report_reassign_tester, data_owner_reassign
from cycles.services.requests import evidence_upload, information_request_submit
from cycles.tests.test_requests import PDF, requests_ready, upload
from synapse.audit import audit_events_for
from synapse.roles import Role
from workflows.models import WorkflowDecision
from workflows.temporal.contracts import UPDATE_REQUEST_ADDED

pytestmark = pytest.mark.django_db


def set_phase(cycle_report, phase, status):
    PhaseState.objects.update_or_create(cycle_report=cycle_report, phase=phase, defaults={"status": status})


@pytest.fixture
def running(cycle_report, users, storage):
    """Requests out after "Assignments complete": dataowner has account_id + balance, dataowner2 customer_name."""
    requests = requests_ready(cycle_report, users)
    set_phase(cycle_report, Phase.DATA_OWNER_IDENTIFICATION, PhaseState.Status.COMPLETED)
    set_phase(cycle_report, Phase.REQUEST_FOR_INFORMATION, PhaseState.Status.ACTIVE)
    TestCycle.objects.filter(pk=cycle_report.cycle_id).update(status=TestCycle.Status.RUNNING)
    CycleReport.objects.filter(pk=cycle_report.pk).update(phase=Phase.REQUEST_FOR_INFORMATION,
                                                         status=CycleReport.Status.IN_PROGRESS)
    return requests


@pytest.fixture
def data_owner3(make_user):
    return make_user("dataowner3", Role.DATA_OWNER, first_name="Dana", last_name="Three")


def attribute(cycle_report, name):
    return cycle_report.attributes.get(name=name)


# --- data owner: the whole request moves ---------------------------------------------------------


def test_a_request_of_one_attribute_moves_whole_with_its_evidence(
    running, cycle_report, users, data_owner3, django_capture_on_commit_callbacks
):
    request = running["dataowner2"]
    evidence_upload(user=users["data_owner2"], request=request, files=[upload("ledger.pdf", PDF)])
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        result = data_owner_reassign(user=users["executive"], attribute=attribute(cycle_report, "customer_name"),
                                     data_owner=data_owner3, reason="Dataowner2 is on leave until December.")

    request.refresh_from_db()
    assert result.request.pk == request.pk and not result.split and result.decision is None
    assert request.data_owner == data_owner3
    assert DataOwnerAssignment.objects.get(attribute__name="customer_name").data_owner == data_owner3
    # The evidence stays, with who uploaded it.
    evidence = Evidence.objects.get(request=request)
    assert evidence.uploaded_by == users["data_owner2"]
    # The new owner answers; the old one no longer can.
    with pytest.raises(PermissionDeniedError):
        evidence_upload(user=users["data_owner2"], request=request, files=[upload("more.pdf", PDF)])
    evidence_upload(user=data_owner3, request=request, files=[upload("more.pdf", PDF)])
    information_request_submit(user=data_owner3, request=request)
    # Both are told, each once.
    to = sorted(m.to[0] for m in mail.outbox)
    assert to == ["dataowner2@example.com", "dataowner3@example.com"]
    gained = next(m for m in mail.outbox if m.to == ["dataowner3@example.com"])
    assert "You are now the data owner of customer_name" in gained.subject
    assert "Dataowner2 is on leave until December." in gained.body
    # The record: who, when, from whom, to whom, why.
    reassignment = Reassignment.objects.get()
    assert (reassignment.kind, reassignment.from_user, reassignment.to_user, reassignment.reassigned_by) == (
        Reassignment.Kind.DATA_OWNER, users["data_owner2"], data_owner3, users["executive"])
    assert reassignment.reason == "Dataowner2 is on leave until December." and reassignment.reassigned_at
    event = audit_events_for(reassignment).get(action="reassignment.data_owner")
    assert event.actor == users["executive"]
    assert event.before == {"data_owner_id": users["data_owner2"].pk}
    assert event.after["data_owner_id"] == data_owner3.pk
    assert event.context["reason"] == "Dataowner2 is on leave until December."


def test_after_a_whole_move_the_reminder_and_the_escalation_name_the_new_owner(
    running, cycle_report, users, data_owner3
):
    """The reminder activity reads the request's data owner when it sends: no message to the workflow."""
    request = running["dataowner2"]
    data_owner_reassign(user=users["executive"], attribute=attribute(cycle_report, "customer_name"),
                        data_owner=data_owner3, reason="Wrong person.")
    mail.outbox.clear()

    assert request_notify(request_id=request.pk, kind="reminder", key_suffix="-d3")
    assert request_notify(request_id=request.pk, kind="escalation")

    reminder, escalation = mail.outbox
    assert reminder.to == ["dataowner3@example.com"]
    assert "Dana Three's evidence" in escalation.subject


# --- data owner: part of a request is split off ---------------------------------------------------


def test_an_attribute_of_a_larger_request_is_split_off_and_the_workflow_is_told(
    running, cycle_report, users, data_owner3
):
    CycleReport.objects.filter(pk=cycle_report.pk).update(workflow_id="cycle-1-report-1")
    old = running["dataowner"]
    evidence_upload(user=users["data_owner"], request=old, files=[upload("balances.pdf", PDF)])

    result = data_owner_reassign(user=users["executive"], attribute=attribute(cycle_report, "balance"),
                                 data_owner=data_owner3, reason="Balances moved to the finance team.")

    assert result.split
    new = result.request
    assert new.pk != old.pk and new.data_owner == data_owner3 and new.status == InformationRequest.Status.OPEN
    assert [a.name for a in new.attributes.all()] == ["balance"]
    assert [a.name for a in old.attributes.all()] == ["account_id"]
    assert (new.due_date, new.sample_keys) == (old.due_date, old.sample_keys)
    # Evidence already uploaded stays where it was uploaded, by whom it was.
    assert Evidence.objects.get().request_id == old.pk
    # The workflow learns of the new request through a stored decision, delivered after the commit.
    decision = WorkflowDecision.objects.get(update_name=UPDATE_REQUEST_ADDED)
    assert decision == result.decision
    assert decision.payload["request_id"] == new.pk and decision.payload["from_request_id"] == old.pk
    assert decision.status == WorkflowDecision.Status.PENDING
    assert Reassignment.objects.get().new_request == new
    # The old owner keeps answering the rest; only the new owner answers the split-off request.
    with pytest.raises(PermissionDeniedError):
        evidence_upload(user=users["data_owner"], request=new, files=[upload("x.pdf", PDF)])
    evidence_upload(user=data_owner3, request=new, files=[upload("x.pdf", PDF)])


def test_a_split_needs_requests_for_information_running(running, cycle_report, users, data_owner3):
    set_phase(cycle_report, Phase.REQUEST_FOR_INFORMATION, PhaseState.Status.COMPLETED)

    with pytest.raises(ConflictError, match="can't be split off now"):
        data_owner_reassign(user=users["executive"], attribute=attribute(cycle_report, "balance"),
                            data_owner=data_owner3, reason="Leave.")

    assert DataOwnerAssignment.objects.get(attribute__name="balance").data_owner == users["data_owner"]
    assert not Reassignment.objects.exists() and InformationRequest.objects.count() == 2


def test_before_the_requests_go_out_only_the_assignment_changes(cycle_report, users, data_owner3, storage):
    from cycles.tests.test_requests import open_doi, scoped_attributes
    from cycles.services.requests import data_owner_assign

    attributes = scoped_attributes(cycle_report, users["tester"])
    open_doi(cycle_report)
    for a in attributes.values():
        if a.name != "notes":
            data_owner_assign(user=users["executive"], attribute=a, data_owner=users["data_owner"])
    set_phase(cycle_report, Phase.DATA_OWNER_IDENTIFICATION, PhaseState.Status.COMPLETED)

    result = data_owner_reassign(user=users["executive"], attribute=attributes["balance"], data_owner=data_owner3,
                                 reason="Better placed.")

    assert result.request is None and Reassignment.objects.get().request is None
    assert DataOwnerAssignment.objects.get(attribute=attributes["balance"]).data_owner == data_owner3


# --- data owner: refusals ---------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["executive2", "tester", "manager", "data_owner", "admin"])
def test_only_the_lobs_data_executive_reassigns(running, cycle_report, users, make_user, data_owner3, who):
    from cycles.models import LOB

    if who == "executive2":
        user = make_user("executive2", Role.DATA_EXECUTIVE)
        LOB.objects.create(name="Cards", code="cards", data_executive=user)
    else:
        user = users[who]
    with pytest.raises(PermissionDeniedError, match="Only the data executive"):
        data_owner_reassign(user=user, attribute=attribute(cycle_report, "customer_name"), data_owner=data_owner3,
                            reason="Leave.")
    assert not Reassignment.objects.exists()


@pytest.mark.parametrize("case, error, message", [
    ("no reason", ApplicationError, "a reason is required"),
    ("same person", ApplicationError, "is already the data owner of customer_name"),
    ("not a data owner", ApplicationError, "is not a data owner of Retail Lending"),
    ("inactive", ApplicationError, "is not a data owner of Retail Lending"),
    ("accepted", ConflictError, "already accepted"),
    ("assignments open", ConflictError, "not complete yet"),
])
def test_a_reassignment_is_refused_with_a_clear_message(running, cycle_report, users, data_owner3, case, error,
                                                        message):
    to, reason = data_owner3, "Leave."
    if case == "no reason":
        reason = "   "
    elif case == "same person":
        to = users["data_owner2"]
    elif case == "not a data owner":
        to = users["tester"]
    elif case == "inactive":
        data_owner3.is_active = False
        data_owner3.save()
    elif case == "accepted":
        InformationRequest.objects.filter(pk=running["dataowner2"].pk).update(
            status=InformationRequest.Status.ACCEPTED)
    elif case == "assignments open":
        set_phase(cycle_report, Phase.DATA_OWNER_IDENTIFICATION, PhaseState.Status.ACTIVE)

    with pytest.raises(error, match=message):
        data_owner_reassign(user=users["executive"], attribute=attribute(cycle_report, "customer_name"),
                            data_owner=to, reason=reason)

    assert DataOwnerAssignment.objects.get(attribute__name="customer_name").data_owner == users["data_owner2"]
    assert InformationRequest.objects.get(pk=running["dataowner2"].pk).data_owner == users["data_owner2"]
    assert not Reassignment.objects.exists()


# --- tester -------------------------------------------------------------------------------------------


@pytest.fixture
def running_cycle(cycle_report):
    TestCycle.objects.filter(pk=cycle_report.cycle_id).update(status=TestCycle.Status.RUNNING,
                                                              workflow_id="cycle-1")
    CycleReport.objects.filter(pk=cycle_report.pk).update(phase=Phase.PLANNING, status=CycleReport.Status.IN_PROGRESS)
    cycle_report.refresh_from_db()
    return cycle_report


def test_the_test_manager_reassigns_the_tester_who_then_may_act(
    running_cycle, users, django_capture_on_commit_callbacks
):
    from cycles.services.planning import attribute_create

    PhaseState.objects.create(cycle_report=running_cycle, phase=Phase.PLANNING)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        reassignment = cycle_report_reassign_tester(user=users["manager"], cycle_report=running_cycle,
                                                    tester=users["tester2"], reason="Sam moved to another team.")

    running_cycle.refresh_from_db()
    assert running_cycle.tester == users["tester2"]
    assert can_work_on(users["tester2"], running_cycle) and not can_work_on(users["tester"], running_cycle)
    with pytest.raises(PermissionDeniedError):
        attribute_create(user=users["tester"], cycle_report=running_cycle, name="x1")
    attribute_create(user=users["tester2"], cycle_report=running_cycle, name="x1")
    progress = cycle_report_progress(CycleReport.objects.select_related(
        "cycle__test_manager", "report__owner", "tester").get(pk=running_cycle.pk))
    assert str(users["tester2"]) in progress.waiting_on_people
    assert sorted(m.to[0] for m in mail.outbox) == ["tester2@example.com", "tester@example.com"]
    assert (reassignment.from_user, reassignment.to_user, reassignment.reason) == (
        users["tester"], users["tester2"], "Sam moved to another team.")
    event = audit_events_for(running_cycle).get(action="cycle_report.reassign_tester")
    assert event.actor == users["manager"] and event.context["reason"] == "Sam moved to another team."
    assert event.before == {"tester_id": users["tester"].pk} and event.after == {"tester_id": users["tester2"].pk}


@pytest.mark.parametrize("case, error, message", [
    ("not the manager", PermissionDeniedError, "Only the cycle's Test Manager"),
    ("no reason", ApplicationError, "a reason is required"),
    ("same person", ApplicationError, "already tests"),
    ("not a tester", ApplicationError, "is not an active Tester"),
    ("draft cycle", ConflictError, "on a running cycle"),
    ("signed off", ConflictError, "signed off or removed"),
    ("removed", ConflictError, "signed off or removed"),
])
def test_a_tester_reassignment_is_refused_with_a_clear_message(running_cycle, users, case, error, message):
    user, tester, reason = users["manager"], users["tester2"], "Leave."
    if case == "not the manager":
        user = users["tester"]
    elif case == "no reason":
        reason = ""
    elif case == "same person":
        tester = users["tester"]
    elif case == "not a tester":
        tester = users["data_owner"]
    elif case == "draft cycle":
        TestCycle.objects.filter(pk=running_cycle.cycle_id).update(status=TestCycle.Status.DRAFT)
    elif case == "signed off":
        CycleReport.objects.filter(pk=running_cycle.pk).update(status=CycleReport.Status.COMPLETED)
    elif case == "removed":
        CycleReportRemoval.objects.create(cycle_report=running_cycle, reason="Out", removed_by=users["manager"])

    with pytest.raises(error, match=message):
        cycle_report_reassign_tester(user=user, cycle_report=running_cycle, tester=tester, reason=reason)

    assert CycleReport.objects.get(pk=running_cycle.pk).tester == users["tester"]
    assert not Reassignment.objects.exists()
