"""Where an admin's reset goes back to, and what the history page shows, whether the workflow entered its
phases by ordinary activities (before patch local-phase-entry) or by local ones (recorded as markers)."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory

from workflows import operations
from workflows.temporal.contracts import (
    DATA_OWNER_IDENTIFICATION,
    PLANNING,
    REQUEST_FOR_INFORMATION,
    SAMPLE_SELECTION,
    TEST_EXECUTION,
    ActivityName,
)

HISTORIES = Path(__file__).parent / "histories"


def _history(name: str) -> WorkflowHistory:
    return WorkflowHistory.from_json(name, (HISTORIES / f"{name}.json").read_text())


def _entries(history) -> dict[str, tuple[int, int]]:
    """{phase: (event id of its entry, id of the workflow task completed just before it)}, from the events."""
    found, last_completed = {}, 0
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            last_completed = event.event_id
        phase = operations._entered(event)
        if phase:
            found[phase] = (event.event_id, last_completed)
    return found


def test_the_local_history_enters_its_phases_by_markers_only():
    events = _history("report_local_entry").events
    scheduled = {e.activity_task_scheduled_event_attributes.activity_type.name
                 for e in events if e.HasField("activity_task_scheduled_event_attributes")}
    assert not scheduled & {ActivityName.ENTER_PHASE, ActivityName.CREATE_REQUESTS}
    assert ActivityName.CHECK_DATA_OWNERS in scheduled
    local = [operations._local_activity(e) for e in events]
    kinds = {entry[0] for entry in local if entry}
    assert {ActivityName.ENTER_PHASE, ActivityName.CREATE_REQUESTS} <= kinds


@pytest.mark.parametrize("name", ["report_parallel_and_requests", "report_local_entry"])
def test_a_reset_goes_back_to_the_workflow_task_that_entered_the_phase(name):
    history = _history(name)
    entries = _entries(history)
    # Planning and the two before Sample Selection were skipped: nothing to go back to.
    assert PLANNING not in entries
    assert operations._reset_point(history, PLANNING) == 0
    points = []
    for phase in (SAMPLE_SELECTION, DATA_OWNER_IDENTIFICATION, REQUEST_FOR_INFORMATION, TEST_EXECUTION):
        entered_at, task = entries[phase]
        point = operations._reset_point(history, phase)
        assert point == task and 0 < point < entered_at
        kind = next(e.event_type for e in history.events if e.event_id == point)
        assert kind == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
        points.append(point)
    # The parallel phases are entered by one workflow task; each later phase by a later one.
    assert points[0] == points[1] < points[2] < points[3]


def test_a_failed_local_entry_is_not_an_entry():
    """A local attempt that failed is retried as an ordinary activity; only what went through entered."""
    history = _history("report_local_entry")
    marker = next(e for e in history.events if e.HasField("marker_recorded_event_attributes")
                  and operations._entered(e) == SAMPLE_SELECTION)
    marker.marker_recorded_event_attributes.failure.message = "database unavailable"
    assert operations._local_activity(marker) is None and operations._entered(marker) == ""


@pytest.mark.django_db
def test_the_history_page_names_local_activities_and_the_phase_entered(monkeypatch, users):
    monkeypatch.setattr(operations, "_fetch_history", lambda execution: _history("report_local_entry"))
    events = operations.execution_history(user=users["admin"], execution=SimpleNamespace())
    details = [e.detail for e in events if e.type == "MARKER_RECORDED"]
    assert f"{ActivityName.ENTER_PHASE} (local, {SAMPLE_SELECTION})" in details
    assert f"{ActivityName.ENTER_PHASE} (local, {TEST_EXECUTION})" in details
    assert f"{ActivityName.CREATE_REQUESTS} (local)" in details
