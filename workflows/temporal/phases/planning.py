"""Planning: the LLM drafts the attributes, the tester edits them, the report owner approves."""
from __future__ import annotations

from temporalio.exceptions import ActivityError

from workflows.temporal import retry
from workflows.temporal.contracts import (
    PLANNING,
    ActivityName,
    DraftAttributesInput,
    DraftAttributesResult,
    State,
)
from workflows.temporal.phases.base import cancelled, cause
from workflows.temporal.phases.reviews import ReviewSteps


class PlanningSteps(ReviewSteps):
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
            if cancelled(err):
                raise
            # The tester can still enter attributes by hand.
            self._errors[PLANNING] = f"The attribute draft failed: {cause(err)}"
        await self._review(PLANNING)
