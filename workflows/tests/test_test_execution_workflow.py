"""Test Execution in the report workflow, with fake activities on the time-skipping server (no database)."""
from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from workflows.temporal.contracts import (
    DATA_OWNER_IDENTIFICATION,
    DATA_PROFILING,
    PLANNING,
    REQUEST_FOR_INFORMATION,
    SAMPLE_SELECTION,
    SCOPING,
    TEST_EXECUTION,
    DecideExtensionInput,
    ReportWorkflowInput,
    State,
    UpdateResult,
    WaitingOn,
)
from workflows.temporal.report_workflow import ReportTestWorkflow
from workflows.tests.test_report_workflow import (
    FakeActivities,
    _decide,
    _event,
    _refused,
    _status,
    _submit,
    _wait_state,
    _wait_until,
    _worker,
    env,  # noqa: F401  (the module's time-skipping environment fixture)
)

pytestmark = pytest.mark.temporal

# Straight to Test Execution: every earlier phase skipped.
BEFORE = [PLANNING, DATA_PROFILING, SCOPING, SAMPLE_SELECTION, DATA_OWNER_IDENTIFICATION, REQUEST_FOR_INFORMATION]


def _input(report_id: int) -> ReportWorkflowInput:
    return ReportWorkflowInput(1, report_id, 100 + report_id, skip_phases=list(BEFORE))


async def _decide_extension(handle, extension_id: int, approve: bool, notes: str = "") -> UpdateResult:
    return await handle.execute_update(
        "decide_sample_extension", DecideExtensionInput(str(uuid.uuid4()), extension_id, 2, approve, notes),
        result_type=UpdateResult,
    )


async def test_rules_run_then_the_tester_submits_and_the_owner_sends_back_and_approves(env):  # noqa: F811
    fakes = FakeActivities(requests=())
    queue = f"q-{uuid.uuid4().hex}"
    async with _worker(env, fakes, queue):
        handle = await env.client.start_workflow(ReportTestWorkflow.run, _input(1), id=f"wf-{uuid.uuid4()}",
                                                 task_queue=queue)
        status = await _wait_state(env, handle, State.AWAITING_SUBMISSION, TEST_EXECUTION)
        assert status.waiting_on == WaitingOn.TESTER
        assert (status.test_progress["total"], status.test_progress["done"]) == (6, 2)
        assert ("matrix", 1) in fakes.calls and ("status", "in_progress") in fakes.calls

        first = await _submit(handle, TEST_EXECUTION)
        status = await _status(handle)
        assert (status.state, status.waiting_on) == (State.AWAITING_DECISION, WaitingOn.REPORT_OWNER)
        assert status.test_progress["done"] == 6  # the submission refreshed the progress
        assert "No sample extension" in await _refused(_decide_extension(handle, 5, approve=True))
        await _decide(handle, TEST_EXECUTION, first.version_id, approve=False, notes="Attach the ledger")
        second = await _submit(handle, TEST_EXECUTION)
        await _decide(handle, TEST_EXECUTION, second.version_id, approve=True)
        result = await handle.result()
        history = await handle.fetch_history()

    assert result.completed_phases == [TEST_EXECUTION]
    # The version of every cell is an ordinary activity (with its heartbeat); the extension's proposal that
    # follows it in the submission is local (PATCH_LOCAL_VERSIONS).
    from workflows.tests.record_histories import _local, _scheduled

    assert "version_create" in _scheduled(history) and "version_create" not in _local(history)
    assert "sample_extension_propose" in _local(history) and "sample_extension_propose" not in _scheduled(history)
    assert [c for c in fakes.calls if c[0] in ("version", "decision")] == [
        ("version", (TEST_EXECUTION, 1)), ("decision", (TEST_EXECUTION, 1, False)),
        ("version", (TEST_EXECUTION, 2)), ("decision", (TEST_EXECUTION, 2, True)),
    ]


async def test_failures_beyond_the_size_extend_the_sample_through_requests_on_the_same_workflow(env):  # noqa: F811
    fakes = FakeActivities(requests=())
    fakes.extensions = [77]
    fakes.extension_requests = {77: [701]}
    queue = f"q-{uuid.uuid4().hex}"
    async with _worker(env, fakes, queue):
        handle = await env.client.start_workflow(ReportTestWorkflow.run, _input(2), id=f"wf-{uuid.uuid4()}",
                                                 task_queue=queue)
        await _wait_state(env, handle, State.AWAITING_SUBMISSION, TEST_EXECUTION)
        submitted = await _submit(handle, TEST_EXECUTION)
        assert "extension 1" in submitted.message.lower() or "exceed" in submitted.message

        status = await _status(handle)
        assert (status.state, status.waiting_on, status.pending_extension_id) == (
            State.AWAITING_EXTENSION_DECISION, WaitingOn.REPORT_OWNER, 77)
        # The results can't be decided while the extension waits, nor another extension.
        assert "no version waiting" in await _refused(
            _decide(handle, TEST_EXECUTION, submitted.version_id, approve=True))
        assert "not the one waiting" in await _refused(_decide_extension(handle, 78, approve=True))

        approved = await _decide_extension(handle, 77, approve=True)
        assert "approved" in approved.message
        status = await _wait_state(env, handle, State.AWAITING_EVIDENCE, TEST_EXECUTION)
        assert status.waiting_on == WaitingOn.DATA_OWNER and status.requests["701"] == "open"
        await _wait_until(env, lambda: ("notify", (701, "request-x1")) in fakes.calls)
        assert "not waiting for a submission" in await _refused(_submit(handle, TEST_EXECUTION))

        # The reopened request is chased like the first round: reminders, due, escalation.
        await env.sleep(timedelta(days=13))
        await _wait_until(env, lambda: ("notify", (701, "escalation-x1")) in fakes.calls)
        assert [kind for name, (rid, kind) in [c for c in fakes.calls if c[0] == "notify"] if rid == 701] == [
            "request-x1", "reminder-d3-x1", "reminder-d1-x1", "due-x1", "escalation-x1"]

        fakes.request_status[701] = "submitted"
        await _event(handle, "request_submitted", 701)
        fakes.request_status[701] = "accepted"
        await _event(handle, "request_reviewed", 701)
        await _wait_state(env, handle, State.AWAITING_SUBMISSION, TEST_EXECUTION)
        assert [c for c in fakes.calls if c[0] == "matrix"] == [("matrix", 2), ("matrix", 2)]

        again = await _submit(handle, TEST_EXECUTION)
        assert (await _status(handle)).state == State.AWAITING_DECISION
        await _decide(handle, TEST_EXECUTION, again.version_id, approve=True)
        result = await handle.result()

    assert result.completed_phases == [TEST_EXECUTION]
    assert ("extension", (77, True)) in fakes.calls


async def test_a_rejected_extension_leaves_the_submitted_results_to_the_owners_decision(env):  # noqa: F811
    fakes = FakeActivities(requests=())
    fakes.extensions = [88]
    queue = f"q-{uuid.uuid4().hex}"
    async with _worker(env, fakes, queue):
        handle = await env.client.start_workflow(ReportTestWorkflow.run, _input(3), id=f"wf-{uuid.uuid4()}",
                                                 task_queue=queue)
        await _wait_state(env, handle, State.AWAITING_SUBMISSION, TEST_EXECUTION)
        submitted = await _submit(handle, TEST_EXECUTION)
        rejected = await _decide_extension(handle, 88, approve=False, notes="Known timing difference")
        assert "rejected" in rejected.message
        assert (await _status(handle)).state == State.AWAITING_DECISION
        await _decide(handle, TEST_EXECUTION, submitted.version_id, approve=True)
        result = await handle.result()

    assert result.completed_phases == [TEST_EXECUTION]
    assert ("extension", (88, False)) in fakes.calls


async def test_skipping_test_execution_runs_no_matrix(env):  # noqa: F811
    fakes = FakeActivities(requests=())
    queue = f"q-{uuid.uuid4().hex}"
    async with _worker(env, fakes, queue):
        result = await env.client.execute_workflow(
            ReportTestWorkflow.run, ReportWorkflowInput(1, 4, 104, skip_phases=[*BEFORE, TEST_EXECUTION]),
            id=f"wf-{uuid.uuid4()}", task_queue=queue)

    assert TEST_EXECUTION in result.skipped_phases
    assert not [c for c in fakes.calls if c[0] == "matrix"]


async def test_an_extension_decided_again_is_already_applied_and_carried_out_once(env):  # noqa: F811
    """The owner's second click (another decision, the same answer) while the first is carried out, and a
    repeat after it: both already applied; the opposite answer afterwards is refused (issue 10)."""
    import asyncio

    fakes = FakeActivities(requests=())
    fakes.extensions = [99]
    queue = f"q-{uuid.uuid4().hex}"
    async with _worker(env, fakes, queue):
        handle = await env.client.start_workflow(ReportTestWorkflow.run, _input(5), id=f"wf-{uuid.uuid4()}",
                                                 task_queue=queue)
        await _wait_state(env, handle, State.AWAITING_SUBMISSION, TEST_EXECUTION)
        submitted = await _submit(handle, TEST_EXECUTION)
        first, second = await asyncio.gather(
            _decide_extension(handle, 99, approve=False, notes="Known timing difference"),
            _decide_extension(handle, 99, approve=False, notes="Known timing difference"),
        )
        assert sorted([first.duplicate, second.duplicate]) == [False, True]
        again = await _decide_extension(handle, 99, approve=False, notes="Known timing difference")
        assert again.duplicate and again.message.startswith("Already applied")
        assert "already rejected" in await _refused(_decide_extension(handle, 99, approve=True))
        assert (await _status(handle)).state == State.AWAITING_DECISION
        await _decide(handle, TEST_EXECUTION, submitted.version_id, approve=True)
        await handle.result()

    assert [c for c in fakes.calls if c[0] == "extension"] == [("extension", (99, False))]
