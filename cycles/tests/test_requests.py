"""Data Owner Identification, Requests for Information and evidence: who may do what, and what is kept."""
import datetime as dt
import hashlib
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import DatabaseError, connection, transaction

from cycles.exceptions import (
    ApplicationError,
    ConflictError,
    InvalidFileError,
    NotFoundError,
    PermissionDeniedError,
    PhaseLockedError,
)
from cycles.models import (
    LOB,
    Attribute,
    CycleReport,
    DataOwnerAssignment,
    Evidence,
    InformationRequest,
    Phase,
    PhaseState,
    Report,
    ScopingDecision,
)
from cycles.services.requests import (
    data_owner_assign,
    data_owner_identification_complete,
    data_owner_identification_missing,
    data_owners_assign_bulk,
    evidence_can_download,
    evidence_review,
    evidence_upload,
    information_request_review,
    information_request_status,
    information_request_submit,
    information_requests_create,
    information_requests_visible_to,
)
from synapse.audit import audit_events_for
from synapse.roles import Role

DUE = dt.date(2026, 9, 15)
PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


# --- builders shared with test_notifications ----------------------------------------------------


def scoped_attributes(cycle_report, tester, in_scope=("account_id", "balance", "customer_name"), out=("notes",)):
    """Attributes of the report with scoping decisions; returns {name: Attribute}."""
    attributes = {}
    for name in [*in_scope, *out]:
        attribute = Attribute.objects.create(cycle_report=cycle_report, name=name, description=f"The {name}")
        ScopingDecision.objects.create(
            attribute=attribute, in_scope=name in in_scope, rationale="" if name in in_scope else "Low risk.",
            decided_by=tester,
        )
        attributes[name] = attribute
    return attributes


def open_doi(cycle_report):
    PhaseState.objects.update_or_create(
        cycle_report=cycle_report, phase=Phase.DATA_OWNER_IDENTIFICATION,
        defaults={"status": PhaseState.Status.ACTIVE},
    )


def approve_samples(cycle_report, users, keys=("S-001", "S-002", "S-003")):
    from versioning.services import version_create, version_decide

    version = version_create(
        cycle_report=cycle_report, phase=Phase.SAMPLE_SELECTION, author=users["tester"],
        items=[(key, {"row_index": i}) for i, key in enumerate(keys)],
    )
    version_decide(version=version, user=users["owner"], approve=True)
    return version


def requests_ready(cycle_report, users):
    """Two data owners assigned, samples approved, requests created: {data owner username: request}."""
    attributes = scoped_attributes(cycle_report, users["tester"])
    open_doi(cycle_report)
    data_owners_assign_bulk(user=users["executive"], cycle_report=cycle_report, data_owner=users["data_owner"],
                            attribute_ids=[attributes["account_id"].pk, attributes["balance"].pk])
    data_owner_assign(user=users["executive"], attribute=attributes["customer_name"],
                      data_owner=users["data_owner2"])
    approve_samples(cycle_report, users)
    requests = information_requests_create(cycle_report_id=cycle_report.pk, due_date=DUE)
    return {r.data_owner.username: r for r in requests}


def upload(name, content, content_type="application/octet-stream"):
    return SimpleUploadedFile(name, content, content_type=content_type)


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture
def attributes(cycle_report, users):
    open_doi(cycle_report)
    return scoped_attributes(cycle_report, users["tester"])


@pytest.fixture
def other_lob(make_user):
    executive2 = make_user("executive2", Role.DATA_EXECUTIVE)
    return LOB.objects.create(name="Cards", code="cards", data_executive=executive2)


@pytest.fixture
def requests(cycle_report, users, storage):
    return requests_ready(cycle_report, users)


def stored_files(storage):
    media = Path(storage) / "media"
    return sorted(p for p in media.rglob("*") if p.is_file()) if media.exists() else []


# --- Data Owner Identification ---------------------------------------------------------------------


def test_the_lobs_data_executive_assigns_and_reassigns_with_an_audit_trail(attributes, users):
    attribute = attributes["account_id"]

    first = data_owner_assign(user=users["executive"], attribute=attribute, data_owner=users["data_owner"])
    second = data_owner_assign(user=users["executive"], attribute=attribute, data_owner=users["data_owner2"])

    assert first.pk == second.pk
    assert DataOwnerAssignment.objects.get(attribute=attribute).data_owner == users["data_owner2"]
    events = list(audit_events_for(second).filter(action="data_owner.assign").order_by("pk"))
    assert len(events) == 2
    assert events[0].before is None
    assert events[1].before["data_owner_id"] == users["data_owner"].pk
    assert events[1].after["data_owner_id"] == users["data_owner2"].pk
    assert events[1].actor == users["executive"]


@pytest.mark.parametrize("who", ["executive2", "data_owner", "tester", "admin"])
def test_only_the_data_executive_of_the_reports_lob_assigns(attributes, users, other_lob, who):
    user = other_lob.data_executive if who == "executive2" else users[who]

    with pytest.raises(PermissionDeniedError):
        data_owner_assign(user=user, attribute=attributes["account_id"], data_owner=users["data_owner"])

    assert not DataOwnerAssignment.objects.exists()


def test_the_assignee_must_be_a_data_owner(attributes, users):
    with pytest.raises(ApplicationError, match="Data Owner role"):
        data_owner_assign(user=users["executive"], attribute=attributes["account_id"], data_owner=users["tester"])


def test_only_in_scope_attributes_get_a_data_owner(attributes, users):
    with pytest.raises(ApplicationError, match="notes is not in scope"):
        data_owner_assign(user=users["executive"], attribute=attributes["notes"], data_owner=users["data_owner"])


@pytest.mark.parametrize("state", [None, PhaseState.Status.COMPLETED, PhaseState.Status.SKIPPED])
def test_assignments_need_data_owner_identification_active(cycle_report, users, state):
    attributes = scoped_attributes(cycle_report, users["tester"])
    if state:
        PhaseState.objects.create(cycle_report=cycle_report, phase=Phase.DATA_OWNER_IDENTIFICATION, status=state)

    with pytest.raises(PhaseLockedError):
        data_owner_assign(user=users["executive"], attribute=attributes["balance"], data_owner=users["data_owner"])
    with pytest.raises(PhaseLockedError):
        data_owners_assign_bulk(user=users["executive"], cycle_report=cycle_report, data_owner=users["data_owner"],
                                attribute_ids=[attributes["balance"].pk])


def test_bulk_assignment_is_all_or_nothing(attributes, users, cycle_report, cycle, make_user):
    ids = [attributes["account_id"].pk, attributes["notes"].pk]

    with pytest.raises(ApplicationError, match="not in scope: notes"):
        data_owners_assign_bulk(user=users["executive"], cycle_report=cycle_report, data_owner=users["data_owner"],
                                attribute_ids=ids)
    assert not DataOwnerAssignment.objects.exists()

    other_report = Report.objects.create(name="Other", regulation="FFIEC 031", owner=users["owner"],
                                         lob=cycle_report.report.lob)
    other = CycleReport.objects.create(cycle=cycle, report=other_report, tester=users["tester"])
    foreign = scoped_attributes(other, users["tester"], in_scope=("x",), out=())["x"]
    with pytest.raises(NotFoundError):
        data_owners_assign_bulk(user=users["executive"], cycle_report=cycle_report, data_owner=users["data_owner"],
                                attribute_ids=[attributes["account_id"].pk, foreign.pk])
    assert not DataOwnerAssignment.objects.exists()

    done = data_owners_assign_bulk(
        user=users["executive"], cycle_report=cycle_report, data_owner=users["data_owner"],
        attribute_ids=[attributes["account_id"].pk, attributes["balance"].pk, attributes["customer_name"].pk],
    )
    assert {a.attribute.name for a in done} == {"account_id", "balance", "customer_name"}
    assert set(DataOwnerAssignment.objects.values_list("data_owner", flat=True)) == {users["data_owner"].pk}


def test_bulk_assignment_takes_as_many_queries_for_three_attributes_as_for_one(
        attributes, users, cycle_report, make_user):
    """New and changed assignments, each audited with what it replaced, in a few statements whatever the count."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from synapse.models import AuditEvent

    ids = [attributes[name].pk for name in ("account_id", "balance", "customer_name")]
    second = make_user("dataowner3", Role.DATA_OWNER)

    def assign(owner, chosen) -> int:
        with CaptureQueriesContext(connection) as queries:
            data_owners_assign_bulk(user=users["executive"], cycle_report=cycle_report, data_owner=owner,
                                    attribute_ids=chosen)
        return len(queries)

    for owner in (second, users["data_owner"]):  # what is read once (content types, each one's roles) is read here
        assign(owner, ids)
    counts = {}
    for chosen in (ids[:1], ids):  # new assignments
        DataOwnerAssignment.objects.filter(attribute_id__in=ids).delete()
        counts["new", len(chosen)] = assign(users["data_owner"], chosen)
    for chosen in (ids[:1], ids):  # each one changed to another data owner
        assign(users["data_owner"], ids)
        counts["changed", len(chosen)] = assign(second, chosen)
    assert counts["new", 1] == counts["new", 3] and counts["changed", 1] == counts["changed", 3]
    assert set(DataOwnerAssignment.objects.filter(attribute_id__in=ids).values_list("data_owner", flat=True)) == {
        second.pk}
    changed = AuditEvent.objects.filter(action="data_owner.assign", before__isnull=False).order_by("pk").last()
    assert changed.before["data_owner_id"] == users["data_owner"].pk and changed.after["data_owner_id"] == second.pk
    assert changed.context == {"cycle_report": cycle_report.pk, "attribute": "customer_name"}
    # Assigning what is already assigned writes nothing.
    before = AuditEvent.objects.count()
    data_owners_assign_bulk(user=users["executive"], cycle_report=cycle_report, data_owner=second, attribute_ids=ids)
    assert AuditEvent.objects.count() == before


def test_missing_lists_in_scope_attributes_without_an_owner(attributes, users, cycle_report):
    assert [a.name for a in data_owner_identification_missing(cycle_report=cycle_report)] == [
        "account_id", "balance", "customer_name"
    ]
    assert not data_owner_identification_complete(cycle_report=cycle_report)

    data_owners_assign_bulk(user=users["executive"], cycle_report=cycle_report, data_owner=users["data_owner"],
                            attribute_ids=[attributes["account_id"].pk, attributes["balance"].pk])
    assert [a.name for a in data_owner_identification_missing(cycle_report=cycle_report)] == ["customer_name"]
    assert not data_owner_identification_complete(cycle_report=cycle_report)

    data_owner_assign(user=users["executive"], attribute=attributes["customer_name"], data_owner=users["data_owner2"])
    assert data_owner_identification_missing(cycle_report=cycle_report) == []
    assert data_owner_identification_complete(cycle_report=cycle_report)


# --- Requests for Information ----------------------------------------------------------------------


def test_one_request_per_data_owner_with_their_attributes_and_the_approved_samples(requests, cycle_report):
    mine, theirs = requests["dataowner"], requests["dataowner2"]

    assert sorted(mine.attributes.values_list("name", flat=True)) == ["account_id", "balance"]
    assert list(theirs.attributes.values_list("name", flat=True)) == ["customer_name"]
    assert mine.sample_keys == ["S-001", "S-002", "S-003"]
    assert mine.due_date == DUE
    assert mine.status == InformationRequest.Status.OPEN
    assert information_request_status(request_id=mine.pk) == "open"


def test_creating_requests_again_creates_nothing(requests, cycle_report):
    again = information_requests_create(cycle_report_id=cycle_report.pk, due_date=DUE + dt.timedelta(days=3))

    assert sorted(r.pk for r in again) == sorted(r.pk for r in requests.values())
    assert InformationRequest.objects.count() == 2
    assert InformationRequest.objects.get(pk=requests["dataowner"].pk).due_date == DUE


def test_requests_cover_no_samples_when_sample_selection_was_skipped(attributes, users, cycle_report):
    data_owners_assign_bulk(user=users["executive"], cycle_report=cycle_report, data_owner=users["data_owner"],
                            attribute_ids=[a.pk for a in attributes.values() if a.name != "notes"])
    with pytest.raises(ConflictError, match="no approved version"):
        information_requests_create(cycle_report_id=cycle_report.pk, due_date=DUE)

    PhaseState.objects.create(cycle_report=cycle_report, phase=Phase.SAMPLE_SELECTION,
                              status=PhaseState.Status.SKIPPED)
    [request] = information_requests_create(cycle_report_id=cycle_report.pk, due_date=DUE)
    assert request.sample_keys == []


def test_requests_wait_until_every_in_scope_attribute_has_an_owner(attributes, users, cycle_report):
    approve_samples(cycle_report, users)
    data_owner_assign(user=users["executive"], attribute=attributes["balance"], data_owner=users["data_owner"])

    with pytest.raises(ConflictError, match="account_id, customer_name"):
        information_requests_create(cycle_report_id=cycle_report.pk, due_date=DUE)
    assert not InformationRequest.objects.exists()


def test_data_owners_see_only_their_own_requests(requests, users, other_lob, make_user):
    mine, theirs = requests["dataowner"], requests["dataowner2"]

    def visible(user):
        return set(information_requests_visible_to(user=user).values_list("pk", flat=True))

    assert visible(users["data_owner"]) == {mine.pk}
    assert visible(users["data_owner2"]) == {theirs.pk}
    for who in ("tester", "manager", "owner", "executive", "admin"):
        assert visible(users[who]) == {mine.pk, theirs.pk}, who
    for user in (users["tester2"], users["owner2"], other_lob.data_executive, make_user("nobody")):
        assert visible(user) == set(), user.username


# --- evidence upload -------------------------------------------------------------------------------


def test_the_same_name_twice_makes_two_versions_both_kept(requests, users, storage):
    request = requests["dataowner"]
    first_content, second_content = PDF + b"first", PDF + b"second, longer"

    [v1] = evidence_upload(user=users["data_owner"], request=request, files=[upload("ledger.pdf", first_content)])
    [v2] = evidence_upload(user=users["data_owner"], request=request, files=[upload("ledger.pdf", second_content)])

    assert (v1.version, v2.version) == (1, 2)
    assert v1.file.name != v2.file.name
    v1.refresh_from_db()
    assert v1.file.read() == first_content
    assert v2.file.read() == second_content
    assert v1.sha256 == hashlib.sha256(first_content).hexdigest()
    assert v2.sha256 == hashlib.sha256(second_content).hexdigest()
    assert (v1.size_bytes, v2.size_bytes) == (len(first_content), len(second_content))
    assert v2.uploaded_by == users["data_owner"] and v2.uploaded_at is not None
    assert v2.content_type == "application/pdf"
    assert "ledger" not in v2.file.name  # stored under a random name, never the uploader's
    assert len(stored_files(storage)) == 2
    assert [e.action for e in audit_events_for(v2)] == ["evidence.upload"]


def test_several_files_in_one_upload(requests, users):
    stored = evidence_upload(user=users["data_owner"], request=requests["dataowner"],
                             files=[upload("a.pdf", PDF), upload("b.png", PNG), upload("c.csv", b"id,v\n1,2\n")])

    assert sorted((e.original_name, e.version) for e in stored) == [("a.pdf", 1), ("b.png", 1), ("c.csv", 1)]


@pytest.mark.parametrize(
    "bad, message",
    [
        (lambda: upload("empty.pdf", b""), "empty.pdf is empty"),
        (lambda: upload("huge.csv", b"x" * 2048), "huge.csv is larger than the 1,024 bytes"),
        (lambda: upload("tool.exe", b"MZ\x90\x00"), r"tool.exe: .exe files are not accepted"),
        # Django's own uploads cut long names; other file objects reach the service whole.
        (lambda: ContentFile(PDF, name="n" * 260 + ".pdf"), "name longer than 255"),
        (lambda: upload("fake.pdf", b"not a pdf at all"), "fake.pdf is not a real .pdf file"),
        (lambda: upload("dup.pdf", PDF), "Two files are named dup.pdf"),
    ],
    ids=["empty", "too-large", "extension", "long-name", "content-mismatch", "duplicate-name"],
)
def test_one_bad_file_among_several_stores_nothing(requests, users, storage, settings, bad, message):
    settings.EVIDENCE_MAX_BYTES = 1024
    files = [upload("good.pdf", PDF), upload("dup.pdf", PDF), bad()]

    with pytest.raises(InvalidFileError, match=message):
        evidence_upload(user=users["data_owner"], request=requests["dataowner"], files=files)

    assert not Evidence.objects.exists()
    assert stored_files(storage) == []
    assert list((storage / "upload-tmp").iterdir()) == []


def test_a_file_larger_than_it_declared_is_refused_while_read(requests, users, settings, storage):
    settings.EVIDENCE_MAX_BYTES = 100
    liar = upload("big.txt", b"y" * 500)
    liar.size = 10

    with pytest.raises(InvalidFileError, match="big.txt is larger"):
        evidence_upload(user=users["data_owner"], request=requests["dataowner"], files=[upload("ok.txt", b"ok"), liar])
    assert not Evidence.objects.exists()
    assert stored_files(storage) == []


def test_allowed_extensions_come_from_settings(requests, users, settings):
    settings.EVIDENCE_ALLOWED_EXTENSIONS = "txt"

    with pytest.raises(InvalidFileError, match="use one of txt"):
        evidence_upload(user=users["data_owner"], request=requests["dataowner"], files=[upload("a.pdf", PDF)])


@pytest.mark.parametrize("who", ["data_owner2", "tester", "executive", "admin"])
def test_only_the_requests_data_owner_uploads(requests, users, who):
    with pytest.raises(PermissionDeniedError):
        evidence_upload(user=users[who], request=requests["dataowner"], files=[upload("a.pdf", PDF)])
    assert not Evidence.objects.exists()


def test_no_upload_while_submitted_or_accepted(requests, users):
    request = requests["dataowner"]
    evidence_upload(user=users["data_owner"], request=request, files=[upload("a.pdf", PDF)])
    request = information_request_submit(user=users["data_owner"], request=request)

    with pytest.raises(ConflictError, match="evidence submitted"):
        evidence_upload(user=users["data_owner"], request=request, files=[upload("b.pdf", PDF)])
    assert Evidence.objects.count() == 1


def test_the_database_refuses_rewriting_or_deleting_evidence(requests, users):
    [evidence] = evidence_upload(user=users["data_owner"], request=requests["dataowner"],
                                 files=[upload("a.pdf", PDF)])

    for change in ({"sha256": "x"}, {"size_bytes": 1}, {"file": "evidence/other"}, {"original_name": "b.pdf"},
                   {"version": 9}):
        with pytest.raises(DatabaseError), transaction.atomic():
            Evidence.objects.filter(pk=evidence.pk).update(**change)
    if connection.vendor == "postgresql":
        # SQLite's test flush deletes row by row, so the refusal to delete exists on PostgreSQL only.
        with pytest.raises(DatabaseError), transaction.atomic():
            Evidence.objects.filter(pk=evidence.pk).delete()

    evidence.refresh_from_db()
    assert evidence.sha256 == hashlib.sha256(PDF).hexdigest()
    # The review fields stay writable: that is how the tester records a decision.
    Evidence.objects.filter(pk=evidence.pk).update(review_note="checked")


# --- submission and review -------------------------------------------------------------------------


def test_submitting_needs_evidence_and_only_the_data_owner_submits(requests, users):
    request = requests["dataowner"]
    with pytest.raises(ApplicationError, match="Upload at least one evidence file"):
        information_request_submit(user=users["data_owner"], request=request)

    evidence_upload(user=users["data_owner"], request=request, files=[upload("a.pdf", PDF)])
    with pytest.raises(PermissionDeniedError):
        information_request_submit(user=users["data_owner2"], request=request)

    request = information_request_submit(user=users["data_owner"], request=request)
    assert request.status == InformationRequest.Status.SUBMITTED and request.submitted_at
    with pytest.raises(ConflictError):
        information_request_submit(user=users["data_owner"], request=request)


def test_return_then_accept(requests, users, mailoutbox, django_capture_on_commit_callbacks):
    request = requests["dataowner"]
    ledger, extract = evidence_upload(user=users["data_owner"], request=request,
                                      files=[upload("ledger.pdf", PDF), upload("extract.csv", b"id\n1\n")])
    with pytest.raises(ConflictError, match="only while its request is submitted"):
        evidence_review(user=users["tester"], evidence=ledger, accept=True)
    request = information_request_submit(user=users["data_owner"], request=request)

    evidence_review(user=users["tester"], evidence=ledger, accept=True)
    with pytest.raises(ConflictError, match="not reviewed yet: extract.csv v1"):
        information_request_review(user=users["tester"], request=request)
    with pytest.raises(ApplicationError, match="a note is required"):
        evidence_review(user=users["tester"], evidence=extract, accept=False, note="  ")
    extract = evidence_review(user=users["tester"], evidence=extract, accept=False,
                              note="Rows for S-002 are missing.")
    assert extract.status == Evidence.Status.RETURNED and extract.reviewed_by == users["tester"]

    with django_capture_on_commit_callbacks(execute=True):
        request = information_request_review(user=users["tester"], request=request)
    assert request.status == InformationRequest.Status.RETURNED
    assert information_request_status(request_id=request.pk) == "returned"
    [email] = mailoutbox
    assert email.to == ["dataowner@example.com"]
    assert "extract.csv (version 1): Rows for S-002 are missing." in email.body
    assert "ledger.pdf" not in email.body

    # Back with the data owner: a corrected file is a new version, the returned one is kept.
    with pytest.raises(ApplicationError, match="Upload at least one new evidence file"):
        information_request_submit(user=users["data_owner"], request=request)
    [extract_v2] = evidence_upload(user=users["data_owner"], request=request,
                                   files=[upload("extract.csv", b"id\n1\n2\n")])
    assert extract_v2.version == 2
    request = information_request_submit(user=users["data_owner"], request=request)

    with pytest.raises(ConflictError, match="replaced by v2"):
        evidence_review(user=users["tester"], evidence=extract, accept=True)
    evidence_review(user=users["tester"], evidence=extract_v2, accept=True)
    request = information_request_review(user=users["tester"], request=request)

    assert request.status == InformationRequest.Status.ACCEPTED and request.accepted_at
    assert Evidence.objects.filter(request=request).count() == 3
    assert Evidence.objects.get(pk=extract.pk).status == Evidence.Status.RETURNED
    actions = [e.action for e in audit_events_for(request).order_by("pk")]
    assert actions == ["information_request.create", "information_request.submit",
                       "information_request.return", "information_request.submit", "information_request.accept"]
    with pytest.raises(ConflictError):
        evidence_upload(user=users["data_owner"], request=request, files=[upload("late.pdf", PDF)])


@pytest.mark.parametrize("who", ["tester2", "data_owner", "manager", "executive"])
def test_only_the_assigned_tester_reviews(requests, users, who):
    request = requests["dataowner"]
    [evidence] = evidence_upload(user=users["data_owner"], request=request, files=[upload("a.pdf", PDF)])
    request = information_request_submit(user=users["data_owner"], request=request)

    with pytest.raises(PermissionDeniedError):
        evidence_review(user=users[who], evidence=evidence, accept=True)
    with pytest.raises(PermissionDeniedError):
        information_request_review(user=users[who], request=request)
    assert Evidence.objects.get(pk=evidence.pk).status == Evidence.Status.PENDING


def test_who_may_download_evidence(requests, users, other_lob, make_user):
    [evidence] = evidence_upload(user=users["data_owner"], request=requests["dataowner"],
                                 files=[upload("a.pdf", PDF)])

    allowed = {"data_owner", "tester", "manager", "owner", "executive", "admin"}
    for who, user in users.items():
        assert evidence_can_download(user, evidence) is (who in allowed), who
    assert not evidence_can_download(other_lob.data_executive, evidence)
    assert not evidence_can_download(make_user("plain"), evidence)
