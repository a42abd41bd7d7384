"""Test Execution: the report waits here until the phase's steps exist (issue 6)."""
from __future__ import annotations

from temporalio import workflow

from workflows.temporal.contracts import (
    TEST_EXECUTION,
    Ack,
    ActivityName,
    ReportStatusInput,
    State,
)
from workflows.temporal.phases.base import PhaseSteps


class TestExecutionSteps(PhaseSteps):
    async def _test_execution(self) -> None:
        await self._activity(
            ActivityName.SET_REPORT_STATUS,
            ReportStatusInput(cycle_report_id=self._input.cycle_report_id, status="awaiting_test_execution",
                              phase=TEST_EXECUTION),
            Ack,
        )
        self._states[TEST_EXECUTION] = State.AWAITING_TEST_EXECUTION
        await workflow.wait_condition(lambda: False)
