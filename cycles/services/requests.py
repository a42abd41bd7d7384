"""Data Owner Identification, Requests for Information and evidence.

The LOB's data executive maps each in-scope attribute to a data owner; the
workflow then opens one request per data owner per report and waits on it with
timers (reminders, escalation) that the answer cancels. Evidence files are
checked completely before any of them reaches storage, hashed while read, and
never overwritten: the same name again is a new version, and database
triggers refuse rewriting a stored file's identity.
"""
from __future__ import annotations

import datetime
import hashlib
import logging
import mimetypes
import os
import tempfile
from collections import defaultdict
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.db.models import Max, Prefetch, Q, QuerySet
from django.utils import timezone

from cycles.exceptions import (
    ApplicationError,
    ConflictError,
    InvalidFileError,
    NotFoundError,
    PermissionDeniedError,
    PhaseLockedError,
)
from cycles.models import (
    Attribute,
    CycleReport,
    DataOwnerAssignment,
    Evidence,
    InformationRequest,
    Phase,
    PhaseState,
)
from cycles.permissions import can_work_on, is_admin
from synapse.audit import audit_record, audit_record_many, snapshot
from synapse.models import AuditEvent
from synapse.roles import Role, has_role

logger = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 20
NAME_MAX = 255  # Evidence.original_name
CONTENT_TYPE_MAX = 120  # Evidence.content_type
DEFAULT_MAX_BYTES = 50 * 1024 * 1024
DEFAULT_MAX_FILES = 20
DEFAULT_EXTENSIONS = ("pdf", "png", "jpg", "jpeg", "csv", "xlsx", "xls", "docx", "txt", "zip", "msg", "eml")

# The first bytes binary formats must start with, so a renamed file is caught at upload
# rather than when the tester fails to open it. Text formats (csv, txt, eml) have none.
_ZIP = (b"PK\x03\x04", b"PK\x05\x06")
_OLE = (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",)
MAGIC_BYTES: dict[str, tuple[bytes, ...]] = {
    "pdf": (b"%PDF-",),
    "png": (b"\x89PNG\r\n\x1a\n",),
    "jpg": (b"\xff\xd8\xff",),
    "jpeg": (b"\xff\xd8\xff",),
    "xlsx": _ZIP,
    "docx": _ZIP,
    "zip": _ZIP,
    "xls": _OLE,
    "msg": _OLE,
}

ASSIGNMENT_FIELDS = ["attribute_id", "data_owner_id", "assigned_by_id"]
REQUEST_FIELDS = ["status", "submitted_at", "accepted_at"]
EVIDENCE_FIELDS = ["original_name", "version", "size_bytes", "sha256", "content_type", "status"]
REVIEW_FIELDS = ["status", "review_note", "reviewed_by_id", "reviewed_at"]


# --- Data Owner Identification ----------------------------------------------------------------


def attributes_in_scope(*, cycle_report: CycleReport) -> QuerySet[Attribute]:
    return Attribute.objects.filter(cycle_report=cycle_report, scoping__in_scope=True)


def _require_doi_active(cycle_report: CycleReport) -> None:
    # The report's current phase is Sample Selection while Data Owner Identification runs
    # beside it, so the phase's own state says whether it is open.
    active = PhaseState.objects.filter(
        cycle_report=cycle_report, phase=Phase.DATA_OWNER_IDENTIFICATION, status=PhaseState.Status.ACTIVE
    ).exists()
    if not active:
        raise PhaseLockedError(
            f"Data Owner Identification is not open for {cycle_report.report}: data owners can't change now."
        )


def _require_data_executive(user, cycle_report: CycleReport) -> None:
    if not (has_role(user, Role.DATA_EXECUTIVE) and cycle_report.report.lob.data_executive_id == user.pk):
        raise PermissionDeniedError(
            f"Only the data executive of {cycle_report.report.lob} assigns data owners for {cycle_report.report}."
        )


def _require_data_owner_role(data_owner) -> None:
    if not getattr(data_owner, "is_active", False) or not has_role(data_owner, Role.DATA_OWNER):
        raise ApplicationError(f"{data_owner} is not an active user with the Data Owner role.")


def _assign_all(*, user, cycle_report: CycleReport, data_owner, attributes: list[Attribute]
                ) -> list[DataOwnerAssignment]:
    """Make `data_owner` answer for `attributes` (checked by the caller), in the caller's transaction: a few
    statements whatever their number. Their assignments are locked and read at once, the new ones inserted,
    the changed ones updated, an audit entry for each (with what it replaced) written together; an attribute
    already theirs is left as it is."""
    existing = {a.attribute_id: a for a in DataOwnerAssignment.objects.select_for_update().filter(
        attribute_id__in=[a.pk for a in attributes])}
    assignments, created, changed, written, befores = [], [], [], [], {}
    now = timezone.now()
    for attribute in attributes:
        assignment = existing.get(attribute.pk)
        if assignment is None:
            assignment = DataOwnerAssignment(attribute=attribute)
            created.append(assignment)
        elif assignment.data_owner_id != data_owner.pk:
            assignment.attribute = attribute  # as the caller read it: its audit entry names it
            befores[attribute.pk] = snapshot(assignment, ASSIGNMENT_FIELDS)
            changed.append(assignment)
        assignments.append(assignment)
        if assignment.data_owner_id != data_owner.pk:
            assignment.data_owner, assignment.assigned_by, assignment.assigned_at = data_owner, user, now
            written.append(assignment)
    DataOwnerAssignment.objects.bulk_create(created)
    DataOwnerAssignment.objects.bulk_update(changed, ["data_owner", "assigned_by", "assigned_at"])
    audit_record_many([
        {"actor": user, "action": "data_owner.assign", "obj": assignment,
         "before": befores.get(assignment.attribute_id), "after": snapshot(assignment, ASSIGNMENT_FIELDS),
         "context": {"cycle_report": cycle_report.pk, "attribute": assignment.attribute.name}}
        for assignment in written
    ])
    return assignments


def data_owner_assign(*, user, attribute: Attribute, data_owner) -> DataOwnerAssignment:
    """Make data_owner answer for the in-scope attribute (re-assigning replaces the previous owner)."""
    cycle_report = CycleReport.objects.select_related("report__lob").get(pk=attribute.cycle_report_id)
    _require_data_executive(user, cycle_report)
    _require_data_owner_role(data_owner)
    _require_doi_active(cycle_report)
    if not attributes_in_scope(cycle_report=cycle_report).filter(pk=attribute.pk).exists():
        raise ApplicationError(f"{attribute.name} is not in scope: only in-scope attributes get a data owner.")
    with transaction.atomic():
        return _assign_all(user=user, cycle_report=cycle_report, data_owner=data_owner, attributes=[attribute])[0]


def data_owners_assign_bulk(
    *, user, cycle_report: CycleReport, data_owner, attribute_ids: list[int]
) -> list[DataOwnerAssignment]:
    """Assign one data owner to several attributes of the report: all of them, or none if any is refused."""
    cycle_report = CycleReport.objects.select_related("report__lob").get(pk=cycle_report.pk)
    _require_data_executive(user, cycle_report)
    _require_data_owner_role(data_owner)
    _require_doi_active(cycle_report)
    wanted = list(dict.fromkeys(int(pk) for pk in attribute_ids))
    if not wanted:
        raise ApplicationError("Choose at least one attribute.")
    attributes = {
        a.pk: a
        for a in Attribute.objects.filter(cycle_report=cycle_report, pk__in=wanted).select_related("scoping")
    }
    unknown = [pk for pk in wanted if pk not in attributes]
    if unknown:
        raise NotFoundError(f"{len(unknown)} of the chosen attributes are not attributes of {cycle_report.report}.")
    out_of_scope = sorted(
        a.name for a in attributes.values() if not (hasattr(a, "scoping") and a.scoping.in_scope)
    )
    if out_of_scope:
        raise ApplicationError(
            f"Only in-scope attributes get a data owner; not in scope: {', '.join(out_of_scope)}. Nothing was assigned."
        )
    with transaction.atomic():
        return _assign_all(user=user, cycle_report=cycle_report, data_owner=data_owner,
                           attributes=[attributes[pk] for pk in wanted])


def data_owner_identification_missing(*, cycle_report: CycleReport) -> list[Attribute]:
    """In-scope attributes of the report that have no data owner yet."""
    return list(
        attributes_in_scope(cycle_report=cycle_report).filter(data_owner_assignment__isnull=True).order_by("name")
    )


def data_owner_identification_complete(*, cycle_report: CycleReport) -> bool:
    return (
        attributes_in_scope(cycle_report=cycle_report).exists()
        and not attributes_in_scope(cycle_report=cycle_report).filter(data_owner_assignment__isnull=True).exists()
    )


# --- Requests for Information -----------------------------------------------------------------


def _approved_sample_keys(cycle_report: CycleReport) -> list[str]:
    from versioning.models import Version, VersionItem, VersionStatus

    skipped = Phase.SAMPLE_SELECTION in (cycle_report.skipped_phases or []) or PhaseState.objects.filter(
        cycle_report=cycle_report, phase=Phase.SAMPLE_SELECTION, status=PhaseState.Status.SKIPPED
    ).exists()
    approved = (
        Version.objects.filter(
            cycle_report=cycle_report, phase=Phase.SAMPLE_SELECTION, status=VersionStatus.APPROVED
        )
        .order_by("-number")
        .first()
    )
    if approved is None:
        if skipped:
            return []
        raise ConflictError(
            f"Sample Selection of {cycle_report.report} has no approved version: requests can't list samples yet."
        )
    from cycles.sampling.keys import natural_sorted

    return natural_sorted(
        approved.items.exclude(decision=VersionItem.Decision.REJECTED).values_list("key", flat=True)
    )


def information_requests_create(*, cycle_report_id: int, due_date: datetime.date) -> list[InformationRequest]:
    """Open one request per data owner of the report (idempotent: existing requests are returned unchanged)."""
    if not isinstance(due_date, datetime.date) or isinstance(due_date, datetime.datetime):
        raise ApplicationError("A request's due date must be a date.")
    cycle_report = CycleReport.objects.select_related("report").get(pk=cycle_report_id)
    missing = data_owner_identification_missing(cycle_report=cycle_report)
    if missing:
        raise ConflictError(
            "Every in-scope attribute needs a data owner before requests go out; missing: "
            + ", ".join(a.name for a in missing)
            + "."
        )
    by_owner: dict[int, list[int]] = defaultdict(list)
    for attribute_id, owner_id in (
        attributes_in_scope(cycle_report=cycle_report)
        .order_by("name")
        .values_list("pk", "data_owner_assignment__data_owner_id")
    ):
        by_owner[owner_id].append(attribute_id)
    if not by_owner:
        raise ConflictError(f"{cycle_report.report} has no in-scope attribute to request evidence for.")
    sample_keys = _approved_sample_keys(cycle_report)
    requests = []
    with transaction.atomic():
        # Lock the report so two runs of the activity can't both create a request.
        CycleReport.objects.select_for_update(no_key=True).get(pk=cycle_report.pk)
        existing = list(InformationRequest.objects.filter(cycle_report=cycle_report).order_by("pk"))
        if existing:
            # Created by an earlier run, all in one transaction; a reassignment may have moved or split
            # them since (issue 7), so they are returned as they are now.
            return existing
        for owner_id, attribute_ids in by_owner.items():
            request = InformationRequest.objects.create(
                cycle_report=cycle_report, data_owner_id=owner_id, due_date=due_date, sample_keys=sample_keys,
            )
            request.attributes.set(attribute_ids)
            audit_record(
                actor=None,
                action="information_request.create",
                obj=request,
                after={
                    **snapshot(request, ["data_owner_id", "due_date", "status"]),
                    "attributes": attribute_ids,
                    "samples": len(sample_keys),
                },
                context={"cycle_report": cycle_report.pk},
            )
            requests.append(request)
    return sorted(requests, key=lambda r: r.pk)


def information_requests_visible_to(*, user) -> QuerySet[InformationRequest]:
    """Requests the user may see: a data owner only their own; the report's people theirs; admins all."""
    qs = InformationRequest.objects.select_related(
        "data_owner",
        "cycle_report__cycle__test_manager",
        "cycle_report__report__owner",
        "cycle_report__report__lob__data_executive",
        "cycle_report__tester",
    ).prefetch_related("attributes")
    if not getattr(user, "is_authenticated", False):
        return qs.none()
    if is_admin(user):
        return qs
    q = Q(pk__in=[])
    if has_role(user, Role.DATA_OWNER):
        q |= Q(data_owner=user)
    if has_role(user, Role.TESTER):
        q |= Q(cycle_report__tester=user)
    if has_role(user, Role.TEST_MANAGER):
        q |= Q(cycle_report__cycle__test_manager=user)
    if has_role(user, Role.REPORT_OWNER):
        q |= Q(cycle_report__report__owner=user)
    if has_role(user, Role.DATA_EXECUTIVE):
        q |= Q(cycle_report__report__lob__data_executive=user)
    return qs.filter(q)


def information_requests_listed(requests: QuerySet[InformationRequest], *,
                                attributes: bool = True) -> QuerySet[InformationRequest]:
    """The requests as a list shows them (the request list page, the API list): what a row shows and no more.

    Joins only the report, the cycle and the data owner (not the people behind the permission checks, which
    a row never shows), and fetches the attributes' id, name and description in name order (the order of the
    attributes' own ordering within one report) instead of their whole rows ordered through three joins.
    The report's field list (a large JSON document read back for every row) stays in the database.
    ``attributes=False``: no attributes (the API list reads them as plain rows, request_attribute_rows).
    """
    requests = (
        requests.select_related(None).select_related("data_owner", "cycle_report__report", "cycle_report__cycle")
        .defer("cycle_report__report__fields")
        .prefetch_related(None)
    )
    if not attributes:
        return requests
    return requests.prefetch_related(Prefetch(
        "attributes",
        queryset=Attribute.objects.only("id", "cycle_report_id", "name", "description").order_by("name"),
    ))


def request_attribute_rows(request_ids) -> dict[int, list[dict]]:
    """Each request's attributes as {"id", "name", "description"}, by name, in one query and no model instances."""
    rows: dict[int, list[dict]] = defaultdict(list)
    for request_id, pk, name, description in (
        InformationRequest.attributes.through.objects.filter(informationrequest_id__in=list(request_ids))
        .order_by("attribute__name", "attribute_id")
        .values_list("informationrequest_id", "attribute_id", "attribute__name", "attribute__description")
    ):
        rows[request_id].append({"id": pk, "name": name, "description": description})
    return rows


def information_request_status(*, request_id: int) -> str:
    return InformationRequest.objects.values_list("status", flat=True).get(pk=request_id)


def _require_request_owner(user, request: InformationRequest) -> None:
    if not (has_role(user, Role.DATA_OWNER) and request.data_owner_id == user.pk):
        raise PermissionDeniedError("Only the data owner the request was sent to can answer it.")


def _require_request_tester(user, request: InformationRequest) -> CycleReport:
    cycle_report = CycleReport.objects.select_related("report").get(pk=request.cycle_report_id)
    if not can_work_on(user, cycle_report):
        raise PermissionDeniedError("Only the tester assigned to the report reviews its evidence.")
    return cycle_report


def evidence_latest(*, request: InformationRequest) -> list[Evidence]:
    """The newest version of each file of the request, by file name."""
    latest: dict[str, Evidence] = {}
    for evidence in Evidence.objects.filter(request=request).order_by("original_name", "-version"):
        latest.setdefault(evidence.original_name, evidence)
    return list(latest.values())


# --- evidence upload ----------------------------------------------------------------------------


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):,.0f} MB" if size >= 1024 * 1024 else f"{size:,} bytes"


def _allowed_extensions() -> set[str]:
    configured = getattr(settings, "EVIDENCE_ALLOWED_EXTENSIONS", DEFAULT_EXTENSIONS)
    if isinstance(configured, str):
        configured = configured.split(",")
    return {ext.strip().lower().lstrip(".") for ext in configured if ext.strip()}


def _check_declared(uploaded_file, *, max_bytes: int, allowed: set[str]) -> str:
    """Check what is known before reading a byte; return the name the evidence is stored under."""
    name = Path((getattr(uploaded_file, "name", None) or "").replace("\\", "/")).name.strip()
    if not name:
        raise InvalidFileError("A file has no name: choose it again.")
    if len(name) > NAME_MAX:
        raise InvalidFileError(
            f"{name[:60]}… has a name longer than {NAME_MAX} characters: rename it and upload again."
        )
    extension = Path(name).suffix.lower().lstrip(".")
    if extension not in allowed:
        raise InvalidFileError(
            f"{name}: .{extension or '(no extension)'} files are not accepted as evidence; "
            f"use one of {', '.join(sorted(allowed))}."
        )
    declared = getattr(uploaded_file, "size", None)
    if declared is not None:
        if declared == 0:
            raise InvalidFileError(f"{name} is empty.")
        if declared > max_bytes:
            raise InvalidFileError(f"{name} is larger than the {_megabytes(max_bytes)} allowed for an evidence file.")
    return name


def _receive(uploaded_file, name: str, *, max_bytes: int, temp_path: str) -> tuple[int, str]:
    """Copy the upload to temp_path; return its real size and SHA-256, computed on the way."""
    hasher = hashlib.sha256()
    size = 0
    head = b""
    with open(temp_path, "wb") as out:
        for chunk in uploaded_file.chunks(CHUNK_BYTES):
            if not chunk:
                continue
            size += len(chunk)
            if size > max_bytes:
                raise InvalidFileError(
                    f"{name} is larger than the {_megabytes(max_bytes)} allowed for an evidence file."
                )
            if len(head) < 16:
                head = (head + chunk)[:16]
            hasher.update(chunk)
            out.write(chunk)
    if size == 0:
        raise InvalidFileError(f"{name} is empty.")
    extension = Path(name).suffix.lower().lstrip(".")
    signatures = MAGIC_BYTES.get(extension)
    if signatures and not head.startswith(signatures):
        raise InvalidFileError(
            f"{name} is not a real .{extension} file (its content does not match its extension): "
            "save it in that format and upload it again."
        )
    return size, hasher.hexdigest()


class _TemporaryFile(File):
    """A file already on disk: FileSystemStorage moves it into place instead of copying it."""

    def temporary_file_path(self) -> str:
        return self.file.name


def evidence_upload(
    *, user, request: InformationRequest, files: list, sample_keys: list[str] | None = None,
    attribute_ids: list[int] | None = None,
) -> list[Evidence]:
    """Store the data owner's files for the request; if any file is refused, none is stored.

    sample_keys / attribute_ids: which of the request's samples and attributes the files cover
    (none given: the whole request).
    """
    from cycles.services.execution import evidence_link_targets, evidence_links_create

    _require_request_owner(user, request)
    if request.status not in (InformationRequest.Status.OPEN, InformationRequest.Status.RETURNED):
        raise ConflictError(
            f"This request is {request.get_status_display().lower()}: evidence can be added only while it is "
            "open or returned to you."
        )
    files = [f for f in files or [] if f is not None]
    if not files:
        raise InvalidFileError("Choose at least one file to upload.")
    max_files = getattr(settings, "EVIDENCE_MAX_FILES_PER_UPLOAD", DEFAULT_MAX_FILES)
    if len(files) > max_files:
        raise InvalidFileError(f"Upload at most {max_files} files at a time.")
    max_bytes = getattr(settings, "EVIDENCE_MAX_BYTES", DEFAULT_MAX_BYTES)
    allowed = _allowed_extensions()
    names = [_check_declared(f, max_bytes=max_bytes, allowed=allowed) for f in files]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InvalidFileError(f"Two files are named {', '.join(repeated)}: upload each name once.")
    targets = evidence_link_targets(request=request, sample_keys=sample_keys, attribute_ids=attribute_ids)

    temp_dir = getattr(settings, "FILE_UPLOAD_TEMP_DIR", None)
    temp_paths: list[str] = []
    received: list[tuple[str, str, int, str, str]] = []  # name, temp path, size, sha256, content type
    stored: list[str] = []
    try:
        # Every file is read and checked before the first one is stored.
        for uploaded_file, name in zip(files, names):
            handle, temp_path = tempfile.mkstemp(prefix="evidence-", dir=temp_dir)
            os.close(handle)
            temp_paths.append(temp_path)
            size, sha256 = _receive(uploaded_file, name, max_bytes=max_bytes, temp_path=temp_path)
            # The extension was checked, the client's claim was not: trust the extension first.
            content_type = mimetypes.guess_type(name)[0] or getattr(uploaded_file, "content_type", None)
            content_type = content_type or "application/octet-stream"
            received.append((name, temp_path, size, sha256, content_type[:CONTENT_TYPE_MAX]))

        created: list[Evidence] = []
        with transaction.atomic():
            # Lock the request: version numbers are taken under it, and its status can't change meanwhile.
            locked = InformationRequest.objects.select_for_update().get(pk=request.pk)
            if locked.status not in (InformationRequest.Status.OPEN, InformationRequest.Status.RETURNED):
                raise ConflictError("This request was submitted meanwhile: evidence can't be added now.")
            latest_versions = dict(
                Evidence.objects.filter(request=locked, original_name__in=names)
                .values("original_name")
                .annotate(v=Max("version"))
                .values_list("original_name", "v")
            )
            for name, temp_path, size, sha256, content_type in received:
                evidence = Evidence(
                    request=locked,
                    original_name=name,
                    version=latest_versions.get(name, 0) + 1,
                    content_type=content_type,
                    size_bytes=size,
                    sha256=sha256,
                    uploaded_by=user,
                )
                with open(temp_path, "rb") as temp:
                    evidence.file.save(name, _TemporaryFile(temp), save=False)
                stored.append(evidence.file.name)
                evidence.save()
                evidence_links_create(evidence=evidence, targets=targets, user=user)
                audit_record(
                    actor=user,
                    action="evidence.upload",
                    obj=evidence,
                    after={**snapshot(evidence, EVIDENCE_FIELDS), "file": evidence.file.name,
                           "covers": {"samples": sorted({t.key for t, _ in targets if t}) or "all",
                                      "attributes": sorted({a.pk for _, a in targets if a}) or "all"}},
                    context={"request": locked.pk, "cycle_report": locked.cycle_report_id},
                )
                created.append(evidence)
    except BaseException:
        # The rows rolled back; their files must go too, or storage keeps orphans nobody can reach.
        for name in stored:
            try:
                Evidence._meta.get_field("file").storage.delete(name)
            except OSError:
                logger.exception("Could not remove the orphaned evidence file %s", name)
        raise
    finally:
        for temp_path in temp_paths:
            if os.path.exists(temp_path):
                os.unlink(temp_path)
    return created


def information_request_submit(*, user, request: InformationRequest) -> InformationRequest:
    """The data owner says the evidence is complete: the tester reviews it next."""
    _require_request_owner(user, request)
    with transaction.atomic():
        # Locked alone; with the names its audit entry and its message show (owner, report, cycle).
        request = (InformationRequest.objects.select_for_update(of=("self",))
                   .select_related("data_owner", "cycle_report__report", "cycle_report__cycle").get(pk=request.pk))
        if request.status not in (InformationRequest.Status.OPEN, InformationRequest.Status.RETURNED):
            raise ConflictError(f"This request is already {request.get_status_display().lower()}.")
        if not any(e.status == Evidence.Status.PENDING for e in evidence_latest(request=request)):
            raise ApplicationError(
                "Upload at least one new evidence file before submitting."
                if request.status == InformationRequest.Status.RETURNED
                else "Upload at least one evidence file before submitting."
            )
        before = snapshot(request, REQUEST_FIELDS)
        request.status = InformationRequest.Status.SUBMITTED
        request.submitted_at = timezone.now()
        request.save(update_fields=["status", "submitted_at"])
        audit_record(actor=user, action="information_request.submit", obj=request, before=before,
                     after=snapshot(request, REQUEST_FIELDS), context={"cycle_report": request.cycle_report_id})
        _tell_workflow(user, request, "request_submitted")
    return request


# --- review by the tester ---------------------------------------------------------------------


def evidence_review(*, user, evidence: Evidence, accept: bool, note: str = "") -> Evidence:
    """Accept a piece of evidence, or return it with a note saying what is wrong."""
    request = InformationRequest.objects.get(pk=evidence.request_id)
    _require_request_tester(user, request)
    note = (note or "").strip()
    if not accept and not note:
        raise ApplicationError(f"Say what is wrong with {evidence.original_name}: a note is required to return it.")
    with transaction.atomic():
        # Locked alone; with the names its audit entry and its message show (owner, report, cycle).
        request = (InformationRequest.objects.select_for_update(of=("self",))
                   .select_related("data_owner", "cycle_report__report", "cycle_report__cycle").get(pk=request.pk))
        if request.status != InformationRequest.Status.SUBMITTED:
            raise ConflictError("Evidence is reviewed only while its request is submitted.")
        evidence = Evidence.objects.select_for_update().get(pk=evidence.pk)
        newest = (
            Evidence.objects.filter(request=request, original_name=evidence.original_name)
            .aggregate(v=Max("version"))["v"]
        )
        if evidence.version != newest:
            raise ConflictError(
                f"{evidence.original_name} v{evidence.version} has been replaced by v{newest}: review the newest."
            )
        before = snapshot(evidence, REVIEW_FIELDS)
        evidence.status = Evidence.Status.ACCEPTED if accept else Evidence.Status.RETURNED
        evidence.review_note = note
        evidence.reviewed_by = user
        evidence.reviewed_at = timezone.now()
        evidence.save(update_fields=["status", "review_note", "reviewed_by", "reviewed_at"])
        audit_record(actor=user, action="evidence.accept" if accept else "evidence.return", obj=evidence,
                     before=before, after=snapshot(evidence, REVIEW_FIELDS),
                     context={"request": request.pk, "cycle_report": request.cycle_report_id})
    return evidence


def returned_round(*, request: InformationRequest) -> int:
    """How many times the request has been returned to its data owner (numbers the 'returned' emails)."""
    return AuditEvent.objects.for_object(request).filter(action="information_request.return").count()


def information_request_review(*, user, request: InformationRequest) -> InformationRequest:
    """Finish reviewing a submitted request: accepted if every file is, else back to the data owner."""
    _require_request_tester(user, request)
    with transaction.atomic():
        # Locked alone; with the names its audit entry and its message show (owner, report, cycle).
        request = (InformationRequest.objects.select_for_update(of=("self",))
                   .select_related("data_owner", "cycle_report__report", "cycle_report__cycle").get(pk=request.pk))
        if request.status != InformationRequest.Status.SUBMITTED:
            raise ConflictError(f"This request is {request.get_status_display().lower()}, not waiting for review.")
        latest = evidence_latest(request=request)
        pending = [f"{e.original_name} v{e.version}" for e in latest if e.status == Evidence.Status.PENDING]
        if pending:
            raise ConflictError(f"Accept or return every file first; not reviewed yet: {', '.join(pending)}.")
        returned = [e for e in latest if e.status == Evidence.Status.RETURNED]
        before = snapshot(request, REQUEST_FIELDS)
        if returned:
            request.status = InformationRequest.Status.RETURNED
            request.save(update_fields=["status"])
            action = "information_request.return"
        else:
            request.status = InformationRequest.Status.ACCEPTED
            request.accepted_at = timezone.now()
            request.save(update_fields=["status", "accepted_at"])
            action = "information_request.accept"
        audit_record(actor=user, action=action, obj=request, before=before, after=snapshot(request, REQUEST_FIELDS),
                     context={"cycle_report": request.cycle_report_id,
                              "returned": [f"{e.original_name} v{e.version}" for e in returned]})
        if returned:
            key_suffix = str(returned_round(request=request))
            request_id = request.pk
            transaction.on_commit(lambda: _notify_returned(request_id, key_suffix), robust=True)
        _tell_workflow(user, request, "request_reviewed")
    return request


def _tell_workflow(user, request: InformationRequest, update_name: str) -> None:
    """Store the message for the report's workflow in this transaction: the change and the message
    commit together (the caller delivers it after commit, the outbox if that fails)."""
    from workflows.services import request_decision_store

    request_decision_store(user=user, request=request, update_name=update_name)


def _notify_returned(request_id: int, key_suffix: str) -> None:
    from cycles.services.notifications import request_notify

    request_notify(request_id=request_id, kind="returned", key_suffix=key_suffix)


# --- who may read evidence ----------------------------------------------------------------------


def evidence_can_download(user, evidence: Evidence) -> bool:
    """The request's data owner, the report's tester, test manager, owner and data executive, and admins."""
    if not getattr(user, "is_authenticated", False):
        return False
    if is_admin(user):
        return True
    request = evidence.request
    if has_role(user, Role.DATA_OWNER) and request.data_owner_id == user.pk:
        return True
    cycle_report = request.cycle_report
    if has_role(user, Role.TESTER) and cycle_report.tester_id == user.pk:
        return True
    if has_role(user, Role.TEST_MANAGER) and cycle_report.cycle.test_manager_id == user.pk:
        return True
    if has_role(user, Role.REPORT_OWNER) and cycle_report.report.owner_id == user.pk:
        return True
    if has_role(user, Role.DATA_EXECUTIVE) and cycle_report.report.lob.data_executive_id == user.pk:
        return True
    return False
