"""The workflow of one report in a cycle: the order of its phases, its status, and its end.

Each phase's steps and Updates live in workflows.temporal.phases (one module
per phase); this class combines them and is the one place that orders them.
Imports only temporalio, the standard library and contracts: it runs in
Temporal's sandbox and must be deterministic.
"""
from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.exceptions import ActivityError, is_cancelled_exception

from workflows.temporal.contracts import (
    DATA_OWNER_IDENTIFICATION,
    DATA_PROFILING,
    FINALIZE,
    OBSERVATIONS,
    PHASE_ORDER,
    PHASE_STEPS,
    PLANNING,
    QUERY_STATUS,
    REPORT_WORKFLOW_TYPE,
    REQUEST_FOR_INFORMATION,
    SAMPLE_SELECTION,
    SCOPING,
    STATE_FAILED,
    TEST_EXECUTION,
    WAITING_ON_ADMIN,
    Ack,
    ActivityName,
    EnterPhaseInput,
    FinishReportInput,
    PhaseInput,
    PhaseTransitionResult,
    ReportStatus,
    ReportStatusInput,
    ReportWorkflowInput,
    ReportWorkflowResult,
    State,
    TestProgress,
    WaitingOn,
    WorkflowFinishedResult,
)

with workflow.unsafe.imports_passed_through():
    # The converter outside the sandbox raises this class: the workflow must see the same one.
    from workflows.temporal.converter import UndecodablePayload
from workflows.temporal.compensation import CompensationSteps
from workflows.temporal.phases.data_owners import DataOwnerSteps
from workflows.temporal.phases.finalize import FinalizeSteps
from workflows.temporal.phases.observations import ObservationSteps
from workflows.temporal.phases.planning import PlanningSteps
from workflows.temporal.phases.profiling import DataProfilingSteps
from workflows.temporal.phases.requests import RequestSteps
from workflows.temporal.phases.sampling import SampleSelectionSteps
from workflows.temporal.phases.scoping import ScopingSteps
from workflows.temporal.phases.test_execution import TestExecutionSteps

WAITING_ON = {
    State.STARTING: WaitingOn.SYSTEM,
    State.DRAFTING: WaitingOn.SYSTEM,
    State.AWAITING_SUBMISSION: WaitingOn.TESTER,
    State.SUBMITTING: WaitingOn.SYSTEM,
    State.AWAITING_DECISION: WaitingOn.REPORT_OWNER,
    State.DECIDING: WaitingOn.SYSTEM,
    State.AWAITING_UPLOAD: WaitingOn.TESTER,
    State.PROFILING: WaitingOn.SYSTEM,
    State.AWAITING_ASSIGNMENT: WaitingOn.DATA_EXECUTIVE,
    State.AWAITING_EVIDENCE: WaitingOn.DATA_OWNER,
    State.AWAITING_TEST_EXECUTION: WaitingOn.TESTER,
    State.AWAITING_EXTENSION_DECISION: WaitingOn.REPORT_OWNER,
    State.AWAITING_TEST_MANAGER_SIGN_OFF: WaitingOn.TEST_MANAGER,
    State.AWAITING_REPORT_OWNER_SIGN_OFF: WaitingOn.REPORT_OWNER,
    State.AWAITING_DATA_EXECUTIVE_SIGN_OFF: WaitingOn.DATA_EXECUTIVE,
    State.PACKAGING: WaitingOn.SYSTEM,
    State.COMPLETED: WaitingOn.NOBODY,
    STATE_FAILED: WAITING_ON_ADMIN,
}

# What the report is called once this phase is its last completed one.
STATUS_AFTER = {SCOPING: "scoped", FINALIZE: "completed"}
# workflow.patched id of recording a cancel that arrives during an activity (before it, the run just failed).
PATCH_FINISH_CANCELLED_IN_ACTIVITY = "finish-report-cancelled-in-activity"


@workflow.defn(name=REPORT_WORKFLOW_TYPE, failure_exception_types=[UndecodablePayload])
class ReportTestWorkflow(
    PlanningSteps, DataProfilingSteps, ScopingSteps, SampleSelectionSteps, DataOwnerSteps, RequestSteps,
    TestExecutionSteps, ObservationSteps, FinalizeSteps, CompensationSteps,
):
    """Runs one report through its phases (PHASE_STEPS up to input.last_phase).

    Sample Selection and Data Owner Identification run in parallel and join
    before Requests for Information. Test Execution prepares the matrix, waits
    for its submission and approval, and may extend the sample on failure.
    Observations are drafted from failed cells and reviewed like the other
    reviewed phases; Finalize generates the report, waits for the three
    sign-offs in order (a send-back reopens what it names and the report is
    generated again) and builds the sealed package.

    Query:
      status -> ReportStatus: phase, state, who it waits on, every active phase.
    Updates (each with a validator that refuses what the current state doesn't
    expect; the caller learns at once):
      submit_version(SubmitVersionInput): the tester freezes a reviewed phase's
        working data as a new submitted version.
      decide_version(DecideVersionInput): the report owner approves the
        submitted version or sends it back with notes.
      register_population(RegisterPopulationInput): profile an uploaded file.
      complete_data_owner_identification(CompleteDataOwnersInput): every
        in-scope attribute has a data owner.
      request_submitted(RequestEventInput): a data owner submitted evidence.
      request_added(RequestAddedInput): a data owner reassignment split a
        request; the new one is chased like the others.
      request_reviewed(RequestEventInput): the tester accepted or returned it.
      retry_phase(RetryPhaseInput): an admin runs a phase that failed beyond its
        retries (and was compensated) again from its start.
      decide_sample_extension(DecideExtensionInput): the report owner approves
        or rejects more samples proposed when Test Execution failures exceed
        what the sample size allows.
      sign_off(SignOffInput): the test manager, report owner and data executive
        sign the final report in that order, or send it back naming what reopens.
    Timers: the data owner SLA (escalation), and per request the reminders
    before and on the due date and the escalation after it, each cancelled by
    the answer.
    """

    @workflow.init
    def __init__(self, inp: ReportWorkflowInput) -> None:
        self._input = inp
        self._phase = ""
        self._states: dict[str, str] = {}
        self._versions: dict[str, int] = {}
        self._errors: dict[str, str] = {}
        self._approved: set[str] = set()
        self._profiled = False
        self._owners_complete = False
        self._requests: dict[int, str] = {}
        self._added_chases: list = []
        self._rfi_due = None
        self._completed: list[str] = []
        self._skipped: list[str] = []
        self._claimed: set[str] = set()
        self._retry_requested: set[str] = set()
        # Test Execution
        self._test_progress = TestProgress()
        self._extension_id = 0
        self._extension_number = 0
        self._extension_requests: list[int] = []
        self._extension_decisions: dict[int, bool] = {}
        self._deciding_extension = 0
        self._generation = 0
        self._final_report_id: int | None = None
        self._signatures: dict[str, int] = {}
        self._send_back: tuple[str, int] | None = None
        self._package_id: int | None = None
        self._decided: dict[int, bool] = {}
        self._signed_decisions: set[str] = set()
        self._submitted: dict[str, int] = {}
        self._submitting: dict[str, int] = {}
        self._registered_files: set[int] = set()
        self._entering: set[str] = set()

    # --- phase transitions ----------------------------------------------------

    async def _enter(self, phase: str, *, skipped: bool = False, set_current: bool = True) -> None:
        # The activity commits the phase as open before the workflow has its result: a step a person takes
        # on that phase meanwhile is taken and waits for it (see _entering in PhaseSteps), not refused.
        if not skipped:
            self._entering.add(phase)
        try:
            await self._activity(
                ActivityName.ENTER_PHASE,
                EnterPhaseInput(
                    cycle_report_id=self._input.cycle_report_id, phase=phase, from_phase=self._phase,
                    skipped=skipped, set_current=set_current,
                ),
                PhaseTransitionResult,
            )
        finally:
            self._entering.discard(phase)
        if skipped:
            self._skipped.append(phase)
            return
        if set_current:
            self._phase = phase
        self._states[phase] = State.STARTING

    async def _complete(self, phase: str) -> None:
        await self._activity(
            ActivityName.COMPLETE_PHASE, PhaseInput(cycle_report_id=self._input.cycle_report_id, phase=phase), Ack
        )
        self._states.pop(phase, None)
        self._completed.append(phase)
        status = STATUS_AFTER.get(phase)
        if status:
            await self._activity(
                ActivityName.SET_REPORT_STATUS,
                ReportStatusInput(cycle_report_id=self._input.cycle_report_id, status=status, phase=phase),
                Ack,
            )

    async def _run_phase(self, phase: str, *, set_current: bool = True) -> None:
        if phase in self._input.skip_phases:
            await self._enter(phase, skipped=True)
            return
        await self._enter(phase, set_current=set_current)
        await self._run_compensated(phase)
        await self._complete(phase)

    # --- run -----------------------------------------------------------------

    async def _run_steps(self, inp: ReportWorkflowInput) -> None:
        last = PHASE_ORDER.index(inp.last_phase)
        for step in PHASE_STEPS:
            phases = [p for p in step if PHASE_ORDER.index(p) <= last]
            if not phases:
                break
            if len(phases) == 1:
                await self._run_phase(phases[0])
            else:
                # The first phase that runs becomes the report's current phase.
                running = [p for p in phases if p not in inp.skip_phases]
                current = running[0] if running else None
                await asyncio.gather(*(self._run_phase(p, set_current=(p == current)) for p in phases))

    @workflow.run
    async def run(self, inp: ReportWorkflowInput) -> ReportWorkflowResult:
        self._runners = {
            PLANNING: self._planning,
            DATA_PROFILING: self._data_profiling,
            SCOPING: self._scoping,
            SAMPLE_SELECTION: self._sample_selection,
            DATA_OWNER_IDENTIFICATION: self._data_owner_identification,
            REQUEST_FOR_INFORMATION: self._request_for_information,
            TEST_EXECUTION: self._test_execution,
            OBSERVATIONS: self._observations,
            FINALIZE: self._finalize,
        }
        try:
            await self._run_steps(inp)
        except (asyncio.CancelledError, ActivityError) as err:
            # A cancel that arrives during an activity surfaces as that activity's cancellation.
            if isinstance(err, ActivityError) and not (
                is_cancelled_exception(err) and workflow.patched(PATCH_FINISH_CANCELLED_IN_ACTIVITY)
            ):
                raise
            # Cancelled with its cycle (or removed from it): say so on the report before the workflow ends.
            self._states.clear()
            await self._activity(
                ActivityName.FINISH_REPORT,
                FinishReportInput(cycle_report_id=inp.cycle_report_id, status="cancelled", phase=self._phase),
                WorkflowFinishedResult,
            )
            raise
        done = [p for p in self._completed if p in STATUS_AFTER]
        status = STATUS_AFTER[done[-1]] if done else "completed"
        await self._activity(
            ActivityName.FINISH_REPORT,
            FinishReportInput(cycle_report_id=inp.cycle_report_id, status=status, phase=self._phase),
            WorkflowFinishedResult,
        )
        await workflow.wait_condition(workflow.all_handlers_finished)
        return ReportWorkflowResult(
            cycle_report_id=inp.cycle_report_id,
            status=status,
            completed_phases=list(self._completed),
            skipped_phases=list(self._skipped),
        )

    # --- query ---------------------------------------------------------------

    @workflow.query(name=QUERY_STATUS)
    def status(self) -> ReportStatus:
        state = self._states.get(self._phase, State.COMPLETED if self._phase else State.STARTING)
        waiting = [WAITING_ON[self._states[p]] for p in PHASE_ORDER if p in self._states and WAITING_ON[self._states[p]]]
        return ReportStatus(
            cycle_report_id=self._input.cycle_report_id,
            phase=self._phase,
            state=state,
            waiting_on=", ".join(dict.fromkeys(waiting)) if len(self._states) > 1 else WAITING_ON[state],
            current_version_id=self._versions.get(self._phase),
            completed_phases=list(self._completed),
            skipped_phases=list(self._skipped),
            last_error=self._errors.get(self._phase, ""),
            active={p: self._states[p] for p in PHASE_ORDER if p in self._states},
            requests={str(k): v for k, v in self._requests.items()},
            test_progress={"total": self._test_progress.total, "done": self._test_progress.done,
                           **self._test_progress.counts},
            pending_extension_id=self._extension_id,
            versions=dict(self._versions),
            final_report_id=self._final_report_id or 0,
            signatures=list(self._signatures),
        )
