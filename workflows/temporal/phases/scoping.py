"""Scoping: the system recommends, the tester decides which attributes are tested, the owner approves."""
from __future__ import annotations

from workflows.temporal.contracts import (
    SCOPING,
    ActivityName,
    RecommendScopeInput,
    RecommendScopeResult,
)
from workflows.temporal.phases.reviews import ReviewSteps


class ScopingSteps(ReviewSteps):
    async def _scoping(self) -> None:
        await self._activity(
            ActivityName.RECOMMEND_SCOPE,
            RecommendScopeInput(cycle_report_id=self._input.cycle_report_id),
            RecommendScopeResult,
        )
        await self._review(SCOPING)
