"""Observation Management: failed cells drafted into observations, shaped by the tester, approved by the owner."""
from __future__ import annotations

from workflows.temporal.contracts import (
    OBSERVATIONS,
    Ack,
    ActivityName,
    DraftObservationsResult,
    PhaseInput,
)
from workflows.temporal.phases.reviews import ReviewSteps


class ObservationSteps(ReviewSteps):
    """A reviewed phase: submit_version / decide_version (see ReviewSteps)."""

    async def _observations(self) -> None:
        # Idempotent: a failed cell already in an observation is not drafted again (a reopened phase
        # keeps what the tester shaped and adds only new failures).
        await self._activity(
            ActivityName.DRAFT_OBSERVATIONS,
            PhaseInput(cycle_report_id=self._input.cycle_report_id, phase=OBSERVATIONS),
            DraftObservationsResult,
        )
        await self._review(OBSERVATIONS)
        # Approved: each observation's remediation starts (open).
        await self._activity(
            ActivityName.OPEN_OBSERVATIONS,
            PhaseInput(cycle_report_id=self._input.cycle_report_id, phase=OBSERVATIONS),
            Ack,
        )
