"""The parent workflow of a test cycle: one child workflow per report."""
from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.exceptions import ChildWorkflowError

from workflows.temporal import retry
from workflows.temporal.contracts import (
    COMPENSATE_PHASE_ACTIVITY,
    CYCLE_WORKFLOW_TYPE,
    TRIGGER_REPORT_REMOVED,
    UPDATE_REMOVE_REPORT,
    ActivityName,
    CompensateInput,
    CompensationResult,
    CycleWorkflowInput,
    CycleWorkflowResult,
    ReportWorkflowInput,
    RemoveReportInput,
    ReportWorkflowResult,
    SetCycleStatusInput,
    UpdateResult,
    WorkflowFinishedResult,
    report_workflow_id,
)

with workflow.unsafe.imports_passed_through():
    # The converter outside the sandbox raises this class: the workflow must see the same one.
    from workflows.temporal.converter import UndecodablePayload
from workflows.temporal.phases.base import DATABASE_TIMEOUT
from workflows.temporal.report_workflow import ReportTestWorkflow

# workflow.patched id of compensating a removed report's phase (before it, a removal only cancelled the child).
PATCH_REMOVAL_COMPENSATION = "report-removal-compensation-v1"


@workflow.defn(name=CYCLE_WORKFLOW_TYPE, failure_exception_types=[UndecodablePayload])
class TestCycleWorkflow:
    """Starts a ReportTestWorkflow per report (id cycle-<cycle>-report-<report>),
    waits for all of them and records how the cycle ended.

    Query:
      reports -> {report workflow id: status so far}.
    Update:
      remove_report(RemoveReportInput): the test manager took a report out of the
        cycle with a reason (stored by Synapse first); its child is cancelled and
        the cycle no longer waits for it; once the child has recorded where it
        stopped, the phase it was in is compensated (trigger report_removed).
    A child that fails does not stop its siblings; the cycle then ends failed.
    The cycle completes when every report is signed off or removed.
    Cancelling the cycle cancels every child and marks the cycle cancelled.
    """

    __test__ = False

    def __init__(self) -> None:
        self._statuses: dict[str, str] = {}
        self._children: dict[int, asyncio.Task] = {}
        self._removed: dict[int, RemoveReportInput] = {}

    async def _set_status(self, inp: CycleWorkflowInput, status: str) -> None:
        await workflow.execute_activity(
            ActivityName.SET_CYCLE_STATUS,
            SetCycleStatusInput(cycle_id=inp.cycle_id, status=status),
            result_type=WorkflowFinishedResult,
            # A database write: seconds, so a task given to a worker that died is retried at once (issue 10).
            start_to_close_timeout=DATABASE_TIMEOUT,
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
        except ChildWorkflowError as err:
            if ref.cycle_report_id in self._removed:
                return await self._report_removed(inp, ref, child_id)
            self._statuses[child_id] = f"failed: {err.cause or err}"
            return None
        except asyncio.CancelledError:
            if ref.cycle_report_id not in self._removed:
                raise
            return await self._report_removed(inp, ref, child_id)
        self._statuses[child_id] = result.status
        return result

    async def _report_removed(self, inp: CycleWorkflowInput, ref, child_id: str) -> ReportWorkflowResult:
        self._statuses[child_id] = "removed"
        if workflow.patched(PATCH_REMOVAL_COMPENSATION):
            removal = self._removed[ref.cycle_report_id]
            # The child has finished (cancellation waits for it) and recorded its phase on the report:
            # an empty phase makes the activity compensate that one.
            await workflow.execute_activity(
                COMPENSATE_PHASE_ACTIVITY,
                CompensateInput(
                    cycle_report_id=ref.cycle_report_id, phase="", trigger=TRIGGER_REPORT_REMOVED,
                    key=f"{workflow.info().workflow_id}/{workflow.info().run_id}/removed-{ref.cycle_report_id}",
                    reason="Removed from the running cycle.", user_id=removal.user_id,
                ),
                result_type=CompensationResult,
                start_to_close_timeout=DATABASE_TIMEOUT,
                retry_policy=retry.DATABASE,
            )
        return ReportWorkflowResult(ref.cycle_report_id, "removed", [], [])

    @workflow.run
    async def run(self, inp: CycleWorkflowInput) -> CycleWorkflowResult:
        self._children = {ref.cycle_report_id: asyncio.ensure_future(self._run_child(inp, ref))
                          for ref in inp.cycle_reports}
        try:
            results = await asyncio.gather(*self._children.values())
        except asyncio.CancelledError:
            await self._set_status(inp, "cancelled")
            raise
        await self._set_status(inp, "completed" if all(results) else "failed")
        return CycleWorkflowResult(cycle_id=inp.cycle_id, report_statuses=dict(self._statuses))

    @workflow.update(name=UPDATE_REMOVE_REPORT)
    async def remove_report(self, inp: RemoveReportInput) -> UpdateResult:
        if inp.cycle_report_id in self._removed:
            # Asked again (a redelivery after a lost answer): answer, change nothing.
            return UpdateResult(accepted=True, duplicate=True,
                                message="Already applied: the report was removed from the cycle.")
        self._removed[inp.cycle_report_id] = inp
        # Cancelling the task cancels the child workflow; it records the report as cancelled.
        self._children[inp.cycle_report_id].cancel()
        return UpdateResult(accepted=True, message="The report was removed from the cycle; the cycle no longer "
                                                   "waits for it.")

    @remove_report.validator
    def _validate_remove(self, inp: RemoveReportInput) -> None:
        task = self._children.get(inp.cycle_report_id)
        if task is None:
            raise ValueError("That report is not part of this cycle's workflow.")
        if inp.cycle_report_id in self._removed:
            return  # already applied: the handler says so
        if task.done():
            raise ValueError("That report's workflow has already finished.")

    @workflow.query
    def reports(self) -> dict[str, str]:
        return dict(self._statuses)
