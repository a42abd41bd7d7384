"""Test Execution: rules fill the matrix, the tester submits it, the owner approves; more samples on failure.

The phase prepares the matrix in an activity (cells of approved samples ×
in-scope attributes; rules run), then waits for the tester's submission and
the report owner's decision as other reviewed phases do. On each submission an
activity checks whether an attribute failed more often than its sample size
allows; if so the submission waits for the owner to decide a sample extension
instead. An approved extension reopens the data owners' requests for the new
samples on this same workflow (reminded and escalated like the first round);
when they are accepted the tester tests the new cells and submits again.
"""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

from workflows.temporal.contracts import (
    TEST_EXECUTION,
    UPDATE_DECIDE_EXTENSION,
    Ack,
    ActivityName,
    DecideExtensionInput,
    ExtensionDecided,
    ExtensionProposal,
    ProposeExtensionInput,
    RecordExtensionDecisionInput,
    ReportStatusInput,
    State,
    TestMatrixInput,
    TestProgress,
    UpdateResult,
    VersionRef,
)
from workflows.temporal.phases.base import ACCEPTED, OPEN, RETURNED, SUBMITTED, answers, cause
from workflows.temporal.phases.reviews import ReviewSteps

# Workflows that reached Test Execution before the phase had steps wait there for good.
PATCH_TEST_EXECUTION = "test-execution-phase"
# A sample extension's decision that was already applied is answered as such (issue 10), not refused
# nor carried out twice; a second message for the extension being decided waits for the first's outcome.
PATCH_EXTENSION_ALREADY_APPLIED = "extension-decision-already-applied"


class TestExecutionSteps(ReviewSteps):
    """Updates: submit_version / decide_version (from ReviewSteps), decide_sample_extension.

    Uses RequestSteps' request map (`_requests`), its chase (`_chase`) and its
    request_submitted / request_reviewed Updates for the requests an extension reopens.
    """

    __test__ = False  # not a pytest class

    _requests: dict[int, str]
    _chase: Callable[..., Awaitable[None]]
    _test_progress: TestProgress
    _extension_id: int
    _extension_number: int
    _extension_requests: list[int]
    _requests_read: frozenset[int]
    # Extension id -> approved, for each decision applied; the extension being decided now (or 0).
    _extension_decisions: dict[int, bool]
    _deciding_extension: int

    async def _test_execution(self) -> None:
        if not workflow.patched(PATCH_TEST_EXECUTION):
            await self._activity(
                ActivityName.SET_REPORT_STATUS,
                ReportStatusInput(cycle_report_id=self._input.cycle_report_id, status="awaiting_test_execution",
                                  phase=TEST_EXECUTION),
                Ack,
            )
            self._states[TEST_EXECUTION] = State.AWAITING_TEST_EXECUTION
            await workflow.wait_condition(lambda: False)
        await self._activity(
            ActivityName.SET_REPORT_STATUS,
            ReportStatusInput(cycle_report_id=self._input.cycle_report_id, status="in_progress",
                              phase=TEST_EXECUTION),
            Ack,
        )
        self._test_progress = await self._activity(
            ActivityName.PREPARE_TEST_MATRIX, TestMatrixInput(cycle_report_id=self._input.cycle_report_id),
            TestProgress,
        )
        self._states[TEST_EXECUTION] = State.AWAITING_SUBMISSION
        while TEST_EXECUTION not in self._approved:
            await workflow.wait_condition(
                lambda: TEST_EXECUTION in self._approved or bool(self._extension_requests)
            )
            if self._extension_requests:
                request_ids, self._extension_requests = self._extension_requests, []
                await self._chase_extension(request_ids, self._extension_number)

    async def _chase_extension(self, request_ids: list[int], number: int) -> None:
        """The reopened requests, reminded and escalated like the first round, until each is accepted."""
        self._states[TEST_EXECUTION] = State.AWAITING_EVIDENCE
        due = workflow.now() + self._days(self._input.schedule.due_days)
        # RequestSteps' chase, keyed by round so the first round's emails don't stop these.
        await asyncio.gather(*(self._chase(request_id, due, f"-x{number}") for request_id in request_ids))
        self._test_progress = await self._activity(
            ActivityName.PREPARE_TEST_MATRIX, TestMatrixInput(cycle_report_id=self._input.cycle_report_id),
            TestProgress,
        )
        self._states[TEST_EXECUTION] = State.AWAITING_SUBMISSION

    async def _after_submit(self, phase: str, ref: VersionRef) -> str:
        """On a Test Execution submission: propose more samples if failures exceed what the size allows."""
        if phase != TEST_EXECUTION:
            return await super()._after_submit(phase, ref)
        try:
            proposal = await self._activity(
                ActivityName.PROPOSE_SAMPLE_EXTENSION,
                ProposeExtensionInput(cycle_report_id=self._input.cycle_report_id),
                ExtensionProposal,
            )
        except ActivityError as err:
            # The submission stands; the owner decides it without a proposal, and the page says why.
            self._errors[TEST_EXECUTION] = f"No sample extension could be checked: {cause(err)}"
            return ""
        self._test_progress = proposal.progress
        if not proposal.extension_id:
            return ""
        self._extension_id = proposal.extension_id
        self._extension_number = proposal.number
        self._states[TEST_EXECUTION] = State.AWAITING_EXTENSION_DECISION
        return f"Version {ref.number} submitted. {proposal.message} The report owner decides it first."

    def _extension_answer(self, inp: DecideExtensionInput) -> UpdateResult:
        """The answer to a decision of an extension already decided: already applied, or refused if it differs."""
        approved = self._extension_decisions[inp.extension_id]
        done = "approved" if approved else "rejected"
        if approved is not inp.approve:
            raise ApplicationError(f"That extension was already {done}.", type="DecisionRefused")
        return UpdateResult(accepted=True, duplicate=True, message=f"Already applied: the extension was {done}.")

    @workflow.update(name=UPDATE_DECIDE_EXTENSION)

    @answers
    async def decide_sample_extension(self, inp: DecideExtensionInput) -> UpdateResult:
        if workflow.patched(PATCH_EXTENSION_ALREADY_APPLIED):
            if self._deciding_extension == inp.extension_id:
                # The same step sent again while the first is carried out: its outcome answers this one.
                await workflow.wait_condition(lambda: self._deciding_extension != inp.extension_id)
            if inp.extension_id in self._extension_decisions:
                return self._extension_answer(inp)
            if self._states.get(TEST_EXECUTION) != State.AWAITING_EXTENSION_DECISION:
                raise ApplicationError("No sample extension is waiting for a decision.", type="NotWaiting")
        self._states[TEST_EXECUTION] = State.DECIDING
        self._deciding_extension = inp.extension_id
        due = workflow.now() + self._days(self._input.schedule.due_days)
        try:
            decided = await self._activity(
                ActivityName.DECIDE_SAMPLE_EXTENSION,
                RecordExtensionDecisionInput(
                    decision_id=inp.decision_id, extension_id=inp.extension_id, user_id=inp.user_id,
                    approve=inp.approve, notes=inp.notes, due_date=due.date().isoformat(),
                ),
                ExtensionDecided,
            )
        except ActivityError as err:
            self._states[TEST_EXECUTION] = State.AWAITING_EXTENSION_DECISION
            raise ApplicationError(cause(err), type="DecisionRefused") from err
        finally:
            self._deciding_extension = 0
        self._extension_decisions[inp.extension_id] = decided.approved
        self._extension_id = 0
        if not decided.approved:
            # The owner accepts the failures as they are: the submitted results go on to their decision.
            self._states[TEST_EXECUTION] = State.AWAITING_DECISION
            return UpdateResult(accepted=True, message=f"Extension {decided.number} rejected; the submitted "
                                                       "results wait for your decision.")
        for ref in decided.requests:
            self._requests[ref.request_id] = ref.status if ref.status in (OPEN, SUBMITTED, ACCEPTED, RETURNED) \
                else OPEN
        # Reopened: what it becomes now comes in messages again.
        self._requests_read = self._requests_read - {ref.request_id for ref in decided.requests}
        self._versions.pop(TEST_EXECUTION, None)
        self._extension_requests = [ref.request_id for ref in decided.requests]
        self._states[TEST_EXECUTION] = State.AWAITING_EVIDENCE if decided.requests else State.AWAITING_SUBMISSION
        return UpdateResult(
            accepted=True,
            message=f"Extension {decided.number} approved: the new samples went to "
                    f"{len(decided.requests)} data owner(s); the tester submits again once they are tested.",
        )

    @decide_sample_extension.validator
    def _validate_decide_extension(self, inp: DecideExtensionInput) -> None:
        if inp.extension_id in self._extension_decisions or inp.extension_id == self._deciding_extension:
            return  # already applied (or being applied): the handler answers
        if self._states.get(TEST_EXECUTION) != State.AWAITING_EXTENSION_DECISION:
            raise ValueError("No sample extension is waiting for a decision.")
        if inp.extension_id != self._extension_id:
            raise ValueError("That extension is not the one waiting for a decision.")
