"""The Test Execution API: the same services and object checks as the page, one error shape."""
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from cycles.models import Attribute, SampleExtension, TestResult
from cycles.services import execution as ex
from cycles.services.requests import evidence_upload
from cycles.tests.test_execution import PDF, cell, make_samples, matrix  # noqa: F401  (fixtures)
from cycles.tests.test_requests import requests_ready
from synapse.testing import problem


def api(user):
    client = APIClient()
    client.force_login(user)
    return client


def error(response, status):
    return problem(response, status)["detail"]


@pytest.fixture
def prepared(matrix, users):  # noqa: F811
    ex.execution_rule_set(user=users["tester"], attribute=matrix["attributes"]["balance"], kind="equality",
                          source_column="balance_src")
    ex.test_matrix_prepare(cycle_report_id=matrix["cycle_report"].pk)
    return matrix


def test_cells_are_listed_paginated_and_filtered(prepared, users):
    url = f"/api/v1/cycle-reports/{prepared['cycle_report'].pk}/test-results/"
    client = api(users["owner"])

    everything = client.get(url).json()
    failed = client.get(url, {"result": "fail"}).json()
    one = client.get(url, {"attribute": prepared["attributes"]["customer_name"].pk}).json()

    assert everything["count"] == 9 and len(everything["results"]) == 9
    assert sorted(c["sample_key"] for c in failed["results"]) == ["S-002", "S-003"]
    assert {c["attribute_name"] for c in one["results"]} == {"customer_name"}
    assert "Expected one of" in problem(client.get(url, {"result": "maybe"}), 400)["detail"]
    assert error(api(users["tester2"]).get(url), 404)


def test_progress_and_allowed_deviations(prepared, users):
    body = api(users["tester"]).get(f"/api/v1/cycle-reports/{prepared['cycle_report'].pk}/test-execution/").json()

    assert body["progress"]["total"] == 9 and body["progress"]["done"] == 3 and body["progress"]["fail"] == 2


def test_the_tester_records_and_retests_a_cell_with_history(prepared, users):
    target = cell(prepared["cycle_report"], "S-001", "customer_name")
    url = f"/api/v1/test-results/{target.pk}/"
    client = api(users["tester"])
    evidence = prepared["evidence"]["dataowner2"]

    assert "comment is required" in error(client.post(url, {"outcome": "fail"}, format="json"), 400)
    client.post(url, {"outcome": "fail", "comment": "Misspelt", "failure_kind": "mismatch",
                      "evidence_ids": [evidence.pk]}, format="json")
    body = client.post(url, {"outcome": "pass", "observed_value": "Ann Lee", "evidence_ids": [evidence.pk]},
                       format="json").json()

    assert body["result"] == "pass" and body["attempt"] == 2
    assert [e["id"] for e in body["evidence"]] == [evidence.pk]
    assert [(h["attempt"], h["result"], h["comment"]) for h in body["history"]] == [(1, "fail", "Misspelt")]
    other = prepared["evidence"]["dataowner"]
    assert "does not cover" in error(client.post(url, {"outcome": "pass", "evidence_ids": [other.pk]},
                                                 format="json"), 400)


def test_only_the_tester_writes(prepared, users):
    target = cell(prepared["cycle_report"], "S-001", "balance")
    url = f"/api/v1/test-results/{target.pk}/"

    assert api(users["owner"]).get(url).status_code == 200
    error(api(users["owner"]).post(url, {"outcome": "pass"}, format="json"), 403)
    error(api(users["tester2"]).post(url, {"outcome": "pass"}, format="json"), 404)
    error(api(users["owner"]).post(f"/api/v1/cycle-reports/{prepared['cycle_report'].pk}/test-results/bulk/",
                                   {"action": "pass", "result_ids": [target.pk]}, format="json"), 403)
    assert TestResult.objects.get(pk=target.pk).attempt == 1


def test_bulk_and_rules_through_the_api(prepared, users):
    cycle_report = prepared["cycle_report"]
    client = api(users["tester"])
    account = prepared["attributes"]["account_id"]

    bad = client.put(f"/api/v1/attributes/{account.pk}/execution-rule/", {"kind": "range"}, format="json")
    assert "minimum, a maximum or both" in error(bad, 400)
    rule = client.put(f"/api/v1/attributes/{account.pk}/execution-rule/", {"kind": "format", "pattern": r"S-\d+"},
                      format="json")
    assert rule.status_code == 200 and rule.json()["kind"] == "format"
    ids = list(TestResult.objects.filter(result="not_tested").values_list("pk", flat=True))
    body = client.post(f"/api/v1/cycle-reports/{cycle_report.pk}/test-results/bulk/",
                       {"action": "pass", "result_ids": ids}, format="json").json()

    assert body["changed"] == 3 and body["progress"]["done"] == 9
    assert client.get(f"/api/v1/attributes/{account.pk}/execution-rule/").json()["pattern"] == r"S-\d+"


def test_evidence_links_and_coverage_through_the_api(cycle_report, users, storage):  # noqa: F811
    make_samples(cycle_report, users["tester"])
    request = requests_ready(cycle_report, users)["dataowner"]
    [file] = evidence_upload(user=users["data_owner"], request=request,
                             files=[SimpleUploadedFile("ledger.pdf", PDF, "application/pdf")])
    balance = Attribute.objects.get(cycle_report=cycle_report, name="balance")
    owner = api(users["data_owner"])

    linked = owner.put(f"/api/v1/evidence/{file.pk}/links/", {"sample_keys": ["S-001"],
                                                              "attribute_ids": [balance.pk]}, format="json")
    assert linked.json()["links"] == [{"sample": "S-001", "attribute": balance.pk}]
    coverage = api(users["tester"]).get(f"/api/v1/requests/{request.pk}/coverage/").json()
    assert (coverage["total"], coverage["missing"]) == (6, 5)
    error(api(users["data_owner2"]).put(f"/api/v1/evidence/{file.pk}/links/", {}, format="json"), 404)
    assert "not in the request" in error(owner.put(f"/api/v1/evidence/{file.pk}/links/",
                                                   {"sample_keys": ["nope"]}, format="json"), 400)


def test_extensions_are_listed_and_decided_only_by_the_owner(prepared, users):
    cycle_report = prepared["cycle_report"]
    extension = SampleExtension.objects.create(cycle_report=cycle_report, number=1, failures={"balance": 2},
                                               allowed_deviations=0, current_size=3, new_size=5, seed=7,
                                               sample_keys=["S-100"], rule="test")
    listed = api(users["tester"]).get(f"/api/v1/cycle-reports/{cycle_report.pk}/sample-extensions/").json()
    assert listed["results"][0]["number"] == 1

    url = f"/api/v1/sample-extensions/{extension.pk}/decide/"
    error(api(users["tester"]).post(url, {"approve": True}, format="json"), 403)
    assert "notes are required" in error(api(users["owner"]).post(url, {"approve": False}, format="json"), 400)
    assert "not been started" in error(api(users["owner"]).post(url, {"approve": True}, format="json"), 409)
