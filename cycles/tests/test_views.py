"""The cycle and phase pages: who sees what, what each action does, and that errors never 500."""
from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from conftest import PASSWORD
from cycles.models import (
    Attribute,
    CycleReport,
    Phase,
    PopulationFile,
    ProfileResult,
    Report,
    ScopingDecision,
    TestCycle,
)
from synapse.models import AuditEvent
from versioning.models import VersionStatus
from versioning.services import version_create
from workflows.models import WorkflowDecision

pytestmark = pytest.mark.django_db


def as_user(client, user):
    client.force_login(user)
    return client


def in_phase(cycle_report, phase):
    cycle_report.phase = phase
    cycle_report.status = CycleReport.Status.IN_PROGRESS
    cycle_report.save(update_fields=["phase", "status"])
    return cycle_report


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def add_attribute(cycle_report, name="account_id", **fields):
    values = {"description": "Unique account identifier", "data_type": "string", "risk_score": 5, **fields}
    return Attribute.objects.create(cycle_report=cycle_report, name=name, **values)


# --- login and my work ---------------------------------------------------------------------------


def test_login_with_password_lands_on_my_work(client, users):
    assert client.get(reverse("login")).status_code == 200
    response = client.post(reverse("login"), {"username": "tester", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == reverse("cycles:my-work")
    assert client.get("/")["Location"] == reverse("cycles:my-work")
    assert client.get(reverse("cycles:my-work")).status_code == 200


def test_pages_need_a_login(client, cycle_report):
    for url in (reverse("cycles:my-work"), reverse("cycles:cycle-detail", args=[cycle_report.cycle_id]),
                reverse("cycles:planning", args=[cycle_report.pk])):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("who", ["admin", "manager", "tester", "owner", "executive", "data_owner"])
def test_my_work_renders_for_every_role(client, users, cycle_report, who):
    assert as_user(client, users[who]).get(reverse("cycles:my-work")).status_code == 200


def test_my_work_shows_each_person_what_waits_for_them(client, users, cycle_report):
    in_phase(cycle_report, Phase.PLANNING)
    add_attribute(cycle_report)
    version = version_create(cycle_report=cycle_report, phase=Phase.PLANNING, author=users["tester"],
                             items=[("account_id", {"risk_score": 5})])
    WorkflowDecision.objects.create(workflow_id="cycle-1-report-1", update_name="submit_version",
                                    payload={"phase": "planning"}, requested_by=users["tester"],
                                    cycle_report=cycle_report, error="Temporal at localhost:7233 is unreachable")
    review_url = reverse("versioning:version-detail", args=[version.pk])

    owner_page = as_user(client, users["owner"]).get(reverse("cycles:my-work")).content.decode()
    assert review_url in owner_page
    assert review_url not in as_user(client, users["owner2"]).get(reverse("cycles:my-work")).content.decode()

    tester_page = as_user(client, users["tester"]).get(reverse("cycles:my-work")).content.decode()
    assert cycle_report.report.name in tester_page
    assert "Waiting for the workflow service" in tester_page
    assert cycle_report.report.name not in as_user(client, users["tester2"]).get(
        reverse("cycles:my-work")).content.decode()

    manager_page = as_user(client, users["manager"]).get(reverse("cycles:my-work")).content.decode()
    assert reverse("cycles:cycle-detail", args=[cycle_report.cycle_id]) in manager_page


# --- cycles list, create, detail ---------------------------------------------------------------------


def test_cycle_list_shows_only_cycles_the_user_takes_part_in(client, users, cycle_report):
    url = reverse("cycles:cycle-list")
    detail = reverse("cycles:cycle-detail", args=[cycle_report.cycle_id])
    for who in ("manager", "tester", "owner", "executive", "admin"):
        response = as_user(client, users[who]).get(url)
        assert response.status_code == 200 and detail in response.content.decode(), who
    for who in ("data_owner", "tester2", "owner2"):
        assert detail not in as_user(client, users[who]).get(url).content.decode(), who
    assert "New cycle" in as_user(client, users["manager"]).get(url).content.decode()
    assert "New cycle" not in as_user(client, users["tester"]).get(url).content.decode()


def test_cycle_detail_refuses_who_takes_no_part(client, users, cycle_report):
    url = reverse("cycles:cycle-detail", args=[cycle_report.cycle_id])
    for who in ("manager", "admin", "tester", "owner", "executive"):
        assert as_user(client, users[who]).get(url).status_code == 200, who
    for who in ("data_owner", "tester2", "owner2"):
        assert as_user(client, users[who]).get(url).status_code == 404, who
    assert as_user(client, users["data_owner"]).get(
        reverse("cycles:cycle-progress", args=[cycle_report.cycle_id])).status_code == 404


def test_cycle_page_shows_phase_and_who_each_report_waits_on(client, users, cycle_report):
    in_phase(cycle_report, Phase.PLANNING)
    page = as_user(client, users["manager"]).get(reverse("cycles:cycle-detail", args=[cycle_report.cycle_id]))
    html = page.content.decode()
    assert "Planning" in html and "Being prepared" in html
    assert "Tester" in html and str(users["tester"]) in html

    version_create(cycle_report=cycle_report, phase=Phase.PLANNING, author=users["tester"],
                   items=[("account_id", {"risk_score": 5})])
    rows = as_user(client, users["manager"]).get(reverse("cycles:cycle-progress", args=[cycle_report.cycle_id]))
    assert rows.status_code == 200
    assert "Version 1 awaits approval" in rows.content.decode()
    assert "Report Owner" in rows.content.decode()


def test_create_cycle_through_the_page(client, users):
    client = as_user(client, users["manager"])
    assert client.get(reverse("cycles:cycle-create")).status_code == 200
    response = client.post(reverse("cycles:cycle-create"), {
        "name": "Q4 2026", "period_start": "2026-10-01", "period_end": "2026-12-31",
        "skip_phases": ["data_profiling"], "rfi_due_days": "7",
    })
    cycle = TestCycle.objects.get(name="Q4 2026")
    assert response.status_code == 302 and response["Location"] == reverse("cycles:cycle-detail", args=[cycle.pk])
    assert cycle.test_manager == users["manager"]
    assert cycle.configuration["skip_phases"] == ["data_profiling"] and cycle.configuration["rfi_due_days"] == 7
    detail = client.get(response["Location"]).content.decode()
    assert "Created the cycle" in detail  # the audit trail partial


def test_invalid_cycle_form_shows_the_error_and_saves_nothing(client, users):
    response = as_user(client, users["manager"]).post(reverse("cycles:cycle-create"), {
        "name": "Backwards", "period_start": "2026-12-31", "period_end": "2026-10-01", "rfi_due_days": "-1",
    })
    assert response.status_code == 200
    html = response.content.decode()
    assert "The period ends before it starts." in html
    assert "greater than or equal to 0" in html
    assert not TestCycle.objects.filter(name="Backwards").exists()


def test_only_a_test_manager_creates_cycles(client, users):
    for who in ("tester", "owner", "data_owner"):
        client = as_user(client, users[who])
        assert client.get(reverse("cycles:cycle-create")).status_code == 403
        response = client.post(reverse("cycles:cycle-create"), {
            "name": "Sneaky", "period_start": "2026-10-01", "period_end": "2026-12-31", "rfi_due_days": "7",
        })
        assert response.status_code == 403
    assert not TestCycle.objects.filter(name="Sneaky").exists()


def test_start_button_is_for_the_test_manager_only(client, users, cycle_report):
    cycle = cycle_report.cycle
    url = reverse("cycles:cycle-detail", args=[cycle.pk])
    assert "Start workflow" in as_user(client, users["manager"]).get(url).content.decode()
    for who in ("tester", "owner", "executive"):
        client = as_user(client, users[who])
        assert "Start workflow" not in client.get(url).content.decode(), who
        assert client.post(reverse("cycles:cycle-start", args=[cycle.pk])).status_code == 403, who
    assert as_user(client, users["data_owner"]).post(reverse("cycles:cycle-start", args=[cycle.pk])).status_code == 404
    cycle.refresh_from_db()
    assert cycle.status == TestCycle.Status.DRAFT and cycle.workflow_id == ""


def test_start_with_temporal_unreachable_says_so(client, users, cycle_report, settings):
    settings.TEMPORAL_ADDRESS = "127.0.0.1:1"
    settings.TEMPORAL_RPC_TIMEOUT = 2
    response = as_user(client, users["manager"]).post(
        reverse("cycles:cycle-start", args=[cycle_report.cycle_id]), follow=True
    )
    assert response.status_code == 200
    assert any("can't be reached" in m for m in messages_of(response))
    cycle_report.cycle.refresh_from_db()
    assert cycle_report.cycle.status == TestCycle.Status.DRAFT


def test_start_without_a_tester_is_a_message_not_an_error(client, users, cycle_report):
    CycleReport.objects.filter(pk=cycle_report.pk).update(tester=None)
    response = as_user(client, users["manager"]).post(
        reverse("cycles:cycle-start", args=[cycle_report.cycle_id]), follow=True
    )
    assert response.status_code == 200
    assert any("Assign a tester first" in m for m in messages_of(response))


def test_manager_adds_a_report_and_assigns_a_tester(client, users, cycle, lob):
    report = Report.objects.create(name="FFIEC 031", regulation="FFIEC 031", owner=users["owner2"], lob=lob,
                                   fields=[{"name": "total_assets"}])
    client = as_user(client, users["manager"])
    response = client.post(reverse("cycles:cycle-add-report", args=[cycle.pk]), {"report": report.pk})
    assert response.status_code == 302
    cycle_report = CycleReport.objects.get(cycle=cycle, report=report)
    assert cycle_report.tester is None
    response = client.post(reverse("cycles:cycle-report-assign-tester", args=[cycle_report.pk]),
                           {"tester": users["tester2"].pk}, follow=True)
    cycle_report.refresh_from_db()
    assert cycle_report.tester == users["tester2"]
    assert any("now tests" in m for m in messages_of(response))
    # A user who isn't a tester is not in the list, so the form refuses it and nothing changes.
    response = client.post(reverse("cycles:cycle-report-assign-tester", args=[cycle_report.pk]),
                           {"tester": users["owner"].pk}, follow=True)
    cycle_report.refresh_from_db()
    assert cycle_report.tester == users["tester2"]


def test_a_tester_cannot_add_reports_or_assign(client, users, cycle_report, lob):
    report = Report.objects.create(name="FFIEC 031", regulation="FFIEC 031", owner=users["owner"], lob=lob)
    client = as_user(client, users["tester"])
    assert client.post(reverse("cycles:cycle-add-report", args=[cycle_report.cycle_id]),
                       {"report": report.pk}).status_code == 403
    assert client.post(reverse("cycles:cycle-report-assign-tester", args=[cycle_report.pk]),
                       {"tester": users["tester2"].pk}).status_code == 403
    assert not CycleReport.objects.filter(report=report).exists()
    cycle_report.refresh_from_db()
    assert cycle_report.tester == users["tester"]


def test_cycle_page_queries_do_not_grow_with_reports(client, users, cycle, lob, django_assert_max_num_queries):
    def add_report(i):
        report = Report.objects.create(name=f"Report {i}", regulation="FR Y-9C", owner=users["owner"], lob=lob)
        cr = CycleReport.objects.create(cycle=cycle, report=report, tester=users["tester"],
                                        phase=Phase.PLANNING, status=CycleReport.Status.IN_PROGRESS)
        version_create(cycle_report=cr, phase=Phase.PLANNING, author=users["tester"], items=[("a", {"x": i})])
        PopulationFile.objects.create(cycle_report=cr, original_name="p.csv", format="csv", size_bytes=1,
                                      sha256="0" * 64, uploaded_by=users["tester"], file="populations/p.csv")
        return cr

    add_report(0)
    client = as_user(client, users["manager"])
    url = reverse("cycles:cycle-detail", args=[cycle.pk])
    client.get(url)  # warm caches (content types, session)
    with CaptureQueriesContext(connection) as one_report:
        assert client.get(url).status_code == 200
    for i in range(1, 8):
        add_report(i)
    with django_assert_max_num_queries(len(one_report)):
        response = client.get(url)
    assert response.content.decode().count("Version 1 awaits approval") == 8


# --- phase pages -----------------------------------------------------------------------------------


@pytest.mark.parametrize("page", ["cycles:planning", "cycles:data-profiling", "cycles:scoping"])
def test_phase_pages_render_for_who_can_see_the_report(client, users, cycle_report, page):
    in_phase(cycle_report, Phase.PLANNING)
    url = reverse(page, args=[cycle_report.pk])
    for who in ("tester", "owner", "manager", "executive", "admin"):
        assert as_user(client, users[who]).get(url).status_code == 200, who
    for who in ("tester2", "owner2", "data_owner"):
        assert as_user(client, users[who]).get(url).status_code == 404, who


def test_cycle_report_link_opens_its_current_phase(client, users, cycle_report):
    in_phase(cycle_report, Phase.SCOPING)
    response = as_user(client, users["tester"]).get(reverse("cycles:cycle-report", args=[cycle_report.pk]))
    assert response["Location"] == reverse("cycles:scoping", args=[cycle_report.pk])


def test_tester_adds_and_edits_an_attribute_through_the_planning_page(client, users, cycle_report):
    in_phase(cycle_report, Phase.PLANNING)
    client = as_user(client, users["tester"])
    url = reverse("cycles:planning", args=[cycle_report.pk])
    assert "Add an attribute" in client.get(url).content.decode()
    response = client.post(url, {"name": "balance", "description": "Outstanding balance", "data_type": "decimal",
                                 "mandatory": "on", "cde": "on", "risk_score": "8"})
    assert response.status_code == 302
    attribute = Attribute.objects.get(cycle_report=cycle_report, name="balance")
    assert (attribute.data_type, attribute.mandatory, attribute.cde, attribute.primary_key, attribute.risk_score) == (
        "decimal", True, True, False, 8)
    assert attribute.source == Attribute.Source.MANUAL

    edit_url = reverse("cycles:attribute-edit", args=[cycle_report.pk, attribute.pk])
    form_page = client.get(edit_url)
    assert form_page.status_code == 200 and 'value="balance"' in form_page.content.decode()
    response = client.post(edit_url, {"name": "balance_usd", "description": "In USD", "data_type": "decimal",
                                      "risk_score": "3"})
    assert response.status_code == 302
    attribute.refresh_from_db()
    assert (attribute.name, attribute.mandatory, attribute.cde, attribute.risk_score) == ("balance_usd", False, False, 3)
    assert AuditEvent.objects.filter(action="attribute.update", object_id=str(attribute.pk)).exists()

    response = client.post(reverse("cycles:attribute-delete", args=[cycle_report.pk, attribute.pk]))
    assert response.status_code == 302 and not Attribute.objects.filter(pk=attribute.pk).exists()


def test_invalid_attribute_form_shows_errors_and_saves_nothing(client, users, cycle_report):
    in_phase(cycle_report, Phase.PLANNING)
    add_attribute(cycle_report, name="balance")
    client = as_user(client, users["tester"])
    url = reverse("cycles:planning", args=[cycle_report.pk])

    response = client.post(url, {"name": "", "data_type": "string", "risk_score": "11"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "This field is required." in html and "less than or equal to 10" in html

    response = client.post(url, {"name": "balance", "data_type": "string", "risk_score": "2"})
    assert response.status_code == 409
    assert "already has an attribute named" in response.content.decode()
    assert Attribute.objects.filter(cycle_report=cycle_report).count() == 1


def test_only_the_assigned_tester_changes_attributes(client, users, cycle_report):
    in_phase(cycle_report, Phase.PLANNING)
    attribute = add_attribute(cycle_report)
    url = reverse("cycles:planning", args=[cycle_report.pk])
    for who in ("owner", "manager"):
        client = as_user(client, users[who])
        assert "Add an attribute" not in client.get(url).content.decode()
        assert client.post(url, {"name": "x", "data_type": "string", "risk_score": "1"}).status_code == 403
        assert client.get(reverse("cycles:attribute-edit", args=[cycle_report.pk, attribute.pk])).status_code == 403
        assert client.post(reverse("cycles:attribute-delete", args=[cycle_report.pk, attribute.pk])).status_code == 403
    assert as_user(client, users["tester2"]).post(url, {"name": "x", "risk_score": "1"}).status_code == 404
    assert list(Attribute.objects.filter(cycle_report=cycle_report).values_list("name", flat=True)) == ["account_id"]


def test_planning_is_read_only_while_a_version_awaits_approval(client, users, cycle_report):
    in_phase(cycle_report, Phase.PLANNING)
    add_attribute(cycle_report)
    version_create(cycle_report=cycle_report, phase=Phase.PLANNING, author=users["tester"],
                   items=[("account_id", {"risk_score": 5})])
    client = as_user(client, users["tester"])
    url = reverse("cycles:planning", args=[cycle_report.pk])
    html = client.get(url).content.decode()
    assert "Add an attribute" not in html and "Submit for approval" not in html
    assert "Version 1 awaits approval" in html
    response = client.post(url, {"name": "late", "data_type": "string", "risk_score": "1"}, follow=True)
    assert response.status_code == 200
    assert any("submitted for approval" in m for m in messages_of(response))
    assert not Attribute.objects.filter(name="late").exists()


def test_submit_without_a_running_workflow_is_a_message(client, users, cycle_report):
    in_phase(cycle_report, Phase.PLANNING)
    add_attribute(cycle_report)
    client = as_user(client, users["tester"])
    assert "Submit for approval" in client.get(reverse("cycles:planning", args=[cycle_report.pk])).content.decode()
    response = client.post(reverse("cycles:phase-submit", args=[cycle_report.pk, "planning"]), follow=True)
    assert response.status_code == 200
    assert any("has not been started" in m for m in messages_of(response))
    assert not WorkflowDecision.objects.exists()
    assert as_user(client, users["owner"]).post(
        reverse("cycles:phase-submit", args=[cycle_report.pk, "planning"])).status_code == 403
    assert client.post(reverse("cycles:phase-submit", args=[cycle_report.pk, "finalize"])).status_code == 404


def test_tester_decides_scope_through_the_page(client, users, cycle_report):
    in_phase(cycle_report, Phase.SCOPING)
    key = add_attribute(cycle_report, name="account_id", primary_key=True)
    low = add_attribute(cycle_report, name="nickname", risk_score=1)
    client = as_user(client, users["tester"])
    url = reverse("cycles:scoping", args=[cycle_report.pk])
    assert client.get(url).status_code == 200

    response = client.post(url, {"attribute": key.pk, "in_scope": "in", "rationale": "Primary key."})
    assert response.status_code == 302
    response = client.post(url, {"attribute": low.pk, "in_scope": "out", "rationale": "Cosmetic field."})
    assert response.status_code == 302
    decisions = dict(ScopingDecision.objects.values_list("attribute__name", "in_scope"))
    assert decisions == {"account_id": True, "nickname": False}
    html = client.get(url).content.decode()
    assert "1 of 2 in scope" in html


def test_scoping_errors_are_shown_and_nothing_saved(client, users, cycle_report):
    in_phase(cycle_report, Phase.SCOPING)
    key = add_attribute(cycle_report, name="account_id", primary_key=True)
    client = as_user(client, users["tester"])
    url = reverse("cycles:scoping", args=[cycle_report.pk])
    response = client.post(url, {"attribute": key.pk, "in_scope": "out", "rationale": ""})
    assert response.status_code == 200 and "Say why this attribute is out of scope." in response.content.decode()
    # The service's rule: a key needs a real sentence to be excluded.
    response = client.post(url, {"attribute": key.pk, "in_scope": "out", "rationale": "no"})
    assert response.status_code == 400 and "explain its exclusion" in response.content.decode()
    assert not ScopingDecision.objects.exists()
    assert as_user(client, users["owner"]).post(url, {"attribute": key.pk, "in_scope": "in"}).status_code == 403
    assert not ScopingDecision.objects.exists()


def test_data_profiling_page_shows_the_profile_and_serves_the_file_privately(client, users, cycle_report):
    in_phase(cycle_report, Phase.DATA_PROFILING)
    attribute = add_attribute(cycle_report, name="balance")
    population = PopulationFile(cycle_report=cycle_report, original_name="loans.csv", format="csv",
                                size_bytes=24, sha256="a" * 64, uploaded_by=users["tester"], row_count=2,
                                columns=["balance"], status=PopulationFile.Status.PROFILED)
    population.file.save("loans.csv", ContentFile(b"balance\n10.5\nabc\n"), save=False)
    population.save()
    ProfileResult.objects.create(population_file=population, column_name="balance", attribute=attribute,
                                 dtype="decimal", row_count=2, null_count=1, distinct_count=1, min_value="10.5",
                                 max_value="10.5", top_values=[{"value": "10.5", "count": 1}],
                                 format_violations=1, rule_failures={"mandatory": 1})
    html = as_user(client, users["owner"]).get(reverse("cycles:data-profiling", args=[cycle_report.pk])).content.decode()
    assert "loans.csv" in html and "empty though mandatory 1" in html and "50%" in html

    download = reverse("cycles:population-download", args=[cycle_report.pk, population.pk])
    response = as_user(client, users["tester"]).get(download)
    assert response.status_code == 200 and b"".join(response.streaming_content) == b"balance\n10.5\nabc\n"
    assert "attachment" in response["Content-Disposition"]
    for who in ("data_owner", "tester2"):
        assert as_user(client, users[who]).get(download).status_code == 404


def test_upload_form_errors_keep_everything_saved(client, users, cycle_report):
    in_phase(cycle_report, Phase.DATA_PROFILING)
    client = as_user(client, users["tester"])
    url = reverse("cycles:data-profiling", args=[cycle_report.pk])
    assert "Upload and profile" in client.get(url).content.decode()
    response = client.post(url, {})
    assert response.status_code == 200 and "This field is required." in response.content.decode()
    assert as_user(client, users["owner"]).post(
        url, {"file": SimpleUploadedFile("p.csv", b"a,b\n1,2\n")}).status_code == 403
    assert not PopulationFile.objects.exists()


def test_upload_without_a_running_workflow_keeps_the_file_and_says_why(client, users, cycle_report):
    in_phase(cycle_report, Phase.DATA_PROFILING)
    client = as_user(client, users["tester"])
    url = reverse("cycles:data-profiling", args=[cycle_report.pk])
    csv = b"account_id,balance\nA1,10.5\nA2,20\n"
    response = client.post(url, {"file": SimpleUploadedFile("loans.csv", csv, content_type="text/csv")}, follow=True)
    assert response.status_code == 200
    assert any("loans.csv was not profiled: The cycle's workflow has not been started" in m
               for m in messages_of(response))
    # Kept in the history as refused, never shown as the report's population.
    kept = PopulationFile.objects.get(cycle_report=cycle_report, original_name="loans.csv")
    assert kept.status == PopulationFile.Status.REFUSED
    assert response.context["population_file"] is None


# --- with the real Temporal dev server -------------------------------------------------------------


@pytest.mark.temporal
@pytest.mark.django_db(transaction=True)
def test_start_from_the_cycle_page_then_submit_and_approve_planning(temporal, client, users, cycle, cycle_report):
    from versioning.models import Version
    from workflows.testing import wait_until

    response = as_user(client, users["manager"]).post(reverse("cycles:cycle-start", args=[cycle.pk]), follow=True)
    assert any(f"cycle-{cycle.pk}" in m for m in messages_of(response))
    cycle.refresh_from_db()
    assert cycle.status == TestCycle.Status.RUNNING
    page = response.content.decode()
    assert "Start workflow" not in page and f"/workflows/cycle-{cycle.pk}" in page

    def drafted():
        cr = CycleReport.objects.get(pk=cycle_report.pk)
        return cr.phase == Phase.PLANNING and cr.attributes.count() == 5

    wait_until(drafted, what="planning with drafted attributes")

    def waits_for_submission():
        html = as_user(client, users["tester"]).get(reverse("cycles:planning", args=[cycle_report.pk]))
        return "Submit for approval" in html.content.decode() and "Awaiting submission" in html.content.decode()

    wait_until(waits_for_submission, what="the planning page to offer submission")
    response = client.post(reverse("cycles:phase-submit", args=[cycle_report.pk, "planning"]),
                           {"notes": "First cut"}, follow=True)
    assert any("Version 1 submitted" in m for m in messages_of(response))
    version = Version.objects.get(cycle_report=cycle_report, phase=Phase.PLANNING)
    assert version.status == VersionStatus.SUBMITTED and version.notes == "First cut"

    response = as_user(client, users["owner"]).post(
        reverse("versioning:version-decide", args=[version.pk]), {"decision": "approve"}, follow=True
    )
    assert any("Version 1 approved" in m for m in messages_of(response))
    wait_until(lambda: CycleReport.objects.get(pk=cycle_report.pk).phase == Phase.DATA_PROFILING,
               what="data profiling")
    rows = as_user(client, users["manager"]).get(reverse("cycles:cycle-progress", args=[cycle.pk]))
    assert "Awaiting the population file" in rows.content.decode()


def test_cycle_page_shows_open_alerts_of_its_reports(client, users, cycle, cycle_report):
    from django.utils import timezone

    from workflows.models import WorkflowAlert

    WorkflowAlert.objects.create(key="a1", kind="request_overdue", cycle_report=cycle_report,
                                 message="The request to Taylor Brooks is overdue (due 2026-12-02).")
    WorkflowAlert.objects.create(key="a2", kind="data_owner_sla", cycle_report=cycle_report,
                                 message="Resolved long ago.", resolved_at=timezone.now())
    client.force_login(users["manager"])
    page = client.get(reverse("cycles:cycle-detail", args=[cycle.pk])).content.decode()
    assert "Needs attention" in page and "is overdue (due 2026-12-02)" in page
    assert "Resolved long ago." not in page
