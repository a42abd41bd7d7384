"""Reviews that scale: the remaining samples decided at once, decisions carried over, mistakes caught in Django."""
import pytest
from django.urls import reverse

from cycles.exceptions import ApplicationError, ConflictError, PermissionDeniedError
from cycles.models import Attribute, Phase
from cycles.services.sampling import samples_decide_remaining
from synapse.models import AuditEvent
from versioning.models import VersionItem, VersionStatus
from versioning.services import version_create, version_decide, version_item_decide
from workflows.models import WorkflowDecision
from workflows.services import workflow_decide_version, workflow_submit_version


def sample_version(cycle_report, users, keys, data=lambda key: {"row_index": int(key)}):
    return version_create(cycle_report=cycle_report, phase=Phase.SAMPLE_SELECTION, author=users["tester"],
                          items=[(key, data(key)) for key in keys])


@pytest.fixture
def sixty_one(cycle_report, users):
    cycle_report.phase = Phase.SAMPLE_SELECTION
    cycle_report.workflow_id = "cycle-1-report-1"
    cycle_report.save(update_fields=["phase", "workflow_id"])
    return sample_version(cycle_report, users, [str(n) for n in range(1, 62)])


def test_the_remaining_samples_are_approved_at_once_with_one_note(sixty_one, users):
    owner = users["owner"]
    rejected = sixty_one.items.get(key="7")
    version_item_decide(item=rejected, user=owner, approve=False, note="closed before the period")

    count = samples_decide_remaining(user=owner, version=sixty_one, approve=True, note="checked against the tape")

    assert count == 60
    decisions = dict(sixty_one.items.values_list("key", "decision"))
    assert decisions["7"] == VersionItem.Decision.REJECTED
    assert sum(1 for d in decisions.values() if d == VersionItem.Decision.APPROVED) == 60
    [event] = AuditEvent.objects.filter(action="version_item.decide_remaining")
    assert event.actor == owner and event.after["samples"][:3] == ["1", "2", "3"]
    assert samples_decide_remaining(user=owner, version=sixty_one, approve=True) == 0


def test_rejecting_the_rest_needs_a_note_and_only_the_approver_decides(sixty_one, users):
    with pytest.raises(ApplicationError, match="Say why the remaining samples are rejected"):
        samples_decide_remaining(user=users["owner"], version=sixty_one, approve=False)
    with pytest.raises(PermissionDeniedError):
        samples_decide_remaining(user=users["tester"], version=sixty_one, approve=True)
    with pytest.raises(PermissionDeniedError):
        samples_decide_remaining(user=users["owner2"], version=sixty_one, approve=True)
    assert not sixty_one.items.exclude(decision=VersionItem.Decision.PENDING).exists()


def test_the_approval_page_offers_one_button_for_the_remaining_samples(sixty_one, users, client):
    client.force_login(users["owner"])
    url = reverse("versioning:version-decide", args=[sixty_one.pk])

    page = client.get(reverse("versioning:version-detail", args=[sixty_one.pk])).content.decode()
    response = client.post(url, {"remaining": "approve", "note": ""}, follow=True)

    assert "Approve all 61 remaining" in page and 'for="id_remaining_note"' in page
    assert "61 remaining samples approved." in response.content.decode()
    # Keys read as numbers: 2 comes before 10.
    page = response.content.decode()
    assert page.index('<strong>2</strong>') < page.index('<strong>10</strong>')


def test_decisions_on_unchanged_samples_carry_into_the_next_version(cycle_report, users):
    owner = users["owner"]
    first = sample_version(cycle_report, users, ["1", "2", "3"])
    for key, approve, note in (("1", True, ""), ("2", True, ""), ("3", False, "wrong period")):
        version_item_decide(item=first.items.get(key=key), user=owner, approve=approve, note=note)
    version_decide(version=first, user=owner, approve=False, notes="replace 3")

    second = sample_version(cycle_report, users, ["1", "2", "4"],
                            data=lambda key: {"row_index": int(key), **({"stratum": "B"} if key == "2" else {})})

    decisions = {i.key: (i.decision, i.decided_by) for i in second.items.all()}
    # 1 is unchanged: still approved by the owner. 2 changed and 4 is new: undecided.
    assert decisions["1"] == (VersionItem.Decision.APPROVED, owner)
    assert decisions["2"][0] == decisions["4"][0] == VersionItem.Decision.PENDING
    assert AuditEvent.objects.filter(action="version.carry_decisions", after__items=["1"]).exists()


def test_approving_with_a_rejected_sample_is_refused_in_django_before_anything_is_sent(sixty_one, users):
    version_item_decide(item=sixty_one.items.get(key="12"), user=users["owner"], approve=False, note="duplicate")

    with pytest.raises(ConflictError, match=r"1 item\(s\) are rejected \(12\): send the version back"):
        workflow_decide_version(user=users["owner"], version=sixty_one, approve=True)

    assert not WorkflowDecision.objects.exists()
    sixty_one.refresh_from_db()
    assert sixty_one.status == VersionStatus.SUBMITTED


def test_a_submission_that_is_not_ready_is_refused_in_django_before_anything_is_sent(cycle_report, users):
    cycle_report.phase = Phase.SCOPING
    cycle_report.workflow_id = "cycle-1-report-1"
    cycle_report.save(update_fields=["phase", "workflow_id"])
    Attribute.objects.create(cycle_report=cycle_report, name="fico_score")

    with pytest.raises(ApplicationError, match="Decide the scope of every attribute first: fico_score"):
        workflow_submit_version(user=users["tester"], cycle_report=cycle_report, phase=Phase.SCOPING)

    assert not WorkflowDecision.objects.exists()
