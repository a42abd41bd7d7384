"""A finished step resolves its phase's failed-beyond-retries alert, and looks for one only when one may be open."""
from __future__ import annotations

import types

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from workflows import alerts, tracking
from workflows.models import WorkflowAlert

pytestmark = pytest.mark.django_db


def finish_a_step(number: int, workflow_id: str = "wf-1", phase: str = "scoping") -> list[str]:
    """Run the tracking of one step of `phase`; return the statements its end sent about alerts."""
    info = types.SimpleNamespace(activity_type="scoping_recommend", activity_id=f"a-{number}", attempt=1,
                                 workflow_id=workflow_id, workflow_run_id="run-1", workflow_type="Probe",
                                 retry_policy=None)
    step = tracking.step_started(info, types.SimpleNamespace(phase=phase))
    with CaptureQueriesContext(connection) as captured:
        tracking.step_finished(step, None)
    return [q["sql"].split()[0] for q in captured.captured_queries if "workflows_workflowalert" in q["sql"]]


def test_steps_look_for_an_alert_once_a_while_and_resolve_one_opened_here(django_capture_on_commit_callbacks,
                                                                         monkeypatch):
    monkeypatch.setattr(alerts, "OPEN_FAILED_SECONDS", 3600)  # what was read holds for the whole test
    alerts._forget_open_failed()
    # No alert open: the first step reads which workflows have one, the next ones ask nothing.
    assert finish_a_step(1) == ["SELECT"]
    assert finish_a_step(2) == []

    with django_capture_on_commit_callbacks(execute=True):
        alerts.alert_open(key=alerts.phase_failed_key("wf-1", "scoping"), kind=alerts.PHASE_FAILED,
                          message="scoping failed beyond its retries", workflow_id="wf-1")
    # Opened in this process: seen at once, and the next step of the phase resolves it.
    assert "UPDATE" in finish_a_step(3)
    assert WorkflowAlert.objects.get(kind=alerts.PHASE_FAILED).resolved_at is not None
    # Nothing open any more: the step after it reads once again, then asks nothing.
    assert finish_a_step(4) == ["SELECT"]
    assert finish_a_step(5, workflow_id="wf-2") == []
