"""Reassignments through the pages and the API (issue 7): the forms, the refusals, the history."""
import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from cycles.models import CycleReport, DataOwnerAssignment, InformationRequest, Reassignment
from cycles.tests.test_reassignments import data_owner3, running, running_cycle  # noqa: F401 - fixtures
from synapse.testing import problem
from workflows.models import WorkflowDecision

pytestmark = pytest.mark.django_db


def api(user):
    client = APIClient()
    client.force_login(user)
    return client


def page(client, user):
    client.force_login(user)
    return client


def attribute_pk(cycle_report, name):
    return cycle_report.attributes.get(name=name).pk


# --- data owner: page ------------------------------------------------------------------------------


def test_the_data_owners_page_offers_reassign_to_the_data_executive_only(client, running, cycle_report, users):
    url = reverse("cycles:data-owners", args=[cycle_report.pk])

    html = page(client, users["executive"]).get(url).content.decode()
    assert "Reassign a data owner" in html
    for field in ("id_reassign_attribute", "id_reassign_data_owner", "id_reassign_reason"):
        assert f'<label for="{field}">' in html
    assert "Reassign a data owner" not in page(client, users["tester"]).get(url).content.decode()


def test_the_data_executive_reassigns_on_the_page_and_the_history_shows_it(
    client, running, cycle_report, users, data_owner3
):
    url = reverse("cycles:data-owners-reassign", args=[cycle_report.pk])
    response = page(client, users["executive"]).post(url, {
        "attribute": attribute_pk(cycle_report, "customer_name"), "data_owner": data_owner3.pk,
        "reason": "On leave until December."}, follow=True)

    assert response.status_code == 200
    said = [str(m) for m in response.context["messages"]]
    assert any("Its open request moved with it" in m for m in said), said
    assert InformationRequest.objects.get(pk=running["dataowner2"].pk).data_owner == data_owner3
    html = response.content.decode()
    assert 'id="reassignments"' in html and "On leave until December." in html and "Dana Three" in html


def test_a_refused_reassignment_keeps_what_was_typed(client, running, cycle_report, users):
    url = reverse("cycles:data-owners-reassign", args=[cycle_report.pk])
    response = page(client, users["executive"]).post(url, {
        "attribute": attribute_pk(cycle_report, "customer_name"), "data_owner": users["data_owner2"].pk,
        "reason": "Typed with care."})

    assert response.status_code == 400
    html = response.content.decode()
    assert "is already the data owner of customer_name" in html and "Typed with care." in html
    assert not Reassignment.objects.exists()
    # No reason: the form says so.
    response = page(client, users["executive"]).post(url, {
        "attribute": attribute_pk(cycle_report, "customer_name"), "data_owner": users["data_owner"].pk})
    assert response.status_code == 400 and "Say why the attribute is reassigned." in response.content.decode()


def test_the_new_owner_sees_the_moved_request_in_my_work_and_the_old_one_does_not(
    client, running, cycle_report, users, data_owner3
):
    request = running["dataowner2"]
    page(client, users["executive"]).post(reverse("cycles:data-owners-reassign", args=[cycle_report.pk]), {
        "attribute": attribute_pk(cycle_report, "customer_name"), "data_owner": data_owner3.pk, "reason": "Leave."})
    detail = reverse("cycles:request-detail", args=[request.pk])

    mine = page(client, data_owner3).get(reverse("cycles:my-work")).content.decode()
    assert detail in mine
    assert page(client, data_owner3).get(detail).status_code == 200
    assert detail not in page(client, users["data_owner2"]).get(reverse("cycles:my-work")).content.decode()
    assert page(client, users["data_owner2"]).get(detail).status_code == 404


# --- data owner: API ----------------------------------------------------------------------------------


def test_api_reassigns_and_tells_the_workflow_of_a_split(running, cycle_report, users, data_owner3, settings):
    settings.TEMPORAL_ADDRESS, settings.TEMPORAL_RPC_TIMEOUT = "127.0.0.1:1", 1
    CycleReport.objects.filter(pk=cycle_report.pk).update(workflow_id="cycle-1-report-1")
    url = f"/api/v1/cycle-reports/{cycle_report.pk}/data-owners/reassign/"

    response = api(users["executive"]).post(url, {"attribute_id": attribute_pk(cycle_report, "balance"),
                                                  "data_owner_id": data_owner3.pk, "reason": "Finance team."},
                                            format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["reassignment"]["from_user"]["username"] == "dataowner"
    assert body["reassignment"]["to_user"]["username"] == "dataowner3"
    assert body["reassignment"]["reason"] == "Finance team."
    assert body["request"]["id"] == body["reassignment"]["new_request_id"] != running["dataowner"].pk
    # Temporal is away: the message waits in the outbox, the reassignment is saved.
    assert "workflow" in body and body["workflow"]["delivered"] is False
    assert WorkflowDecision.objects.get(update_name="request_added").status == WorkflowDecision.Status.PENDING

    history = api(users["tester"]).get(f"/api/v1/cycle-reports/{cycle_report.pk}/reassignments/").json()
    assert [r["attribute_name"] for r in history["results"]] == ["balance"]
    problem(api(users["tester"]).get(f"/api/v1/cycle-reports/{cycle_report.pk}/reassignments/?kind=x"), 400)


@pytest.mark.parametrize("who, body, status, code, says", [
    ("tester", {"reason": "x"}, 403, "permission_denied", "Only the data executive"),
    ("executive", {"reason": ""}, 400, "invalid", "a reason is required"),
    ("executive", {"reason": "x", "same": True}, 400, "invalid", "is already the data owner"),
    ("executive", {"reason": "x", "accepted": True}, 409, "conflict", "already accepted"),
])
def test_api_refusals_are_problems(running, cycle_report, users, data_owner3, who, body, status, code, says):
    if body.pop("accepted", False):
        InformationRequest.objects.filter(pk=running["dataowner2"].pk).update(status="accepted")
    to = users["data_owner2"] if body.pop("same", False) else data_owner3
    response = api(users[who]).post(
        f"/api/v1/cycle-reports/{cycle_report.pk}/data-owners/reassign/",
        {"attribute_id": attribute_pk(cycle_report, "customer_name"), "data_owner_id": to.pk, **body}, format="json")

    assert says in problem(response, status, code)["detail"]
    assert DataOwnerAssignment.objects.get(attribute__name="customer_name").data_owner == users["data_owner2"]


def test_api_refuses_a_user_who_is_not_a_data_owner(running, cycle_report, users):
    response = api(users["executive"]).post(
        f"/api/v1/cycle-reports/{cycle_report.pk}/data-owners/reassign/",
        {"attribute_id": attribute_pk(cycle_report, "customer_name"), "data_owner_id": users["tester"].pk,
         "reason": "x"}, format="json")
    assert "data_owner_id" in problem(response, 400)["errors"]


# --- tester: page and API -------------------------------------------------------------------------------


def test_the_cycle_page_reassigns_a_tester_with_a_reason(client, running_cycle, users):
    cycle_url = reverse("cycles:cycle-detail", args=[running_cycle.cycle_id])
    html = page(client, users["manager"]).get(cycle_url).content.decode()
    assert "Reassign a tester" in html and '<label for="id_reassign_reason">' in html
    # While the cycle runs, the row's plain Assign (no reason) is gone.
    assert reverse("cycles:cycle-report-assign-tester", args=[running_cycle.pk]) not in html

    url = reverse("cycles:cycle-reassign-tester", args=[running_cycle.cycle_id])
    refused = page(client, users["manager"]).post(url, {"cycle_report": running_cycle.pk,
                                                        "tester": users["tester"].pk, "reason": "Kept text."})
    assert refused.status_code == 400 and "already tests" in refused.content.decode()
    assert "Kept text." in refused.content.decode()

    response = page(client, users["manager"]).post(url, {"cycle_report": running_cycle.pk,
                                                         "tester": users["tester2"].pk, "reason": "Leave."},
                                                   follow=True)
    assert any("now tests" in str(m) for m in response.context["messages"])
    assert CycleReport.objects.get(pk=running_cycle.pk).tester == users["tester2"]
    # The new tester has the report in My work; the old one no longer does.
    report_url = reverse("cycles:cycle-report", args=[running_cycle.pk])
    assert report_url in page(client, users["tester2"]).get(reverse("cycles:my-work")).content.decode()
    assert report_url not in page(client, users["tester"]).get(reverse("cycles:my-work")).content.decode()
    # The old tester no longer sees the cycle at all; the new one sees it but may not reassign.
    assert page(client, users["tester"]).post(url, {}).status_code == 404
    assert page(client, users["tester2"]).post(url, {}).status_code == 403


def test_the_plain_assign_no_longer_moves_a_running_reports_tester(client, running_cycle, users):
    response = page(client, users["manager"]).post(
        reverse("cycles:cycle-report-assign-tester", args=[running_cycle.pk]), {"tester": users["tester2"].pk},
        follow=True)
    assert any("reassign it with a reason" in str(m) for m in response.context["messages"])
    assert CycleReport.objects.get(pk=running_cycle.pk).tester == users["tester"]


def test_api_reassigns_a_tester_and_refuses_as_a_problem(running_cycle, users):
    url = f"/api/v1/cycle-reports/{running_cycle.pk}/tester/reassign/"
    problem(api(users["tester"]).post(url, {"tester_id": users["tester2"].pk, "reason": "x"}, format="json"), 403)
    problem(api(users["manager"]).post(url, {"tester_id": users["tester2"].pk, "reason": " "}, format="json"), 400)

    response = api(users["manager"]).post(url, {"tester_id": users["tester2"].pk, "reason": "Leave."}, format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["cycle_report"]["tester"]["id"] == users["tester2"].pk
    assert body["reassignment"]["kind"] == "tester" and body["reassignment"]["reason"] == "Leave."
    CycleReport.objects.filter(pk=running_cycle.pk).update(status="completed")
    again = api(users["manager"]).post(url, {"tester_id": users["tester"].pk, "reason": "Back."}, format="json")
    assert "signed off or removed" in problem(again, 409, "conflict")["detail"]
