import datetime

import pytest

from cycles.exceptions import ApplicationError, ConflictError, PermissionDeniedError
from cycles.models import CycleReport, PhaseState, TestCycle
from cycles.services.cycles import (
    cycle_add_report,
    cycle_create,
    cycle_report_complete_phase,
    cycle_report_enter_phase,
    cycle_report_finish,
    cycle_set_status,
    cycle_update_configuration,
)
from synapse.models import AuditEvent

Q3 = {"period_start": datetime.date(2026, 7, 1), "period_end": datetime.date(2026, 9, 30)}


def test_create_checks_role_period_and_configuration(users):
    with pytest.raises(PermissionDeniedError):
        cycle_create(user=users["tester"], name="Q3", **Q3)
    with pytest.raises(ApplicationError, match="ends before it starts"):
        cycle_create(user=users["manager"], name="Q3", period_start=Q3["period_end"], period_end=Q3["period_start"])
    with pytest.raises(ApplicationError, match="skip_phases.0: \"nonsense\" is not a valid choice"):
        cycle_create(user=users["manager"], name="Q3", configuration={"skip_phases": ["nonsense"]}, **Q3)
    with pytest.raises(ApplicationError, match="rfi_due_days"):
        cycle_create(user=users["manager"], name="Q3", configuration={"rfi_due_days": -1}, **Q3)
    assert not TestCycle.objects.exists()

    cycle = cycle_create(user=users["manager"], name="Q3", configuration={"skip_phases": ["scoping"]}, **Q3)
    assert cycle.test_manager == users["manager"] and cycle.configuration["skip_phases"] == ["scoping"]
    assert cycle.configuration["reminder_days_before"] == [3, 1]  # defaults fill the rest
    assert AuditEvent.objects.for_object(cycle).get().action == "cycle.create"


def test_reports_are_added_by_the_cycles_manager_only_before_it_starts(users, cycle, report):
    with pytest.raises(PermissionDeniedError):
        cycle_add_report(user=users["tester"], cycle=cycle, report=report)
    with pytest.raises(ApplicationError, match="is not a Tester"):
        cycle_add_report(user=users["manager"], cycle=cycle, report=report, tester=users["owner"])
    cycle_add_report(user=users["manager"], cycle=cycle, report=report, tester=users["tester"])
    with pytest.raises(ConflictError, match="already in"):
        cycle_add_report(user=users["manager"], cycle=cycle, report=report)
    report.pk, report.name = None, "Second report"
    report.save()
    cycle.status = TestCycle.Status.RUNNING
    cycle.save(update_fields=["status"])
    with pytest.raises(ConflictError, match="can't change once started"):
        cycle_update_configuration(user=users["manager"], cycle=cycle, configuration={})
    with pytest.raises(ConflictError, match="before the cycle's workflow starts"):
        cycle_add_report(user=users["manager"], cycle=cycle, report=report)


def test_entering_phases_is_idempotent_and_tracks_parallel_phases(cycle_report):
    previous, _ = cycle_report_enter_phase(cycle_report_id=cycle_report.pk, phase="planning",
                                           workflow_id="cycle-1-report-1")
    assert previous == ""
    cycle_report_enter_phase(cycle_report_id=cycle_report.pk, phase="planning")
    cycle_report_complete_phase(cycle_report_id=cycle_report.pk, phase="planning")
    cycle_report_enter_phase(cycle_report_id=cycle_report.pk, phase="data_profiling", skipped=True)
    cycle_report_enter_phase(cycle_report_id=cycle_report.pk, phase="sample_selection")
    cycle_report_enter_phase(cycle_report_id=cycle_report.pk, phase="data_owner_identification",
                             set_current=False)
    report = CycleReport.objects.get(pk=cycle_report.pk)
    assert report.phase == "sample_selection"  # the second parallel phase doesn't take over
    assert report.skipped_phases == ["data_profiling"]
    # The workflow fills in its id when the web process could not record it.
    assert report.workflow_id == "cycle-1-report-1"
    assert dict(PhaseState.objects.values_list("phase", "status")) == {
        "planning": "completed", "data_profiling": "skipped", "sample_selection": "active",
        "data_owner_identification": "active",
    }
    assert AuditEvent.objects.filter(action="cycle_report.enter_phase").count() == 2
    with pytest.raises(ApplicationError, match="Unknown phase"):
        cycle_report_enter_phase(cycle_report_id=cycle_report.pk, phase="lunch")


def test_end_statuses_are_validated_and_idempotent(cycle, cycle_report):
    with pytest.raises(ApplicationError):
        cycle_report_finish(cycle_report_id=cycle_report.pk, status="done-ish")
    cycle_report_finish(cycle_report_id=cycle_report.pk, status="scoped")
    cycle_report_finish(cycle_report_id=cycle_report.pk, status="scoped")
    assert AuditEvent.objects.filter(action="cycle_report.finish").count() == 1
    cycle_set_status(cycle_id=cycle.pk, status="completed")
    cycle.refresh_from_db()
    assert cycle.status == "completed" and cycle.completed_at is not None
