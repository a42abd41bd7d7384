"""What undoing each phase means, and the workflow steps that run it (sandbox-safe: temporalio, stdlib, contracts).

Each phase declares its strategy (seed 001):
  rollback          remove what the phase created;
  partial_rollback  remove what didn't succeed, keep what did (approved work stays);
  notify            tell the people involved, change nothing;
  skip              continue with the next phase, the manual intervention recorded.
The Django side (workflows.compensation) does the undoing and writes the
compensation log; here the report workflow decides when: a phase that fails
beyond its retries is compensated and then waits for an admin's retry_phase
(a `skip` phase moves on instead).
"""
from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

from workflows.temporal.contracts import (
    COMPENSATE_PHASE_ACTIVITY,
    DATA_OWNER_IDENTIFICATION,
    DATA_PROFILING,
    FINALIZE,
    NOTIFY,
    OBSERVATIONS,
    PARTIAL_ROLLBACK,
    PLANNING,
    REQUEST_FOR_INFORMATION,
    ROLLBACK,
    SAMPLE_SELECTION,
    SCOPING,
    SKIP,
    STATE_FAILED,
    TEST_EXECUTION,
    TRIGGER_PHASE_FAILED,
    UPDATE_RETRY_PHASE,
    CompensateInput,
    CompensationResult,
    RetryPhaseInput,
    State,
    UpdateResult,
)
from workflows.temporal.phases.base import PhaseSteps, answers, cancelled, cause

STRATEGIES: dict[str, str] = {
    # The LLM draft goes; attributes the tester entered or edited stay.
    PLANNING: PARTIAL_ROLLBACK,
    # Profiles are recomputed from the file: drop them.
    DATA_PROFILING: ROLLBACK,
    # Recommendations and decisions are redone with the phase.
    SCOPING: ROLLBACK,
    # Samples not yet decided go; decided ones stay.
    SAMPLE_SELECTION: PARTIAL_ROLLBACK,
    # Assignments are people's work: tell the data executive, keep them.
    DATA_OWNER_IDENTIFICATION: NOTIFY,
    # Requests already reached data owners: tell them, keep the evidence.
    REQUEST_FOR_INFORMATION: NOTIFY,
    # Tests are recorded by hand; the phase goes on and the intervention is logged.
    TEST_EXECUTION: SKIP,
    OBSERVATIONS: NOTIFY,
    FINALIZE: NOTIFY,
}

# workflow.patched id of the compensate-and-wait behaviour (before it, a failed phase failed the workflow).
PATCH_PHASE_COMPENSATION = "phase-compensation-v1"
RETRY_WAIT_SECONDS = 5


class CompensationSteps(PhaseSteps):
    """Update: retry_phase. Runs a phase's coroutine; on failure compensates it and waits for an admin."""

    _runners: dict
    _retry_requested: set[str]

    async def _run_compensated(self, phase: str) -> None:
        failures = 0
        while True:
            try:
                await self._runners[phase]()
                return
            except ActivityError as err:
                if cancelled(err) or not workflow.patched(PATCH_PHASE_COMPENSATION):
                    raise
                failures += 1
                message = cause(err)
            info = workflow.info()
            strategy = STRATEGIES.get(phase, NOTIFY)
            await self._activity(
                COMPENSATE_PHASE_ACTIVITY,
                CompensateInput(
                    cycle_report_id=self._input.cycle_report_id, phase=phase, trigger=TRIGGER_PHASE_FAILED,
                    key=f"{info.workflow_id}/{info.run_id}/{phase}/failed-{failures}", reason=message,
                ),
                CompensationResult,
            )
            if strategy == SKIP:
                self._errors[phase] = f"Skipped after a failure (manual intervention recorded): {message}"
                return
            self._errors[phase] = message
            self._states[phase] = STATE_FAILED
            await workflow.wait_condition(lambda: phase in self._retry_requested)
            self._retry_requested.discard(phase)
            self._errors.pop(phase, None)
            self._states[phase] = State.STARTING

    @workflow.update(name=UPDATE_RETRY_PHASE)

    @answers
    async def retry_phase(self, inp: RetryPhaseInput) -> UpdateResult:
        # The update can arrive in the same activation as the failure it answers (updates are applied
        # first), so the validator may see the phase still running: wait a moment for the failure.
        try:
            await workflow.wait_condition(lambda: self._states.get(inp.phase) == STATE_FAILED,
                                          timeout=timedelta(seconds=RETRY_WAIT_SECONDS))
        except asyncio.TimeoutError:
            raise ApplicationError(f"{inp.phase} has not failed; there is nothing to retry.",
                                   type="NothingToRetry") from None
        self._retry_requested.add(inp.phase)
        return UpdateResult(accepted=True, message=f"{inp.phase} runs again from its start.")

    @retry_phase.validator
    def _validate_retry(self, inp: RetryPhaseInput) -> None:
        if inp.phase not in self._states:
            raise ValueError(f"The report is not in {inp.phase or 'that phase'} now; there is nothing to retry.")
