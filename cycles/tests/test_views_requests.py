"""Pages of Data Owner Identification, Requests for Information and evidence: scoping, uploads, reviews,
and that what a person saved stays saved when the workflow can't be told."""
from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from cycles.models import (
    CycleReport,
    DataOwnerAssignment,
    Evidence,
    InformationRequest,
    Phase,
    PhaseState,
)
from cycles.services.requests import (
    data_owner_assign,
    evidence_upload,
    information_request_submit,
    information_requests_create,
)
from cycles.tests.test_requests import DUE, approve_samples, open_doi, requests_ready, scoped_attributes
from workflows.models import WorkflowDecision

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def as_user(client, user):
    client.force_login(user)
    return client


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def stored_files(tmp_path) -> list[Path]:
    media = Path(tmp_path) / "media"
    return sorted(p for p in media.rglob("*") if p.is_file()) if media.exists() else []


@pytest.fixture
def doi(cycle_report, users):
    """The parallel step: both phases active, three attributes in scope, one out."""
    cycle_report.phase = Phase.SAMPLE_SELECTION
    cycle_report.status = CycleReport.Status.IN_PROGRESS
    cycle_report.save(update_fields=["phase", "status"])
    PhaseState.objects.create(cycle_report=cycle_report, phase=Phase.SAMPLE_SELECTION)
    open_doi(cycle_report)
    return scoped_attributes(cycle_report, users["tester"])


@pytest.fixture
def requests(cycle_report, users, storage):
    """Requests sent: dataowner answers account_id and balance, dataowner2 customer_name."""
    return requests_ready(cycle_report, users)


def doi_page(cycle_report):
    return reverse("cycles:data-owners", args=[cycle_report.pk])


def detail(request):
    return reverse("cycles:request-detail", args=[request.pk])


def upload(name, content, content_type="application/octet-stream"):
    return SimpleUploadedFile(name, content, content_type=content_type)


# --- Data Owner Identification ---------------------------------------------------------------------


def test_doi_page_renders_for_the_reports_people_and_only_the_executive_assigns(client, users, cycle_report, doi):
    url = doi_page(cycle_report)
    for who in ("tester", "owner", "manager", "executive", "admin"):
        assert as_user(client, users[who]).get(url).status_code == 200, who
    for who in ("tester2", "owner2", "data_owner"):
        assert as_user(client, users[who]).get(url).status_code == 404, who
    executive_page = as_user(client, users["executive"]).get(url).content.decode()
    assert "Assign to the ticked attributes" in executive_page and "customer_name" in executive_page
    assert "notes" not in executive_page  # out of scope: no data owner wanted
    assert "Assign to the ticked attributes" not in as_user(client, users["tester"]).get(url).content.decode()

    attribute = doi["balance"]
    for who in ("tester", "owner", "manager"):
        client = as_user(client, users[who])
        assert client.post(url, {"attribute": attribute.pk, "data_owner": users["data_owner"].pk}).status_code == 403
        assert client.post(reverse("cycles:data-owners-bulk", args=[cycle_report.pk]),
                           {"attributes": [attribute.pk], "data_owner": users["data_owner"].pk}).status_code == 403
    assert not DataOwnerAssignment.objects.exists()


def test_bulk_assignment_then_the_last_one_completes_and_the_missing_workflow_is_a_message(
    client, users, cycle_report, doi
):
    client = as_user(client, users["executive"])
    bulk = reverse("cycles:data-owners-bulk", args=[cycle_report.pk])

    response = client.post(bulk, {"data_owner": users["data_owner"].pk})
    assert response.status_code == 200 and "Tick at least one attribute." in response.content.decode()
    response = client.post(bulk, {"attributes": [doi["notes"].pk], "data_owner": users["data_owner"].pk})
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    response = client.post(bulk, {"attributes": [doi["balance"].pk], "data_owner": users["tester"].pk})
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    assert not DataOwnerAssignment.objects.exists()

    response = client.post(bulk, {"attributes": [doi["account_id"].pk, doi["balance"].pk],
                                  "data_owner": users["data_owner"].pk}, follow=True)
    assert any("data owner of 2 attribute(s)" in m for m in messages_of(response))
    assert "not told" not in " ".join(messages_of(response))  # not complete yet: nothing sent
    assert dict(DataOwnerAssignment.objects.values_list("attribute__name", "data_owner__username")) == {
        "account_id": "dataowner", "balance": "dataowner"}

    response = client.post(doi_page(cycle_report), {"attribute": doi["customer_name"].pk,
                                                    "data_owner": users["data_owner2"].pk}, follow=True)
    assert response.status_code == 200
    said = " ".join(messages_of(response))
    # The last assignment doesn't close the phase: the data executive confirms it explicitly.
    assert "customer_name" in said and 'confirm with "Assignments complete"' in said and "not told" not in said
    # The assignment is saved even though the workflow could not hear of it.
    assert DataOwnerAssignment.objects.get(attribute=doi["customer_name"]).data_owner == users["data_owner2"]
    html = response.content.decode()
    assert "Every in-scope attribute has a data owner." in html and "Assignments complete" in html

    response = client.post(reverse("cycles:data-owners-complete", args=[cycle_report.pk]), follow=True)
    assert any("has not been started" in m for m in messages_of(response))
    assert DataOwnerAssignment.objects.count() == 3


def test_assignments_stop_when_data_owner_identification_is_closed(client, users, cycle_report, doi):
    PhaseState.objects.filter(cycle_report=cycle_report, phase=Phase.DATA_OWNER_IDENTIFICATION).update(
        status=PhaseState.Status.COMPLETED)
    client = as_user(client, users["executive"])
    html = client.get(doi_page(cycle_report)).content.decode()
    assert "Read-only" in html and "Assign to the ticked attributes" not in html
    response = client.post(doi_page(cycle_report), {"attribute": doi["balance"].pk,
                                                    "data_owner": users["data_owner"].pk}, follow=True)
    assert any("is not open" in m for m in messages_of(response))
    assert not DataOwnerAssignment.objects.exists()


def test_a_delivered_completion_hides_done(client, users, cycle_report, doi):
    for attribute in (doi["account_id"], doi["balance"], doi["customer_name"]):
        data_owner_assign(user=users["executive"], attribute=attribute, data_owner=users["data_owner"])
    WorkflowDecision.objects.create(workflow_id="cycle-1-report-1", update_name="complete_data_owner_identification",
                                    payload={}, requested_by=users["executive"], cycle_report=cycle_report)
    html = as_user(client, users["executive"]).get(doi_page(cycle_report)).content.decode()
    assert "Every in-scope attribute has a data owner." in html and "Assignments complete" not in html


# --- who sees which request ----------------------------------------------------------------------------


def test_a_data_owner_sees_only_their_own_requests(client, users, requests):
    mine, theirs = requests["dataowner"], requests["dataowner2"]
    listing = as_user(client, users["data_owner"]).get(reverse("cycles:request-list"))
    assert listing.status_code == 200
    html = listing.content.decode()
    assert detail(mine) in html and detail(theirs) not in html
    assert as_user(client, users["data_owner"]).get(detail(mine)).status_code == 200
    assert as_user(client, users["data_owner2"]).get(detail(mine)).status_code == 404
    for who in ("tester", "owner", "manager", "executive", "admin"):
        assert as_user(client, users[who]).get(detail(mine)).status_code == 200, who
    for who in ("tester2", "owner2"):
        assert as_user(client, users[who]).get(detail(mine)).status_code == 404, who
        assert detail(mine) not in as_user(client, users[who]).get(reverse("cycles:request-list")).content.decode()

    report_page = reverse("cycles:report-requests", args=[mine.cycle_report_id])
    page = as_user(client, users["tester"]).get(report_page)
    assert page.status_code == 200 and detail(mine) in page.content.decode() and detail(theirs) in page.content.decode()
    assert as_user(client, users["data_owner"]).get(report_page).status_code == 404


def test_the_request_list_row_shows_files_attributes_report_and_cycle(client, users, requests, storage):
    """Each row: the report and cycle, the attributes by name, the files and those waiting for review."""
    mine, theirs = requests["dataowner"], requests["dataowner2"]
    evidence_upload(user=users["data_owner"], request=mine,
                    files=[upload("statement.pdf", PDF), upload("screen.png", PNG)])
    evidence_upload(user=users["data_owner"], request=mine, files=[upload("statement.pdf", PDF)])  # version 2
    reviewed = Evidence.objects.filter(request=mine, original_name="screen.png").get()
    Evidence.objects.filter(pk=reviewed.pk).update(status=Evidence.Status.ACCEPTED)
    html = as_user(client, users["tester"]).get(reverse("cycles:request-list")).content.decode()
    rows = {r: html.split(detail(r))[0].rsplit("<tr>", 1)[-1] for r in (mine, theirs)}
    # Three files (two versions of one), two of them still to review; the other request has none.
    assert '<td class="num">3 <span class="small muted">(2 to review)</span></td>' in rows[mine]
    assert '<td class="num">0</td>' in rows[theirs]
    assert rows[mine].index(">account_id<") < rows[mine].index(">balance<")
    assert ">customer_name<" in rows[theirs] and ">customer_name<" not in rows[mine]
    assert str(mine.cycle_report.report) in rows[mine] and str(mine.cycle_report.cycle) in rows[mine]
    api = as_user(client, users["tester"]).get("/api/v1/requests/").json()["results"]
    listed = next(r for r in api if r["id"] == mine.pk)
    assert [a["name"] for a in listed["attributes"]] == ["account_id", "balance"]
    assert set(listed["attributes"][0]) == {"id", "name", "description"}
    assert listed["report_name"] == mine.cycle_report.report.name and listed["sample_count"] == 3


def test_the_request_page_shows_what_is_wanted(client, users, requests):
    html = as_user(client, users["data_owner"]).get(detail(requests["dataowner"])).content.decode()
    assert "3 samples × 2 attributes" in html
    assert all(key in html for key in ("S-001", "S-002", "S-003"))
    assert "account_id" in html and "balance" in html and "customer_name</th>" not in html
    assert "Upload evidence" in html and 'multiple' in html
    assert "2026" in html  # the due date


# --- evidence upload and submission -----------------------------------------------------------------


def test_data_owner_uploads_two_files_through_the_page(client, users, requests, storage):
    request = requests["dataowner"]
    client = as_user(client, users["data_owner"])
    response = client.post(reverse("cycles:request-upload", args=[request.pk]),
                           {"files": [upload("statement.pdf", PDF), upload("screen.png", PNG)]}, follow=True)
    assert response.status_code == 200
    assert any("Uploaded statement.pdf v1, screen.png v1" in m for m in messages_of(response))
    assert sorted(Evidence.objects.filter(request=request).values_list("original_name", "version")) == [
        ("screen.png", 1), ("statement.pdf", 1)]
    assert len(stored_files(storage)) == 2
    html = response.content.decode()
    assert "Submit evidence" in html and "Uploaded evidence" in html

    # The same name again is a new version, not an overwrite.
    client.post(reverse("cycles:request-upload", args=[request.pk]), {"files": [upload("statement.pdf", PDF + b"%")]})
    assert list(Evidence.objects.filter(request=request, original_name="statement.pdf")
                .order_by("version").values_list("version", flat=True)) == [1, 2]


def test_a_forbidden_or_too_large_file_is_a_clear_message_and_nothing_is_stored(client, users, requests, storage,
                                                                                settings):
    request = requests["dataowner"]
    url = reverse("cycles:request-upload", args=[request.pk])
    client = as_user(client, users["data_owner"])

    response = client.post(url, {"files": [upload("statement.pdf", PDF), upload("tool.exe", b"MZ\x90\x00")]})
    assert response.status_code == 400
    assert "tool.exe: .exe files are not accepted as evidence" in response.content.decode()

    settings.EVIDENCE_MAX_BYTES = 40
    response = client.post(url, {"files": [upload("statement.pdf", PDF)]})
    assert response.status_code == 400
    assert "statement.pdf is larger than the 40 bytes allowed" in response.content.decode()

    response = client.post(url, {})
    assert response.status_code == 200 and "Choose at least one file to upload." in response.content.decode()
    assert not Evidence.objects.exists() and stored_files(storage) == []


def test_only_the_requests_data_owner_uploads_or_submits(client, users, requests, storage):
    request = requests["dataowner"]
    for who in ("tester", "executive"):
        client = as_user(client, users[who])
        assert client.post(reverse("cycles:request-upload", args=[request.pk]),
                           {"files": [upload("a.pdf", PDF)]}).status_code == 403
        assert client.post(reverse("cycles:request-submit", args=[request.pk])).status_code == 403
    assert as_user(client, users["data_owner2"]).post(
        reverse("cycles:request-upload", args=[request.pk]), {"files": [upload("a.pdf", PDF)]}).status_code == 404
    assert not Evidence.objects.exists() and stored_files(storage) == []


def test_submit_without_a_workflow_keeps_the_submission_and_says_so(client, users, requests, storage):
    request = requests["dataowner"]
    client = as_user(client, users["data_owner"])
    response = client.post(reverse("cycles:request-submit", args=[request.pk]), follow=True)
    assert any("Upload at least one evidence file before submitting." in m for m in messages_of(response))

    client.post(reverse("cycles:request-upload", args=[request.pk]), {"files": [upload("statement.pdf", PDF)]})
    response = client.post(reverse("cycles:request-submit", args=[request.pk]), follow=True)
    assert response.status_code == 200
    said = " ".join(messages_of(response))
    assert "Your evidence is submitted, but the workflow was not told" in said and "has not been started" in said
    request.refresh_from_db()
    assert request.status == InformationRequest.Status.SUBMITTED
    html = response.content.decode()
    assert "Upload evidence" not in html and "waiting for the tester" in html


# --- review by the tester ------------------------------------------------------------------------------


@pytest.fixture
def submitted(requests, users, storage):
    request = requests["dataowner"]
    evidence_upload(user=users["data_owner"], request=request,
                    files=[upload("statement.pdf", PDF), upload("screen.png", PNG)])
    return information_request_submit(user=users["data_owner"], request=request)


def test_tester_accepts_and_returns_with_a_note_and_the_request_goes_back(client, users, submitted):
    statement = Evidence.objects.get(request=submitted, original_name="statement.pdf")
    screen = Evidence.objects.get(request=submitted, original_name="screen.png")
    client = as_user(client, users["tester"])
    html = client.get(detail(submitted)).content.decode()
    assert html.count('value="return"') == 2 and "Finish review" not in html

    review = reverse("cycles:evidence-review", args=[submitted.pk, screen.pk])
    response = client.post(review, {f"e{screen.pk}-decision": "return", f"e{screen.pk}-note": ""})
    assert response.status_code == 200 and "a note is required to return a file" in response.content.decode()
    screen.refresh_from_db()
    assert screen.status == Evidence.Status.PENDING

    client.post(review, {f"e{screen.pk}-decision": "return", f"e{screen.pk}-note": "Screenshot is cropped."})
    client.post(reverse("cycles:evidence-review", args=[submitted.pk, statement.pk]),
                {f"e{statement.pk}-decision": "accept", f"e{statement.pk}-note": ""})
    screen.refresh_from_db()
    statement.refresh_from_db()
    assert (screen.status, screen.review_note, screen.reviewed_by) == ("returned", "Screenshot is cropped.",
                                                                      users["tester"])
    assert statement.status == "accepted"

    response = client.post(reverse("cycles:request-review", args=[submitted.pk]), follow=True)
    said = " ".join(messages_of(response))
    assert "The request is returned to" in said and "was not told" in said
    submitted.refresh_from_db()
    assert submitted.status == InformationRequest.Status.RETURNED

    # The data owner sees what came back and why, and may upload again.
    owner_page = as_user(client, users["data_owner"]).get(detail(submitted)).content.decode()
    assert "The tester returned 1 file" in owner_page and "Screenshot is cropped." in owner_page
    assert "Upload evidence" in owner_page


def test_every_file_accepted_accepts_the_request(client, users, submitted):
    client = as_user(client, users["tester"])
    for evidence in Evidence.objects.filter(request=submitted):
        client.post(reverse("cycles:evidence-review", args=[submitted.pk, evidence.pk]),
                    {f"e{evidence.pk}-decision": "accept"})
    assert "Finish review" in client.get(detail(submitted)).content.decode()
    client.post(reverse("cycles:request-review", args=[submitted.pk]))
    submitted.refresh_from_db()
    assert submitted.status == InformationRequest.Status.ACCEPTED


def test_finishing_too_early_is_a_message(client, users, submitted):
    response = as_user(client, users["tester"]).post(reverse("cycles:request-review", args=[submitted.pk]),
                                                     follow=True)
    assert any("Accept or return every file first" in m for m in messages_of(response))
    submitted.refresh_from_db()
    assert submitted.status == InformationRequest.Status.SUBMITTED


def test_only_the_reports_tester_reviews(client, users, submitted):
    evidence = Evidence.objects.filter(request=submitted).first()
    review = reverse("cycles:evidence-review", args=[submitted.pk, evidence.pk])
    for who in ("data_owner", "owner", "executive"):
        client = as_user(client, users[who])
        assert client.post(review, {f"e{evidence.pk}-decision": "accept"}).status_code == 403, who
        assert client.post(reverse("cycles:request-review", args=[submitted.pk])).status_code == 403, who
    assert as_user(client, users["tester2"]).post(review, {f"e{evidence.pk}-decision": "accept"}).status_code == 404
    evidence.refresh_from_db()
    assert evidence.status == Evidence.Status.PENDING


# --- download ------------------------------------------------------------------------------------------


def test_evidence_is_served_only_to_who_may_read_it(client, users, submitted):
    evidence = Evidence.objects.get(request=submitted, original_name="statement.pdf")
    url = reverse("cycles:evidence-download", args=[submitted.pk, evidence.pk])
    for who in ("data_owner", "tester", "owner", "executive", "manager", "admin"):
        response = as_user(client, users[who]).get(url)
        assert response.status_code == 200, who
        assert b"".join(response.streaming_content) == PDF
        assert 'attachment; filename="statement.pdf"' in response["Content-Disposition"]
    for who in ("data_owner2", "tester2", "owner2"):
        assert as_user(client, users[who]).get(url).status_code == 404, who
    other = submitted.__class__.objects.exclude(pk=submitted.pk).get()
    # An evidence id under another request's URL is not found either.
    assert as_user(client, users["data_owner2"]).get(
        reverse("cycles:evidence-download", args=[other.pk, evidence.pk])).status_code == 404


# --- my work -------------------------------------------------------------------------------------------


def test_my_work_lists_requests_reviews_and_data_owners_to_assign(client, users, cycle_report, doi, storage):
    executive = as_user(client, users["executive"]).get(reverse("cycles:my-work")).content.decode()
    assert "Reports waiting for data owners" in executive and doi_page(cycle_report) in executive

    for attribute in (doi["account_id"], doi["balance"]):
        data_owner_assign(user=users["executive"], attribute=attribute, data_owner=users["data_owner"])
    data_owner_assign(user=users["executive"], attribute=doi["customer_name"], data_owner=users["data_owner2"])
    approve_samples(cycle_report, users)
    created = {r.data_owner.username: r for r in information_requests_create(cycle_report_id=cycle_report.pk,
                                                                             due_date=DUE)}
    mine = created["dataowner"]
    owner_work = as_user(client, users["data_owner"]).get(reverse("cycles:my-work")).content.decode()
    assert "Requests waiting for your evidence" in owner_work and detail(mine) in owner_work
    assert detail(created["dataowner2"]) not in owner_work
    assert "2026-09-15" in owner_work

    evidence_upload(user=users["data_owner"], request=mine, files=[upload("statement.pdf", PDF)])
    information_request_submit(user=users["data_owner"], request=mine)
    tester_work = as_user(client, users["tester"]).get(reverse("cycles:my-work")).content.decode()
    assert "Evidence to review" in tester_work and detail(mine) in tester_work
    assert detail(mine) not in as_user(client, users["tester2"]).get(reverse("cycles:my-work")).content.decode()
