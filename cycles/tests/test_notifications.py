"""Emails of Data Owner Identification and Requests for Information: who gets what, and only once."""
import datetime as dt
import socket
from email import message_from_bytes, policy

import pytest
from aiosmtpd.controller import Controller
from django.utils import timezone

from cycles.exceptions import ApplicationError
from cycles.models import InformationRequest, RequestNotification
from cycles.services.notifications import (
    data_owner_identification_notify,
    data_owner_sla_escalate,
    notify,
    request_notify,
)
from cycles.services.requests import (
    data_owner_assign,
    data_owners_assign_bulk,
    evidence_review,
    evidence_upload,
    information_request_review,
    information_request_submit,
)
from cycles.tests.test_requests import PDF, open_doi, requests_ready, scoped_attributes, upload
from synapse.audit import audit_events_for


class Collector:
    """An aiosmtpd handler that keeps every message it is given."""

    def __init__(self):
        self.messages = []
        self.port = 0

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(
            {
                "from": envelope.mail_from,
                "to": list(envelope.rcpt_tos),
                "message": message_from_bytes(envelope.original_content or envelope.content, policy=policy.default),
            }
        )
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_server(settings):
    """A real SMTP server on localhost, with Django's SMTP backend pointed at it."""
    collector = Collector()
    controller = Controller(collector, hostname="127.0.0.1", port=free_port())
    controller.start()
    collector.port = controller.port
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = controller.port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_TIMEOUT = 10
    settings.DEFAULT_FROM_EMAIL = "synapse@bank.example"
    yield collector
    controller.stop()


@pytest.fixture
def requests(cycle_report, users, storage):
    return requests_ready(cycle_report, users)


def header(message, name) -> str:
    # A long encoded subject arrives folded; unfold it.
    return " ".join(str(message[name]).split())


def body_of(message) -> str:
    return message.get_body(preferencelist=("plain",)).get_content().replace("\r\n", "\n")


# --- through a real SMTP server --------------------------------------------------------------------


def test_the_request_email_reaches_the_data_owner_over_smtp_once(requests, smtp_server):
    request = requests["dataowner"]

    assert request_notify(request_id=request.pk, kind="request") is True
    assert request_notify(request_id=request.pk, kind="request") is False

    [sent] = smtp_server.messages
    assert sent["from"] == "synapse@bank.example"
    assert sent["to"] == ["dataowner@example.com"]
    message = sent["message"]
    assert header(message, "Subject") == "Request for information: FR Y-14Q Retail — evidence due 15 Sep 2026"
    body = body_of(message)
    assert "Tuesday 15 September 2026" in body
    assert "account_id: The account_id" in body and "balance: The balance" in body
    assert "customer_name" not in body  # another data owner's attribute
    assert "Samples (3)" in body and "3 × 2 = 6 items" in body
    for key in ("S-001", "S-002", "S-003"):
        assert f"  - {key}\n" in body
    [record] = RequestNotification.objects.all()
    assert (record.key, record.kind, record.request_id) == (f"rfi-{request.pk}-request", "request", request.pk)
    assert record.recipients == ["dataowner@example.com"]


def test_a_refused_send_records_nothing_so_the_retry_sends(requests, smtp_server, settings):
    request = requests["dataowner"]
    settings.EMAIL_PORT = free_port()  # nothing listens there

    with pytest.raises(OSError):
        request_notify(request_id=request.pk, kind="reminder", key_suffix="d-3")
    assert not RequestNotification.objects.exists()

    settings.EMAIL_PORT = smtp_server.port
    assert request_notify(request_id=request.pk, kind="reminder", key_suffix="d-3") is True
    assert len(smtp_server.messages) == 1
    assert RequestNotification.objects.get().key == f"rfi-{request.pk}-reminder-d-3"


def test_escalation_goes_to_the_data_executive_with_the_tester_copied_over_smtp(requests, smtp_server):
    request = requests["dataowner"]

    assert request_notify(request_id=request.pk, kind="escalation") is True
    assert request_notify(request_id=request.pk, kind="escalation") is False

    [sent] = smtp_server.messages
    assert sorted(sent["to"]) == ["executive@example.com", "tester@example.com"]
    message = sent["message"]
    assert message["To"] == "executive@example.com"
    assert message["Cc"] == "tester@example.com"
    assert header(message, "Subject") == "Escalation: dataowner's evidence for FR Y-14Q Retail is overdue"
    request.refresh_from_db()
    assert request.escalated_at is not None
    assert [e.action for e in audit_events_for(request)].count("information_request.escalate") == 1


# --- with the locmem backend -----------------------------------------------------------------------


def test_each_reminder_is_sent_once_and_none_after_the_answer(requests, users, mailoutbox):
    request = requests["dataowner"]

    assert request_notify(request_id=request.pk, kind="reminder", key_suffix="d-3")
    assert request_notify(request_id=request.pk, kind="reminder", key_suffix="d-1")
    assert not request_notify(request_id=request.pk, kind="reminder", key_suffix="d-1")
    assert request_notify(request_id=request.pk, kind="due")
    assert [m.subject for m in mailoutbox] == [
        "Reminder: evidence for FR Y-14Q Retail is due 15 Sep 2026",
        "Reminder: evidence for FR Y-14Q Retail is due 15 Sep 2026",
        "Due today: evidence for FR Y-14Q Retail",
    ]

    evidence_upload(user=users["data_owner"], request=request, files=[upload("a.pdf", PDF)])
    InformationRequest.objects.filter(pk=request.pk).update(status=InformationRequest.Status.SUBMITTED)
    assert not request_notify(request_id=request.pk, kind="escalation")
    assert not request_notify(request_id=request.pk, kind="reminder", key_suffix="d-0")
    assert len(mailoutbox) == 3
    assert InformationRequest.objects.get(pk=request.pk).escalated_at is None


def test_reminder_says_how_many_days_are_left(requests, mailoutbox):
    request = requests["dataowner"]
    InformationRequest.objects.filter(pk=request.pk).update(due_date=timezone.localdate() + dt.timedelta(days=3))

    request_notify(request_id=request.pk, kind="reminder", key_suffix="d-3")

    assert "in 3 days" in mailoutbox[0].body


def test_the_returned_email_is_only_for_a_returned_request(requests, mailoutbox):
    assert not request_notify(request_id=requests["dataowner"].pk, kind="returned", key_suffix="1")
    assert mailoutbox == []


def test_the_returned_email_goes_once_per_round(requests, users, mailoutbox, django_capture_on_commit_callbacks):
    request = requests["dataowner"]

    def submit_and_return(name):
        [evidence] = evidence_upload(user=users["data_owner"], request=request, files=[upload(name, PDF)])
        information_request_submit(user=users["data_owner"], request=request)
        evidence_review(user=users["tester"], evidence=evidence, accept=False, note=f"{name} is unreadable.")
        with django_capture_on_commit_callbacks(execute=True):
            information_request_review(user=users["tester"], request=request)

    submit_and_return("first.pdf")
    # The workflow sending it too (after the review's own send) adds nothing.
    assert request_notify(request_id=request.pk, kind="returned") is False
    submit_and_return("first.pdf")
    assert request_notify(request_id=request.pk, kind="returned") is False

    assert [m.subject for m in mailoutbox] == ["Evidence returned: FR Y-14Q Retail needs more from you"] * 2
    assert "first.pdf (version 1): first.pdf is unreadable." in mailoutbox[0].body
    assert "first.pdf (version 2): first.pdf is unreadable." in mailoutbox[1].body
    assert sorted(RequestNotification.objects.values_list("key", flat=True)) == [
        f"rfi-{request.pk}-returned-1", f"rfi-{request.pk}-returned-2"
    ]


def test_unknown_kinds_are_refused(requests):
    with pytest.raises(ApplicationError):
        request_notify(request_id=requests["dataowner"].pk, kind="data_owner_sla")
    with pytest.raises(ApplicationError):
        notify(key="k", cycle_report=requests["dataowner"].cycle_report, kind="gossip", recipients=[],
               subject="s", template="cycles/email/due.txt", context={})


def test_recipients_without_an_address_are_skipped_and_none_records_nothing(requests, users, mailoutbox, caplog):
    request = requests["dataowner"]
    users["data_owner"].email = ""
    users["data_owner"].save()

    assert request_notify(request_id=request.pk, kind="request") is False
    assert mailoutbox == []
    assert not RequestNotification.objects.exists()
    assert "dataowner has no email address" in caplog.text

    users["executive"].email = ""
    users["executive"].save()
    assert request_notify(request_id=request.pk, kind="escalation") is True
    assert mailoutbox[0].to == ["tester@example.com"] and mailoutbox[0].cc == []


def test_the_data_executive_is_asked_to_assign_owners_once(cycle_report, users, mailoutbox):
    open_doi(cycle_report)
    attributes = scoped_attributes(cycle_report, users["tester"])
    data_owner_assign(user=users["executive"], attribute=attributes["balance"], data_owner=users["data_owner"])

    assert data_owner_identification_notify(cycle_report_id=cycle_report.pk) is True
    assert data_owner_identification_notify(cycle_report_id=cycle_report.pk) is False

    [email] = mailoutbox
    assert email.to == ["executive@example.com"]
    assert email.subject == "Assign data owners: FR Y-14Q Retail (Q3 2026)"
    assert "3 in-scope attributes" in email.body
    assert "balance: assigned to dataowner" in email.body
    assert "account_id: no data owner yet" in email.body
    assert "notes" not in email.body
    deadline = timezone.localdate() + dt.timedelta(days=5)
    assert f"by {deadline:%A} {deadline.day} {deadline:%B %Y}" in email.body


def test_data_owner_sla_escalation_lists_the_unassigned_attributes(cycle_report, users, mailoutbox):
    open_doi(cycle_report)
    attributes = scoped_attributes(cycle_report, users["tester"])
    data_owner_assign(user=users["executive"], attribute=attributes["balance"], data_owner=users["data_owner"])

    assert data_owner_sla_escalate(cycle_report_id=cycle_report.pk) is True
    assert data_owner_sla_escalate(cycle_report_id=cycle_report.pk) is False

    [email] = mailoutbox
    assert sorted(email.to) == ["executive@example.com", "manager@example.com"]
    assert email.subject == "Overdue: 2 attribute(s) of FR Y-14Q Retail have no data owner"
    assert "  - account_id\n  - customer_name\n" in email.body
    assert "balance" not in email.body
    record = RequestNotification.objects.get()
    assert (record.kind, record.request_id, record.key) == ("data_owner_sla", None, f"doi-{cycle_report.pk}-sla")


def test_no_sla_escalation_once_every_attribute_has_an_owner(cycle_report, users, mailoutbox):
    open_doi(cycle_report)
    attributes = scoped_attributes(cycle_report, users["tester"])
    data_owners_assign_bulk(user=users["executive"], cycle_report=cycle_report, data_owner=users["data_owner"],
                            attribute_ids=[a.pk for name, a in attributes.items() if name != "notes"])

    assert data_owner_sla_escalate(cycle_report_id=cycle_report.pk) is False
    assert mailoutbox == []
    assert not RequestNotification.objects.exists()


def test_names_are_not_html_escaped_in_plain_text_mail(requests, users, mailoutbox):
    users["data_owner"].first_name, users["data_owner"].last_name = "Siobhán", "O'Brien & Co"
    users["data_owner"].save()

    request_notify(request_id=requests["dataowner"].pk, kind="request")

    assert "Hello Siobhán O'Brien & Co," in mailoutbox[0].body
