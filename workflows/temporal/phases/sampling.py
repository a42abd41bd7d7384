"""Sample Selection: the tester draws samples, the report owner decides each and the set."""
from __future__ import annotations

from workflows.temporal.contracts import SAMPLE_SELECTION, Ack, ActivityName, PhaseInput
from workflows.temporal.phases.reviews import ReviewSteps


class SampleSelectionSteps(ReviewSteps):
    async def _sample_selection(self) -> None:
        await self._activity(
            ActivityName.PREPARE_SAMPLING,
            PhaseInput(cycle_report_id=self._input.cycle_report_id, phase=SAMPLE_SELECTION),
            Ack,
        )
        await self._review(SAMPLE_SELECTION)
