"""Workflow logic on the time-skipping test server, with fake activities under the real names.

No database: these check ordering, validators, send-back loops and skip_phases.
The real activities are exercised in test_integration.py against the dev server.
"""
from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from concurrent.futures import ThreadPoolExecutor

import pytest
from temporalio import activity
from temporalio.client import WorkflowFailureError, WorkflowUpdateFailedError, WorkflowUpdateStage
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from workflows.temporal.contracts import (
    RequestAddedInput,
    COMPENSATE_PHASE_ACTIVITY,
    CompensateInput,
    CompensationResult,
    DATA_OWNER_IDENTIFICATION,
    REQUEST_FOR_INFORMATION,
    SAMPLE_SELECTION,
    TEST_EXECUTION,
    Ack,
    CompleteDataOwnersInput,
    CreateRequestsInput,
    DataOwnersCheck,
    NotifyRequestInput,
    PhaseInput,
    PhaseSettings,
    ReportStatusInput,
    RequestEventInput,
    RequestRef,
    RequestSchedule,
    RequestsCreated,
    RequestStatusInput,
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
from workflows.temporal.contracts import (  # Test Execution
    ExtensionDecided,
    ExtensionProposal,
    ProposeExtensionInput,
    RecordExtensionDecisionInput,
    TestMatrixInput,
    TestProgress,
)
from workflows.temporal.cycle_workflow import TestCycleWorkflow
from workflows.temporal.report_workflow import ReportTestWorkflow
from workflows.testing import TEST_SERVER

pytestmark = pytest.mark.temporal


class FakeActivities:
    """Records calls; versions are numbered per phase like the real service."""

    def __init__(self, *, draft_fails: bool = False, empty_submission_phases=(), owners_missing=(),
                 requests=(501, 502), recommend_failures: int = 0):
        self.calls: list[tuple[str, object]] = []
        # Scoping's recommendation fails (beyond its retries) this many times: the phase is compensated.
        self.recommend_failures = recommend_failures
        self.owners_missing = list(owners_missing)
        self.request_status = {rid: "open" for rid in requests}
        self.versions: dict[int, tuple[str, int]] = {}
        self.draft_fails = draft_fails
        self.empty_submission_phases = set(empty_submission_phases)
        self.refused_submissions: set[str] = set()
        self.cycle_status = ""
        # Test Execution: extension ids the next submissions propose (popped one per submission).
        self.extensions: list[int] = []
        self.extension_requests = {}
        # When set, a version is "written" (recorded) but its activity returns only once the event is set.
        self.hold_versions = None
        # Activities (by the name they record) that wait for their event before they return.
        self.holds: dict[str, asyncio.Event] = {}

    def all(self):
        @activity.defn(name=ActivityName.ENTER_PHASE)
        async def enter(inp: EnterPhaseInput) -> PhaseTransitionResult:
            self.calls.append(("enter", (inp.phase, inp.skipped)))
            if f"enter:{inp.phase}" in self.holds:
                await self.holds[f"enter:{inp.phase}"].wait()
            return PhaseTransitionResult(inp.cycle_report_id, inp.from_phase, inp.phase, inp.skipped)

        @activity.defn(name=ActivityName.DRAFT_ATTRIBUTES)
        async def draft(inp: DraftAttributesInput) -> DraftAttributesResult:
            self.calls.append(("draft", inp.cycle_report_id))
            if "draft" in self.holds:
                await self.holds["draft"].wait()
            if self.draft_fails:
                raise ApplicationError("The model answered with prose, not JSON.", non_retryable=True,
                                       type="LLMBadResponseError")
            return DraftAttributesResult(inp.cycle_report_id, "fake", 3, 0)

        @activity.defn(name=ActivityName.RECOMMEND_SCOPE)
        async def recommend(inp: RecommendScopeInput) -> RecommendScopeResult:
            self.calls.append(("recommend", inp.cycle_report_id))
            if "recommend" in self.holds:
                await self.holds["recommend"].wait()
            if self.recommend_failures:
                self.recommend_failures -= 1
                raise ApplicationError("The database refused the recommendations.", non_retryable=True)
            return RecommendScopeResult(created=3)

        @activity.defn(name=ActivityName.CREATE_VERSION)
        async def create(inp: CreateVersionInput) -> VersionRef:
            if inp.phase in self.empty_submission_phases or inp.decision_id in self.refused_submissions:
                # The phase's first submission finds no data: every attempt at it is refused (a local attempt's
                # refusal is tried once more as an ordinary activity); the next submission finds the data.
                self.empty_submission_phases.discard(inp.phase)
                self.refused_submissions.add(inp.decision_id)
                raise ApplicationError("Add at least one attribute before submitting Planning.",
                                       non_retryable=True)
            number = 1 + sum(1 for phase, _ in self.versions.values() if phase == inp.phase)
            version_id = len(self.versions) + 100
            self.versions[version_id] = (inp.phase, number)
            self.calls.append(("version", (inp.phase, number)))
            if self.hold_versions is not None:
                await self.hold_versions.wait()
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

        @activity.defn(name=ActivityName.COMPLETE_PHASE)
        async def complete(inp: PhaseInput) -> Ack:
            self.calls.append(("complete", inp.phase))
            return Ack()

        @activity.defn(name=ActivityName.SET_REPORT_STATUS)
        async def set_status(inp: ReportStatusInput) -> Ack:
            self.calls.append(("status", inp.status))
            return Ack()

        @activity.defn(name=ActivityName.PREPARE_SAMPLING)
        async def prepare(inp: PhaseInput) -> Ack:
            self.calls.append(("start", SAMPLE_SELECTION))
            return Ack()

        @activity.defn(name=ActivityName.NOTIFY_DATA_EXECUTIVE)
        async def notify_executive(inp: PhaseInput) -> Ack:
            self.calls.append(("start", DATA_OWNER_IDENTIFICATION))
            return Ack()

        @activity.defn(name=ActivityName.CHECK_DATA_OWNERS)
        async def check(inp: PhaseInput) -> DataOwnersCheck:
            return DataOwnersCheck(complete=not self.owners_missing, missing=list(self.owners_missing))

        @activity.defn(name=ActivityName.ESCALATE_DATA_OWNERS)
        async def escalate(inp: PhaseInput) -> Ack:
            self.calls.append(("escalate_owners", inp.cycle_report_id))
            return Ack()

        @activity.defn(name=ActivityName.CREATE_REQUESTS)
        async def create_requests(inp: CreateRequestsInput) -> RequestsCreated:
            self.calls.append(("requests", inp.due_date))
            return RequestsCreated([RequestRef(rid, status) for rid, status in self.request_status.items()])

        @activity.defn(name=ActivityName.NOTIFY_REQUEST)
        async def notify(inp: NotifyRequestInput) -> Ack:
            self.calls.append(("notify", (inp.request_id, inp.kind + inp.key_suffix)))
            return Ack()

        @activity.defn(name=ActivityName.REQUEST_STATUS)
        async def request_status(inp: RequestStatusInput) -> Ack:
            return Ack(detail=self.request_status[inp.request_id])

        @activity.defn(name=ActivityName.PREPARE_TEST_MATRIX)
        async def prepare_matrix(inp: TestMatrixInput) -> TestProgress:
            self.calls.append(("matrix", inp.cycle_report_id))
            return TestProgress(total=6, done=2, counts={"pass": 1, "fail": 1, "not_tested": 4})

        @activity.defn(name=ActivityName.PROPOSE_SAMPLE_EXTENSION)
        async def propose(inp: ProposeExtensionInput) -> ExtensionProposal:
            progress = TestProgress(total=6, done=6, counts={"pass": 4, "fail": 2})
            if not self.extensions:
                return ExtensionProposal(progress=progress)
            extension_id = self.extensions.pop(0)
            self.calls.append(("propose", extension_id))
            return ExtensionProposal(extension_id, 1, "Failures (balance 2) exceed the 0 the sample allows.",
                                     progress)

        @activity.defn(name=ActivityName.DECIDE_SAMPLE_EXTENSION)
        async def decide_extension(inp: RecordExtensionDecisionInput) -> ExtensionDecided:
            self.calls.append(("extension", (inp.extension_id, inp.approve)))
            requests = [RequestRef(rid, "open") for rid in self.extension_requests.get(inp.extension_id, [])]
            if inp.approve:
                for ref in requests:
                    self.request_status[ref.request_id] = "open"
            return ExtensionDecided(approved=inp.approve, number=1, requests=requests if inp.approve else [])

        @activity.defn(name=COMPENSATE_PHASE_ACTIVITY)
        async def compensate(inp: CompensateInput) -> CompensationResult:
            self.calls.append(("compensate", (inp.cycle_report_id, inp.phase, inp.trigger, inp.user_id)))
            return CompensationResult(strategy="notify", outcome="done", undone={})

        return [enter, draft, recommend, create, decide, profile, finish, cycle_status, complete, set_status,
                prepare, notify_executive, check, escalate, create_requests, notify, request_status,
                prepare_matrix, propose, decide_extension, compensate]


@pytest.fixture(scope="module")
async def env():
    async with await WorkflowEnvironment.start_time_skipping(test_server_existing_path=str(TEST_SERVER)) as env:
        yield env


async def _status(handle) -> ReportStatus:
    return await handle.query("status", result_type=ReportStatus)


async def _wait_state(env, handle, state: str, phase: str | None = None) -> ReportStatus:
    status = None
    for _ in range(200):
        try:
            status = await _status(handle)
        except RPCError:  # a child workflow the parent has not started yet
            status = None
        if status and status.state == state and (phase is None or status.phase == phase):
            return status
        await env.sleep(0.05)
    raise AssertionError(f"workflow never reached {phase}/{state}; last: {status}")


async def _wait_active(env, handle, active: dict[str, str]) -> ReportStatus:
    """Wait until the workflow's active phases are exactly `active` (the parallel step has two)."""
    status = None
    for _ in range(200):
        try:
            status = await _status(handle)
        except RPCError:
            status = None
        if status and status.active == active:
            return status
        await env.sleep(0.05)
    raise AssertionError(f"active phases never became {active}; last: {status}")


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
            ReportTestWorkflow.run, ReportWorkflowInput(1, 10, 20, last_phase=SCOPING), id=f"wf-{uuid.uuid4()}", task_queue=queue
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

        # A second submission while one waits for a decision is the same step again (a retry after a
        # lost answer): already applied, not a refusal, and no second version (issue 10).
        again = await _submit(handle, PLANNING)
        assert (again.duplicate, again.version_id) == (True, first.version_id)
        assert [c for c in fakes.calls if c[0] == "version"] == [("version", (PLANNING, 1))]

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
        # Profiling a file no longer ends the phase: a replacement is profiled in turn,
        # and the phase ends when the owner approves its version.
        status = await _wait_state(env, handle, State.AWAITING_SUBMISSION, DATA_PROFILING)
        assert status.waiting_on == WaitingOn.TESTER
        await handle.execute_update(
            "register_population", RegisterPopulationInput("d3", 15, 1), result_type=UpdateResult
        )
        profiling = await _submit(handle, DATA_PROFILING)
        refused = await _refused(handle.execute_update(
            "register_population", RegisterPopulationInput("d4", 16, 1), result_type=UpdateResult))
        assert "Data Profiling has a version submitted" in refused and "data_profiling" not in refused
        await _decide(handle, DATA_PROFILING, profiling.version_id, approve=True)

        await _wait_state(env, handle, State.AWAITING_SUBMISSION, SCOPING)
        # Until Scoping is submitted the population file can still be replaced.
        await handle.execute_update(
            "register_population", RegisterPopulationInput("d5", 17, 1), result_type=UpdateResult
        )
        scoping = await _submit(handle, SCOPING)
        refused = await _refused(handle.execute_update(
            "register_population", RegisterPopulationInput("d6", 18, 1), result_type=UpdateResult))
        assert "Scoping has a version submitted" in refused
        await _decide(handle, SCOPING, scoping.version_id, approve=True)
        result = await handle.result()

    assert result.status == "scoped"
    assert result.completed_phases == [PLANNING, DATA_PROFILING, SCOPING]
    assert [c for c in fakes.calls if c[0] in ("enter", "version", "decision", "finish", "status")] == [
        ("enter", (PLANNING, False)),
        ("version", (PLANNING, 1)),
        ("decision", (PLANNING, 1, False)),
        ("version", (PLANNING, 2)),
        ("decision", (PLANNING, 2, True)),
        ("enter", (DATA_PROFILING, False)),
        ("version", (DATA_PROFILING, 1)),
        ("decision", (DATA_PROFILING, 1, True)),
        ("enter", (SCOPING, False)),
        ("version", (SCOPING, 1)),
        ("decision", (SCOPING, 1, True)),
        ("status", "scoped"),
        ("finish", "scoped"),
    ]


async def test_an_approval_is_answered_without_waiting_for_the_next_phase_to_be_entered(env):
    """The phase's completion and the next one's entry run as local activities after the approval. The answer
    reached the owner only once they had run (their workflow task completes then): under load, after the
    owner's step had already been answered "saved". Since PATCH_ANSWER_FIRST it goes out before them."""
    fakes = FakeActivities()
    entering = fakes.holds[f"enter:{DATA_PROFILING}"] = asyncio.Event()
    queue = f"q-{uuid.uuid4().hex}"
    async with _worker(env, fakes, queue):
        # A long task timeout: the SDK ends a task held by local activities at 80% of it, and would answer then.
        handle = await env.client.start_workflow(
            ReportTestWorkflow.run, ReportWorkflowInput(1, 10, 20, last_phase=DATA_PROFILING),
            id=f"wf-{uuid.uuid4()}", task_queue=queue, task_timeout=timedelta(seconds=60))
        await _wait_state(env, handle, State.AWAITING_SUBMISSION, PLANNING)
        submitted = await _submit(handle, PLANNING)

        approved = await asyncio.wait_for(_decide(handle, PLANNING, submitted.version_id, approve=True), 30)
        assert approved.message == f"Version {submitted.version_number} approved."
        assert not entering.is_set()  # answered while Data Profiling could not have been entered yet

        entering.set()
        await _wait_state(env, handle, State.AWAITING_UPLOAD, DATA_PROFILING)
    assert [c for c in fakes.calls if c[0] in ("decision", "complete", "enter")][-3:] == [
        ("decision", (PLANNING, 1, True)), ("complete", PLANNING), ("enter", (DATA_PROFILING, False))]


async def test_a_phase_version_is_made_by_a_local_activity_but_test_executions(env):
    """Since PATCH_LOCAL_VERSIONS the tester's submission makes its version in the workflow task that takes it
    (a marker in the history, no activity task of its own); Test Execution's version, every cell of the
    matrix, stays an ordinary activity with its heartbeat."""
    from workflows.tests.record_histories import _local, _scheduled

    fakes = FakeActivities()
    queue = f"q-{uuid.uuid4().hex}"
    async with _worker(env, fakes, queue):
        handle = await env.client.start_workflow(
            ReportTestWorkflow.run, ReportWorkflowInput(1, 10, 20, skip_phases=[DATA_PROFILING], last_phase=SCOPING),
            id=f"wf-{uuid.uuid4()}", task_queue=queue)
        for phase in (PLANNING, SCOPING):
            await _wait_state(env, handle, State.AWAITING_SUBMISSION, phase)
            submitted = await _submit(handle, phase)
            assert submitted.message == f"Version {submitted.version_number} submitted for approval."
            await _decide(handle, phase, submitted.version_id, approve=True)
        await handle.result()
        history = await handle.fetch_history()
    assert "version_create" in _local(history) and "version_create" not in _scheduled(history)
    assert [c for c in fakes.calls if c[0] == "version"] == [("version", (PLANNING, 1)), ("version", (SCOPING, 1))]


async def test_a_decision_on_a_version_whose_submission_is_not_taken_yet_waits_for_it(env):
    """A version is made by a local activity, committed before the workflow task that takes the submission
    completes. A worker lost in between leaves it in the database for the owner to decide on while the next
    worker has yet to take the submission again (both reach the workflow in one task, the submission first).
    Here the submission waits for Planning's draft instead, taken and not answered: a decision on the version
    it will make waits for it and is applied (PATCH_DECIDE_WAITS_FOR_SUBMISSION_IN_FLIGHT), not refused as
    "no version waiting"."""
    fakes = FakeActivities()
    drafting = fakes.holds["draft"] = asyncio.Event()
    queue = f"q-{uuid.uuid4().hex}"
    async with _worker(env, fakes, queue):
        handle = await env.client.start_workflow(
            ReportTestWorkflow.run, ReportWorkflowInput(1, 10, 20, last_phase=PLANNING),
            id=f"wf-{uuid.uuid4()}", task_queue=queue)
        await _wait_state(env, handle, State.DRAFTING, PLANNING)
        submitted = await handle.start_update(
            "submit_version", SubmitVersionInput("s-1", PLANNING, user_id=1),
            wait_for_stage=WorkflowUpdateStage.ACCEPTED, result_type=UpdateResult)
        decided = await handle.start_update(  # 100: the id the fakes give the first version
            "decide_version", DecideVersionInput("d-1", PLANNING, 100, user_id=2, approve=True),
            wait_for_stage=WorkflowUpdateStage.ACCEPTED, result_type=UpdateResult)
        drafting.set()
        assert (await submitted.result()).version_id == 100
        assert (await decided.result()).message == "Version 1 approved."
        result = await handle.result()
    assert result.completed_phases == [PLANNING]


def test_every_update_handler_of_the_report_workflow_notes_its_answer():
    """An update handler without @answers would have its answer held by the local activities after it."""
    from temporalio import workflow

    updates = workflow._Definition.from_class(ReportTestWorkflow).updates
    assert len(updates) >= 10
    assert [name for name, update in updates.items() if not getattr(update.fn, "notes_its_answer", False)] == []


async def test_failed_draft_leaves_manual_entry_and_refused_submission_can_retry(env):
    fakes = FakeActivities(draft_fails=True, empty_submission_phases=[PLANNING])
    queue = f"q-{uuid.uuid4().hex}"
    async with _worker(env, fakes, queue):
        handle = await env.client.start_workflow(
            ReportTestWorkflow.run,
            ReportWorkflowInput(1, 11, 21, skip_phases=[DATA_PROFILING, SCOPING], last_phase=SCOPING),
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


async def compensate_and_retry_scoping(env, handle) -> None:
    """Scoping fails beyond its retries twice: each time it is compensated and waits for an admin's retry."""
    from workflows.temporal.contracts import STATE_FAILED, UPDATE_RETRY_PHASE, RetryPhaseInput

    for _ in range(2):
        status = await _wait_state(env, handle, STATE_FAILED, SCOPING)
        assert "refused the recommendations" in status.last_error
        await handle.execute_update(UPDATE_RETRY_PHASE, RetryPhaseInput(SCOPING, 1, "fixed"), result_type=UpdateResult)
    await _wait_state(env, handle, State.AWAITING_SUBMISSION, SCOPING)
    version = await _submit(handle, SCOPING)
    await _decide(handle, SCOPING, version.version_id, approve=True)
    await handle.result()


async def test_a_phase_failing_beyond_its_retries_is_compensated_and_waits_for_the_admin(env):
    fakes = FakeActivities(recommend_failures=2)
    queue = f"q-{uuid.uuid4().hex}"
    async with _worker(env, fakes, queue):
        handle = await env.client.start_workflow(
            ReportTestWorkflow.run,
            ReportWorkflowInput(1, 12, 22, skip_phases=[PLANNING, DATA_PROFILING], last_phase=SCOPING),
            id=f"wf-{uuid.uuid4()}", task_queue=queue,
        )
        await compensate_and_retry_scoping(env, handle)

    # Each failure was compensated once (rollback of Scoping), then the phase ran again from its start.
    assert [c for c in fakes.calls if c[0] in ("compensate", "recommend")] == [
        ("recommend", 12), ("compensate", (12, SCOPING, "phase_failed", None)),
        ("recommend", 12), ("compensate", (12, SCOPING, "phase_failed", None)),
        ("recommend", 12),
    ]


async def test_cycle_workflow_starts_a_child_per_report_and_rejects_a_second_start(env):
    fakes = FakeActivities()
    queue = f"q-{uuid.uuid4().hex}"
    skip = [PLANNING, DATA_PROFILING, SCOPING]
    async with _worker(env, fakes, queue):
        inp = CycleWorkflowInput(
            cycle_id=7, cycle_reports=[CycleReportRef(70, 1), CycleReportRef(71, 2)], skip_phases=skip,
            last_phase=SCOPING,
        )
        wf_id = f"cycle-7-{uuid.uuid4().hex[:6]}"
        handle = await env.client.start_workflow(TestCycleWorkflow.run, inp, id=wf_id, task_queue=queue)
        from temporalio.exceptions import WorkflowAlreadyStartedError

        with pytest.raises(WorkflowAlreadyStartedError):
            await env.client.start_workflow(TestCycleWorkflow.run, inp, id=wf_id, task_queue=queue)
        result = await handle.result()

    # Every phase skipped: nothing was scoped, the reports simply completed.
    assert result.report_statuses == {"cycle-7-report-1": "completed", "cycle-7-report-2": "completed"}
    assert fakes.cycle_status == "completed"


def _after_scoping_input(cycle_report_id: int, **schedule) -> ReportWorkflowInput:
    return ReportWorkflowInput(
        1, cycle_report_id, cycle_report_id + 100,
        skip_phases=[PLANNING, DATA_PROFILING, SCOPING],
        schedule=RequestSchedule(**schedule),
    )


async def _event(handle, update: str, request_id: int) -> UpdateResult:
    return await handle.execute_update(
        update, RequestEventInput(str(uuid.uuid4()), request_id, user_id=5), result_type=UpdateResult
    )


async def test_parallel_step_then_requests_with_reminders_escalation_and_return(env):
    fakes = FakeActivities(owners_missing=["balance"])
    queue = f"q-{uuid.uuid4().hex}"
    async with _worker(env, fakes, queue):
        handle = await env.client.start_workflow(
            ReportTestWorkflow.run,
            _after_scoping_input(30, due_days=10, reminder_days_before=[3, 1], escalation_days_after=2,
                                 data_owner_sla_days=5),
            id=f"wf-{uuid.uuid4()}", task_queue=queue,
        )
        # Both phases of the step started before either finished (each may still be "starting" for a
        # moment after the other is ready: wait for both).
        both = {SAMPLE_SELECTION: State.AWAITING_SUBMISSION, DATA_OWNER_IDENTIFICATION: State.AWAITING_ASSIGNMENT}
        status = await _wait_active(env, handle, both)
        assert status.waiting_on == "Tester, Data Executive"
        starts = [c for c in fakes.calls if c[0] in ("start", "complete")]
        assert starts[:2] == [("start", SAMPLE_SELECTION), ("start", DATA_OWNER_IDENTIFICATION)] or \
            starts[:2] == [("start", DATA_OWNER_IDENTIFICATION), ("start", SAMPLE_SELECTION)]

        samples = await _submit(handle, SAMPLE_SELECTION)
        await _decide(handle, SAMPLE_SELECTION, samples.version_id, approve=True)
        await _wait_until(env, lambda: ("complete", SAMPLE_SELECTION) in fakes.calls)
        assert ("complete", DATA_OWNER_IDENTIFICATION) not in fakes.calls  # the join waits for it

        # Completing with an owner missing is refused; the SLA timer escalates after 5 days.
        refused = await _refused(handle.execute_update(
            "complete_data_owner_identification", CompleteDataOwnersInput("c1", 3), result_type=UpdateResult))
        assert "balance" in refused
        assert ("escalate_owners", 30) not in fakes.calls
        await env.sleep(timedelta(days=5, minutes=1))
        await _wait_until(env, lambda: ("escalate_owners", 30) in fakes.calls)
        fakes.owners_missing = []
        await handle.execute_update(
            "complete_data_owner_identification", CompleteDataOwnersInput("c2", 3), result_type=UpdateResult)

        # Requests: sent at once; request 501 is answered before any reminder.
        await _wait_until(env, lambda: ("notify", (502, "request")) in fakes.calls)
        fakes.request_status[501] = "submitted"
        await _event(handle, "request_submitted", 501)
        # 502 is chased: 3 and 1 days before, on the due date, then escalated 2 days after.
        await env.sleep(timedelta(days=13))
        await _wait_until(env, lambda: ("notify", (502, "escalation")) in fakes.calls)
        chased = [kind for kind_, (rid, kind) in [c for c in fakes.calls if c[0] == "notify"] if rid == 502]
        assert chased == ["request", "reminder-d3", "reminder-d1", "due", "escalation"]
        assert [kind for _, (rid, kind) in [c for c in fakes.calls if c[0] == "notify"] if rid == 501] == [
            "request"]

        # The tester returns 501: it goes back to the data owner, then is accepted.
        fakes.request_status[501] = "returned"
        await _event(handle, "request_reviewed", 501)
        assert (await _status(handle)).requests["501"] == "returned"
        fakes.request_status[501] = "submitted"
        await _event(handle, "request_submitted", 501)
        fakes.request_status[501] = "accepted"
        await _event(handle, "request_reviewed", 501)
        fakes.request_status[502] = "submitted"
        await _event(handle, "request_submitted", 502)
        fakes.request_status[502] = "accepted"
        await _event(handle, "request_reviewed", 502)

        status = await _wait_state(env, handle, State.AWAITING_SUBMISSION, TEST_EXECUTION)
        assert status.waiting_on == "Tester"
        assert status.completed_phases == [SAMPLE_SELECTION, DATA_OWNER_IDENTIFICATION, REQUEST_FOR_INFORMATION] \
            or status.completed_phases == [DATA_OWNER_IDENTIFICATION, SAMPLE_SELECTION, REQUEST_FOR_INFORMATION]
        assert ("matrix", 30) in fakes.calls
        await handle.terminate("test over")
        history = await handle.fetch_history()
    # The data owners' check runs in the executive's update, locally since PATCH_LOCAL_VERSIONS (twice here).
    from workflows.tests.record_histories import _local, _scheduled

    assert "data_owner_identification_check" in _local(history) - _scheduled(history)


async def test_answer_before_due_cancels_every_reminder(env):
    fakes = FakeActivities(requests=(601,))
    queue = f"q-{uuid.uuid4().hex}"
    async with _worker(env, fakes, queue):
        handle = await env.client.start_workflow(
            ReportTestWorkflow.run,
            ReportWorkflowInput(1, 40, 140, skip_phases=[PLANNING, DATA_PROFILING, SCOPING, SAMPLE_SELECTION,
                                                          DATA_OWNER_IDENTIFICATION]),
            id=f"wf-{uuid.uuid4()}", task_queue=queue,
        )
        await _wait_until(env, lambda: ("notify", (601, "request")) in fakes.calls)
        await env.sleep(timedelta(days=2))
        fakes.request_status[601] = "submitted"
        await _event(handle, "request_submitted", 601)
        # Past every timer: nothing more is sent while the tester reviews.
        await env.sleep(timedelta(days=30))
        assert [c for c in fakes.calls if c[0] == "notify"] == [("notify", (601, "request"))]
        with pytest.raises(WorkflowUpdateFailedError):
            await _event(handle, "request_submitted", 999)
        fakes.request_status[601] = "accepted"
        await _event(handle, "request_reviewed", 601)
        await _wait_state(env, handle, State.AWAITING_SUBMISSION, TEST_EXECUTION)
        await handle.terminate("test over")


async def test_a_request_answered_before_the_run_reached_its_phase_is_waited_for(env):
    """A worker lost the workflow task whose local activities entered Request for Information and created the
    requests (committed): the data owner answers one, and the new worker's run, replayed to before that task,
    has not reached the phase. The step is taken and applied once the requests are created, not refused
    after the person was told it was saved (PATCH_REQUEST_BEFORE_ENTRY)."""
    fakes = FakeActivities(requests=(701,))
    queue = f"q-{uuid.uuid4().hex}"
    async with _worker(env, fakes, queue):
        handle = await env.client.start_workflow(
            ReportTestWorkflow.run,
            ReportWorkflowInput(1, 42, 142, skip_phases=[PLANNING, DATA_PROFILING, SCOPING, SAMPLE_SELECTION]),
            id=f"wf-{uuid.uuid4()}", task_queue=queue,
        )
        await _wait_active(env, handle, {DATA_OWNER_IDENTIFICATION: State.AWAITING_ASSIGNMENT})
        fakes.request_status[701] = "submitted"
        answered = await handle.start_update(
            "request_submitted", RequestEventInput("d-701", 701, user_id=5, status="submitted"),
            wait_for_stage=WorkflowUpdateStage.ACCEPTED, result_type=UpdateResult,
        )
        await handle.execute_update(
            "complete_data_owner_identification", CompleteDataOwnersInput("c1", 3), result_type=UpdateResult)
        result = await answered.result()
        # The requests were created as the database had them then: this one submitted already.
        assert result.accepted and result.message == "Already applied: the request is submitted."
        assert (await _status(handle)).requests["701"] == "submitted"
        # One the requests' creation did not make is still refused, once they are made.
        with pytest.raises(WorkflowUpdateFailedError):
            await handle.execute_update("request_submitted", RequestEventInput("d-999", 999, 5, "submitted"),
                                        result_type=UpdateResult)
        await handle.terminate("test over")


async def test_a_request_step_for_a_run_that_stops_before_its_phase_is_refused_at_once(env):
    """A run whose last phase comes before Request for Information never reads requests: a step on one is
    refused, not left waiting (the run's end waits for every update handler)."""
    fakes = FakeActivities(requests=(702,))
    queue = f"q-{uuid.uuid4().hex}"
    async with _worker(env, fakes, queue):
        handle = await env.client.start_workflow(
            ReportTestWorkflow.run,
            ReportWorkflowInput(1, 43, 143, skip_phases=[PLANNING, DATA_PROFILING, SCOPING, SAMPLE_SELECTION],
                                last_phase=DATA_OWNER_IDENTIFICATION),
            id=f"wf-{uuid.uuid4()}", task_queue=queue,
        )
        await _wait_active(env, handle, {DATA_OWNER_IDENTIFICATION: State.AWAITING_ASSIGNMENT})
        with pytest.raises(WorkflowUpdateFailedError):  # refused, not taken to wait (a timeout here)
            await asyncio.wait_for(handle.execute_update(
                "request_submitted", RequestEventInput("d-702", 702, 5, "submitted"), result_type=UpdateResult), 30)
        await handle.execute_update(
            "complete_data_owner_identification", CompleteDataOwnersInput("c1", 3), result_type=UpdateResult)
        await asyncio.wait_for(handle.result(), 30)  # ends: nothing left waiting


async def test_a_request_split_off_by_a_reassignment_is_chased_and_waited_for(env):
    """Issue 7: request_added (a reassignment split a request) starts the new owner's timers; the phase
    does not complete until that request is accepted too."""
    fakes = FakeActivities(requests=(801, 802))
    queue = f"q-{uuid.uuid4().hex}"
    async with _worker(env, fakes, queue):
        handle = await env.client.start_workflow(
            ReportTestWorkflow.run,
            ReportWorkflowInput(1, 41, 141, skip_phases=[PLANNING, DATA_PROFILING, SCOPING, SAMPLE_SELECTION,
                                                          DATA_OWNER_IDENTIFICATION],
                                schedule=RequestSchedule(due_days=10, reminder_days_before=[3],
                                                         escalation_days_after=2)),
            id=f"wf-{uuid.uuid4()}", task_queue=queue,
        )
        await _wait_until(env, lambda: ("notify", (802, "request")) in fakes.calls)
        await env.sleep(timedelta(days=2))
        added = RequestAddedInput(str(uuid.uuid4()), 803, user_id=7, status="open", from_request_id=801)
        result = await handle.execute_update("request_added", added, result_type=UpdateResult)
        assert result.accepted and not result.duplicate
        again = await handle.execute_update("request_added", added, result_type=UpdateResult)
        assert again.duplicate
        fakes.request_status[803] = "open"
        await _wait_until(env, lambda: ("notify", (803, "request")) in fakes.calls)
        assert (await _status(handle)).requests["803"] == "open"

        # The first two are answered and accepted: the phase still waits for the one split off.
        for rid in (801, 802):
            fakes.request_status[rid] = "submitted"
            await _event(handle, "request_submitted", rid)
            fakes.request_status[rid] = "accepted"
            await _event(handle, "request_reviewed", rid)
        # Its reminder, due date and escalation come on the phase's timers (reminded 3 days before).
        await env.sleep(timedelta(days=11))
        await _wait_until(env, lambda: ("notify", (803, "escalation")) in fakes.calls)
        chased = [kind for _, (rid, kind) in [c for c in fakes.calls if c[0] == "notify"] if rid == 803]
        assert chased == ["request", "reminder-d3", "due", "escalation"]
        status = await _status(handle)
        assert status.active.get(REQUEST_FOR_INFORMATION) == State.AWAITING_EVIDENCE

        fakes.request_status[803] = "submitted"
        await _event(handle, "request_submitted", 803)
        fakes.request_status[803] = "accepted"
        await _event(handle, "request_reviewed", 803)
        await _wait_state(env, handle, State.AWAITING_SUBMISSION, TEST_EXECUTION)
        # Once the phase is over, nothing can be added to it.
        refused = await _refused(handle.execute_update(
            "request_added", RequestAddedInput(str(uuid.uuid4()), 804, user_id=7), result_type=UpdateResult))
        assert "not running" in refused
        await handle.terminate("test over")


async def _wait_until(env, predicate):
    for _ in range(200):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition never became true")


async def test_cancelling_the_cycle_cancels_each_report_and_says_so(env):
    fakes = FakeActivities()
    queue = f"q-{uuid.uuid4().hex}"
    async with _worker(env, fakes, queue):
        handle = await env.client.start_workflow(
            TestCycleWorkflow.run,
            CycleWorkflowInput(cycle_id=8, cycle_reports=[CycleReportRef(80, 1), CycleReportRef(81, 2)]),
            id=f"cycle-8-{uuid.uuid4().hex[:6]}", task_queue=queue,
        )
        child = env.client.get_workflow_handle("cycle-8-report-1")
        await _wait_state(env, child, State.AWAITING_SUBMISSION, PLANNING)
        await handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await handle.result()
    assert fakes.cycle_status == "cancelled"
    assert [c for c in fakes.calls if c[0] == "finish"] == [("finish", "cancelled"), ("finish", "cancelled")]


async def test_the_cycles_phase_sla_sets_the_data_owner_escalation_timer(env):
    fakes = FakeActivities(owners_missing=["balance"])
    queue = f"q-{uuid.uuid4().hex}"
    async with _worker(env, fakes, queue):
        inp = _after_scoping_input(50, data_owner_sla_days=5)
        inp.skip_phases.append(SAMPLE_SELECTION)
        inp.phase_settings = {DATA_OWNER_IDENTIFICATION: PhaseSettings(sla_days=2)}
        handle = await env.client.start_workflow(ReportTestWorkflow.run, inp, id=f"wf-{uuid.uuid4()}",
                                                 task_queue=queue)
        await _wait_state(env, handle, State.AWAITING_ASSIGNMENT, DATA_OWNER_IDENTIFICATION)
        await env.sleep(timedelta(days=1))
        assert ("escalate_owners", 50) not in fakes.calls
        await env.sleep(timedelta(days=1, minutes=1))
        await _wait_until(env, lambda: ("escalate_owners", 50) in fakes.calls)
        await handle.terminate("test over")
