"""Updates that could wait forever or be refused after the phase moved on (issue 10), with fake activities.

An update waiting to claim a phase must end when the phase moves on without it, answered
"already applied" when its effect is there; a step redelivered after a crash (the same decision
id, another update id) is answered as already applied in every phase, never refused or applied twice.
"""
from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from temporalio import activity
from temporalio.worker import Worker

from workflows.temporal.contracts import (
    DATA_OWNER_IDENTIFICATION,
    DATA_PROFILING,
    FINALIZE,
    PLANNING,
    SAMPLE_SELECTION,
    SCOPING,
    UPDATE_COMPLETE_DATA_OWNERS,
    ActivityName,
    CompleteDataOwnersInput,
    DataOwnersCheck,
    EnterPhaseInput,
    PhaseInput,
    PhaseTransitionResult,
    RegisterPopulationInput,
    ReportWorkflowInput,
    SignOffInput,
    State,
    SubmitVersionInput,
    UpdateResult,
)
from workflows.temporal.report_workflow import ReportTestWorkflow
from workflows.tests.test_finalize_workflow import BEFORE_OBSERVATIONS, FinalizeFakes, _approve_observations
from workflows.tests.test_report_workflow import (  # noqa: F401 - the module's environment fixture
    FakeActivities,
    _decide,
    _refused,
    _status,
    _wait_state,
    _worker,
    env,
)

pytestmark = pytest.mark.temporal

# How long an update that should be answered at once may take before the test calls it stuck.
STUCK = 60


class GatedOwnersCheck(FakeActivities):
    """CHECK_DATA_OWNERS waits for the test's gate, so a second update can arrive meanwhile."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.checking = asyncio.Event()
        self.gate = asyncio.Event()
        self.checks = 0

    def all(self):
        @activity.defn(name=ActivityName.CHECK_DATA_OWNERS)
        async def check(inp: PhaseInput) -> DataOwnersCheck:
            self.checks += 1
            self.checking.set()
            await self.gate.wait()
            return DataOwnersCheck(complete=True, missing=[])

        others = [a for a in super().all()
                  if activity._Definition.must_from_callable(a).name != ActivityName.CHECK_DATA_OWNERS]
        return [*others, check]


async def test_an_owners_step_arriving_while_another_completes_the_phase_is_already_applied(env):
    """The data executive's step arrives while another delivery of it is checking the owners: it used
    to be refused as busy (the decision stored as a refusal although its effect happened) and, had it
    waited, would have waited forever once the phase completed; now it waits for the other one and
    is answered as already applied."""
    fakes = GatedOwnersCheck()
    queue = f"q-{uuid.uuid4().hex}"
    inp = ReportWorkflowInput(1, 90, 190, skip_phases=[PLANNING, DATA_PROFILING, SCOPING, SAMPLE_SELECTION],
                              last_phase=DATA_OWNER_IDENTIFICATION)
    async with Worker(env.client, task_queue=queue, workflows=[ReportTestWorkflow], activities=fakes.all(),
                      activity_executor=ThreadPoolExecutor(2)):
        handle = await env.client.start_workflow(ReportTestWorkflow.run, inp, id=f"wf-{uuid.uuid4()}",
                                                 task_queue=queue)
        await _wait_state(env, handle, State.AWAITING_ASSIGNMENT, DATA_OWNER_IDENTIFICATION)
        first = asyncio.ensure_future(handle.execute_update(
            UPDATE_COMPLETE_DATA_OWNERS, CompleteDataOwnersInput("o1", 3), result_type=UpdateResult))
        await asyncio.wait_for(fakes.checking.wait(), STUCK)
        second = asyncio.ensure_future(handle.execute_update(
            UPDATE_COMPLETE_DATA_OWNERS, CompleteDataOwnersInput("o2", 3), result_type=UpdateResult))
        await asyncio.sleep(1)  # the second reaches the workflow while the first is still checking
        fakes.gate.set()
        done = await asyncio.wait_for(first, STUCK)
        repeat = await asyncio.wait_for(second, STUCK)
        result = await asyncio.wait_for(handle.result(), STUCK)
    assert (done.duplicate, repeat.duplicate) == (False, True)
    assert repeat.message.startswith("Already applied")
    assert fakes.checks == 1
    assert DATA_OWNER_IDENTIFICATION in result.completed_phases


async def _wait_until_phase(env, handle, phase: str) -> None:
    for _ in range(200):
        if (await _status(handle)).phase == phase:
            return
        await env.sleep(0.05)
    raise AssertionError(f"the workflow never reached {phase}")


async def test_a_submission_redelivered_after_the_phase_moved_on_is_already_applied(env):
    fakes = FakeActivities()
    queue = f"q-{uuid.uuid4().hex}"
    async with _worker(env, fakes, queue):
        handle = await env.client.start_workflow(
            ReportTestWorkflow.run,
            ReportWorkflowInput(1, 91, 191, skip_phases=[PLANNING, DATA_PROFILING], last_phase=SAMPLE_SELECTION),
            id=f"wf-{uuid.uuid4()}", task_queue=queue,
        )
        await _wait_state(env, handle, State.AWAITING_SUBMISSION, SCOPING)

        async def submit(decision_id: str) -> UpdateResult:
            return await handle.execute_update(
                "submit_version", SubmitVersionInput(decision_id, SCOPING, user_id=1), result_type=UpdateResult)

        first = await submit("s1")
        await _decide(handle, SCOPING, first.version_id, approve=False, notes="more")
        # Sent back: the phase waits for a submission again; the first one redelivered makes no new version.
        again = await submit("s1")
        assert (again.duplicate, again.version_id) == (True, first.version_id)
        second = await submit("s2")
        assert not second.duplicate and second.version_id != first.version_id
        await _decide(handle, SCOPING, second.version_id, approve=True)
        await _wait_until_phase(env, handle, SAMPLE_SELECTION)
        # Scoping is over: a redelivery is still answered, not refused as "not in scoping now".
        late = await submit("s2")
        await handle.terminate("test over")
    assert (late.duplicate, late.version_id) == (True, second.version_id)
    assert [c for c in fakes.calls if c[0] == "version"] == [("version", (SCOPING, 1)), ("version", (SCOPING, 2))]


async def test_a_population_file_redelivered_is_already_applied_not_profiled_again(env):
    fakes = FakeActivities()
    queue = f"q-{uuid.uuid4().hex}"
    async with _worker(env, fakes, queue):
        handle = await env.client.start_workflow(
            ReportTestWorkflow.run,
            ReportWorkflowInput(1, 92, 192, skip_phases=[PLANNING], last_phase=DATA_PROFILING),
            id=f"wf-{uuid.uuid4()}", task_queue=queue,
        )
        await _wait_state(env, handle, State.AWAITING_UPLOAD, DATA_PROFILING)

        async def register(decision_id: str, file_id: int) -> UpdateResult:
            return await handle.execute_update(
                "register_population", RegisterPopulationInput(decision_id, file_id, user_id=1),
                result_type=UpdateResult)

        assert not (await register("p1", 11)).duplicate
        repeat = await register("p1", 11)
        assert repeat.duplicate and repeat.message.startswith("Already applied")
        assert not (await register("p2", 12)).duplicate  # a replacement is still profiled
        assert (await _status(handle)).state == State.AWAITING_SUBMISSION
        await handle.terminate("test over")
    assert [c for c in fakes.calls if c[0] == "profile"] == [("profile", 11), ("profile", 12)]


async def test_a_sign_off_redelivered_is_already_applied_and_a_new_one_still_refused(env):
    fakes = FinalizeFakes()
    queue = f"q-{uuid.uuid4().hex}"
    async with _worker(env, fakes, queue):
        handle = await env.client.start_workflow(
            ReportTestWorkflow.run, ReportWorkflowInput(1, 93, 193, skip_phases=BEFORE_OBSERVATIONS,
                                                        last_phase=FINALIZE),
            id=f"wf-{uuid.uuid4()}", task_queue=queue)
        await _approve_observations(env, handle)
        await _wait_state(env, handle, State.AWAITING_TEST_MANAGER_SIGN_OFF, FINALIZE)

        async def sign(decision_id: str, role: str) -> UpdateResult:
            return await handle.execute_update("sign_off", SignOffInput(decision_id, role, user_id=3),
                                               result_type=UpdateResult)

        assert not (await sign("m1", "test_manager")).duplicate
        repeat = await sign("m1", "test_manager")
        assert repeat.duplicate and repeat.message.startswith("Already applied")
        # Another test manager's step (another decision) is still refused: the role has signed.
        assert "already signed" in await _refused(sign("m2", "test_manager"))
        await sign("o1", "report_owner")
        # The report owner has signed since: the test manager's step redelivered is still answered.
        assert (await sign("m1", "test_manager")).duplicate
        await sign("e1", "data_executive")
        await handle.result()
    assert fakes.sign_offs == 3


async def test_an_observations_submission_redelivered_after_approval_is_already_applied(env):
    fakes = FinalizeFakes()
    queue = f"q-{uuid.uuid4().hex}"
    async with _worker(env, fakes, queue):
        handle = await env.client.start_workflow(
            ReportTestWorkflow.run, ReportWorkflowInput(1, 94, 194, skip_phases=BEFORE_OBSERVATIONS,
                                                        last_phase=FINALIZE),
            id=f"wf-{uuid.uuid4()}", task_queue=queue)
        await _wait_state(env, handle, State.AWAITING_SUBMISSION, "observations")
        version = await handle.execute_update(
            "submit_version", SubmitVersionInput("obs-1", "observations", user_id=1), result_type=UpdateResult)
        await _decide(handle, "observations", version.version_id, approve=True)
        await _wait_state(env, handle, State.AWAITING_TEST_MANAGER_SIGN_OFF, FINALIZE)
        late = await handle.execute_update(
            "submit_version", SubmitVersionInput("obs-1", "observations", user_id=1), result_type=UpdateResult)
        await handle.terminate("test over")
    assert (late.duplicate, late.version_id) == (True, version.version_id)


async def test_the_cycle_workflows_database_writes_time_out_in_seconds_not_300(env):
    """A task given to a worker that died is retried after the database timeout, not after 300 s."""
    from temporalio.api.enums.v1 import EventType

    from workflows.temporal.contracts import CycleReportRef, CycleWorkflowInput
    from workflows.temporal.cycle_workflow import TestCycleWorkflow

    fakes = FakeActivities()
    queue = f"q-{uuid.uuid4().hex}"
    async with _worker(env, fakes, queue):
        handle = await env.client.start_workflow(
            TestCycleWorkflow.run,
            CycleWorkflowInput(50_000 + uuid.uuid4().int % 10_000, [CycleReportRef(1, 101)],
                               skip_phases=[PLANNING], last_phase=PLANNING),
            id=f"cycle-{uuid.uuid4()}", task_queue=queue)
        await handle.result()
    scheduled = [e.activity_task_scheduled_event_attributes async for e in handle.fetch_history_events()
                 if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED]
    assert [s.activity_type.name for s in scheduled] == [ActivityName.SET_CYCLE_STATUS]
    assert fakes.cycle_status == "completed"
    assert scheduled[0].start_to_close_timeout.ToSeconds() == 10


class GatedEnter(FakeActivities):
    """Entering `phase` records it (as the real activity commits the phase as open) and then waits for the gate."""

    def __init__(self, phase: str, **kwargs):
        super().__init__(**kwargs)
        self.phase = phase
        self.entering = asyncio.Event()
        self.gate = asyncio.Event()

    def all(self):
        @activity.defn(name=ActivityName.ENTER_PHASE)
        async def enter(inp: EnterPhaseInput) -> PhaseTransitionResult:
            self.calls.append(("enter", (inp.phase, inp.skipped)))
            if inp.phase == self.phase and not inp.skipped:
                self.entering.set()
                await self.gate.wait()
            return PhaseTransitionResult(inp.cycle_report_id, inp.from_phase, inp.phase, inp.skipped)

        others = [a for a in super().all() if activity._Definition.must_from_callable(a).name != ActivityName.ENTER_PHASE]
        return [*others, enter]


@pytest.mark.parametrize("phase", [DATA_PROFILING, DATA_OWNER_IDENTIFICATION])
async def test_a_step_sent_while_its_phase_is_being_entered_waits_for_it(env, phase):
    """The database shows the phase open once the entering activity commits, before the workflow has its
    result: the population file registered or the data owners completed in that moment used to be refused
    ("The report is in Planning, not Data Profiling"); now it is taken and carried out once the phase is open."""
    fakes = GatedEnter(phase)
    queue = f"q-{uuid.uuid4().hex}"
    skip = [p for p in (PLANNING, DATA_PROFILING, SCOPING, SAMPLE_SELECTION) if p != phase]
    inp = ReportWorkflowInput(1, 90, 190, skip_phases=skip, last_phase=phase)
    async with Worker(env.client, task_queue=queue, workflows=[ReportTestWorkflow], activities=fakes.all(),
                      activity_executor=ThreadPoolExecutor(2)):
        handle = await env.client.start_workflow(ReportTestWorkflow.run, inp, id=f"wf-{uuid.uuid4()}",
                                                 task_queue=queue)
        await asyncio.wait_for(fakes.entering.wait(), STUCK)
        if phase == DATA_PROFILING:
            step = handle.execute_update("register_population", RegisterPopulationInput("d1", 14, 1),
                                         result_type=UpdateResult)
        else:
            step = handle.execute_update(UPDATE_COMPLETE_DATA_OWNERS, CompleteDataOwnersInput("o1", 3),
                                         result_type=UpdateResult)
        sent = asyncio.ensure_future(step)
        await asyncio.sleep(1)  # the step reaches the workflow while the phase is still being entered
        assert not sent.done()
        fakes.gate.set()
        result = await asyncio.wait_for(sent, STUCK)
        assert result.accepted and not result.duplicate, result.message
        if phase == DATA_PROFILING:
            assert result.message.startswith("Profiled")
            assert (await _status(handle)).active[DATA_PROFILING] == State.AWAITING_SUBMISSION
            await handle.terminate("test over")
        else:
            done = await asyncio.wait_for(handle.result(), STUCK)
            assert DATA_OWNER_IDENTIFICATION in done.completed_phases
