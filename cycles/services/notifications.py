"""Emails about Data Owner Identification and Requests for Information.

Workflow activities call these; an activity may run more than once (a retry,
a worker crash), so each email has a key and a RequestNotification row under a
unique constraint: the row is written in the same transaction that sends, so a
second call with the key sends nothing, and a failed send leaves no row (the
retry sends). Mail goes through Django's email framework: console or file
backend by default, SMTP by settings.
"""
from __future__ import annotations

import datetime
import logging
import re

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from cycles.exceptions import ApplicationError
from cycles.models import CycleReport, Evidence, InformationRequest, Phase, PhaseState, RequestNotification
from cycles.services.requests import attributes_in_scope, evidence_latest, returned_round
from synapse.audit import audit_record

logger = logging.getLogger(__name__)

SUBJECT_MAX = 255  # RequestNotification.subject

# What each kind of request email says, and when it still makes sense to send it:
# a reminder that arrives after the answer would only confuse.
REQUEST_KINDS: dict[str, tuple[str, set[str]]] = {
    RequestNotification.Kind.REQUEST: (
        "cycles/email/request.txt",
        {InformationRequest.Status.OPEN, InformationRequest.Status.RETURNED, InformationRequest.Status.SUBMITTED},
    ),
    RequestNotification.Kind.REMINDER: (
        "cycles/email/reminder.txt",
        {InformationRequest.Status.OPEN, InformationRequest.Status.RETURNED},
    ),
    RequestNotification.Kind.DUE: (
        "cycles/email/due.txt",
        {InformationRequest.Status.OPEN, InformationRequest.Status.RETURNED},
    ),
    RequestNotification.Kind.ESCALATION: (
        "cycles/email/escalation.txt",
        {InformationRequest.Status.OPEN, InformationRequest.Status.RETURNED},
    ),
    RequestNotification.Kind.RETURNED: ("cycles/email/returned.txt", {InformationRequest.Status.RETURNED}),
}


def _addresses(users, *, key: str) -> list[str]:
    addresses = []
    for user in users:
        if user is None:
            continue
        email = (user.email or "").strip()
        if not email:
            logger.warning("Notification %s: %s has no email address and is skipped.", key, user.get_username())
            continue
        if email not in addresses:
            addresses.append(email)
    return addresses


def notify(
    *,
    key: str,
    cycle_report: CycleReport,
    kind: str,
    recipients: list,
    subject: str,
    template: str,
    context: dict,
    request: InformationRequest | None = None,
    cc: list | None = None,
) -> bool:
    """Send one email once per key; returns whether this call sent it.

    False when the key was already sent or nobody has an email address (then
    nothing is recorded, so a later call with addresses still sends).
    """
    if kind not in RequestNotification.Kind.values:
        raise ApplicationError(f"Unknown notification kind {kind!r}.")
    if not key or len(key) > RequestNotification._meta.get_field("key").max_length:
        raise ApplicationError("A notification needs a key of at most 200 characters.")
    to = _addresses(recipients, key=key)
    copy = [a for a in _addresses(cc or [], key=key) if a not in to]
    if not to:
        to, copy = copy, []
    if not to:
        logger.warning("Notification %s not sent: no recipient has an email address.", key)
        return False
    # A header may not contain a line break (Django refuses it), and the column is bounded.
    subject = " ".join(subject.split())[:SUBJECT_MAX]
    body = render_to_string(template, {**context, "site_url": getattr(settings, "SITE_URL", "")})
    # Template tags leave runs of blank lines behind; a plain-text mail shouldn't show them.
    body = re.sub(r"\n{3,}", "\n\n", body).strip() + "\n"
    with transaction.atomic():
        # The insert takes the unique key's lock: a concurrent call with the same key
        # waits here, then finds the row and sends nothing.
        _, created = RequestNotification.objects.get_or_create(
            key=key,
            defaults={
                "cycle_report": cycle_report,
                "request": request,
                "kind": kind,
                "recipients": to + copy,
                "subject": subject,
            },
        )
        if not created:
            logger.info("Notification %s was already sent; not sending again.", key)
            return False
        # Sending inside the transaction: if the mail server refuses, the row rolls back and a retry sends.
        EmailMessage(
            subject=subject, body=body, from_email=settings.DEFAULT_FROM_EMAIL, to=to, cc=copy
        ).send(fail_silently=False)
    logger.info("Notification %s sent to %s.", key, ", ".join(to + copy))
    return True


def request_notification_key(*, request_id: int, kind: str, key_suffix: str = "") -> str:
    suffix = key_suffix.strip("-")
    return f"rfi-{request_id}-{kind}" + (f"-{suffix}" if suffix else "")


def _samples_with_values(request: InformationRequest, attributes) -> list[str]:
    """Each sample by its key (naturally sorted) with the values of the wanted attributes, as the file has them.

    "ML100001350 — property_state: CA, unpaid_principal_balance: 120500.00": the
    data owner finds the record by its key and sees which values need evidence.
    """
    from cycles.models import ColumnMapping, Sample
    from cycles.sampling.keys import natural_sorted

    keys = natural_sorted(request.sample_keys or [])
    rows = dict(
        Sample.objects.filter(cycle_report_id=request.cycle_report_id, key__in=keys).values_list("key", "row_data")
    )
    from cycles.models import SamplingPlan

    plan_file = SamplingPlan.objects.filter(cycle_report_id=request.cycle_report_id).values_list(
        "population_file_id", flat=True).first()
    columns = {
        m.attribute_id: m.column_name
        for m in ColumnMapping.objects.filter(population_file_id=plan_file, attribute__in=attributes)
        if m.column_name
    } if plan_file else {}
    lines = []
    for key in keys:
        row = rows.get(key) or {}
        values = []
        for attribute in attributes:
            column = columns.get(attribute.pk) or next(
                (c for c in row if c.strip().casefold() == attribute.name.casefold()), None
            )
            if column is not None and column in row:
                value = row[column]
                values.append(f"{attribute.name}: {'(empty)' if value in (None, '') else value}")
        lines.append(f"{key} — {', '.join(values)}" if values else str(key))
    return lines


def _request_context(request: InformationRequest) -> dict:
    attributes = list(request.attributes.order_by("name"))
    samples = _samples_with_values(request, attributes)
    return {
        "request": request,
        "cycle_report": request.cycle_report,
        "report": request.cycle_report.report,
        "cycle": request.cycle_report.cycle,
        "data_owner": request.data_owner,
        "attributes": attributes,
        "samples": samples,
        "item_count": len(attributes) * max(len(samples), 1),
        "due_date": request.due_date,
        "days_left": max((request.due_date - timezone.localdate()).days, 0),
        "days_overdue": max((timezone.localdate() - request.due_date).days, 0),
        "tester": request.cycle_report.tester,
    }


def request_notify(*, request_id: int, kind: str, key_suffix: str = "") -> bool:
    """Email about a request, once per (request, kind, key_suffix); returns whether this call sent it.

    request: the data owner gets the samples × attributes wanted and the due date.
    reminder (key_suffix names which, e.g. "d-3") and due: the data owner is reminded.
    escalation: the LOB's data executive, copying the tester; the request is marked escalated.
    returned: the data owner gets the tester's notes; key_suffix numbers the round and defaults to the
    current one (information_request_review sends it on commit; the workflow may send it again safely).
    Reminders, due and escalation are not sent once the request has been answered.
    """
    if kind not in REQUEST_KINDS:
        raise ApplicationError(f"{kind!r} is not a kind of request email.")
    template, sendable = REQUEST_KINDS[kind]
    request = InformationRequest.objects.select_related(
        "data_owner",
        "cycle_report__cycle__test_manager",
        "cycle_report__report__lob__data_executive",
        "cycle_report__tester",
    ).get(pk=request_id)
    if request.status not in sendable:
        logger.info("Request %s is %s: its %s email is not sent.", request_id, request.status, kind)
        return False
    if kind == RequestNotification.Kind.RETURNED and not key_suffix:
        key_suffix = str(returned_round(request=request))
    key = request_notification_key(request_id=request_id, kind=kind, key_suffix=key_suffix)
    context = _request_context(request)
    report = request.cycle_report.report
    recipients, cc = [request.data_owner], []
    if kind == RequestNotification.Kind.REQUEST:
        subject = f"Request for information: {report} — evidence due {request.due_date:%d %b %Y}"
    elif kind == RequestNotification.Kind.REMINDER:
        subject = f"Reminder: evidence for {report} is due {request.due_date:%d %b %Y}"
    elif kind == RequestNotification.Kind.DUE:
        subject = f"Due today: evidence for {report}"
    elif kind == RequestNotification.Kind.RETURNED:
        context["returned"] = [e for e in evidence_latest(request=request) if e.status == Evidence.Status.RETURNED]
        subject = f"Evidence returned: {report} needs more from you"
    else:
        recipients, cc = [report.lob.data_executive], [request.cycle_report.tester]
        subject = f"Escalation: {request.data_owner}'s evidence for {report} is overdue"
        with transaction.atomic():
            sent = notify(key=key, cycle_report=request.cycle_report, kind=kind, recipients=recipients,
                          subject=subject, template=template, context=context, request=request, cc=cc)
            # Marked in the same transaction as the record of the email, so a retry after a
            # crash between the two can't leave an escalation sent but not shown.
            if RequestNotification.objects.filter(key=key).exists():
                marked = InformationRequest.objects.filter(pk=request.pk, escalated_at__isnull=True).update(
                    escalated_at=timezone.now()
                )
                if marked:
                    audit_record(actor=None, action="information_request.escalate", obj=request,
                                 after={"escalated_to": report.lob.data_executive_id},
                                 context={"cycle_report": request.cycle_report_id, "key": key})
        return sent
    return notify(key=key, cycle_report=request.cycle_report, kind=kind, recipients=recipients, subject=subject,
                  template=template, context=context, request=request, cc=cc)


def _doi_context(cycle_report: CycleReport) -> dict:
    attributes = list(
        attributes_in_scope(cycle_report=cycle_report)
        .select_related("data_owner_assignment__data_owner")
        .order_by("name")
    )
    sla_days = (cycle_report.cycle.configuration or {}).get("data_owner_sla_days")
    started = (
        PhaseState.objects.filter(cycle_report=cycle_report, phase=Phase.DATA_OWNER_IDENTIFICATION)
        .values_list("started_at", flat=True)
        .first()
    )
    deadline = None
    if sla_days is not None and started is not None:
        deadline = timezone.localtime(started).date() + datetime.timedelta(days=int(sla_days))
    return {
        "cycle_report": cycle_report,
        "report": cycle_report.report,
        "cycle": cycle_report.cycle,
        "lob": cycle_report.report.lob,
        "data_executive": cycle_report.report.lob.data_executive,
        "attributes": attributes,
        "missing": [a for a in attributes if not hasattr(a, "data_owner_assignment")],
        "sla_days": sla_days,
        "deadline": deadline,
    }


def _load_cycle_report(cycle_report_id: int) -> CycleReport:
    return CycleReport.objects.select_related(
        "cycle__test_manager", "report__lob__data_executive", "tester"
    ).get(pk=cycle_report_id)


def data_owner_identification_notify(*, cycle_report_id: int) -> bool:
    """Ask the LOB's data executive to assign data owners to the report's in-scope attributes (once)."""
    cycle_report = _load_cycle_report(cycle_report_id)
    context = _doi_context(cycle_report)
    return notify(
        key=f"doi-{cycle_report_id}-ask",
        cycle_report=cycle_report,
        kind=RequestNotification.Kind.DATA_OWNERS,
        recipients=[cycle_report.report.lob.data_executive],
        subject=f"Assign data owners: {cycle_report.report} ({cycle_report.cycle})",
        template="cycles/email/data_owner_identification.txt",
        context=context,
    )


def data_owner_sla_escalate(*, cycle_report_id: int) -> bool:
    """Tell the data executive and the test manager which attributes still have no owner past the SLA (once).

    Sends nothing when every in-scope attribute has an owner by now.
    """
    cycle_report = _load_cycle_report(cycle_report_id)
    context = _doi_context(cycle_report)
    if not context["missing"]:
        logger.info("Cycle report %s: every in-scope attribute has a data owner; no escalation.", cycle_report_id)
        return False
    return notify(
        key=f"doi-{cycle_report_id}-sla",
        cycle_report=cycle_report,
        kind=RequestNotification.Kind.DATA_OWNER_SLA,
        recipients=[cycle_report.report.lob.data_executive, cycle_report.cycle.test_manager],
        subject=f"Overdue: {len(context['missing'])} attribute(s) of {cycle_report.report} have no data owner",
        template="cycles/email/data_owner_sla.txt",
        context=context,
    )


def reassignment_notify(*, reassignment_id: int) -> int:
    """Tell both people of a reassignment (issue 7): the one the work left and the one it went to.

    One email each, keyed by the reassignment and the person; returns how many this call sent.
    """
    from cycles.models import Reassignment

    reassignment = Reassignment.objects.select_related(
        "cycle_report__cycle", "cycle_report__report__lob", "attribute", "from_user", "to_user", "reassigned_by",
        "new_request", "request",
    ).get(pk=reassignment_id)
    cycle_report = reassignment.cycle_report
    report = cycle_report.report
    request = reassignment.new_request or reassignment.request
    what = (f"the data owner of {reassignment.attribute.name}"
            if reassignment.kind == Reassignment.Kind.DATA_OWNER else "the tester")
    sent = 0
    for person, gained in ((reassignment.from_user, False), (reassignment.to_user, True)):
        subject = (f"You are now {what} for {report}" if gained
                   else f"Reassigned: you are no longer {what} for {report}")
        sent += notify(
            key=f"reassign-{reassignment.pk}-{person.pk}",
            cycle_report=cycle_report,
            kind=RequestNotification.Kind.REASSIGNED,
            recipients=[person],
            subject=subject,
            template="cycles/email/reassigned.txt",
            context={"reassignment": reassignment, "person": person, "gained": gained, "what": what,
                     "report": report, "cycle": cycle_report.cycle, "request": request},
            request=request,
        )
    return sent
