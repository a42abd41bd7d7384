"""The workflow a cycle's Temporal Schedule starts: create the cycle from its template and start it."""
from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

from workflows.temporal import retry
from workflows.temporal.contracts import (
    RECURRING_CYCLE_WORKFLOW_TYPE,
    SCHEDULED_CYCLE_START_ACTIVITY,
    ScheduledCycleInput,
    ScheduledCycleResult,
    ScheduledCycleStartInput,
)

with workflow.unsafe.imports_passed_through():
    # The converter outside the sandbox raises this class: the workflow must see the same one.
    from workflows.temporal.converter import UndecodablePayload


@workflow.defn(name=RECURRING_CYCLE_WORKFLOW_TYPE, failure_exception_types=[UndecodablePayload])
class RecurringCycleWorkflow:
    """One run per scheduled time: its id (the schedule's id plus the time) keys the cycle it creates,
    so a retry or a second delivery never creates two. No queries, signals or updates."""

    @workflow.run
    async def run(self, inp: ScheduledCycleInput) -> ScheduledCycleResult:
        return await workflow.execute_activity(
            SCHEDULED_CYCLE_START_ACTIVITY,
            ScheduledCycleStartInput(schedule_pk=inp.schedule_pk, run_key=workflow.info().workflow_id),
            result_type=ScheduledCycleResult,
            start_to_close_timeout=timedelta(minutes=5),
            retry_policy=retry.DATABASE,
        )
