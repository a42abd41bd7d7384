"""Workflow logic on the time-skipping test server, with fake activities under the real names.

No database: these check ordering, validators, send-back loops and skip_phases.
The real activities are exercised in test_integration.py against the dev server.
"""
from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from temporalio import activity
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from workflows.temporal.contracts import (
    DATA_PROFILING,
    PLANNING,
    SCOPING,
    ActivityName,
    CreateVersionInput,
    CycleReportRef,
    CycleWorkflowInput,
    DecideVersionInput,
    DraftAttributesInput,
    DraftAttributesResult,
    EnterPhaseInput,
    FinishReportInput,
    PhaseTransitionResult,
    ProfilePopulationInput,
    ProfileSummary,
    RecommendScopeInput,
    RecommendScopeResult,
    RecordDecisionInput,
    RegisterPopulationInput,
    ReportStatus,
    ReportWorkflowInput,
    SetCycleStatusInput,
    State,
    SubmitVersionInput,
    UpdateResult,
    VersionRef,
    WaitingOn,
    WorkflowFinishedResult,
)
from workflows.temporal.cycle_workflow import TestCycleWorkflow
from workflows.temporal.report_workflow import ReportTestWorkflow
from workflows.testing import TEST_SERVER

pytestmark = pytest.mark.temporal


class FakeActivities:
    """Records calls; versions are numbered per phase like the real service."""

    def __init__(self, *, draft_fails: bool = False, empty_submission_phases=()):
        self.calls: list[tuple[str, object]] = []
        self.versions: dict[int, tuple[str, int]] = {}
        self.draft_fails = draft_fails
        self.empty_submission_phases = set(empty_submission_phases)
        self.cycle_status = ""

    def all(self):
        @activity.defn(name=ActivityName.ENTER_PHASE)
        async def enter(inp: EnterPhaseInput) -> PhaseTransitionResult:
            self.calls.append(("enter", (inp.phase, inp.skipped)))
            return PhaseTransitionResult(inp.cycle_report_id, inp.from_phase, inp.phase, inp.skipped)

        @activity.defn(name=ActivityName.DRAFT_ATTRIBUTES)
        async def draft(inp: DraftAttributesInput) -> DraftAttributesResult:
            self.calls.append(("draft", inp.cycle_report_id))
            if self.draft_fails:
                raise ApplicationError("The model answered with prose, not JSON.", non_retryable=True,
                                       type="LLMBadResponseError")
            return DraftAttributesResult(inp.cycle_report_id, "fake", 3, 0)

        @activity.defn(name=ActivityName.RECOMMEND_SCOPE)
        async def recommend(inp: RecommendScopeInput) -> RecommendScopeResult:
            self.calls.append(("recommend", inp.cycle_report_id))
            return RecommendScopeResult(created=3)

        @activity.defn(name=ActivityName.CREATE_VERSION)
        async def create(inp: CreateVersionInput) -> VersionRef:
            if inp.phase in self.empty_submission_phases:
                self.empty_submission_phases.discard(inp.phase)
                raise ApplicationError("Add at least one attribute before submitting Planning.",
                                       non_retryable=True)
            number = 1 + sum(1 for phase, _ in self.versions.values() if phase == inp.phase)
            version_id = len(self.versions) + 100
            self.versions[version_id] = (inp.phase, number)
            self.calls.append(("version", (inp.phase, number)))
            return VersionRef(version_id, number, "submitted")

        @activity.defn(name=ActivityName.RECORD_DECISION)
        async def decide(inp: RecordDecisionInput) -> VersionRef:
            phase, number = self.versions[inp.version_id]
            self.calls.append(("decision", (phase, number, inp.approve)))
            return VersionRef(inp.version_id, number, "approved" if inp.approve else "changes_requested")

        @activity.defn(name=ActivityName.PROFILE_POPULATION)
        async def profile(inp: ProfilePopulationInput) -> ProfileSummary:
            self.calls.append(("profile", inp.population_file_id))
            if inp.population_file_id == 13:
                raise ApplicationError("The file is not UTF-8 text (bad byte at line 2).", non_retryable=True)
            return ProfileSummary(inp.population_file_id, 1000, 5, 0.1)

        @activity.defn(name=ActivityName.FINISH_REPORT)
        async def finish(inp: FinishReportInput) -> WorkflowFinishedResult:
            self.calls.append(("finish", inp.status))
            return WorkflowFinishedResult("completed")

        @activity.defn(name=ActivityName.SET_CYCLE_STATUS)
        async def cycle_status(inp: SetCycleStatusInput) -> WorkflowFinishedResult:
            self.cycle_status = inp.status
            return WorkflowFinishedResult(inp.status)

        return [enter, draft, recommend, create, decide, profile, finish, cycle_status]


@pytest.fixture(scope="module")
async def env():
    async with await WorkflowEnvironment.start_time_skipping(test_server_existing_path=str(TEST_SERVER)) as env:
        yield env


async def _status(handle) -> ReportStatus:
    return await handle.query("status", result_type=ReportStatus)


async def _wait_state(env, handle, state: str, phase: str | None = None) -> ReportStatus:
    for _ in range(200):
        status = await _status(handle)
        if status.state == state and (phase is None or status.phase == phase):
            return status
        await env.sleep(0.05)
    raise AssertionError(f"workflow never reached {phase}/{state}; last: {status}")


def _worker(env, fakes: FakeActivities, queue: str) -> Worker:
    return Worker(
        env.client,
        task_queue=queue,
        workflows=[TestCycleWorkflow, ReportTestWorkflow],
        activities=fakes.all(),
        activity_executor=ThreadPoolExecutor(4),
    )


async def _refused(coro) -> str:
    """Await an update that must be refused; return the workflow's reason."""
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await coro
    return str(refused.value.cause)


async def _submit(handle, phase: str) -> UpdateResult:
    return await handle.execute_update(
        "submit_version", SubmitVersionInput(str(uuid.uuid4()), phase, user_id=1), result_type=UpdateResult
    )


async def _decide(handle, phase: str, version_id: int, approve: bool, notes: str = "") -> UpdateResult:
    return await handle.execute_update(
        "decide_version",
        DecideVersionInput(str(uuid.uuid4()), phase, version_id, user_id=2, approve=approve, notes=notes),
        result_type=UpdateResult,
    )


async def test_report_runs_three_phases_with_send_back(env):
    fakes = FakeActivities()
    queue = f"q-{uuid.uuid4().hex}"
    async with _worker(env, fakes, queue):
        handle = await env.client.start_workflow(
            ReportTestWorkflow.run, ReportWorkflowInput(1, 10, 20), id=f"wf-{uuid.uuid4()}", task_queue=queue
        )
        status = await _wait_state(env, handle, State.AWAITING_SUBMISSION, PLANNING)
        assert status.waiting_on == WaitingOn.TESTER

        # A decision before any submission is refused by the validator.
        assert "no version waiting" in await _refused(
            _decide(handle, PLANNING, 100, approve=True))

        first = await _submit(handle, PLANNING)
        assert first.version_number == 1
        status = await _status(handle)
        assert (status.state, status.waiting_on, status.current_version_id) == (
            State.AWAITING_DECISION, WaitingOn.REPORT_OWNER, first.version_id)

        # A second submission while one waits for a decision is refused.
        assert "not waiting for a submission" in await _refused(
            _submit(handle, PLANNING))

        sent_back = await _decide(handle, PLANNING, first.version_id, approve=False, notes="Add the CDE flags")
        assert "sent back" in sent_back.message
        second = await _submit(handle, PLANNING)
        assert second.version_number == 2
        # Deciding on the superseded version is refused.
        assert "not the one waiting" in await _refused(
            _decide(handle, PLANNING, first.version_id, approve=True))
        await _decide(handle, PLANNING, second.version_id, approve=True)

        await _wait_state(env, handle, State.AWAITING_UPLOAD, DATA_PROFILING)
        assert "not UTF-8" in await _refused(
            handle.execute_update("register_population", RegisterPopulationInput("d1", 13, 1),
                                  result_type=UpdateResult))
        assert (await _status(handle)).last_error.startswith("The file is not UTF-8")
        profiled = await handle.execute_update(
            "register_population", RegisterPopulationInput("d2", 14, 1), result_type=UpdateResult
        )
        assert "1,000 rows" in profiled.message

        await _wait_state(env, handle, State.AWAITING_SUBMISSION, SCOPING)
        scoping = await _submit(handle, SCOPING)
        await _decide(handle, SCOPING, scoping.version_id, approve=True)
        result = await handle.result()

    assert result.status == "scoped"
    assert result.completed_phases == [PLANNING, DATA_PROFILING, SCOPING]
    assert [c for c in fakes.calls if c[0] in ("enter", "version", "decision", "finish")] == [
        ("enter", (PLANNING, False)),
        ("version", (PLANNING, 1)),
        ("decision", (PLANNING, 1, False)),
        ("version", (PLANNING, 2)),
        ("decision", (PLANNING, 2, True)),
        ("enter", (DATA_PROFILING, False)),
        ("enter", (SCOPING, False)),
        ("version", (SCOPING, 1)),
        ("decision", (SCOPING, 1, True)),
        ("finish", "scoped"),
    ]


async def test_failed_draft_leaves_manual_entry_and_refused_submission_can_retry(env):
    fakes = FakeActivities(draft_fails=True, empty_submission_phases=[PLANNING])
    queue = f"q-{uuid.uuid4().hex}"
    async with _worker(env, fakes, queue):
        handle = await env.client.start_workflow(
            ReportTestWorkflow.run,
            ReportWorkflowInput(1, 11, 21, skip_phases=[DATA_PROFILING, SCOPING]),
            id=f"wf-{uuid.uuid4()}",
            task_queue=queue,
        )
        status = await _wait_state(env, handle, State.AWAITING_SUBMISSION, PLANNING)
        assert "prose, not JSON" in status.last_error
        # The draft is not retried: the error is non-retryable.
        assert [c for c in fakes.calls if c[0] == "draft"] == [("draft", 11)]

        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await _submit(handle, PLANNING)
        assert "at least one attribute" in str(refused.value.cause)
        assert (await _status(handle)).state == State.AWAITING_SUBMISSION

        version = await _submit(handle, PLANNING)
        await _decide(handle, PLANNING, version.version_id, approve=True)
        result = await handle.result()

    assert result.skipped_phases == [DATA_PROFILING, SCOPING]
    assert ("enter", (DATA_PROFILING, True)) in fakes.calls
    assert ("recommend", 11) not in fakes.calls


async def test_cycle_workflow_starts_a_child_per_report_and_rejects_a_second_start(env):
    fakes = FakeActivities()
    queue = f"q-{uuid.uuid4().hex}"
    skip = [PLANNING, DATA_PROFILING, SCOPING]
    async with _worker(env, fakes, queue):
        inp = CycleWorkflowInput(
            cycle_id=7, cycle_reports=[CycleReportRef(70, 1), CycleReportRef(71, 2)], skip_phases=skip
        )
        wf_id = f"cycle-7-{uuid.uuid4().hex[:6]}"
        handle = await env.client.start_workflow(TestCycleWorkflow.run, inp, id=wf_id, task_queue=queue)
        from temporalio.exceptions import WorkflowAlreadyStartedError

        with pytest.raises(WorkflowAlreadyStartedError):
            await env.client.start_workflow(TestCycleWorkflow.run, inp, id=wf_id, task_queue=queue)
        result = await handle.result()

    assert result.report_statuses == {"cycle-7-report-1": "scoped", "cycle-7-report-2": "scoped"}
    assert fakes.cycle_status == "completed"
