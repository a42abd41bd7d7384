"""The approval screen (items, diff to the previous version, decision) and the version history page."""
from __future__ import annotations

import pytest
from django.urls import reverse

from cycles.models import CycleReport, Phase
from versioning.models import Approval, VersionStatus
from versioning.services import version_create, version_decide
from workflows.models import WorkflowDecision

pytestmark = pytest.mark.django_db


def as_user(client, user):
    client.force_login(user)
    return client


def attribute(risk: int, **extra) -> dict:
    return {"description": "Outstanding balance", "data_type": "decimal", "mandatory": True, "risk_score": risk,
            **extra}


@pytest.fixture
def planning(cycle_report):
    cycle_report.phase = Phase.PLANNING
    cycle_report.status = CycleReport.Status.IN_PROGRESS
    cycle_report.save(update_fields=["phase", "status"])
    return cycle_report


@pytest.fixture
def two_versions(planning, users):
    """v1 sent back, then v2: balance's risk score changed, account_id added, customer_name removed."""
    v1 = version_create(cycle_report=planning, phase=Phase.PLANNING, author=users["tester"],
                        items=[("balance", attribute(3)), ("customer_name", attribute(2))])
    version_decide(version=v1, user=users["owner"], approve=False, notes="Balance is riskier than that.")
    v2 = version_create(cycle_report=planning, phase=Phase.PLANNING, author=users["tester"],
                        items=[("balance", attribute(8)), ("account_id", attribute(9, data_type="string"))])
    return v1, v2


def test_approval_screen_shows_the_diff_to_the_previous_version(client, users, two_versions):
    v1, v2 = two_versions
    response = as_user(client, users["owner"]).get(reverse("versioning:version-detail", args=[v2.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Changes since version 1" in html
    assert "1 added · 1 changed · 1 removed · 0 unchanged" in html
    assert '<span class="field-name">risk_score</span>: <del>3</del> → <ins>8</ins>' in html
    assert "<strong>account_id</strong> added" in html and "<strong>customer_name</strong> removed" in html
    assert 'class="cell-changed" title="was: 3"' in html
    assert "Send decision" in html  # the owner may decide

    first = as_user(client, users["tester"]).get(reverse("versioning:version-detail", args=[v1.pk])).content.decode()
    assert "This is the first version" in first
    assert "Balance is riskier than that." in first  # the send-back notes
    assert "Sent a version back" in first  # the version's audit trail


def test_approval_screen_is_seen_by_the_report_people_and_decided_only_by_its_owner(client, users, two_versions):
    _, v2 = two_versions
    url = reverse("versioning:version-detail", args=[v2.pk])
    for who in ("tester", "manager", "executive", "admin"):
        response = as_user(client, users[who]).get(url)
        assert response.status_code == 200 and "Send decision" not in response.content.decode(), who
    for who in ("owner2", "tester2", "data_owner"):
        assert as_user(client, users[who]).get(url).status_code == 404, who
    for who in ("tester", "manager"):
        response = as_user(client, users[who]).post(reverse("versioning:version-decide", args=[v2.pk]),
                                                     {"decision": "approve"})
        assert response.status_code == 403, who
    assert as_user(client, users["owner2"]).post(reverse("versioning:version-decide", args=[v2.pk]),
                                                 {"decision": "approve"}).status_code == 404
    v2.refresh_from_db()
    assert v2.status == VersionStatus.SUBMITTED and not WorkflowDecision.objects.exists()


def test_sending_back_needs_notes_and_saves_nothing_without_them(client, users, two_versions):
    _, v2 = two_versions
    response = as_user(client, users["owner"]).post(
        reverse("versioning:version-decide", args=[v2.pk]), {"decision": "request_changes", "notes": "  "}
    )
    assert response.status_code == 200
    assert "notes are required when sending a version back" in response.content.decode()
    v2.refresh_from_db()
    assert v2.status == VersionStatus.SUBMITTED
    assert not WorkflowDecision.objects.exists() and not Approval.objects.filter(version=v2).exists()


def test_a_decision_without_a_running_workflow_is_a_message_not_an_error(client, users, two_versions):
    _, v2 = two_versions
    response = as_user(client, users["owner"]).post(
        reverse("versioning:version-decide", args=[v2.pk]), {"decision": "approve"}, follow=True
    )
    assert response.status_code == 200
    assert any("has not been started" in str(m) for m in response.context["messages"])
    v2.refresh_from_db()
    assert v2.status == VersionStatus.SUBMITTED


def test_version_history_lists_every_version_with_its_decision(client, users, two_versions):
    v1, v2 = two_versions
    cycle_report = v1.cycle_report
    url = reverse("versioning:version-history", args=[cycle_report.pk, Phase.PLANNING])
    response = as_user(client, users["manager"]).get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert reverse("versioning:version-detail", args=[v1.pk]) in html
    assert reverse("versioning:version-detail", args=[v2.pk]) in html
    assert "Changes requested by" in html and "Balance is riskier than that." in html
    for who in ("data_owner", "tester2"):
        assert as_user(client, users[who]).get(url).status_code == 404, who
    assert as_user(client, users["tester"]).get(
        reverse("versioning:version-history", args=[cycle_report.pk, "nonsense"])).status_code == 404


def test_unknown_version_is_404(client, users):
    assert as_user(client, users["owner"]).get(reverse("versioning:version-detail", args=[999999])).status_code == 404
