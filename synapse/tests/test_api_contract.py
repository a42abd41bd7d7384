"""The contract: an OpenAPI 3 schema, offline docs, an API root, one error shape, pagination on every list."""
import re

import pytest
import yaml
from django.test import Client
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema
from rest_framework.test import APIClient

from cycles.models import Attribute, Sample
from synapse.testing import problem

pytestmark = pytest.mark.django_db


def client_for(user):
    client = APIClient()
    client.force_login(user)
    return client


def test_the_schema_is_valid_openapi_3_and_describes_every_route():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    validate_schema(schema)  # raises on anything OpenAPI 3 refuses
    assert schema["openapi"].startswith("3.")
    paths = schema["paths"]
    for path in ["/api/v1/cycles/", "/api/v1/cycles/{id}/reports/", "/api/v1/attributes/", "/api/v1/samples/",
                 "/api/v1/me/", "/api/v1/users/", "/api/v1/tokens/", "/api/v1/versions/{id}/items/{item_id}/decide/",
                 "/api/v1/workflow/start/{cycle_id}/"]:
        assert path in paths, path
    for path, item in paths.items():
        for method, operation in item.items():
            responses = operation["responses"]
            assert any(code.startswith("2") for code in responses), (method, path)
            assert responses["401"]["content"]["application/problem+json"]["schema"] == {
                "$ref": "#/components/schemas/Problem"}
            if method == "get" and "results" in str(responses.get("200", {})):
                assert "page" in {p["name"] for p in operation.get("parameters", [])}, path


def test_the_schema_is_served_and_the_docs_page_needs_no_network(users):
    client = Client()
    response = client.get("/api/v1/schema/")
    assert response.status_code == 200
    assert yaml.safe_load(response.content)["info"]["title"] == "Synapse API"
    docs = client.get("/api/v1/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    # Every script and stylesheet is served by Synapse itself (drf-spectacular-sidecar), none from a CDN.
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets and all(not a.startswith(("http://", "https://", "//")) for a in assets), assets
    assert any("drf_spectacular_sidecar/swagger-ui-dist" in a for a in assets)
    from django.conf import settings
    from django.contrib.staticfiles import finders

    for asset in assets:
        assert finders.find(asset.removeprefix(settings.STATIC_URL if settings.STATIC_URL.startswith("/")
                                               else "/" + settings.STATIC_URL)), asset


def test_the_api_root_links_every_collection(users):
    body = APIClient().get("/api/v1/").json()
    assert body["schema"].endswith("/api/v1/schema/") and body["docs"].endswith("/api/v1/docs/")
    for name in ["cycles", "reports", "lobs", "attributes", "samples", "requests", "versions", "users", "me"]:
        assert body[name].startswith("http://testserver/api/v1/"), name


def test_unknown_paths_and_methods_answer_in_the_one_error_shape(users):
    client = client_for(users["tester"])
    error = problem(client.get("/api/v1/nothing-here/"), 404, "not_found")
    assert "/api/v1/schema/" in error["detail"]
    problem(client.get("/api/v1/cycles"), 404, "not_found")  # no slash: not a redirect nobody can POST through
    problem(client.delete("/api/v1/cycles/"), 405, "method_not_allowed")
    problem(client.get("/api/v1/cycles/", HTTP_ACCEPT="text/html"), 406, "not_acceptable")
    problem(client_for(users["manager"]).post("/api/v1/cycles/", "x", content_type="text/plain"), 415,
            "unsupported_media_type")
    problem(client.get("/api/v1/cycles/?page=99"), 404, "not_found")
    problem(APIClient().get("/api/v1/cycles/"), 401, "not_authenticated")


def test_a_bug_is_a_500_in_the_one_error_shape(users, monkeypatch):
    from cycles.api import cycles as api

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(api, "lobs_visible_to", broken)
    client = client_for(users["tester"])
    client.raise_request_exception = False
    error = problem(client.get("/api/v1/lobs/"), 500, "server_error")
    assert "boom" not in error["detail"]


@pytest.fixture
def rows(cycle_report, users):
    for i in range(3):
        Attribute.objects.create(cycle_report=cycle_report, name=f"a{i}")
        Sample.objects.create(cycle_report=cycle_report, key=f"K{i}", row_index=i, row_data={},
                              method="random", added_by=users["tester"])
    return cycle_report


@pytest.mark.parametrize("url", ["/api/v1/attributes/", "/api/v1/samples/"])
def test_attributes_and_samples_have_paginated_lists_scoped_to_the_user(users, rows, url):
    page = client_for(users["tester"]).get(url, {"page_size": 2}).json()
    assert page["count"] == 3 and len(page["results"]) == 2 and page["next"]
    assert client_for(users["tester2"]).get(url).json()["count"] == 0
    assert client_for(users["tester"]).get(url, {"cycle_report": rows.pk + 1}).json()["count"] == 0


def test_a_cycles_reports_are_paginated(users, cycle_report):
    body = client_for(users["manager"]).get(f"/api/v1/cycles/{cycle_report.cycle_id}/reports/").json()
    assert body["count"] == 1 and body["results"][0]["id"] == cycle_report.pk


def test_lists_filter_by_what_people_search_for(users, cycle_report, make_user):
    import datetime

    from cycles.models import InformationRequest, TestCycle

    manager = client_for(users["manager"])
    cycle = cycle_report.cycle  # Q3 2026: July to September
    assert [c["id"] for c in manager.get("/api/v1/cycles/", {"period_from": "2026-09-01"}).json()["results"]] == [
        cycle.pk]
    assert manager.get("/api/v1/cycles/", {"period_from": "2026-10-01"}).json()["count"] == 0
    assert manager.get("/api/v1/cycles/", {"period_to": "2026-06-30"}).json()["count"] == 0
    assert manager.get("/api/v1/cycles/", {"status": TestCycle.Status.DRAFT}).json()["count"] == 1
    assert manager.get("/api/v1/reports/", {"name": "y-14q"}).json()["count"] == 1

    for owner, due in ((users["data_owner"], datetime.date(2026, 8, 1)), (users["data_owner2"], datetime.date(2026, 9, 1))):
        InformationRequest.objects.create(cycle_report=cycle_report, data_owner=owner, sample_keys=[], due_date=due)
    rows = manager.get("/api/v1/requests/", {"owner": users["data_owner2"].pk}).json()["results"]
    assert [r["data_owner"]["username"] for r in rows] == ["dataowner2"]
    assert manager.get("/api/v1/requests/", {"due_before": "2026-08-15"}).json()["count"] == 1
    assert manager.get("/api/v1/requests/", {"due_after": "2026-08-15", "status": "open"}).json()["count"] == 1

    error = problem(manager.get("/api/v1/requests/", {"status": "lost", "owner": "1.5", "due_before": "soon"}), 400)
    assert set(error["errors"]) == {"status", "owner", "due_before"}


def test_the_schema_documents_the_filters():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    params = {p["name"] for p in schema["paths"]["/api/v1/requests/"]["get"]["parameters"]}
    assert {"status", "owner", "due_before", "due_after", "cycle_report", "page", "page_size"} <= params
    params = {p["name"] for p in schema["paths"]["/api/v1/cycles/"]["get"]["parameters"]}
    assert {"status", "period_from", "period_to"} <= params


def test_the_schema_generates_without_a_single_warning(tmp_path):
    from django.core.management import call_command

    # --fail-on-warn: an endpoint drf-spectacular can't describe (a view without extend_schema) fails here.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    assert (tmp_path / "schema.yaml").stat().st_size > 10_000
