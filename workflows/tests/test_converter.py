"""A workflow whose input can't be decoded fails visibly, with the reason, instead of retrying its task forever
(issue 8: a stored start input of the wrong shape left a cycle "running" with no phase)."""
from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio.client import WorkflowFailureError

from workflows.temporal.contracts import REPORT_WORKFLOW_TYPE

pytestmark = [pytest.mark.temporal, pytest.mark.django_db(transaction=True)]


def test_a_workflow_whose_input_cant_be_decoded_fails_with_the_reason(temporal, settings):
    # What an older release or a hand-made start could have stored: an SLA that is not a number.
    bad = {"cycle_id": 1, "cycle_report_id": 1, "report_id": 1,
           "phase_settings": {"planning": {"sla_days": "abc"}}}

    async def run():
        handle = await temporal.client.start_workflow(
            REPORT_WORKFLOW_TYPE, bad, id=f"undecodable-{uuid.uuid4().hex}", task_queue=settings.TEMPORAL_TASK_QUEUE)
        with pytest.raises(WorkflowFailureError) as failed:
            await asyncio.wait_for(handle.result(), timeout=60)
        return failed.value.cause, (await handle.describe()).status.name

    cause, status = temporal.call(run(), timeout=90)
    assert status == "FAILED"
    assert "Can't read the value as ReportWorkflowInput" in str(cause) and "abc" in str(cause), cause
