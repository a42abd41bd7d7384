"""The parent workflow of a test cycle: one child workflow per report."""
from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ChildWorkflowError

from workflows.temporal import retry
from workflows.temporal.contracts import (
    COMPENSATE_PHASE_ACTIVITY,
    CYCLE_WORKFLOW_TYPE,
    TRIGGER_REPORT_REMOVED,
    UPDATE_REMOVE_REPORT,
    CompensateInput,
    CompensationResult,
    RemoveReportInput,
    UpdateResult,
    ActivityName,
    CycleWorkflowInput,
    CycleWorkflowResult,
    ReportWorkflowInput,
    ReportWorkflowResult,
    SetCycleStatusInput,
    WorkflowFinishedResult,
    report_workflow_id,
)
from workflows.temporal.report_workflow import ReportTestWorkflow


@workflow.defn(name=CYCLE_WORKFLOW_TYPE)
class TestCycleWorkflow:
    """Starts a ReportTestWorkflow per report (id cycle-<cycle>-report-<report>),
    waits for all of them and records how the cycle ended.

    Query:
      reports -> {report workflow id: status so far}.
    Update:
      remove_report(RemoveReportInput): cancel one report's child and compensate
        its current phase; the siblings go on (issue 9).
    A child that fails does not stop its siblings; the cycle then ends failed.
    Cancelling the cycle cancels every child and marks the cycle cancelled.
    """

    __test__ = False

    def __init__(self) -> None:
        self._statuses: dict[str, str] = {}
        self._children: dict[int, tuple[str, asyncio.Task]] = {}  # cycle report id -> (child id, its task)
        self._removed: dict[int, RemoveReportInput] = {}

    async def _set_status(self, inp: CycleWorkflowInput, status: str) -> None:
        await workflow.execute_activity(
            ActivityName.SET_CYCLE_STATUS,
            SetCycleStatusInput(cycle_id=inp.cycle_id, status=status),
            result_type=WorkflowFinishedResult,
            start_to_close_timeout=timedelta(seconds=inp.activity_timeout_seconds),
            retry_policy=retry.DATABASE,
        )

    async def _run_child(self, inp: CycleWorkflowInput, ref) -> ReportWorkflowResult | None:
        child_id = report_workflow_id(inp.cycle_id, ref.report_id)
        self._statuses[child_id] = "running"
        try:
            result = await workflow.execute_child_workflow(
                ReportTestWorkflow.run,
                ReportWorkflowInput(
                    cycle_id=inp.cycle_id,
                    cycle_report_id=ref.cycle_report_id,
                    report_id=ref.report_id,
                    skip_phases=list(inp.skip_phases),
                    phase_settings=dict(inp.phase_settings),
                    last_phase=inp.last_phase,
                    activity_timeout_seconds=inp.activity_timeout_seconds,
                    schedule=inp.schedule,
                ),
                id=child_id,
            )
        except (ChildWorkflowError, asyncio.CancelledError) as err:
            if ref.cycle_report_id in self._removed:
                return await self._compensate_removed(inp, ref, child_id)
            if isinstance(err, asyncio.CancelledError):
                raise
            self._statuses[child_id] = f"failed: {err.cause or err}"
            return None
        self._statuses[child_id] = result.status
        return result

    @workflow.run
    async def run(self, inp: CycleWorkflowInput) -> CycleWorkflowResult:
        for ref in inp.cycle_reports:
            task = asyncio.create_task(self._run_child(inp, ref))
            self._children[ref.cycle_report_id] = (report_workflow_id(inp.cycle_id, ref.report_id), task)
        try:
            results = await asyncio.gather(*(task for _, task in self._children.values()))
        except asyncio.CancelledError:
            await self._set_status(inp, "cancelled")
            raise
        await self._set_status(inp, "completed" if all(results) else "failed")
        return CycleWorkflowResult(cycle_id=inp.cycle_id, report_statuses=dict(self._statuses))

    @workflow.query
    def reports(self) -> dict[str, str]:
        return dict(self._statuses)

    # --- issue 9: removing a report from the running cycle ---------------------------------

    async def _compensate_removed(self, inp: CycleWorkflowInput, ref, child_id: str) -> ReportWorkflowResult:
        removal = self._removed[ref.cycle_report_id]
        await workflow.execute_activity(
            COMPENSATE_PHASE_ACTIVITY,
            CompensateInput(cycle_report_id=ref.cycle_report_id, phase="", trigger=TRIGGER_REPORT_REMOVED,
                            key=f"{child_id}/removed", reason=removal.reason, user_id=removal.user_id),
            result_type=CompensationResult,
            start_to_close_timeout=timedelta(seconds=inp.activity_timeout_seconds),
            retry_policy=retry.DATABASE,
        )
        self._statuses[child_id] = "removed"
        return ReportWorkflowResult(cycle_report_id=ref.cycle_report_id, status="removed", completed_phases=[],
                                    skipped_phases=[])

    @workflow.update(name=UPDATE_REMOVE_REPORT)
    async def remove_report(self, inp: RemoveReportInput) -> UpdateResult:
        """Cancel the report's child workflow; compensation of its current phase follows in _run_child."""
        self._removed[inp.cycle_report_id] = inp
        child_id, task = self._children[inp.cycle_report_id]
        task.cancel()
        await workflow.wait_condition(lambda: task.done())
        return UpdateResult(accepted=True, message=f"{child_id} was removed from the cycle and compensated.")

    @remove_report.validator
    def _validate_remove(self, inp: RemoveReportInput) -> None:
        if inp.cycle_report_id not in self._children:
            raise ValueError("That report is not part of this cycle's workflow.")
        if inp.cycle_report_id in self._removed:
            raise ValueError("That report was already removed.")
        if self._children[inp.cycle_report_id][1].done():
            raise ValueError("That report's workflow has already finished.")
