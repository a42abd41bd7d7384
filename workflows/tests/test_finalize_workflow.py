"""Observations and Finalize in the report workflow, and cycle completion, with fake activities.

No database: the sign-off order, send-backs reopening what they name, the package
step, and a cycle that completes once every report is signed off or removed.
"""
from __future__ import annotations

import uuid

import pytest
from temporalio import activity
from temporalio.client import WorkflowUpdateFailedError

from workflows.temporal.contracts import (
    DATA_OWNER_IDENTIFICATION,
    DATA_PROFILING,
    FINALIZE,
    OBSERVATIONS,
    PLANNING,
    REQUEST_FOR_INFORMATION,
    SAMPLE_SELECTION,
    SCOPING,
    TEST_EXECUTION,
    Ack,
    ActivityName,
    BuildPackageInput,
    CycleReportRef,
    CycleWorkflowInput,
    DraftObservationsResult,
    FinalReportRef,
    GenerateReportInput,
    PackageRef,
    PhaseInput,
    RecordSignOffInput,
    RemoveReportInput,
    ReopenPhaseInput,
    ReportWorkflowInput,
    SignOffInput,
    SignOffRef,
    State,
    UpdateResult,
    WaitingOn,
    report_workflow_id,
)
from workflows.temporal.cycle_workflow import TestCycleWorkflow
from workflows.temporal.report_workflow import ReportTestWorkflow
from workflows.tests.test_report_workflow import (  # noqa: F401 (env is a fixture)
    FakeActivities,
    _decide,
    _status,
    _submit,
    _wait_state,
    _worker,
    env,
)

pytestmark = pytest.mark.temporal

BEFORE_OBSERVATIONS = [PLANNING, DATA_PROFILING, SCOPING, SAMPLE_SELECTION, DATA_OWNER_IDENTIFICATION,
                       REQUEST_FOR_INFORMATION, TEST_EXECUTION]


class FinalizeFakes(FakeActivities):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.reports = 0
        self.sign_offs = 0

    def all(self):
        @activity.defn(name=ActivityName.DRAFT_OBSERVATIONS)
        async def draft_observations(inp: PhaseInput) -> DraftObservationsResult:
            self.calls.append(("draft_observations", inp.cycle_report_id))
            return DraftObservationsResult(created=2, failed_cells=3)

        @activity.defn(name=ActivityName.OPEN_OBSERVATIONS)
        async def open_observations(inp: PhaseInput) -> Ack:
            self.calls.append(("open_observations", inp.cycle_report_id))
            return Ack()

        @activity.defn(name=ActivityName.GENERATE_FINAL_REPORT)
        async def generate(inp: GenerateReportInput) -> FinalReportRef:
            self.reports += 1
            self.calls.append(("generate", inp.generation))
            return FinalReportRef(final_report_id=700 + self.reports, number=self.reports)

        @activity.defn(name=ActivityName.RECORD_SIGN_OFF)
        async def record(inp: RecordSignOffInput) -> SignOffRef:
            self.sign_offs += 1
            self.calls.append(("sign_off", (inp.final_report_id, inp.role, inp.sign, inp.send_back_to)))
            return SignOffRef(sign_off_id=900 + self.sign_offs, role=inp.role,
                              decision="signed" if inp.sign else "sent_back")

        @activity.defn(name=ActivityName.REOPEN_PHASE)
        async def reopen(inp: ReopenPhaseInput) -> Ack:
            self.calls.append(("reopen", (inp.phase, inp.sign_off_id)))
            return Ack()

        @activity.defn(name=ActivityName.BUILD_PACKAGE)
        async def package(inp: BuildPackageInput) -> PackageRef:
            self.calls.append(("package", inp.final_report_id))
            return PackageRef(package_id=1, sha256="0" * 64, files=9)

        return [*super().all(), draft_observations, open_observations, generate, record, reopen, package]


def _sign(handle, role: str, sign: bool = True, send_back_to: str = "", notes: str = ""):
    return handle.execute_update(
        "sign_off", SignOffInput(str(uuid.uuid4()), role, user_id=3, sign=sign, send_back_to=send_back_to,
                                 notes=notes),
        result_type=UpdateResult,
    )


async def _refused(coro) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await coro
    return str(refused.value.cause)


async def _approve_observations(env, handle) -> None:
    await _wait_state(env, handle, State.AWAITING_SUBMISSION, OBSERVATIONS)
    version = await _submit(handle, OBSERVATIONS)
    await _decide(handle, OBSERVATIONS, version.version_id, approve=True)


async def test_observations_then_three_sign_offs_in_order_with_a_send_back(env):
    fakes = FinalizeFakes()
    queue = f"q-{uuid.uuid4().hex}"
    async with _worker(env, fakes, queue):
        handle = await env.client.start_workflow(
            ReportTestWorkflow.run, ReportWorkflowInput(1, 10, 20, skip_phases=BEFORE_OBSERVATIONS, last_phase=FINALIZE),
            id=f"wf-{uuid.uuid4()}", task_queue=queue)
        await _approve_observations(env, handle)

        status = await _wait_state(env, handle, State.AWAITING_TEST_MANAGER_SIGN_OFF, FINALIZE)
        assert status.waiting_on == WaitingOn.TEST_MANAGER
        # Out of order: refused until the one before exists.
        assert "signs after the test manager" in await _refused(_sign(handle, "report_owner"))
        assert "signs after the test manager" in await _refused(_sign(handle, "data_executive"))
        signed = await _sign(handle, "test_manager")
        assert "report owner signs next" in signed.message
        assert (await _status(handle)).waiting_on == WaitingOn.REPORT_OWNER
        assert "already signed" in await _refused(_sign(handle, "test_manager"))
        assert "signs after the report owner" in await _refused(_sign(handle, "data_executive"))
        # A send-back must name what it reopens, and say why.
        assert "names what it reopens" in await _refused(
            _sign(handle, "report_owner", sign=False, send_back_to=PLANNING, notes="x"))
        assert "notes are required" in await _refused(
            _sign(handle, "report_owner", sign=False, send_back_to=OBSERVATIONS))
        assert "was skipped" in await _refused(
            _sign(handle, "report_owner", sign=False, send_back_to=TEST_EXECUTION, notes="retest"))

        await _sign(handle, "report_owner", sign=False, send_back_to=OBSERVATIONS, notes="OBS-2 is high")
        # Observations reopen: the tester submits again, the owner approves, the report is regenerated.
        await _approve_observations(env, handle)
        await _wait_state(env, handle, State.AWAITING_TEST_MANAGER_SIGN_OFF, FINALIZE)
        await _sign(handle, "test_manager")
        await _sign(handle, "report_owner")
        await _wait_state(env, handle, State.AWAITING_DATA_EXECUTIVE_SIGN_OFF, FINALIZE)
        done = await _sign(handle, "data_executive")
        assert "signed off and sealed" in done.message
        result = await handle.result()

    assert result.status == "completed"
    assert result.completed_phases == [OBSERVATIONS, FINALIZE]
    steps = [c for c in fakes.calls if c[0] in (
        "draft_observations", "version", "decision", "open_observations", "generate", "sign_off", "reopen",
        "package", "finish")]
    assert steps == [
        ("draft_observations", 10),
        ("version", (OBSERVATIONS, 1)),
        ("decision", (OBSERVATIONS, 1, True)),
        ("open_observations", 10),
        ("generate", 1),
        ("sign_off", (701, "test_manager", True, "")),
        ("sign_off", (701, "report_owner", False, OBSERVATIONS)),
        ("reopen", (OBSERVATIONS, 902)),
        ("draft_observations", 10),
        ("version", (OBSERVATIONS, 2)),
        ("decision", (OBSERVATIONS, 2, True)),
        ("open_observations", 10),
        ("generate", 2),
        ("sign_off", (702, "test_manager", True, "")),
        ("sign_off", (702, "report_owner", True, "")),
        ("sign_off", (702, "data_executive", True, "")),
        ("package", 702),
        ("finish", "completed"),
    ]


async def test_send_back_of_the_report_itself_regenerates_it_without_reopening_phases(env):
    fakes = FinalizeFakes()
    queue = f"q-{uuid.uuid4().hex}"
    async with _worker(env, fakes, queue):
        handle = await env.client.start_workflow(
            ReportTestWorkflow.run,
            ReportWorkflowInput(1, 12, 22, skip_phases=[*BEFORE_OBSERVATIONS, OBSERVATIONS], last_phase=FINALIZE),
            id=f"wf-{uuid.uuid4()}", task_queue=queue)
        await _wait_state(env, handle, State.AWAITING_TEST_MANAGER_SIGN_OFF, FINALIZE)
        assert "was skipped" in await _refused(
            _sign(handle, "test_manager", sign=False, send_back_to=OBSERVATIONS, notes="x"))
        await _sign(handle, "test_manager", sign=False, send_back_to=FINALIZE, notes="Wrong period on the cover")
        await _wait_state(env, handle, State.AWAITING_TEST_MANAGER_SIGN_OFF, FINALIZE)
        for role in ("test_manager", "report_owner", "data_executive"):
            await _sign(handle, role)
        result = await handle.result()
    assert result.status == "completed"
    assert [c for c in fakes.calls if c[0] in ("generate", "reopen")] == [("generate", 1), ("generate", 2)]


async def test_cycle_completes_when_every_report_is_signed_off_or_removed(env):
    fakes = FinalizeFakes()
    queue = f"q-{uuid.uuid4().hex}"
    cycle_id = 40_000 + uuid.uuid4().int % 10_000
    async with _worker(env, fakes, queue):
        handle = await env.client.start_workflow(
            TestCycleWorkflow.run,
            CycleWorkflowInput(cycle_id, [CycleReportRef(1, 101), CycleReportRef(2, 102)],
                               skip_phases=[*BEFORE_OBSERVATIONS, OBSERVATIONS], last_phase=FINALIZE),
            id=f"cycle-{uuid.uuid4()}", task_queue=queue)
        first = env.client.get_workflow_handle(report_workflow_id(cycle_id, 101))
        second = env.client.get_workflow_handle(report_workflow_id(cycle_id, 102))
        await _wait_state(env, first, State.AWAITING_TEST_MANAGER_SIGN_OFF, FINALIZE)
        await _wait_state(env, second, State.AWAITING_TEST_MANAGER_SIGN_OFF, FINALIZE)

        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update("remove_report", RemoveReportInput("r0", 99, 1), result_type=UpdateResult)
        assert "not part of this cycle" in str(refused.value.cause)
        removed = await handle.execute_update("remove_report", RemoveReportInput("r1", 2, 1),
                                              result_type=UpdateResult)
        assert "no longer waits" in removed.message
        # Asked again (a redelivery after a crash): already applied, not refused.
        twice = await handle.execute_update("remove_report", RemoveReportInput("r2", 2, 1), result_type=UpdateResult)
        assert twice.duplicate and twice.message.startswith("Already applied")

        for role in ("test_manager", "report_owner", "data_executive"):
            await _sign(first, role)
        result = await handle.result()

    assert fakes.cycle_status == "completed"
    assert result.report_statuses == {report_workflow_id(cycle_id, 101): "completed",
                                      report_workflow_id(cycle_id, 102): "removed"}
    assert ("finish", "cancelled") in fakes.calls  # the removed report's workflow recorded its end
    # Then the cycle compensated the phase it stopped in (empty: the activity reads it from the report).
    compensations = [c for c in fakes.calls if c[0] == "compensate"]
    assert compensations == [("compensate", (2, "", "report_removed", 1))]
    assert fakes.calls.index(("finish", "cancelled")) < fakes.calls.index(compensations[0])


async def test_a_send_back_to_test_execution_reopens_it_and_observations_then_regenerates(env):
    fakes = FinalizeFakes()
    queue = f"q-{uuid.uuid4().hex}"
    before = [p for p in BEFORE_OBSERVATIONS if p != TEST_EXECUTION]
    async with _worker(env, fakes, queue):
        handle = await env.client.start_workflow(
            ReportTestWorkflow.run, ReportWorkflowInput(1, 14, 24, skip_phases=before, last_phase=FINALIZE),
            id=f"wf-{uuid.uuid4()}", task_queue=queue)
        for _ in range(2):
            await _wait_state(env, handle, State.AWAITING_SUBMISSION, TEST_EXECUTION)
            version = await _submit(handle, TEST_EXECUTION)
            await _decide(handle, TEST_EXECUTION, version.version_id, approve=True)
            await _approve_observations(env, handle)
            await _wait_state(env, handle, State.AWAITING_TEST_MANAGER_SIGN_OFF, FINALIZE)
            if fakes.reports == 1:
                await _sign(handle, "test_manager", sign=False, send_back_to=TEST_EXECUTION,
                            notes="S-002 was tested against the wrong ledger")
        for role in ("test_manager", "report_owner", "data_executive"):
            await _sign(handle, role)
        result = await handle.result()
    assert result.status == "completed"
    assert [c for c in fakes.calls if c[0] in ("reopen", "generate")] == [
        ("generate", 1), ("reopen", (TEST_EXECUTION, 901)), ("reopen", (OBSERVATIONS, 901)), ("generate", 2)]
    assert [c[1] for c in fakes.calls if c[0] == "version"] == [
        (TEST_EXECUTION, 1), (OBSERVATIONS, 1), (TEST_EXECUTION, 2), (OBSERVATIONS, 2)]
