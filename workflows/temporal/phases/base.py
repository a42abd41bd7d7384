"""What every phase's steps share: the workflow's state, activities, and claims on a phase."""
from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

from workflows.temporal import retry
from workflows.temporal.contracts import ReportWorkflowInput

OPEN, SUBMITTED, RETURNED, ACCEPTED = "open", "submitted", "returned", "accepted"


def cause(err: BaseException) -> str:
    """The message a person should see from an activity failure."""
    while isinstance(err, ActivityError) and err.cause is not None:
        err = err.cause
    return getattr(err, "message", None) or str(err)


class PhaseSteps:
    """The state a report's workflow keeps, as every phase mixin sees it.

    ReportTestWorkflow.__init__ sets these; the annotations are here so each
    phase module reads on its own.
    """

    _input: ReportWorkflowInput
    _phase: str
    _states: dict[str, str]
    _versions: dict[str, int]
    _errors: dict[str, str]
    _approved: set[str]
    _claimed: set[str]

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

    async def _claim(self, phase: str, ready: str) -> None:
        """Wait until `phase` is in state `ready`, then own it until released (one submission at a time).

        An update can arrive in the same workflow task as the activity that makes the
        phase ready (the validator then sees it still starting); it waits here instead
        of being refused.
        """
        await workflow.wait_condition(lambda: self._states.get(phase) == ready or phase in self._claimed)
        if phase in self._claimed:
            raise ApplicationError(f"Another request for {phase} is being handled; try again.", type="Busy")
        self._claimed.add(phase)
