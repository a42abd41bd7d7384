"""A report cancelled (removed from its cycle, its cycle cancelled) while an activity of its phase runs.

In a module of its own: the time-skipping server it runs on keeps the cancelled activity, and the
module's next test could not skip time any more.
"""
from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio.client import WorkflowFailureError

from workflows.temporal.contracts import DATA_PROFILING, PLANNING, ReportWorkflowInput
from workflows.temporal.report_workflow import ReportTestWorkflow
from workflows.tests.test_report_workflow import (  # noqa: F401 - the module's environment fixture
    FakeActivities,
    _wait_until,
    _worker,
    env,
)

pytestmark = pytest.mark.temporal


@pytest.mark.parametrize("held, skip", [("draft", []), ("recommend", [PLANNING, DATA_PROFILING])])
async def test_a_report_cancelled_while_its_phases_activity_runs_ends_cancelled(env, held, skip):
    """The drafting (whose failure Planning survives) and Scoping's recommendation (whose failure is compensated)
    are running when the report is cancelled: the activity's cancellation ends the workflow, recorded as
    cancelled; nothing is compensated and nothing waits for an admin."""
    fakes = FakeActivities()
    fakes.holds[held] = asyncio.Event()
    queue = f"q-{uuid.uuid4().hex}"
    async with _worker(env, fakes, queue):
        handle = await env.client.start_workflow(
            ReportTestWorkflow.run, ReportWorkflowInput(1, 10, 20, skip_phases=skip),
            id=f"cancel-{held}-{uuid.uuid4().hex[:6]}", task_queue=queue)
        await _wait_until(env, lambda: any(c[0] == held for c in fakes.calls))
        await handle.cancel()
        await _wait_until(env, lambda: ("finish", "cancelled") in fakes.calls)
        fakes.holds[held].set()
        with pytest.raises(WorkflowFailureError):
            await asyncio.wait_for(handle.result(), timeout=30)
    assert ("finish", "cancelled") in fakes.calls
    assert not [c for c in fakes.calls if c[0] == "compensate"]
