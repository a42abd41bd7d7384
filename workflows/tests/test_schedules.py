"""Recurring cycles on the real dev server: a Temporal Schedule, made from the admin, the cycle page or the API,
creates a cycle like its template and starts its workflow; pause and resume reach Temporal; nothing is created
twice."""
from __future__ import annotations

import datetime

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from cycles.models import TestCycle
from synapse.exceptions import ApplicationError, PermissionDeniedError
from synapse.models import AuditEvent
from synapse.testing import problem
from workflows.models import CycleSchedule, ScheduledCycleRun
from workflows.schedules import schedule_create, schedule_describe, schedule_next_run, schedule_run
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


def test_the_next_run_follows_the_calendar_temporal_is_given():
    utc = datetime.timezone.utc
    at = datetime.datetime
    assert schedule_next_run("monthly", after=at(2026, 12, 6, 8, tzinfo=utc)) == at(2027, 1, 1, 6, tzinfo=utc)
    assert schedule_next_run("monthly", after=at(2027, 2, 1, 5, 59, tzinfo=utc)) == at(2027, 2, 1, 6, tzinfo=utc)
    assert schedule_next_run("monthly", after=at(2027, 2, 1, 6, tzinfo=utc)) == at(2027, 3, 1, 6, tzinfo=utc)
    assert schedule_next_run("quarterly", after=at(2026, 12, 6, tzinfo=utc)) == at(2027, 1, 1, 6, tzinfo=utc)
    assert schedule_next_run("quarterly", after=at(2027, 1, 1, 6, tzinfo=utc)) == at(2027, 4, 1, 6, tzinfo=utc)
    assert schedule_next_run("quarterly", after=at(2027, 10, 2, tzinfo=utc)) == at(2028, 1, 1, 6, tzinfo=utc)


def test_a_test_manager_makes_a_cycle_recur_from_its_page_and_steers_it_through_the_api(
    temporal, client, users, cycle, cycle_report, cleanup_schedules,
):
    client.force_login(users["manager"])
    page = client.get(reverse("cycles:cycle-detail", args=[cycle.pk])).content.decode()
    assert "This cycle does not recur." in page and "Make it recur" in page

    # A wrong frequency (a tampered form) is a message on the page; nothing is created.
    create = reverse("workflows:schedule-create", args=[cycle.pk])
    response = client.post(create, {"name": "Retail", "frequency": "yearly"}, follow=True)
    assert "Select a valid choice" in response.content.decode() and not CycleSchedule.objects.exists()

    response = client.post(create, {"name": "Retail monthly", "frequency": "monthly"}, follow=True)
    schedule = CycleSchedule.objects.get()
    cleanup_schedules.append(schedule.schedule_id)
    assert "Retail monthly recurs monthly: the next cycle is created and started on" in response.content.decode()
    assert schedule.created_by == users["manager"] and schedule.template == cycle
    assert schedule_describe(schedule=schedule)["next_runs"][0] == schedule_next_run("monthly")
    page = response.content.decode()
    assert "Active" in page and f"{schedule_next_run('monthly'):%-d %b %Y}" in page

    api = APIClient()
    api.force_login(users["manager"])
    listed = api.get("/api/v1/workflow-schedules/").json()["results"]
    assert [(s["id"], s["frequency"], s["paused"], s["cycles_made"]) for s in listed] == [
        (schedule.pk, "monthly", False, 0)]
    response = api.post(f"/api/v1/workflow-schedules/{schedule.pk}/pause/", {"reason": "audit freeze"}, format="json")
    assert response.status_code == 200 and response.json()["paused"] is True
    assert schedule_describe(schedule=schedule)["paused"]
    assert "none while paused" in client.get(reverse("cycles:cycle-detail", args=[cycle.pk])).content.decode()
    response = client.post(reverse("workflows:schedule-action", args=[schedule.pk, "resume"]), follow=True)
    assert "resumed" in response.content.decode() and not schedule_describe(schedule=schedule)["paused"]

    # Run now from the page: a cycle like this one is created and started, and says where it came from.
    client.post(reverse("workflows:schedule-action", args=[schedule.pk, "trigger"]))
    run = wait_until(lambda: ScheduledCycleRun.objects.filter(schedule=schedule).first(), what="a scheduled cycle")
    made = wait_until(lambda: (c := TestCycle.objects.get(pk=run.cycle_id)).status == "running" and c,
                      what="the scheduled cycle started")
    assert made.test_manager == users["manager"]
    made_page = client.get(reverse("cycles:cycle-detail", args=[made.pk])).content.decode()
    assert "Made by" in made_page and "Retail monthly" in made_page
    assert api.get("/api/v1/workflow-schedules/").json()["results"][0]["cycles_made"] == 1

    # Others: a tester sees no schedule and can't steer one; bad bodies are 400 problems.
    tester = APIClient()
    tester.force_login(users["tester"])
    assert tester.get("/api/v1/workflow-schedules/").json()["results"] == []
    problem(tester.post(f"/api/v1/workflow-schedules/{schedule.pk}/pause/", {}, format="json"), 404)
    body = problem(api.post(f"/api/v1/cycles/{cycle.pk}/schedules/", {"frequency": "yearly"}, format="json"), 400)
    assert "frequency" in body["errors"]
    assert CycleSchedule.objects.count() == 1
    assert set(AuditEvent.objects.filter(action__startswith="schedule.").values_list("action", flat=True)) == {
        "schedule.create", "schedule.pause", "schedule.resume", "schedule.trigger"}


def test_a_cycle_without_reports_cannot_recur_through_the_api(temporal, users, cycle):
    api = APIClient()
    api.force_login(users["manager"])
    body = problem(api.post(f"/api/v1/cycles/{cycle.pk}/schedules/", {"frequency": "quarterly"}, format="json"), 400)
    assert "no reports" in body["detail"] and not CycleSchedule.objects.exists()
