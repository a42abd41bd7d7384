"""The workflow of one report in a cycle: its phases, in order, with human steps.

Imports only temporalio, the standard library and contracts: it runs in
Temporal's sandbox and must be deterministic.
"""
from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

from workflows.temporal import retry
from workflows.temporal.contracts import (
    DATA_PROFILING,
    PHASE_ORDER,
    PLANNING,
    REPORT_WORKFLOW_TYPE,
    REVIEWED_PHASES,
    SCOPING,
    UPDATE_DECIDE_VERSION,
    UPDATE_REGISTER_POPULATION,
    UPDATE_SUBMIT_VERSION,
    QUERY_STATUS,
    ActivityName,
    CreateVersionInput,
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
    ReportWorkflowResult,
    State,
    SubmitVersionInput,
    UpdateResult,
    VersionRef,
    WaitingOn,
    WorkflowFinishedResult,
)

WAITING_ON = {
    State.STARTING: WaitingOn.SYSTEM,
    State.DRAFTING: WaitingOn.SYSTEM,
    State.AWAITING_SUBMISSION: WaitingOn.TESTER,
    State.SUBMITTING: WaitingOn.SYSTEM,
    State.AWAITING_DECISION: WaitingOn.REPORT_OWNER,
    State.DECIDING: WaitingOn.SYSTEM,
    State.AWAITING_UPLOAD: WaitingOn.TESTER,
    State.PROFILING: WaitingOn.SYSTEM,
    State.COMPLETED: WaitingOn.NOBODY,
}

# What the report is called when this run's last phase is done.
FINAL_STATUS = {SCOPING: "scoped"}


def _cause(err: BaseException) -> str:
    """The message a person should see from an activity failure."""
    while isinstance(err, ActivityError) and err.cause is not None:
        err = err.cause
    return getattr(err, "message", None) or str(err)


@workflow.defn(name=REPORT_WORKFLOW_TYPE)
class ReportTestWorkflow:
    """Runs one report through its phases (PHASE_ORDER up to input.last_phase).

    Query:
      status -> ReportStatus: phase, state, who it waits on, current version.
    Updates (each with a validator that refuses a message the current state
    doesn't expect; the caller learns at once):
      submit_version(SubmitVersionInput) -> UpdateResult: the tester freezes
        the phase's working data as a new submitted version.
      decide_version(DecideVersionInput) -> UpdateResult: the report owner
        approves the submitted version or sends it back with notes.
      register_population(RegisterPopulationInput) -> UpdateResult: the tester
        uploaded a population file; it is profiled before the update returns.
    """

    @workflow.init
    def __init__(self, inp: ReportWorkflowInput) -> None:
        self._input = inp
        self._phase = ""
        self._state = State.STARTING
        self._current_version_id: int | None = None
        self._approved: set[str] = set()
        self._profiled = False
        self._completed: list[str] = []
        self._skipped: list[str] = []
        self._last_error = ""

    # --- helpers -------------------------------------------------------------

    async def _activity(self, name: str, arg, result_type, policy: RetryPolicy = retry.DATABASE):
        return await workflow.execute_activity(
            name,
            arg,
            result_type=result_type,
            start_to_close_timeout=timedelta(seconds=self._input.activity_timeout_seconds),
            retry_policy=policy,
        )

    async def _enter(self, phase: str, *, skipped: bool = False) -> None:
        await self._activity(
            ActivityName.ENTER_PHASE,
            EnterPhaseInput(
                cycle_report_id=self._input.cycle_report_id, phase=phase, from_phase=self._phase, skipped=skipped
            ),
            PhaseTransitionResult,
        )
        if skipped:
            self._skipped.append(phase)
        else:
            self._phase = phase
            self._current_version_id = None
            self._last_error = ""

    # --- phases --------------------------------------------------------------

    async def _review(self, phase: str) -> None:
        """Wait until a submitted version of the phase is approved (any number of send-backs)."""
        self._state = State.AWAITING_SUBMISSION
        await workflow.wait_condition(lambda: phase in self._approved)

    async def _planning(self) -> None:
        self._state = State.DRAFTING
        try:
            await self._activity(
                ActivityName.DRAFT_ATTRIBUTES,
                DraftAttributesInput(cycle_report_id=self._input.cycle_report_id),
                DraftAttributesResult,
                retry.LLM,
            )
        except ActivityError as err:
            # The tester can still enter attributes by hand.
            self._last_error = f"The attribute draft failed: {_cause(err)}"
        await self._review(PLANNING)

    async def _data_profiling(self) -> None:
        self._state = State.AWAITING_UPLOAD
        await workflow.wait_condition(lambda: self._profiled)

    async def _scoping(self) -> None:
        await self._activity(
            ActivityName.RECOMMEND_SCOPE,
            RecommendScopeInput(cycle_report_id=self._input.cycle_report_id),
            RecommendScopeResult,
        )
        await self._review(SCOPING)

    # --- run -----------------------------------------------------------------

    @workflow.run
    async def run(self, inp: ReportWorkflowInput) -> ReportWorkflowResult:
        runners = {PLANNING: self._planning, DATA_PROFILING: self._data_profiling, SCOPING: self._scoping}
        last = PHASE_ORDER.index(inp.last_phase)
        for phase in PHASE_ORDER[: last + 1]:
            if phase in inp.skip_phases:
                await self._enter(phase, skipped=True)
                continue
            await self._enter(phase)
            await runners[phase]()
            self._completed.append(phase)
        self._state = State.COMPLETED
        status = FINAL_STATUS.get(inp.last_phase, "completed")
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
        return ReportStatus(
            cycle_report_id=self._input.cycle_report_id,
            phase=self._phase,
            state=self._state,
            waiting_on=WAITING_ON[self._state],
            current_version_id=self._current_version_id,
            completed_phases=list(self._completed),
            skipped_phases=list(self._skipped),
            last_error=self._last_error,
        )

    # --- updates -------------------------------------------------------------

    @workflow.update(name=UPDATE_SUBMIT_VERSION)
    async def submit_version(self, inp: SubmitVersionInput) -> UpdateResult:
        self._state = State.SUBMITTING
        try:
            ref = await self._activity(
                ActivityName.CREATE_VERSION,
                CreateVersionInput(
                    decision_id=inp.decision_id,
                    cycle_report_id=self._input.cycle_report_id,
                    phase=inp.phase,
                    user_id=inp.user_id,
                    notes=inp.notes,
                ),
                VersionRef,
            )
        except ActivityError as err:
            self._state = State.AWAITING_SUBMISSION
            self._last_error = _cause(err)
            raise ApplicationError(self._last_error, type="SubmissionRefused") from err
        self._current_version_id = ref.version_id
        self._last_error = ""
        self._state = State.AWAITING_DECISION
        return UpdateResult(
            accepted=True, message=f"Version {ref.number} submitted for approval.",
            version_id=ref.version_id, version_number=ref.number,
        )

    @submit_version.validator
    def _validate_submit(self, inp: SubmitVersionInput) -> None:
        if inp.phase not in REVIEWED_PHASES:
            raise ValueError(f"{inp.phase} has no version to submit.")
        if inp.phase != self._phase:
            raise ValueError(f"The report is in {self._phase or 'no phase yet'}, not {inp.phase}.")
        if self._state != State.AWAITING_SUBMISSION:
            raise ValueError(f"{self._phase} is not waiting for a submission (it is {self._state}).")

    @workflow.update(name=UPDATE_DECIDE_VERSION)
    async def decide_version(self, inp: DecideVersionInput) -> UpdateResult:
        self._state = State.DECIDING
        try:
            ref = await self._activity(
                ActivityName.RECORD_DECISION,
                RecordDecisionInput(
                    decision_id=inp.decision_id,
                    phase=inp.phase,
                    version_id=inp.version_id,
                    user_id=inp.user_id,
                    approve=inp.approve,
                    notes=inp.notes,
                ),
                VersionRef,
            )
        except ActivityError as err:
            self._state = State.AWAITING_DECISION
            raise ApplicationError(_cause(err), type="DecisionRefused") from err
        if inp.approve:
            self._approved.add(inp.phase)
            self._state = State.COMPLETED
            message = f"Version {ref.number} approved."
        else:
            self._state = State.AWAITING_SUBMISSION
            message = f"Version {ref.number} sent back to the tester."
        return UpdateResult(accepted=True, message=message, version_id=ref.version_id, version_number=ref.number)

    @decide_version.validator
    def _validate_decide(self, inp: DecideVersionInput) -> None:
        if inp.phase != self._phase:
            raise ValueError(f"The report is in {self._phase or 'no phase yet'}, not {inp.phase}.")
        if self._state != State.AWAITING_DECISION:
            raise ValueError(f"{self._phase} has no version waiting for a decision.")
        if inp.version_id != self._current_version_id:
            raise ValueError("That version is not the one waiting for a decision.")

    @workflow.update(name=UPDATE_REGISTER_POPULATION)
    async def register_population(self, inp: RegisterPopulationInput) -> UpdateResult:
        self._state = State.PROFILING
        try:
            summary = await self._activity(
                ActivityName.PROFILE_POPULATION,
                ProfilePopulationInput(population_file_id=inp.population_file_id),
                ProfileSummary,
            )
        except ActivityError as err:
            self._state = State.AWAITING_UPLOAD
            self._last_error = _cause(err)
            raise ApplicationError(self._last_error, type="ProfilingFailed") from err
        self._profiled = True
        self._last_error = ""
        self._state = State.COMPLETED
        return UpdateResult(
            accepted=True,
            message=f"Profiled {summary.row_count:,} rows × {summary.column_count} columns "
            f"in {summary.seconds:.1f} s.",
        )

    @register_population.validator
    def _validate_population(self, inp: RegisterPopulationInput) -> None:
        if self._phase != DATA_PROFILING:
            raise ValueError(f"The report is in {self._phase or 'no phase yet'}, not data profiling.")
        if self._state != State.AWAITING_UPLOAD:
            raise ValueError("A population file is already being profiled or the phase is done.")
