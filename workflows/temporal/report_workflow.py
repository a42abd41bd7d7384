"""The workflow of one report in a cycle: its phases, in order, with human steps and timers.

Imports only temporalio, the standard library and contracts: it runs in
Temporal's sandbox and must be deterministic.
"""
from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

from workflows.temporal import retry
from workflows.temporal.contracts import (
    DATA_OWNER_IDENTIFICATION,
    DATA_PROFILING,
    PHASE_ORDER,
    PHASE_STEPS,
    PLANNING,
    QUERY_STATUS,
    REPORT_WORKFLOW_TYPE,
    REQUEST_FOR_INFORMATION,
    REVIEWED_PHASES,
    SAMPLE_SELECTION,
    SCOPING,
    TEST_EXECUTION,
    UPDATE_COMPLETE_DATA_OWNERS,
    UPDATE_DECIDE_VERSION,
    UPDATE_REGISTER_POPULATION,
    UPDATE_REQUEST_REVIEWED,
    UPDATE_REQUEST_SUBMITTED,
    UPDATE_SUBMIT_VERSION,
    Ack,
    ActivityName,
    CompleteDataOwnersInput,
    CreateRequestsInput,
    CreateVersionInput,
    DataOwnersCheck,
    DecideVersionInput,
    DraftAttributesInput,
    DraftAttributesResult,
    EnterPhaseInput,
    FinishReportInput,
    NotifyRequestInput,
    PhaseInput,
    PhaseTransitionResult,
    ProfilePopulationInput,
    ProfileSummary,
    RecommendScopeInput,
    RecommendScopeResult,
    RecordDecisionInput,
    RegisterPopulationInput,
    ReportStatus,
    ReportStatusInput,
    ReportWorkflowInput,
    ReportWorkflowResult,
    RequestEventInput,
    RequestsCreated,
    RequestStatusInput,
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
    State.AWAITING_ASSIGNMENT: WaitingOn.DATA_EXECUTIVE,
    State.AWAITING_EVIDENCE: WaitingOn.DATA_OWNER,
    State.AWAITING_TEST_EXECUTION: WaitingOn.TESTER,
    State.COMPLETED: WaitingOn.NOBODY,
}

# What the report is called once this phase is its last completed one.
STATUS_AFTER = {SCOPING: "scoped"}

OPEN, SUBMITTED, RETURNED, ACCEPTED = "open", "submitted", "returned", "accepted"


def _cause(err: BaseException) -> str:
    """The message a person should see from an activity failure."""
    while isinstance(err, ActivityError) and err.cause is not None:
        err = err.cause
    return getattr(err, "message", None) or str(err)


@workflow.defn(name=REPORT_WORKFLOW_TYPE)
class ReportTestWorkflow:
    """Runs one report through its phases (PHASE_STEPS up to input.last_phase).

    Sample Selection and Data Owner Identification run in parallel and join
    before Requests for Information. The last phase of this version, Test
    Execution, is entered and waited in.

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
      request_reviewed(RequestEventInput): the tester accepted or returned it.
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
        self._completed: list[str] = []
        self._skipped: list[str] = []
        self._claimed: set[str] = set()

    # --- helpers -------------------------------------------------------------

    async def _activity(self, name: str, arg, result_type, policy: RetryPolicy = retry.DATABASE):
        return await workflow.execute_activity(
            name,
            arg,
            result_type=result_type,
            start_to_close_timeout=timedelta(seconds=self._input.activity_timeout_seconds),
            retry_policy=policy,
        )

    def _days(self, days: float) -> timedelta:
        return timedelta(days=days)

    async def _enter(self, phase: str, *, skipped: bool = False, set_current: bool = True) -> None:
        await self._activity(
            ActivityName.ENTER_PHASE,
            EnterPhaseInput(
                cycle_report_id=self._input.cycle_report_id, phase=phase, from_phase=self._phase,
                skipped=skipped, set_current=set_current,
            ),
            PhaseTransitionResult,
        )
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

    # --- phases --------------------------------------------------------------

    async def _review(self, phase: str) -> None:
        """Wait until a submitted version of the phase is approved (any number of send-backs)."""
        self._states[phase] = State.AWAITING_SUBMISSION
        await workflow.wait_condition(lambda: phase in self._approved)

    async def _planning(self) -> None:
        self._states[PLANNING] = State.DRAFTING
        try:
            await self._activity(
                ActivityName.DRAFT_ATTRIBUTES,
                DraftAttributesInput(cycle_report_id=self._input.cycle_report_id),
                DraftAttributesResult,
                retry.LLM,
            )
        except ActivityError as err:
            # The tester can still enter attributes by hand.
            self._errors[PLANNING] = f"The attribute draft failed: {_cause(err)}"
        await self._review(PLANNING)

    async def _data_profiling(self) -> None:
        self._states[DATA_PROFILING] = State.AWAITING_UPLOAD
        await workflow.wait_condition(lambda: self._profiled)

    async def _scoping(self) -> None:
        await self._activity(
            ActivityName.RECOMMEND_SCOPE,
            RecommendScopeInput(cycle_report_id=self._input.cycle_report_id),
            RecommendScopeResult,
        )
        await self._review(SCOPING)

    async def _sample_selection(self) -> None:
        await self._activity(
            ActivityName.PREPARE_SAMPLING,
            PhaseInput(cycle_report_id=self._input.cycle_report_id, phase=SAMPLE_SELECTION),
            Ack,
        )
        await self._review(SAMPLE_SELECTION)

    async def _data_owner_identification(self) -> None:
        phase_input = PhaseInput(cycle_report_id=self._input.cycle_report_id, phase=DATA_OWNER_IDENTIFICATION)
        await self._activity(ActivityName.NOTIFY_DATA_EXECUTIVE, phase_input, Ack, retry.EMAIL)
        self._states[DATA_OWNER_IDENTIFICATION] = State.AWAITING_ASSIGNMENT
        # The cycle's per-phase SLA wins over the general data owner SLA.
        configured = self._input.phase_settings.get(DATA_OWNER_IDENTIFICATION)
        sla_days = configured.sla_days if configured and configured.sla_days else self._input.schedule.data_owner_sla_days
        try:
            await workflow.wait_condition(lambda: self._owners_complete, timeout=self._days(sla_days))
        except asyncio.TimeoutError:
            await self._activity(ActivityName.ESCALATE_DATA_OWNERS, phase_input, Ack, retry.EMAIL)
            await workflow.wait_condition(lambda: self._owners_complete)

    async def _chase(self, request_id: int, due) -> None:
        """Remind and escalate on timers until the request is answered; repeat if it comes back."""
        schedule = self._input.schedule
        timers = [(due - self._days(d), "reminder", f"-d{d}") for d in sorted(schedule.reminder_days_before,
                                                                                reverse=True) if d > 0]
        timers += [(due, "due", ""), (due + self._days(schedule.escalation_days_after), "escalation", "")]
        await self._activity(ActivityName.NOTIFY_REQUEST, NotifyRequestInput(request_id, "request"), Ack,
                             retry.EMAIL)
        while self._requests[request_id] != ACCEPTED:
            answered = lambda: self._requests[request_id] in (SUBMITTED, ACCEPTED)  # noqa: E731
            for when, kind, suffix in timers:
                delay = when - workflow.now()
                if delay > timedelta(0):
                    try:
                        await workflow.wait_condition(answered, timeout=delay)
                    except asyncio.TimeoutError:
                        pass
                if answered():
                    break
                # Keyed by request, kind and day: a reminder already sent is not sent again.
                await self._activity(
                    ActivityName.NOTIFY_REQUEST, NotifyRequestInput(request_id, kind, suffix), Ack, retry.EMAIL
                )
            await workflow.wait_condition(answered)
            # Submitted: wait for the tester's review (accepted, or returned to the data owner).
            await workflow.wait_condition(lambda: self._requests[request_id] in (ACCEPTED, RETURNED))

    async def _request_for_information(self) -> None:
        schedule = self._input.schedule
        due = workflow.now() + self._days(schedule.due_days)
        created = await self._activity(
            ActivityName.CREATE_REQUESTS,
            CreateRequestsInput(cycle_report_id=self._input.cycle_report_id, due_date=due.date().isoformat()),
            RequestsCreated,
        )
        for ref in created.requests:
            self._requests.setdefault(ref.request_id, ref.status)
        self._states[REQUEST_FOR_INFORMATION] = State.AWAITING_EVIDENCE
        await asyncio.gather(*(self._chase(request_id, due) for request_id in list(self._requests)))

    async def _test_execution(self) -> None:
        # Test Execution is the next issue's: the report waits here until then.
        await self._activity(
            ActivityName.SET_REPORT_STATUS,
            ReportStatusInput(cycle_report_id=self._input.cycle_report_id, status="awaiting_test_execution",
                              phase=TEST_EXECUTION),
            Ack,
        )
        self._states[TEST_EXECUTION] = State.AWAITING_TEST_EXECUTION
        await workflow.wait_condition(lambda: False)

    async def _run_phase(self, phase: str, *, set_current: bool = True) -> None:
        if phase in self._input.skip_phases:
            await self._enter(phase, skipped=True)
            return
        await self._enter(phase, set_current=set_current)
        await self._runners[phase]()
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
        }
        try:
            await self._run_steps(inp)
        except asyncio.CancelledError:
            # Cancelled with its cycle: say so on the report before the workflow ends.
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
        )

    # --- updates: versions -------------------------------------------------------

    async def _claim(self, phase: str, ready: str) -> None:
        """Wait until `phase` is in state `ready`, then own it until _release (one submission at a time).

        An update can arrive in the same workflow task as the activity that makes the
        phase ready (the validator then sees it still starting); it waits here instead
        of being refused.
        """
        await workflow.wait_condition(lambda: self._states.get(phase) == ready or phase in self._claimed)
        if phase in self._claimed:
            raise ApplicationError(f"Another request for {phase} is being handled; try again.", type="Busy")
        self._claimed.add(phase)

    @workflow.update(name=UPDATE_SUBMIT_VERSION)
    async def submit_version(self, inp: SubmitVersionInput) -> UpdateResult:
        await self._claim(inp.phase, State.AWAITING_SUBMISSION)
        try:
            return await self._submit(inp)
        finally:
            self._claimed.discard(inp.phase)

    async def _submit(self, inp: SubmitVersionInput) -> UpdateResult:
        self._states[inp.phase] = State.SUBMITTING
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
            self._states[inp.phase] = State.AWAITING_SUBMISSION
            self._errors[inp.phase] = _cause(err)
            raise ApplicationError(self._errors[inp.phase], type="SubmissionRefused") from err
        self._versions[inp.phase] = ref.version_id
        self._errors.pop(inp.phase, None)
        self._states[inp.phase] = State.AWAITING_DECISION
        return UpdateResult(
            accepted=True, message=f"Version {ref.number} submitted for approval.",
            version_id=ref.version_id, version_number=ref.number,
        )

    @submit_version.validator
    def _validate_submit(self, inp: SubmitVersionInput) -> None:
        if inp.phase not in REVIEWED_PHASES:
            raise ValueError(f"{inp.phase} has no version to submit.")
        if inp.phase not in self._states:
            raise ValueError(f"The report is not in {inp.phase} now.")
        if self._states[inp.phase] not in (State.STARTING, State.DRAFTING, State.AWAITING_SUBMISSION):
            raise ValueError(f"{inp.phase} is not waiting for a submission (it is {self._states[inp.phase]}).")

    @workflow.update(name=UPDATE_DECIDE_VERSION)
    async def decide_version(self, inp: DecideVersionInput) -> UpdateResult:
        self._states[inp.phase] = State.DECIDING
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
            self._states[inp.phase] = State.AWAITING_DECISION
            raise ApplicationError(_cause(err), type="DecisionRefused") from err
        if inp.approve:
            self._approved.add(inp.phase)
            self._states[inp.phase] = State.COMPLETED
            message = f"Version {ref.number} approved."
        else:
            self._states[inp.phase] = State.AWAITING_SUBMISSION
            message = f"Version {ref.number} sent back to the tester."
        return UpdateResult(accepted=True, message=message, version_id=ref.version_id, version_number=ref.number)

    @decide_version.validator
    def _validate_decide(self, inp: DecideVersionInput) -> None:
        if inp.phase not in self._states:
            raise ValueError(f"The report is not in {inp.phase} now.")
        if self._states[inp.phase] != State.AWAITING_DECISION:
            raise ValueError(f"{inp.phase} has no version waiting for a decision.")
        if inp.version_id != self._versions.get(inp.phase):
            raise ValueError("That version is not the one waiting for a decision.")

    # --- updates: population -----------------------------------------------------

    @workflow.update(name=UPDATE_REGISTER_POPULATION)
    async def register_population(self, inp: RegisterPopulationInput) -> UpdateResult:
        self._states[DATA_PROFILING] = State.PROFILING
        try:
            summary = await self._activity(
                ActivityName.PROFILE_POPULATION,
                ProfilePopulationInput(population_file_id=inp.population_file_id),
                ProfileSummary,
            )
        except ActivityError as err:
            self._states[DATA_PROFILING] = State.AWAITING_UPLOAD
            self._errors[DATA_PROFILING] = _cause(err)
            raise ApplicationError(self._errors[DATA_PROFILING], type="ProfilingFailed") from err
        self._profiled = True
        self._errors.pop(DATA_PROFILING, None)
        self._states[DATA_PROFILING] = State.COMPLETED
        return UpdateResult(
            accepted=True,
            message=f"Profiled {summary.row_count:,} rows × {summary.column_count} columns "
            f"in {summary.seconds:.1f} s.",
        )

    @register_population.validator
    def _validate_population(self, inp: RegisterPopulationInput) -> None:
        if DATA_PROFILING not in self._states:
            raise ValueError(f"The report is in {self._phase or 'no phase yet'}, not data profiling.")
        if self._states[DATA_PROFILING] != State.AWAITING_UPLOAD:
            raise ValueError("A population file is already being profiled or the phase is done.")

    # --- updates: data owners and requests ---------------------------------------

    @workflow.update(name=UPDATE_COMPLETE_DATA_OWNERS)
    async def complete_data_owner_identification(self, inp: CompleteDataOwnersInput) -> UpdateResult:
        await self._claim(DATA_OWNER_IDENTIFICATION, State.AWAITING_ASSIGNMENT)
        try:
            return await self._complete_data_owners()
        finally:
            self._claimed.discard(DATA_OWNER_IDENTIFICATION)

    async def _complete_data_owners(self) -> UpdateResult:
        check = await self._activity(
            ActivityName.CHECK_DATA_OWNERS,
            PhaseInput(cycle_report_id=self._input.cycle_report_id, phase=DATA_OWNER_IDENTIFICATION),
            DataOwnersCheck,
        )
        if not check.complete:
            raise ApplicationError(
                f"Assign a data owner to every in-scope attribute first: {', '.join(check.missing)}.",
                type="DataOwnersMissing",
            )
        self._owners_complete = True
        self._states[DATA_OWNER_IDENTIFICATION] = State.COMPLETED
        return UpdateResult(accepted=True, message="Every in-scope attribute has a data owner.")

    @complete_data_owner_identification.validator
    def _validate_owners(self, inp: CompleteDataOwnersInput) -> None:
        if self._states.get(DATA_OWNER_IDENTIFICATION) not in (State.STARTING, State.AWAITING_ASSIGNMENT):
            raise ValueError("Data owner identification is not waiting for assignments.")

    async def _refresh_request(self, inp: RequestEventInput, expected: tuple[str, ...]) -> UpdateResult:
        status = await self._activity(
            ActivityName.REQUEST_STATUS, RequestStatusInput(request_id=inp.request_id), Ack
        )
        if status.detail not in expected:
            raise ApplicationError(f"The request is {status.detail}.", type="RequestNotReady")
        self._requests[inp.request_id] = status.detail
        return UpdateResult(accepted=True, message=f"The request is {status.detail}.")

    @workflow.update(name=UPDATE_REQUEST_SUBMITTED)
    async def request_submitted(self, inp: RequestEventInput) -> UpdateResult:
        return await self._refresh_request(inp, (SUBMITTED,))

    @request_submitted.validator
    def _validate_request_submitted(self, inp: RequestEventInput) -> None:
        if inp.request_id not in self._requests:
            raise ValueError("That request is not one this report's workflow is waiting for.")
        if self._requests[inp.request_id] not in (OPEN, RETURNED):
            raise ValueError(f"The request is already {self._requests[inp.request_id]}.")

    @workflow.update(name=UPDATE_REQUEST_REVIEWED)
    async def request_reviewed(self, inp: RequestEventInput) -> UpdateResult:
        return await self._refresh_request(inp, (ACCEPTED, RETURNED))

    @request_reviewed.validator
    def _validate_request_reviewed(self, inp: RequestEventInput) -> None:
        if inp.request_id not in self._requests:
            raise ValueError("That request is not one this report's workflow is waiting for.")
        if self._requests[inp.request_id] != SUBMITTED:
            raise ValueError(f"The request is {self._requests[inp.request_id]}, not waiting for review.")
