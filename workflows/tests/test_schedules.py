"""Recurring cycles on the real dev server: a Temporal Schedule, triggered from the admin, creates a cycle like
its template and starts its workflow; pause and resume reach Temporal; nothing is created twice."""
from __future__ import annotations

import pytest
from django.urls import reverse

from cycles.models import TestCycle
from synapse.models import AuditEvent
from workflows.models import CycleSchedule, ScheduledCycleRun
from synapse.exceptions import ApplicationError, PermissionDeniedError
from workflows.schedules import schedule_create, schedule_describe, schedule_run
from workflows.testing import wait_until

pytestmark = [pytest.mark.temporal, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def cleanup_schedules(temporal_harness):
    created = []
    yield created

    workflow_ids = list(TestCycle.objects.exclude(workflow_id="").values_list("workflow_id", flat=True))

    async def delete():
        for schedule_id in created:
            try:
                await temporal_harness.client.get_schedule_handle(schedule_id).delete()
            except Exception:
                pass
        for workflow_id in workflow_ids:
            try:
                await temporal_harness.client.get_workflow_handle(workflow_id).terminate("test over")
            except Exception:
                pass

    temporal_harness.call(delete())


def test_schedule_from_the_admin_trigger_pause_resume(temporal, client, users, cycle, cycle_report,
                                                      cleanup_schedules):
    with pytest.raises(PermissionDeniedError):
        schedule_create(user=users["tester"], template=cycle, frequency="quarterly")
    client.force_login(users["admin"])
    add = reverse("admin:workflows_cycleschedule_add")
    response = client.post(add, {"name": "Retail quarterly", "template": cycle.pk, "frequency": "quarterly"})
    assert response.status_code == 302, response.content
    schedule = CycleSchedule.objects.get()
    cleanup_schedules.append(schedule.schedule_id)
    state = schedule_describe(schedule=schedule)
    assert not state["paused"] and [t.month for t in state["next_runs"]][0] in (1, 4, 7, 10)
    assert all(t.day == 1 for t in state["next_runs"])

    changelist = reverse("admin:workflows_cycleschedule_changelist")
    client.post(changelist, {"action": "trigger", "_selected_action": [schedule.pk]})
    run = wait_until(lambda: ScheduledCycleRun.objects.filter(schedule=schedule).first(), what="a scheduled cycle")
    made = wait_until(lambda: (c := TestCycle.objects.get(pk=run.cycle_id)).status == "running" and c,
                      what="the scheduled cycle started")
    assert made.name.startswith("Retail quarterly ") and made.test_manager == users["admin"]
    assert [(cr.report_id, cr.tester_id) for cr in made.cycle_reports.all()] == [
        (cycle_report.report_id, cycle_report.tester_id)]
    assert made.workflow_id == f"cycle-{made.pk}"

    # The same run again (a retried activity) creates nothing more.
    assert schedule_run(schedule_pk=schedule.pk, run_key=run.run_key).pk == made.pk
    assert TestCycle.objects.count() == 2

    client.post(changelist, {"action": "pause", "_selected_action": [schedule.pk]})
    assert schedule_describe(schedule=schedule)["paused"] and CycleSchedule.objects.get().paused
    client.post(changelist, {"action": "resume", "_selected_action": [schedule.pk]})
    assert not schedule_describe(schedule=schedule)["paused"]
    assert {e.action for e in AuditEvent.objects.filter(action__startswith="schedule.")} == {
        "schedule.create", "schedule.trigger", "schedule.pause", "schedule.resume"}


def test_a_template_without_reports_is_refused_and_nothing_is_kept(temporal, users, cycle):
    with pytest.raises(ApplicationError, match="no reports"):
        schedule_create(user=users["manager"], template=cycle, frequency="monthly")
    assert not CycleSchedule.objects.exists()
