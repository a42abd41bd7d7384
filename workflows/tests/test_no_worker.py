"""Why an update went unanswered: no worker takes the workflow's tasks, or the workflow is busy."""
from __future__ import annotations

import datetime
from types import SimpleNamespace

import pytest
from django.utils import timezone
from google.protobuf.timestamp_pb2 import Timestamp
from temporalio.api.enums.v1 import PendingWorkflowTaskState

from workflows import services
from workflows.temporal.client import bridge
from workflows.tests.test_outbox_lease import stored

pytestmark = pytest.mark.django_db


def at(moment: datetime.datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def described(monkeypatch, *, task_state=None, scheduled=None, polled: list[datetime.datetime]):
    task = None if task_state is None else SimpleNamespace(state=task_state, scheduled_time=at(scheduled))
    pollers = [SimpleNamespace(last_access_time=at(moment)) for moment in polled]
    monkeypatch.setattr(bridge, "run", lambda fn, **kwargs: (task, pollers))


@pytest.fixture
def sent(users, cycle_report):
    """A decision whose update went out five seconds ago."""
    decision = stored(users, cycle_report, "w-1")
    decision.last_attempt_at = timezone.now() - datetime.timedelta(seconds=5)
    return decision


def test_a_worker_that_stopped_with_a_poll_open_took_the_task_and_is_gone(monkeypatch, sent):
    """Its last poll was before the update went out and the task shows started: nobody takes tasks."""
    described(monkeypatch, task_state=PendingWorkflowTaskState.PENDING_WORKFLOW_TASK_STATE_STARTED,
              scheduled=sent.last_attempt_at, polled=[sent.last_attempt_at - datetime.timedelta(seconds=1)])
    assert services._no_worker(sent)


def test_a_worker_that_polled_since_the_update_went_out_is_busy(monkeypatch, sent):
    described(monkeypatch, task_state=PendingWorkflowTaskState.PENDING_WORKFLOW_TASK_STATE_STARTED,
              scheduled=sent.last_attempt_at, polled=[sent.last_attempt_at + datetime.timedelta(seconds=1)])
    assert not services._no_worker(sent)


def test_a_task_scheduled_for_a_while_and_not_started_means_no_worker(monkeypatch, sent):
    now = timezone.now()
    described(monkeypatch, task_state=PendingWorkflowTaskState.PENDING_WORKFLOW_TASK_STATE_SCHEDULED,
              scheduled=now - datetime.timedelta(seconds=3), polled=[now])
    assert services._no_worker(sent)


def test_without_the_time_of_sending_a_minute_without_a_poll_means_no_worker(monkeypatch, sent):
    sent.last_attempt_at = None
    now = timezone.now()
    described(monkeypatch, polled=[now - datetime.timedelta(seconds=30)])
    assert not services._no_worker(sent)
    described(monkeypatch, polled=[now - datetime.timedelta(seconds=90)])
    assert services._no_worker(sent)


def test_a_worker_whose_heartbeat_is_alive_is_busy_however_long_ago_its_poll_began(monkeypatch, settings, sent):
    """Under load a live worker's tasks come by its sticky queue, and its poll of the queue described stays
    open: with no poll since the update went out, it is still no "no worker" while its process says it
    is alive. A stopped one, or one whose heartbeat is stale, is judged by the polls again."""
    from workflows.models import WorkerHeartbeat

    now = timezone.now()
    described(monkeypatch, task_state=PendingWorkflowTaskState.PENDING_WORKFLOW_TASK_STATE_STARTED,
              scheduled=sent.last_attempt_at, polled=[sent.last_attempt_at - datetime.timedelta(seconds=30)])
    beat = WorkerHeartbeat.objects.create(identity="host:1", task_queue=settings.TEMPORAL_TASK_QUEUE,
                                          started_at=now, last_seen_at=now)
    assert not services._no_worker(sent)
    WorkerHeartbeat.objects.filter(pk=beat.pk).update(task_queue="another-queue")
    assert services._no_worker(sent)
    WorkerHeartbeat.objects.filter(pk=beat.pk).update(task_queue=settings.TEMPORAL_TASK_QUEUE, stopped_at=now)
    assert services._no_worker(sent)
    WorkerHeartbeat.objects.filter(pk=beat.pk).update(stopped_at=None, last_seen_at=now - datetime.timedelta(minutes=5))
    assert services._no_worker(sent)
