"""The status box and tab marker follow the phase on the screen, in words (the workflow's answer is given)."""
import pytest
from django.urls import reverse

from cycles.models import Phase, PhaseState
from workflows.temporal.contracts import ReportStatus, State


@pytest.fixture
def parallel_step(cycle_report, monkeypatch):
    """The report runs Sample Selection ‖ Data Owner Identification; the workflow says so when asked."""
    cycle_report.phase = Phase.SAMPLE_SELECTION
    cycle_report.workflow_id = "cycle-1-report-1"
    cycle_report.save(update_fields=["phase", "workflow_id"])
    for phase in (Phase.SAMPLE_SELECTION, Phase.DATA_OWNER_IDENTIFICATION):
        PhaseState.objects.create(cycle_report=cycle_report, phase=phase, status=PhaseState.Status.ACTIVE)
    status = ReportStatus(
        cycle_report_id=cycle_report.pk, phase=Phase.SAMPLE_SELECTION, state=State.COMPLETED, waiting_on="",
        completed_phases=[Phase.PLANNING, Phase.DATA_PROFILING, Phase.SCOPING],
        active={Phase.DATA_OWNER_IDENTIFICATION: State.AWAITING_ASSIGNMENT},
    )
    # Temporal's answer stands in for a running workflow; what is tested is how the page says it.
    monkeypatch.setattr("cycles.views.pages._live_status", lambda user, cr: (status, ""))
    return cycle_report


def test_the_data_owner_page_shows_its_own_state_not_the_other_phases(client, users, parallel_step):
    client.force_login(users["executive"])

    page = client.get(reverse("cycles:data-owners", args=[parallel_step.pk])).content.decode()

    assert "Awaiting data owner assignments · Data Executive" in page
    assert "awaiting_data_owners" not in page
    # Both running phases carry the tab marker.
    assert page.count('title="running now"') == 2


def test_a_finished_phase_says_complete_and_a_later_one_not_started(client, users, parallel_step):
    client.force_login(users["tester"])

    scoping = client.get(reverse("cycles:scoping", args=[parallel_step.pk])).content.decode()
    requests = client.get(reverse("cycles:report-requests", args=[parallel_step.pk])).content.decode()

    assert "Phase complete" in scoping
    assert "Not started yet" in requests
