"""The workflow's side of the protocol (issue 10), with fake activities and no database.

A request's message carries the status the database committed with it; the workflow takes it
without asking the database (whose fake here has "moved on" and would refuse), recognises a step
already applied, and still refuses what can't be.
"""
from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from temporalio.client import WorkflowUpdateFailedError, WorkflowUpdateStage

from workflows.temporal.contracts import (
    DATA_OWNER_IDENTIFICATION,
    DATA_PROFILING,
    PLANNING,
    REQUEST_FOR_INFORMATION,
    SAMPLE_SELECTION,
    SCOPING,
    TEST_EXECUTION,
    CompleteDataOwnersInput,
    DecideVersionInput,
    RequestEventInput,
    ReportWorkflowInput,
    State,
    UpdateResult,
)
from workflows.temporal.report_workflow import ReportTestWorkflow
from workflows.tests.test_report_workflow import (  # noqa: F401 - the module's environment fixture
    FakeActivities,
    _decide,
    _status,
    _submit,
    _wait_state,
    _wait_until,
    _worker,
    env,
)

pytestmark = pytest.mark.temporal


async def _send(handle, name: str, request_id: int, status: str) -> UpdateResult:
    return await handle.execute_update(
        name, RequestEventInput(str(uuid.uuid4()), request_id, user_id=7, status=status), result_type=UpdateResult
    )


async def test_request_steps_carry_their_status_and_repeats_are_already_applied(env):
    fakes = FakeActivities(requests=(701, 702))
    queue = f"q-{uuid.uuid4().hex}"
    async with _worker(env, fakes, queue):
        handle = await env.client.start_workflow(
            ReportTestWorkflow.run,
            ReportWorkflowInput(1, 70, 170, skip_phases=[PLANNING, DATA_PROFILING, SCOPING, SAMPLE_SELECTION,
                                                          DATA_OWNER_IDENTIFICATION]),
            id=f"wf-{uuid.uuid4()}", task_queue=queue,
        )
        await _wait_until(env, lambda: ("notify", (702, "request")) in fakes.calls)
        # The database has moved on to "accepted" (the worker was away meanwhile): reading it would refuse.
        fakes.request_status[701] = "accepted"
        submitted = await _send(handle, "request_submitted", 701, "submitted")
        assert (submitted.accepted, submitted.duplicate) == (True, False)
        again = await _send(handle, "request_submitted", 701, "submitted")
        assert again.duplicate and again.message.startswith("Already applied")
        assert (await _send(handle, "request_reviewed", 701, "accepted")).duplicate is False
        assert (await _send(handle, "request_reviewed", 701, "accepted")).duplicate is True
        # Accepted stays accepted unless the workflow reopens it: a late "submitted" waits for that, then
        # is refused; a request the workflow doesn't have is refused at once.
        late = asyncio.ensure_future(_send(handle, "request_submitted", 701, "submitted"))
        await asyncio.sleep(0.5)
        await env.sleep(timedelta(minutes=6))
        with pytest.raises(WorkflowUpdateFailedError):
            await late
        with pytest.raises(WorkflowUpdateFailedError):
            await _send(handle, "request_submitted", 999, "submitted")
        # A returned round, then accepted, while the fake database still says "open" for 702.
        await _send(handle, "request_submitted", 702, "submitted")
        await _send(handle, "request_reviewed", 702, "returned")
        assert (await _status(handle)).requests["702"] == "returned"
        await _send(handle, "request_submitted", 702, "submitted")
        await _send(handle, "request_reviewed", 702, "accepted")
        await _wait_state(env, handle, State.AWAITING_SUBMISSION, TEST_EXECUTION)
        await handle.terminate("test over")


async def test_decisions_already_applied_are_answered_as_such(env):
    fakes = FakeActivities(requests=(801,))
    queue = f"q-{uuid.uuid4().hex}"
    async with _worker(env, fakes, queue):
        handle = await env.client.start_workflow(
            ReportTestWorkflow.run,
            ReportWorkflowInput(1, 80, 180, skip_phases=[PLANNING, DATA_PROFILING, SAMPLE_SELECTION],
                                last_phase=REQUEST_FOR_INFORMATION),
            id=f"wf-{uuid.uuid4()}", task_queue=queue,
        )
        await _wait_state(env, handle, State.AWAITING_SUBMISSION, SCOPING)
        submitted = await _submit(handle, SCOPING)
        approved = await _decide(handle, SCOPING, submitted.version_id, approve=True)
        assert not approved.duplicate
        # The owner's approval asked again under another id: already applied, nothing recorded twice.
        again = await _decide(handle, SCOPING, submitted.version_id, approve=True)
        assert again.duplicate
        assert len([c for c in fakes.calls if c[0] == "decision"]) == 1
        await _wait_until(env, lambda: ("start", DATA_OWNER_IDENTIFICATION) in fakes.calls)
        done = await handle.execute_update("complete_data_owner_identification", CompleteDataOwnersInput("o1", 3),
                                           result_type=UpdateResult)
        assert not done.duplicate
        repeat = await handle.execute_update("complete_data_owner_identification",
                                             CompleteDataOwnersInput("o2", 3), result_type=UpdateResult)
        assert repeat.duplicate
        await handle.terminate("test over")


async def test_a_decision_on_a_version_still_being_made_waits_for_it(env):  # noqa: F811
    """The owner approves the version the activity wrote before the workflow took in its result (seconds when
    the worker dies in between): the decision waits for the submission to finish, then applies; a decision on
    another version is still refused."""
    fakes = FakeActivities(requests=())
    fakes.hold_versions = asyncio.Event()
    queue = f"q-{uuid.uuid4().hex}"
    async with _worker(env, fakes, queue):
        handle = await env.client.start_workflow(
            ReportTestWorkflow.run,
            ReportWorkflowInput(1, 81, 181, skip_phases=[PLANNING, DATA_PROFILING, SAMPLE_SELECTION],
                                last_phase=SCOPING),
            id=f"wf-{uuid.uuid4()}", task_queue=queue,
        )
        await _wait_state(env, handle, State.AWAITING_SUBMISSION, SCOPING)
        submitting = asyncio.create_task(_submit(handle, SCOPING))
        await _wait_until(env, lambda: ("version", (SCOPING, 1)) in fakes.calls)  # written, not yet returned
        assert (await _status(handle)).state == State.SUBMITTING
        # Both are admitted while the version is being made (before, the first was refused as "no version
        # waiting for a decision").
        deciding, wrong = [await handle.start_update(
            "decide_version", DecideVersionInput(str(uuid.uuid4()), SCOPING, version_id, user_id=2, approve=True),
            wait_for_stage=WorkflowUpdateStage.ACCEPTED, result_type=UpdateResult) for version_id in (100, 999)]
        fakes.hold_versions.set()
        submitted = await submitting
        assert submitted.version_id == 100
        approved = await deciding.result()
        assert (approved.accepted, approved.duplicate, approved.message) == (True, False, "Version 1 approved.")
        with pytest.raises(WorkflowUpdateFailedError):
            await wrong.result()
        await handle.result()
    assert [c for c in fakes.calls if c[0] == "decision"] == [("decision", (SCOPING, 1, True))]


async def test_messages_older_than_the_status_the_workflow_read_are_already_applied(env):  # noqa: F811
    """The requests were created, answered and accepted before the workflow had the creating activity's
    result (the worker killed meanwhile), so the workflow read "accepted": the data owner's and the tester's
    messages, delivered after, are already applied, not waited on for 5 minutes and refused."""
    fakes = FakeActivities(requests=(711,))
    fakes.request_status[711] = "accepted"
    queue = f"q-{uuid.uuid4().hex}"
    async with _worker(env, fakes, queue):
        handle = await env.client.start_workflow(
            ReportTestWorkflow.run,
            ReportWorkflowInput(1, 71, 171, skip_phases=[PLANNING, DATA_PROFILING, SCOPING, SAMPLE_SELECTION,
                                                          DATA_OWNER_IDENTIFICATION]),
            id=f"wf-{uuid.uuid4()}", task_queue=queue,
        )
        await _wait_state(env, handle, State.AWAITING_SUBMISSION, TEST_EXECUTION)
        # Before, this waited 5 minutes (of the workflow's time) for the request to be reopened, then was
        # refused; a bound on the wall clock tells the two apart.
        submitted = await asyncio.wait_for(_send(handle, "request_submitted", 711, "submitted"), timeout=30)
        assert (submitted.accepted, submitted.duplicate) == (True, True), submitted
        reviewed = await _send(handle, "request_reviewed", 711, "accepted")
        assert reviewed.duplicate
        await handle.terminate("test over")
