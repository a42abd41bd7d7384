"""Input that can't hurt: each of the eight causes of 500s the fuzzing found, answered with a 4xx now."""
import datetime
import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from cycles.exceptions import ConflictError
from cycles.models import CycleReport, Phase, PhaseState, Report, SamplingPlan, TestCycle
from cycles.services.cycles import report_create
from synapse.testing import problem

pytestmark = pytest.mark.django_db


def client_for(user):
    client = APIClient()
    client.force_login(user)
    return client


def raw_post(client, url, body: bytes, method="post"):
    return getattr(client, method)(url, data=body, content_type="application/json")


CYCLE = {"name": "Q4", "period_start": "2026-10-01", "period_end": "2026-12-31"}


# --- 1. deep nesting ------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/api/v1/cycles/", "/api/v1/lobs/", "/api/v1/tokens/"])
def test_a_deeply_nested_body_is_a_400_for_any_endpoint(users, url):
    body = b"[" * 1000 + b"]" * 1000  # 2 KB; json.loads raised RecursionError on it
    # The admin may post to each (a role refused first is a 403 without reading the body at all).
    error = problem(raw_post(client_for(users["admin"]), url, body), 400, "parse_error")
    assert "nested more than" in error["detail"]
    # Brackets inside strings are text, not nesting.
    ok = raw_post(client_for(users["manager"]), "/api/v1/cycles/",
                  b'{"name": "' + b"[" * 150 + b'", "period_start": "2026-10-01", "period_end": "2026-12-31"}')
    assert ok.status_code == 201, ok.content


# --- 2. a body that isn't an object ----------------------------------------------------------------


@pytest.mark.parametrize("body", [b"123", b"true", b"[1, 2]", b'"text"', b"null"])
def test_a_body_that_is_not_an_object_is_a_400(users, cycle_report, body):
    client = client_for(users["tester"])
    url = f"/api/v1/cycle-reports/{cycle_report.pk}/sampling-plan/"
    error = problem(raw_post(client, url, body, method="patch"), 400, "parse_error")
    assert "JSON object" in error["detail"]
    problem(raw_post(client_for(users["manager"]), "/api/v1/cycles/", body), 400)


def test_the_sampling_plan_serializer_refuses_a_non_object_itself():
    from cycles.serializers.sampling import SamplingPlanInputSerializer

    for data in (123, True, [1]):
        serializer = SamplingPlanInputSerializer(data=data)
        assert not serializer.is_valid() and "non_field_errors" in serializer.errors


# --- 3. integers out of the database's range -------------------------------------------------------


@pytest.fixture
def sampling(cycle_report, users):
    CycleReport.objects.filter(pk=cycle_report.pk).update(phase=Phase.SAMPLE_SELECTION)
    PhaseState.objects.create(cycle_report=cycle_report, phase=Phase.SAMPLE_SELECTION, status=PhaseState.Status.ACTIVE)
    return cycle_report


@pytest.mark.parametrize("field, value", [
    ("min_per_stratum", 2**31), ("min_per_stratum", 0), ("override_size", 2**40), ("seed", 2**64), ("seed", -1),
])
def test_integers_are_bounded(users, sampling, field, value):
    url = f"/api/v1/cycle-reports/{sampling.pk}/sampling-plan/"
    error = problem(client_for(users["tester"]).patch(url, {field: value}, format="json"), 400, "invalid")
    assert field in error["errors"]
    assert not SamplingPlan.objects.filter(cycle_report=sampling).exists()  # nothing made or changed


def test_huge_ids_in_bodies_are_400s(users, cycle, lob):
    manager = client_for(users["manager"])
    problem(manager.post(f"/api/v1/cycles/{cycle.pk}/reports/", {"report": 10**30}, format="json"), 400)
    problem(manager.post(f"/api/v1/workflow/start/{cycle.pk}/", {"report_ids": [10**30]}, format="json"), 400)


# --- 4. NUL characters -----------------------------------------------------------------------------


def test_a_nul_character_anywhere_is_a_400_and_nothing_is_stored(users):
    manager = client_for(users["manager"])
    body = {**CYCLE, "configuration": {"approvers": {"planning": ["ow\u0000ner"]}}}
    error = problem(manager.post("/api/v1/cycles/", body, format="json"), 400, "parse_error")
    assert "NUL" in error["detail"]
    problem(manager.post("/api/v1/cycles/", {**CYCLE, "name": "Q\u00004"}, format="json"), 400)
    assert not TestCycle.objects.exists()


# --- 5. and 6. the cycle configuration: typed, bounded, decodable by the workflow -----------------------


@pytest.mark.parametrize("configuration, field", [
    ({"skip_phases": None}, "configuration.skip_phases"),
    ({"skip_phases": ["lunch"]}, "configuration.skip_phases.0"),
    ({"approvers": "x"}, "configuration.approvers"),
    ({"approvers": {"planning": "owner"}}, "configuration.approvers.planning"),
    ({"approvers": {"planning": ["nobody"]}}, "configuration.approvers"),
    ({"approvers": {"data_profiling": ["owner"]}}, "configuration.approvers"),
    ({"reminder_days_before": 3}, "configuration.reminder_days_before"),
    ({"slas": {"planning": "abc"}}, "configuration.slas.planning"),
    ({"slas": {"lunch": 3}}, "configuration.slas"),
    ({"slas": {"planning": 0}}, "configuration.slas.planning"),
    ({"rfi_due_days": 10**30}, "configuration.rfi_due_days"),
    ({"rfi_due_days": True}, "configuration.rfi_due_days"),
    ({"escalation_days_after": -1}, "configuration.escalation_days_after"),
    ({"colour": "red"}, "configuration.colour"),
])
def test_a_configuration_the_workflow_could_not_decode_is_refused(users, configuration, field):
    manager = client_for(users["manager"])
    error = problem(manager.post("/api/v1/cycles/", {**CYCLE, "configuration": configuration}, format="json"), 400)
    assert field in error["errors"], error
    assert not TestCycle.objects.exists()


def test_a_valid_configuration_is_stored_typed_and_given_to_the_workflow_as_such(users, cycle):
    from workflows.services import _phase_settings, _schedule

    manager = client_for(users["manager"])
    configuration = {"approvers": {"planning": ["owner2"]}, "slas": {"planning": "5"}, "rfi_due_days": 7}
    response = manager.patch(f"/api/v1/cycles/{cycle.pk}/", {"configuration": configuration}, format="json")
    assert response.status_code == 200, response.content
    cycle.refresh_from_db()
    assert cycle.configuration["slas"] == {"planning": 5} and cycle.configuration["rfi_due_days"] == 7
    assert cycle.configuration["approvers"] == {"planning": ["owner2"]}
    settings = _phase_settings(cycle)
    assert settings["planning"].approvers == [users["owner2"].pk] and settings["planning"].sla_days == 5
    assert _schedule(cycle).due_days == 7


def test_the_page_form_goes_through_the_same_configuration_rules(users):
    from cycles.exceptions import ApplicationError
    from cycles.services.cycles import cycle_create

    with pytest.raises(ApplicationError, match="rfi_due_days"):
        cycle_create(user=users["manager"], name="Q4", period_start=datetime.date(2026, 10, 1),
                     period_end=datetime.date(2026, 12, 31), configuration={"rfi_due_days": "ten"})


# --- 7. the same create sent many times at once ---------------------------------------------------------


def test_a_create_that_loses_a_race_is_a_conflict_not_an_integrity_error(users, lob):
    # The API checks the name first; two requests can both pass that check. The service is what stops
    # the second, at the unique constraint: called directly, it must say 409, not raise IntegrityError.
    fields = {"name": "FFIEC 031", "regulation": "FFIEC", "owner": users["owner"], "lob": lob,
              "frequency": "quarterly", "fields": []}
    report_create(**fields)
    with pytest.raises(ConflictError, match="exists"):
        report_create(**fields)


@pytest.mark.django_db(transaction=True)
def test_sixteen_identical_creates_at_once_answer_201_once_and_4xx_otherwise(users, lob, cycle):
    other = Report.objects.create(name="CCAR", regulation="CCAR", owner=users["owner2"], lob=lob)
    barrier = threading.Barrier(16)
    statuses, lock = [], threading.Lock()

    def post(url, body):
        try:
            client = client_for(users["manager"])
            barrier.wait(timeout=30)
            status = client.post(url, body, format="json").status_code
            with lock:
                statuses.append(status)
        finally:
            connection.close()

    for url, body in [
        ("/api/v1/reports/", {"name": "FR 2052a", "regulation": "FR", "owner": users["owner"].pk, "lob": lob.pk}),
        (f"/api/v1/cycles/{cycle.pk}/reports/", {"report": other.pk}),
    ]:
        statuses.clear()
        threads = [threading.Thread(target=post, args=(url, body)) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert statuses.count(201) == 1 and set(statuses) <= {201, 400, 409}, statuses


# --- 8. body size, before parsing and before the role check ------------------------------------------------


def test_a_body_over_the_limit_is_a_413_before_it_is_read(users, settings):
    settings.API_JSON_MAX_BYTES = 10_000
    body = b'{"name": "' + b"x" * 20_000 + b'"}'
    error = problem(raw_post(client_for(users["manager"]), "/api/v1/cycles/", body), 413, "too_large")
    assert "10000 bytes" in error["detail"]


def test_a_body_without_content_length_is_cut_at_the_limit(users, settings):
    from io import BytesIO

    from rest_framework.test import APIRequestFactory

    from synapse.parsers import LimitedJSONParser, RequestTooLarge

    settings.API_JSON_MAX_BYTES = 100
    request = APIRequestFactory().post("/", data=b"{}", content_type="application/json")
    request.META.pop("CONTENT_LENGTH", None)
    with pytest.raises(RequestTooLarge):
        LimitedJSONParser().parse(BytesIO(b'{"a": "' + b"x" * 1000 + b'"}'), parser_context={"request": request})
