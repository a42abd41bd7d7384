"""The outbox leaves a decision to the sender still waiting for its answer, and keeps each workflow's order.

Before, every round of the worker's outbox also sent the decisions people's requests were delivering at that
moment (they are open until answered): each an extra update, a thread and a database connection, a quarter of
all the decisions of bench/orchestration.py sent twice.
"""
from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from workflows import services
from workflows.models import WorkflowDecision
from workflows.temporal.client import bridge
from workflows.temporal.contracts import UPDATE_REQUEST_SUBMITTED, UpdateResult

pytestmark = pytest.mark.django_db


def stored(users, cycle_report, workflow_id: str, *, sending_until=None) -> WorkflowDecision:
    decision = WorkflowDecision.objects.create(
        workflow_id=workflow_id, update_name=UPDATE_REQUEST_SUBMITTED, requested_by=users["data_owner"],
        cycle_report=cycle_report, sending_until=sending_until,
        payload={"decision_id": "", "request_id": 1, "user_id": users["data_owner"].pk, "status": "submitted"},
    )
    decision.payload["decision_id"] = str(decision.pk)
    decision.save(update_fields=["payload"])
    return decision


@pytest.fixture
def queues(monkeypatch):
    """The queues the outbox hands its senders, one list of decision ids per workflow, in order."""
    seen: dict[tuple, list] = {}

    def deliver(ids, deadline):
        seen[tuple(ids)] = list(ids)
        return len(ids)

    monkeypatch.setattr(services, "_deliver_workflow_queue", deliver)
    monkeypatch.setattr(bridge, "open_reason", lambda: "")
    return seen


def test_a_decision_being_sent_and_those_behind_it_wait_for_its_sender(users, cycle_report, queues):
    soon = timezone.now() + datetime.timedelta(seconds=15)
    being_sent = stored(users, cycle_report, "w-1", sending_until=soon)
    behind = stored(users, cycle_report, "w-1")
    other = stored(users, cycle_report, "w-2")

    assert services.decisions_deliver_pending() == 1
    assert list(queues) == [(other.pk,)]

    # The sender died mid-wait: once its lease is over, the outbox takes the workflow's decisions, in order.
    queues.clear()
    WorkflowDecision.objects.filter(pk=being_sent.pk).update(sending_until=timezone.now() - datetime.timedelta(seconds=1))
    assert services.decisions_deliver_pending() == 3
    assert sorted(queues) == sorted([(being_sent.pk, behind.pk), (other.pk,)])


def test_sending_leases_the_decision_until_it_is_answered(users, cycle_report, monkeypatch):
    decision = stored(users, cycle_report, "w-1")
    leases = []

    def run(fn, **kwargs):
        leases.append(WorkflowDecision.objects.get(pk=decision.pk).sending_until)
        return UpdateResult(accepted=True, message="Submitted.")

    monkeypatch.setattr(bridge, "run", run)
    outcome = services._send(decision, deadline=2, finish=15)
    assert outcome.delivered and outcome.decision.status == WorkflowDecision.Status.DELIVERED
    # While it waited, the outbox would have left the decision alone; answered, the lease is gone.
    assert leases[0] > timezone.now() + datetime.timedelta(seconds=15)
    assert WorkflowDecision.objects.get(pk=decision.pk).sending_until is None


def test_a_sender_that_gets_no_answer_gives_the_decision_back_to_the_outbox(users, cycle_report, monkeypatch, queues):
    from workflows.temporal.client import TemporalUnavailable

    decision = stored(users, cycle_report, "w-1")

    def run(fn, **kwargs):
        raise TemporalUnavailable("unreachable")

    monkeypatch.setattr(bridge, "run", run)
    monkeypatch.setattr(services, "unavailable_reason", lambda err: services.UNREACHABLE)
    outcome = services._send(decision, deadline=2, finish=15)
    assert not outcome.delivered
    assert WorkflowDecision.objects.get(pk=decision.pk).sending_until is None
    assert services.decisions_deliver_pending() == 1 and list(queues) == [(decision.pk,)]


def test_a_step_sent_at_once_is_stored_leased_and_its_answer_is_one_write(users, cycle_report, monkeypatch, queues):
    """A person's step is stored as its first attempt, leased to the request that sends it: the outbox leaves
    it alone, and sending it reads and writes nothing before the update goes out. The answer is one
    conditional UPDATE (which ends the lease) and its audit entry."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    cycle_report.workflow_id = "w-1"
    decision = services.decision_store(
        user=users["data_owner"], cycle_report=cycle_report, update_name=UPDATE_REQUEST_SUBMITTED, sending=True,
        make_input=lambda decision_id: services.UPDATE_INPUTS[UPDATE_REQUEST_SUBMITTED](
            decision_id=decision_id, request_id=1, user_id=users["data_owner"].pk, status="submitted"),
    )
    row = WorkflowDecision.objects.get(pk=decision.pk)
    assert row.attempts == 1 and row.sending_until > timezone.now() + datetime.timedelta(seconds=15)
    assert services.decisions_deliver_pending() == 0 and not queues

    monkeypatch.setattr(bridge, "run", lambda fn, **kwargs: UpdateResult(accepted=True, message="Submitted."))
    with CaptureQueriesContext(connection) as captured:
        outcome = services.decision_deliver(decision=decision, leased=True)
    assert outcome.delivered
    statements = [q["sql"].split()[0] for q in captured.captured_queries if "SAVEPOINT" not in q["sql"]]
    assert statements == ["SELECT", "UPDATE", "INSERT"]  # the earlier open steps; the answer; its audit entry
    row = WorkflowDecision.objects.get(pk=decision.pk)
    assert (row.status, row.attempts, row.sending_until) == (WorkflowDecision.Status.DELIVERED, 1, None)


def test_a_requests_step_is_delivered_without_reading_the_person_or_the_report_again(
        users, cycle_report, monkeypatch, queues):
    """The request's service stored the step with its change; delivering it reads the decision with the person
    and the report (in its cycle) that its answer's audit entry names, instead of one query for each."""
    from types import SimpleNamespace

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    decision = stored(users, cycle_report, "w-1")
    WorkflowDecision.objects.filter(pk=decision.pk).update(subject=services.request_subject(SimpleNamespace(pk=1)))
    monkeypatch.setattr(bridge, "run", lambda fn, **kwargs: UpdateResult(accepted=True, message="Submitted."))
    with CaptureQueriesContext(connection) as captured:
        outcome = services._request_event(user=users["data_owner"], request=SimpleNamespace(pk=1),
                                          update_name=UPDATE_REQUEST_SUBMITTED)
    assert outcome.delivered and outcome.decision.status == WorkflowDecision.Status.DELIVERED
    read_again = [q["sql"] for q in captured.captured_queries if q["sql"].startswith("SELECT") and any(
        f'FROM "{table}"' in q["sql"] for table in ("synapse_user", "cycles_cyclereport", "cycles_report",
                                                    "cycles_testcycle"))]
    assert read_again == []


def test_a_step_waits_for_its_workflow_to_take_the_earlier_ones_not_for_their_answers(
        users, cycle_report, monkeypatch, queues):
    """An earlier step of the same workflow is sent first, and only its acceptance is waited for: the workflow
    takes steps in the order it accepts them. Its answer stays its own sender's (or the outbox's) to store: the
    earlier step is not written to. Before, a later step waited for the earlier one to be carried out (a data
    executive's completion of Data Owner Identification held the tester's submission of Sample Selection, the
    phase beside it), took over its lease, and sent again an earlier step the workflow had already accepted."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    answers = iter([None, UpdateResult(accepted=True, message="Submitted.")])  # the earlier one: accepted
    calls = []
    monkeypatch.setattr(bridge, "run", lambda fn, **kwargs: calls.append(fn) or next(answers))

    soon = timezone.now() + datetime.timedelta(seconds=15)
    earlier = stored(users, cycle_report, "w-1", sending_until=soon)  # its own sender still waits for it
    later = stored(users, cycle_report, "w-1")
    with CaptureQueriesContext(connection) as captured:
        outcome = services.decision_deliver(decision=later)
    assert outcome.delivered and len(calls) == 2
    row = WorkflowDecision.objects.get(pk=earlier.pk)
    assert (row.status, row.attempts, row.sending_until) == (WorkflowDecision.Status.PENDING, 0, soon)
    assert not [q["sql"] for q in captured.captured_queries
                if q["sql"].startswith("UPDATE") and str(earlier.pk).replace("-", "") in q["sql"].replace("-", "")]
    assert WorkflowDecision.objects.get(pk=later.pk).status == WorkflowDecision.Status.DELIVERED

    # One the workflow has accepted already is not sent again ahead of a later step.
    WorkflowDecision.objects.filter(pk=earlier.pk).update(status=WorkflowDecision.Status.ACCEPTED)
    calls.clear()
    answers = iter([UpdateResult(accepted=True, message="Reviewed.")])
    last = stored(users, cycle_report, "w-1")
    assert services.decision_deliver(decision=last).delivered and len(calls) == 1


def test_the_outbox_goes_on_past_a_step_its_workflow_is_still_carrying_out(users, cycle_report, monkeypatch):
    answers = iter([None, UpdateResult(accepted=True, message="Submitted.")])  # accepted, not answered yet
    monkeypatch.setattr(bridge, "run", lambda fn, **kwargs: next(answers))
    monkeypatch.setattr(services, "close_old_connections", lambda: None)  # an outbox thread's, not the test's
    carried_out = stored(users, cycle_report, "w-1")
    behind = stored(users, cycle_report, "w-1")

    assert services._deliver_workflow_queue([carried_out.pk, behind.pk], deadline=1) == 1
    assert WorkflowDecision.objects.get(pk=carried_out.pk).status == WorkflowDecision.Status.ACCEPTED
    assert WorkflowDecision.objects.get(pk=behind.pk).status == WorkflowDecision.Status.DELIVERED
