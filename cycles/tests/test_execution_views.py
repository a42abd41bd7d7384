"""The Test Execution pages: the matrix, filters, a cell's result and history, bulk actions, rules, extensions."""
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from cycles.models import Sample, SampleExtension, SamplingPlan, TestResult, TestResultHistory
from cycles.services import execution as ex
from cycles.tests.test_execution import cell, matrix  # noqa: F401  (fixtures)


def login(client, user):
    client.force_login(user)
    return client


def page(cycle_report, **query):
    url = reverse("cycles:test-execution", args=[cycle_report.pk])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


@pytest.fixture
def prepared(matrix, users):  # noqa: F811
    ex.execution_rule_set(user=users["tester"], attribute=matrix["attributes"]["balance"], kind="equality",
                          source_column="balance_src")
    ex.test_matrix_prepare(cycle_report_id=matrix["cycle_report"].pk)
    return matrix


def test_the_tester_sees_the_matrix_with_progress_rules_and_evidence(client, prepared, users):
    cycle_report = prepared["cycle_report"]
    response = login(client, users["tester"]).get(page(cycle_report))

    assert response.status_code == 200
    body = response.content.decode()
    assert "3 of 9 cells tested" in body
    assert "Equal to a source column: balance_src" in body
    assert body.count('name="cells"') == 9
    assert "1 file covers it" in body  # each cell has its request's file


def test_before_the_matrix_is_prepared_the_page_says_so_instead_of_0_of_0(client, matrix, users):  # noqa: F811
    body = login(client, users["tester"]).get(page(matrix["cycle_report"])).content.decode()
    assert "cells tested" not in body
    assert "Prepared when Test Execution starts" in body or "Being prepared" in body


def test_filters_show_failed_untested_or_one_attribute(client, prepared, users):
    cycle_report = prepared["cycle_report"]
    login(client, users["tester"])

    failed = client.get(page(cycle_report, show="failed")).content.decode()
    untested = client.get(page(cycle_report, show="untested")).content.decode()
    one = client.get(page(cycle_report, attribute=prepared["attributes"]["customer_name"].pk)).content.decode()

    assert failed.count('name="cells"') == 2
    assert untested.count('name="cells"') == 6
    assert one.count('name="cells"') == 3 and "S-003" in one


def test_the_query_count_does_not_grow_with_the_cells(client, prepared, users):
    cycle_report = prepared["cycle_report"]
    login(client, users["tester"])
    client.get(page(cycle_report))  # the first request after logging in renews the session
    with CaptureQueriesContext(connection) as small:
        client.get(page(cycle_report))
    for i in range(4, 14):
        Sample.objects.create(cycle_report=cycle_report, key=f"S-{i:03d}", row_index=i,
                              row_data={"account_id": f"S-{i:03d}", "balance": "1", "balance_src": "1"},
                              method=SamplingPlan.Method.MANUAL, added_by=users["tester"])
        for attribute in prepared["attributes"].values():
            if attribute.name != "notes":
                TestResult.objects.create(cycle_report=cycle_report, sample_id=Sample.objects.get(key=f"S-{i:03d}").pk,
                                          attribute=attribute)
    with CaptureQueriesContext(connection) as large:
        response = client.get(page(cycle_report))

    assert response.content.decode().count('name="cells"') == 39
    assert len(large) == len(small)


def test_the_page_reads_each_thing_once(client, prepared, users):
    """The report's phase states, its versions and its sample extensions are each read once a page, whatever
    parts of the page use them (the lock, the progress, the status box; the list, the pending one, the check)."""
    cycle_report = prepared["cycle_report"]
    login(client, users["tester"])
    client.get(page(cycle_report))
    with CaptureQueriesContext(connection) as queries:
        assert client.get(page(cycle_report)).status_code == 200
    tables = [q["sql"].split(" FROM ", 1)[1].split()[0] for q in queries.captured_queries if " FROM " in q["sql"]]
    assert tables.count('"cycles_phasestate"') == 1
    assert tables.count('"cycles_sampleextension"') == 1
    assert tables.count('"cycles_testresultcount"') == 1  # the matrix's progress is summed from the same counts
    # The versions' latest (number, status) of every phase, and the page's own phase's latest version.
    assert tables.count('"versioning_version"') == 2
    assert not [q for q in queries.captured_queries if 'UPDATE "django_session"' in q["sql"]]


def test_the_pages_of_cells_and_one_sample_at_a_time_reach_every_cell_in_order(client, prepared, users, monkeypatch):
    import re

    from cycles.views import execution as views

    monkeypatch.setattr(views, "CELLS_PER_PAGE", 4)
    cycle_report = prepared["cycle_report"]
    expected = [c.pk for c in TestResult.objects.filter(cycle_report=cycle_report)
                .order_by("sample__row_index", "attribute__name")]
    login(client, users["tester"])

    def cells_of(body):
        return [int(pk) for pk in re.findall(r'<tr id="cell-(\d+)"', body)]

    first = client.get(page(cycle_report)).content.decode()
    assert "Page 1 of 3" in first and "9 shown" in first
    assert [pk for n in (1, 2, 3) for pk in cells_of(client.get(page(cycle_report, page=n)).content.decode())] \
        == expected
    s2 = Sample.objects.get(cycle_report=cycle_report, key="S-002")
    assert f'<option value="{s2.pk}">S-002</option>' in first  # the sample filter lists the matrix's samples
    one = client.get(page(cycle_report, sample=s2.pk)).content.decode()
    assert cells_of(one) == [c for c in expected if TestResult.objects.get(pk=c).sample_id == s2.pk]
    assert f'<option value="{s2.pk}" selected>S-002</option>' in one

    # A result recorded from the sample's page comes back to it.
    target = cell(cycle_report, "S-002", "account_id")
    back = client.post(reverse("cycles:test-result", args=[cycle_report.pk, target.pk]),
                       {"outcome": "pass", "observed_value": "S-002", "sample_filter": s2.pk})
    assert back.status_code == 302 and f"sample={s2.pk}" in back["Location"]


def test_recording_a_failure_needs_a_comment_and_keeps_the_cell_unchanged(client, prepared, users):
    cycle_report = prepared["cycle_report"]
    target = cell(cycle_report, "S-001", "customer_name")
    url = reverse("cycles:test-result", args=[cycle_report.pk, target.pk])
    login(client, users["tester"])

    refused = client.post(url, {"outcome": "fail", "observed_value": "Ann Lea"})

    assert refused.status_code == 400
    assert "a comment is required" in refused.content.decode()
    assert TestResult.objects.get(pk=target.pk).result == "not_tested"


def test_recording_and_retesting_a_cell_keeps_its_history_on_the_page(client, prepared, users):
    cycle_report = prepared["cycle_report"]
    target = cell(cycle_report, "S-001", "customer_name")
    url = reverse("cycles:test-result", args=[cycle_report.pk, target.pk])
    evidence = prepared["evidence"]["dataowner2"]
    login(client, users["tester"])

    first = client.post(url, {"outcome": "fail", "observed_value": "Ann Lea", "failure_kind": "mismatch",
                              "comment": "Name differs from the KYC file.", "evidence": [evidence.pk]})
    assert first.status_code == 302 and first["Location"].endswith(f"#cell-{target.pk}")
    client.post(url, {"outcome": "pass", "observed_value": "Ann Lee", "evidence": [evidence.pk]})

    target.refresh_from_db()
    assert (target.result, target.attempt) == ("pass", 2)
    assert list(target.evidence.all()) == [evidence]
    assert TestResultHistory.objects.get(test_result=target).comment == "Name differs from the KYC file."
    page = client.get(url)
    body = page.content.decode()
    assert "1 earlier result" in body and "Name differs from the KYC file." in body
    # The cell's page keeps the report's audit trail (the matrix's page shows one of its own instead).
    assert page.context["audit_events"] and "Audit trail of this report" in body


def test_only_the_assigned_tester_records_and_others_do_not_see_the_report(client, prepared, users):
    cycle_report = prepared["cycle_report"]
    target = cell(cycle_report, "S-001", "balance")
    url = reverse("cycles:test-result", args=[cycle_report.pk, target.pk])

    assert login(client, users["owner"]).get(url).status_code == 200  # the owner reads
    assert "Save the result" not in client.get(url).content.decode()
    assert client.post(url, {"outcome": "pass"}).status_code == 403
    client.logout()
    assert login(client, users["tester2"]).get(page(cycle_report)).status_code == 404
    assert client.post(url, {"outcome": "pass"}).status_code == 404
    assert TestResult.objects.get(pk=target.pk).attempt == 1  # the rule's run only


def test_bulk_pass_from_the_page(client, prepared, users):
    cycle_report = prepared["cycle_report"]
    ids = list(TestResult.objects.filter(result="not_tested").values_list("pk", flat=True))
    login(client, users["tester"])

    response = client.post(reverse("cycles:test-results-bulk", args=[cycle_report.pk]),
                           {"action": "pass", "cells": ids, "show": "untested"}, follow=True)

    assert "Mark pass: 6 cells." in response.content.decode()
    assert not TestResult.objects.filter(result="not_tested").exists()
    refused = client.post(reverse("cycles:test-results-bulk", args=[cycle_report.pk]),
                          {"action": "not_applicable", "cells": ids[:1]}, follow=True)
    assert "a comment is required" in refused.content.decode()


def test_a_rule_set_on_the_page_tests_the_untested_cells(client, prepared, users):
    cycle_report = prepared["cycle_report"]
    login(client, users["tester"])

    bad = client.post(page(cycle_report), {"attribute": prepared["attributes"]["account_id"].pk,
                                          "kind": "format", "pattern": "("})
    assert bad.status_code == 400 and "not valid" in bad.content.decode()
    client.post(page(cycle_report), {"attribute": prepared["attributes"]["account_id"].pk, "kind": "format",
                                     "pattern": r"S-\d{3}"})

    assert set(TestResult.objects.filter(attribute__name="account_id").values_list("result", flat=True)) == {
        "pass"}


def test_the_owner_decides_a_proposed_extension_and_the_tester_cannot(client, prepared, users):
    cycle_report = prepared["cycle_report"]
    extension = SampleExtension.objects.create(cycle_report=cycle_report, number=1, failures={"balance": 2},
                                               allowed_deviations=0, current_size=3, new_size=5, seed=7,
                                               sample_keys=["S-100", "S-101"], rule="test")
    url = reverse("cycles:sample-extension-decide", args=[cycle_report.pk, extension.pk])

    assert login(client, users["tester"]).post(url, {"decision": "approve"}).status_code == 403
    client.logout()
    body = login(client, users["owner"]).get(page(cycle_report)).content.decode()
    assert "Extension 1 proposed" in body and "Record the decision" in body
    # Without a running workflow the decision is refused with a message; nothing changes.
    refused = client.post(url, {"decision": "approve"}, follow=True)
    assert "workflow has not been started" in refused.content.decode()
    rejected = client.post(url, {"decision": "reject"}, follow=True)
    assert "notes are required to reject" in rejected.content.decode()
    assert SampleExtension.objects.get(pk=extension.pk).status == "proposed"


def test_the_data_owner_says_what_an_upload_covers_and_the_request_page_shows_the_gaps(
        client, cycle_report, users, storage):  # noqa: F811
    from django.core.files.uploadedfile import SimpleUploadedFile

    from cycles.models import Attribute, Evidence, EvidenceLink
    from cycles.tests.test_execution import PDF, make_samples
    from cycles.tests.test_requests import requests_ready

    make_samples(cycle_report, users["tester"])
    request = requests_ready(cycle_report, users)["dataowner"]
    balance = Attribute.objects.get(cycle_report=cycle_report, name="balance")
    url = reverse("cycles:request-upload", args=[request.pk])
    login(client, users["data_owner"])

    refused = client.post(url, {"files": [SimpleUploadedFile("a.pdf", PDF, "application/pdf")],
                                "samples": ["S-999"]})
    assert refused.status_code == 200 and "Select a valid choice" in refused.content.decode()
    client.post(url, {"files": [SimpleUploadedFile("ledger.pdf", PDF, "application/pdf")],
                      "samples": ["S-001", "S-002"], "attributes": [balance.pk]})

    evidence = Evidence.objects.get(request=request)
    assert sorted(EvidenceLink.objects.filter(evidence=evidence).values_list("sample__key", "attribute__name")) == [
        ("S-001", "balance"), ("S-002", "balance")]
    client.logout()
    body = login(client, users["tester"]).get(reverse("cycles:request-detail", args=[request.pk])).content.decode()
    assert "4 without evidence yet" in body
    assert "Say what these files cover" not in body  # the tester doesn't upload


def test_an_upload_with_a_bad_coverage_stores_nothing(cycle_report, users, storage):  # noqa: F811
    from django.core.files.uploadedfile import SimpleUploadedFile

    from cycles.exceptions import ApplicationError
    from cycles.models import Evidence
    from cycles.services.requests import evidence_upload
    from cycles.tests.test_execution import PDF, make_samples
    from cycles.tests.test_requests import requests_ready

    make_samples(cycle_report, users["tester"])
    request = requests_ready(cycle_report, users)["dataowner"]
    from cycles.models import Attribute

    other = Attribute.objects.get(cycle_report=cycle_report, name="customer_name")

    with pytest.raises(ApplicationError, match="not in the request"):
        evidence_upload(user=users["data_owner"], request=request, attribute_ids=[other.pk],
                        files=[SimpleUploadedFile("ledger.pdf", PDF, "application/pdf")])
    assert not Evidence.objects.exists()
