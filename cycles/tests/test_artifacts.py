import pytest

from cycles.models import PhaseState
from cycles.services.artifacts import phase_is_active, phase_lock_reason


@pytest.mark.parametrize("status, reason", [
    (PhaseState.Status.ACTIVE, None),
    (PhaseState.Status.COMPLETED, "Scoping is complete; its data can't change any more."),
    (PhaseState.Status.SKIPPED, "Scoping was skipped in this cycle."),
])
def test_lock_reason_follows_the_phase_state(cycle_report, status, reason):
    cycle_report.phase = "sample_selection"  # the report moved on; the phase state decides
    cycle_report.save(update_fields=["phase"])
    PhaseState.objects.create(cycle_report=cycle_report, phase="scoping", status=status)
    assert phase_lock_reason(cycle_report, "scoping") == reason


def test_parallel_phases_are_both_active_while_the_report_shows_one(cycle_report):
    cycle_report.phase = "sample_selection"
    cycle_report.save(update_fields=["phase"])
    for phase in ("sample_selection", "data_owner_identification"):
        PhaseState.objects.create(cycle_report=cycle_report, phase=phase)
    assert phase_is_active(cycle_report, "data_owner_identification")
    assert phase_lock_reason(cycle_report, "data_owner_identification") is None
    assert "not started" not in phase_lock_reason(cycle_report, "request_for_information")
    assert phase_lock_reason(cycle_report, "request_for_information").endswith("this report is in Sample Selection.")
