"""Pages of Observations and the Final Test Report: who sees and does what, messages, downloads, query counts."""
import io
import uuid
import zipfile

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from cycles.models import Observation, Phase, TestCycle
from cycles.services.final_report import final_report_generate, sign_off_record
from cycles.services.observations import observations_draft
from cycles.services.package import package_build
from cycles.tests.test_observations import approved_observations, build_tested_report, enter  # noqa: F401
from cycles.tests.test_package import _history
from workflows.models import WorkflowDecision

pytestmark = pytest.mark.django_db


def login(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def observing(cycle_report, users, storage):  # noqa: F811
    build_tested_report(cycle_report, users)
    observations_draft(cycle_report_id=cycle_report.pk)
    return cycle_report


@pytest.fixture
def signing(cycle_report, users, storage):  # noqa: F811
    build_tested_report(cycle_report, users)
    approved_observations(cycle_report, users)
    enter(cycle_report, Phase.FINALIZE)
    cycle_report.workflow_id = "cycle-1-report-1"
    cycle_report.save(update_fields=["workflow_id"])
    return final_report_generate(cycle_report_id=cycle_report.pk, generation=1)


def test_the_tester_sees_drafted_observations_with_labelled_fields_and_edits_one(client, observing, users):
    login(client, users["tester"])
    url = reverse("cycles:observations", args=[observing.pk])
    page = client.get(url).content.decode()
    observation = Observation.objects.filter(cycle_report=observing).order_by("number").first()
    assert "OBS-1" in page and "OBS-2" in page
    assert f'<label for="id_o{observation.pk}-severity">Severity</label>' in page
    assert 'id="merge-form"' in page
    response = client.post(reverse("cycles:observation-edit", args=[observing.pk, observation.pk]), {
        f"o{observation.pk}-title": "Balances misstated", f"o{observation.pk}-severity": "critical",
        f"o{observation.pk}-type": "data_accuracy", f"o{observation.pk}-description": "d",
        f"o{observation.pk}-cells": [str(c.pk) for c in observation.cells.all()],
    }, follow=True)
    assert "OBS-1 saved." in response.content.decode()
    observation.refresh_from_db()
    assert (observation.title, observation.severity) == ("Balances misstated", "critical")


def test_bad_input_on_the_observations_page_is_a_message_and_changes_nothing(client, observing, users):
    login(client, users["tester"])
    observation = Observation.objects.filter(cycle_report=observing).order_by("number").first()
    response = client.post(reverse("cycles:observation-edit", args=[observing.pk, observation.pk]), {
        f"o{observation.pk}-title": "", f"o{observation.pk}-severity": "urgent", f"o{observation.pk}-type": "other",
    }, follow=True)
    page = response.content.decode()
    assert response.status_code == 200 and "OBS-1: Title: This field is required." in page
    assert Observation.objects.get(pk=observation.pk).severity == observation.severity
    response = client.post(reverse("cycles:observations-merge", args=[observing.pk]), {"observations": []},
                           follow=True)
    assert "Choose at least two observations to merge." in response.content.decode()


def test_another_tester_may_not_shape_and_an_outsider_gets_404(client, observing, users):
    observation = Observation.objects.filter(cycle_report=observing).first()
    login(client, users["tester2"])
    assert client.get(reverse("cycles:observations", args=[observing.pk])).status_code == 404
    client.logout()
    login(client, users["owner"])  # may see the report, may not shape it
    response = client.post(reverse("cycles:observation-split", args=[observing.pk, observation.pk]),
                           {"cells": []}, follow=True)
    assert response.status_code == 200 and Observation.objects.filter(cycle_report=observing).count() == 2
    page = client.get(reverse("cycles:observations", args=[observing.pk])).content.decode()
    assert "Save OBS-1" not in page


def test_the_observations_page_query_count_does_not_grow_with_observations(client, cycle_report, users,
                                                                             storage):  # noqa: F811
    build_tested_report(cycle_report, users)
    observations_draft(cycle_report_id=cycle_report.pk)
    login(client, users["tester"])
    url = reverse("cycles:observations", args=[cycle_report.pk])
    client.get(url)
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    # Every failed cell its own observation: more rows, the same queries.
    for observation in Observation.objects.filter(cycle_report=cycle_report):
        for cell in list(observation.cells.all())[1:]:
            from cycles.services.observations import observation_split

            observation_split(user=users["tester"], observation=observation, cell_ids=[cell.pk])
    assert Observation.objects.filter(cycle_report=cycle_report).count() == 3
    with CaptureQueriesContext(connection) as many:
        client.get(url)
    assert len(many) == len(few)


def test_the_final_report_page_shows_the_report_and_offers_only_the_next_signer_a_form(client, signing, users):
    url = reverse("cycles:final-report", args=[signing.cycle_report_id])
    login(client, users["owner"])
    page = client.get(url).content.decode()
    assert "Final Test Report" in page and 'aria-label="Results per attribute"' in page
    assert "waits for the <strong>Test Manager</strong>" in page and 'id="sign-off-form"' not in page
    response = client.post(reverse("cycles:final-report-sign", args=[signing.cycle_report_id]), {"decision": "sign"})
    assert response.status_code == 403
    assert not WorkflowDecision.objects.exists()
    client.logout()
    login(client, users["manager"])
    page = client.get(url).content.decode()
    assert 'id="sign-off-form"' in page and "performed as planned" in page
    assert '<label for="id_notes">Notes' in page
    pdf = client.get(reverse("cycles:final-report-pdf", args=[signing.cycle_report_id, signing.pk]))
    assert pdf["Content-Type"] == "application/pdf" and b"".join(pdf.streaming_content).startswith(b"%PDF")
    xlsx = client.get(reverse("cycles:final-report-xlsx", args=[signing.cycle_report_id]))
    assert zipfile.ZipFile(io.BytesIO(xlsx.content)).namelist()  # an XLSX is a zip
    # A send-back without its target or notes is refused on the page.
    response = client.post(reverse("cycles:final-report-sign", args=[signing.cycle_report_id]),
                           {"decision": "send_back"}, follow=True)
    page = response.content.decode()
    assert "Choose what the send-back reopens." in page and "Say what needs to change." in page
    assert not WorkflowDecision.objects.exists()


def test_the_package_downloads_for_those_who_see_the_report(client, signing, users):
    for role, name in (("test_manager", "manager"), ("report_owner", "owner"), ("data_executive", "executive")):
        sign_off_record(decision_id=str(uuid.uuid4()), final_report_id=signing.pk, role=role,
                        user_id=users[name].pk, sign=True)
    url = reverse("cycles:package-download", args=[signing.cycle_report_id])
    login(client, users["executive"])
    signed_pdf = client.get(reverse("cycles:final-report-pdf", args=[signing.cycle_report_id, signing.pk]))
    assert "-signed.pdf" in signed_pdf["Content-Disposition"] and signed_pdf.content.startswith(b"%PDF")
    assert client.get(url).status_code == 404  # not built yet
    package_build(final_report_id=signing.pk, history=_history)
    response = client.get(url)
    assert response["Content-Type"] == "application/zip"
    assert "manifest.json" in zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))).namelist()
    client.logout()
    login(client, users["tester2"])
    assert client.get(url).status_code == 404
    client.logout()
    login(client, users["manager"])
    page = client.get(reverse("cycles:cycle-detail", args=[signing.cycle_report.cycle_id])).content.decode()
    assert 'aria-label="Results per report"' in page and "evidence-package-" in page


def test_removing_a_report_needs_the_test_manager_a_reason_and_a_running_cycle(client, cycle_report, users):
    url = reverse("cycles:cycle-report-remove", args=[cycle_report.pk])
    login(client, users["tester"])
    assert client.post(url, {"reason": "Out of scope this quarter"}).status_code == 403
    client.logout()
    login(client, users["manager"])
    response = client.post(url, {"reason": ""}, follow=True)
    assert "Say why the report is removed from the cycle." in response.content.decode()
    response = client.post(url, {"reason": "Out of scope this quarter"}, follow=True)
    assert "removed from a running cycle only" in response.content.decode()
    assert cycle_report.cycle.status == TestCycle.Status.DRAFT and not WorkflowDecision.objects.exists()


def test_the_admin_lists_observations_reports_sign_offs_and_packages_read_only(client, signing, users):
    login(client, users["admin"])
    for model in ("observation", "finalreport", "evidencepackage", "cyclereportremoval"):
        response = client.get(reverse(f"admin:cycles_{model}_changelist"))
        assert response.status_code == 200, model
    page = client.get(reverse("admin:cycles_finalreport_change", args=[signing.pk])).content.decode()
    assert "Sign offs" in page or "Sign-offs" in page or "sign off" in page.lower()
    assert client.get(reverse("admin:cycles_observation_add")).status_code == 403
