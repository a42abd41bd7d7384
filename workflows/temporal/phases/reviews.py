"""Reviewed phases (Planning, Scoping, Sample Selection, …): the tester submits a version, the owner decides."""
from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

from workflows.temporal.contracts import (
    REVIEWED_PHASES,
    UPDATE_DECIDE_VERSION,
    UPDATE_SUBMIT_VERSION,
    ActivityName,
    CreateVersionInput,
    DecideVersionInput,
    RecordDecisionInput,
    State,
    SubmitVersionInput,
    UpdateResult,
    VersionRef,
)
from workflows.temporal.phases.base import PhaseSteps, answers, cause

# A decision that arrives while its version is still being made (the owner sees the version the
# activity wrote before the workflow took in its result: a worker killed in between makes that
# seconds) waits for the submission to finish instead of being refused (issue 10).
PATCH_DECIDE_WAITS_FOR_SUBMISSION = "decide-waits-for-submission"
# Since a version is made by a local activity (PATCH_LOCAL_VERSIONS) it is committed before the workflow task
# that takes the submission completes: a worker lost in between leaves the version in the database, and the
# owner may decide on it before the next worker has taken the submission again. Since this patch that decision
# waits for the submission being taken (in the same workflow task, ahead of it) instead of being refused.
PATCH_DECIDE_WAITS_FOR_SUBMISSION_IN_FLIGHT = "decide-waits-for-submission-in-flight"


class ReviewSteps(PhaseSteps):
    """Updates: submit_version, decide_version."""

    async def _review(self, phase: str) -> None:
        """Wait until a submitted version of the phase is approved (any number of send-backs)."""
        self._states[phase] = State.AWAITING_SUBMISSION
        await workflow.wait_condition(lambda: phase in self._approved)

    _decided: dict[int, bool]

    # Decision id of each submission applied -> its version (a redelivery after the phase moved on, or
    # after a send-back, is answered as already applied instead of refused or frozen twice).
    _submitted: dict[str, int]
    # Phase -> submissions whose handler runs (taken, not answered yet).
    _submitting: dict[str, int]

    def _already_submitted(self, inp: SubmitVersionInput) -> bool:
        if inp.decision_id in self._submitted:
            return True
        return self._states.get(inp.phase) == State.AWAITING_DECISION and inp.phase in self._versions

    @workflow.update(name=UPDATE_SUBMIT_VERSION)

    @answers
    async def submit_version(self, inp: SubmitVersionInput) -> UpdateResult:
        # Counted before anything is awaited: a decision taken in the same workflow task sees it.
        self._submitting[inp.phase] = self._submitting.get(inp.phase, 0) + 1
        try:
            return await self._submit_version(inp)
        finally:
            self._submitting[inp.phase] -= 1

    async def _submit_version(self, inp: SubmitVersionInput) -> UpdateResult:
        if self._already_submitted(inp):
            # The same step asked again (a retry after a lost answer): answer, change nothing.
            return self._submitted_answer(inp)
        waiting = (State.STARTING, State.DRAFTING, State.AWAITING_SUBMISSION)
        if not await self._claim(inp.phase, State.AWAITING_SUBMISSION,
                                 lambda: self._states.get(inp.phase) not in waiting):
            # The phase moved on while this update waited: another submission is waiting for a decision
            # (this step asked again), or the phase is approved or ended.
            if self._already_submitted(inp):
                return self._submitted_answer(inp)
            if inp.phase in self._approved:
                return UpdateResult(accepted=True, duplicate=True, version_id=self._versions.get(inp.phase),
                                    message=f"Already applied: {inp.phase} is approved.")
            raise ApplicationError(f"{inp.phase} is not waiting for a submission now "
                                   f"(it is {self._states.get(inp.phase, 'done')}).", type="NotWaiting")
        try:
            return await self._submit(inp)
        finally:
            self._claimed.discard(inp.phase)

    def _submitted_answer(self, inp: SubmitVersionInput) -> UpdateResult:
        if inp.decision_id in self._submitted:
            return UpdateResult(accepted=True, duplicate=True, version_id=self._submitted[inp.decision_id],
                                message="Already applied: this submission made its version.")
        return UpdateResult(accepted=True, duplicate=True, version_id=self._versions[inp.phase],
                            message="Already applied: a version is waiting for the report owner's decision.")

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
            self._errors[inp.phase] = cause(err)
            raise ApplicationError(self._errors[inp.phase], type="SubmissionRefused") from err
        self._versions[inp.phase] = ref.version_id
        self._submitted[inp.decision_id] = ref.version_id
        self._errors.pop(inp.phase, None)
        # A phase may check the submission first and wait on something else (Test Execution's extension).
        message = await self._after_submit(inp.phase, ref)
        if self._states[inp.phase] == State.SUBMITTING:
            self._states[inp.phase] = State.AWAITING_DECISION
        return UpdateResult(
            accepted=True, message=message or f"Version {ref.number} submitted for approval.",
            version_id=ref.version_id, version_number=ref.number,
        )

    async def _after_submit(self, phase: str, ref: VersionRef) -> str:
        """What a phase does once its version is submitted; a message replaces the usual one. Nothing here."""
        return ""

    @submit_version.validator
    def _validate_submit(self, inp: SubmitVersionInput) -> None:
        if inp.phase not in REVIEWED_PHASES:
            raise ValueError(f"{inp.phase} has no version to submit.")
        if inp.decision_id in self._submitted:
            return  # already applied: the handler says so
        if inp.phase not in self._states:
            raise ValueError(f"The report is not in {inp.phase} now.")
        if self._already_submitted(inp):
            return
        if self._states[inp.phase] not in (State.STARTING, State.DRAFTING, State.AWAITING_SUBMISSION):
            raise ValueError(f"{inp.phase} is not waiting for a submission (it is {self._states[inp.phase]}).")

    @workflow.update(name=UPDATE_DECIDE_VERSION)

    @answers
    async def decide_version(self, inp: DecideVersionInput) -> UpdateResult:
        if self._decided.get(inp.version_id) is inp.approve:
            return self._decided_answer(inp)
        if (self._states.get(inp.phase) == State.SUBMITTING
                or (self._submitting.get(inp.phase) and inp.version_id not in self._versions.values()
                    and workflow.patched(PATCH_DECIDE_WAITS_FOR_SUBMISSION_IN_FLIGHT))) \
                and workflow.patched(PATCH_DECIDE_WAITS_FOR_SUBMISSION):
            await workflow.wait_condition(lambda: self._states.get(inp.phase) != State.SUBMITTING
                                          and not self._submitting.get(inp.phase))
            if self._decided.get(inp.version_id) is inp.approve:
                return self._decided_answer(inp)
            if self._states.get(inp.phase) != State.AWAITING_DECISION or inp.version_id != self._versions.get(
                inp.phase
            ):
                raise ApplicationError(f"{inp.phase} has no version waiting for a decision, or not that one.",
                                       type="NotWaiting")
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
            raise ApplicationError(cause(err), type="DecisionRefused") from err
        self._decided[inp.version_id] = inp.approve
        if inp.approve:
            self._approved.add(inp.phase)
            self._states[inp.phase] = State.COMPLETED
            message = f"Version {ref.number} approved."
        else:
            self._states[inp.phase] = State.AWAITING_SUBMISSION
            message = f"Version {ref.number} sent back to the tester."
        return UpdateResult(accepted=True, message=message, version_id=ref.version_id, version_number=ref.number)

    def _decided_answer(self, inp: DecideVersionInput) -> UpdateResult:
        return UpdateResult(accepted=True, duplicate=True, version_id=inp.version_id,
                            message="Already applied: this version was already "
                            f"{'approved' if inp.approve else 'sent back'}.")

    @decide_version.validator
    def _validate_decide(self, inp: DecideVersionInput) -> None:
        if self._decided.get(inp.version_id) is inp.approve:
            return  # already applied: the handler says so
        if inp.phase not in self._states:
            raise ValueError(f"The report is not in {inp.phase} now.")
        if self._states[inp.phase] == State.SUBMITTING and inp.version_id not in self._decided:
            return  # its version may be the one being made: the handler waits for it, then checks
        if self._submitting.get(inp.phase) and inp.version_id not in self._decided:
            return  # a submission taken and not answered yet may be making it: the handler waits, then checks
        if self._states[inp.phase] != State.AWAITING_DECISION:
            raise ValueError(f"{inp.phase} has no version waiting for a decision.")
        if inp.version_id != self._versions.get(inp.phase):
            raise ValueError("That version is not the one waiting for a decision.")
