"""The Sample Selection page, per-sample decisions on the approval screen, and the parallel step's progress."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from cycles.models import (
    Attribute,
    CycleReport,
    Phase,
    PhaseState,
    PopulationFile,
    Report,
    Sample,
    SamplingPlan,
    ScopingDecision,
)
from cycles.services.artifacts import phase_artifact_items
from cycles.services.sampling import samples_draw, sampling_plan_prepare
from synapse.models import AuditEvent
from versioning.models import VersionItem
from versioning.services import version_create

pytestmark = pytest.mark.django_db

ROWS = 60
REGIONS = ["North", "South", "East"]
CSV = "account_id,customer_name,balance,region\n" + "".join(
    f"A{i:04d},Customer {i},{(i * 7919) % 10_000}.00,{REGIONS[i % 3]}\n" for i in range(ROWS)
)


def as_user(client, user):
    client.force_login(user)
    return client


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def parallel_step(cycle_report):
    """The report as the workflow leaves it when Scoping is approved: both parallel phases active."""
    cycle_report.phase = Phase.SAMPLE_SELECTION
    cycle_report.status = CycleReport.Status.IN_PROGRESS
    cycle_report.save(update_fields=["phase", "status"])
    for phase in (Phase.SAMPLE_SELECTION, Phase.DATA_OWNER_IDENTIFICATION):
        PhaseState.objects.update_or_create(cycle_report=cycle_report, phase=phase,
                                            defaults={"status": PhaseState.Status.ACTIVE})
    return cycle_report


def in_scope(cycle_report, user, name, *, risk_score=5, scope=True, **flags):
    attribute = Attribute.objects.create(cycle_report=cycle_report, name=name, risk_score=risk_score, **flags)
    ScopingDecision.objects.create(attribute=attribute, in_scope=scope, rationale="" if scope else "Cosmetic.",
                                   decided_by=user)
    return attribute


@pytest.fixture
def selection(settings, tmp_path, cycle_report, users):
    """A report in the parallel step with a profiled 60-row population keyed by account_id."""
    settings.MEDIA_ROOT = str(tmp_path)
    path = Path(tmp_path) / "populations" / "loans.csv"
    path.parent.mkdir(parents=True)
    path.write_text(CSV, encoding="utf-8")
    PopulationFile.objects.create(
        cycle_report=cycle_report, file="populations/loans.csv", original_name="loans.csv",
        format=PopulationFile.Format.CSV, size_bytes=path.stat().st_size,
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(), row_count=ROWS,
        columns=["account_id", "customer_name", "balance", "region"], status=PopulationFile.Status.PROFILED,
        uploaded_by=users["tester"],
    )
    tester = users["tester"]
    in_scope(cycle_report, tester, "account_id", risk_score=8, primary_key=True, mandatory=True)
    in_scope(cycle_report, tester, "balance", risk_score=5)
    in_scope(cycle_report, tester, "region", risk_score=2, scope=False)
    return parallel_step(cycle_report)


def plan_post(**overrides) -> dict:
    data = {
        "size_rule": "frequency", "risk": "high", "risk_of_overreliance": "0.05", "tolerable_rate": "0.05",
        "expected_rate": "0", "override_size": "", "override_reason": "", "method": "random",
        "stratify_by": "", "min_per_stratum": "1", "risk_column": "", "seed": "",
    }
    return {**data, **overrides}


def page(cycle_report):
    return reverse("cycles:sample-selection", args=[cycle_report.pk])


# --- who sees and who acts -------------------------------------------------------------------------


def test_the_page_renders_for_who_sees_the_report_and_404_for_others(client, users, selection):
    url = page(selection)
    for who in ("tester", "owner", "manager", "executive", "admin"):
        assert as_user(client, users[who]).get(url).status_code == 200, who
    for who in ("tester2", "owner2", "data_owner"):
        assert as_user(client, users[who]).get(url).status_code == 404, who
        assert as_user(client, users[who]).post(reverse("cycles:samples-draw", args=[selection.pk])).status_code == 404

    tester_page = as_user(client, users["tester"]).get(url).content.decode()
    assert "Save the plan" in tester_page and "Draw samples" in tester_page and "Add by hand" in tester_page
    owner_page = as_user(client, users["owner"]).get(url).content.decode()
    assert "Save the plan" not in owner_page and "Draw samples" not in owner_page


def test_only_the_assigned_tester_changes_the_plan_or_the_samples(client, users, selection):
    for who in ("owner", "manager", "executive"):
        client = as_user(client, users[who])
        assert client.post(page(selection), plan_post()).status_code == 403, who
        assert client.post(reverse("cycles:samples-draw", args=[selection.pk])).status_code == 403, who
        assert client.post(reverse("cycles:sample-add", args=[selection.pk]),
                           {"key": "A0001", "reason": "x"}).status_code == 403, who
    assert not SamplingPlan.objects.exists() and not Sample.objects.exists()


# --- the plan ----------------------------------------------------------------------------------------


def test_the_plan_form_saves_and_the_page_says_which_rule_gave_the_size(client, users, selection):
    client = as_user(client, users["tester"])
    response = client.post(page(selection), plan_post(size_rule="statistical", tolerable_rate="0.1"), follow=True)
    assert response.status_code == 200
    plan = SamplingPlan.objects.get(cycle_report=selection)
    assert plan.size_rule == "statistical" and str(plan.tolerable_rate) == "0.100"
    html = response.content.decode()
    assert plan.size_explanation and plan.size_explanation in html
    assert any(f"{plan.sample_size} samples" in m for m in messages_of(response))

    response = client.post(page(selection), plan_post(override_size="12", override_reason="Prior-year findings."),
                           follow=True)
    plan.refresh_from_db()
    assert (plan.override_size, plan.sample_size) == (12, 12)
    html = response.content.decode()
    assert "Overridden: 12 instead of" in html and "Prior-year findings." in html
    assert AuditEvent.objects.filter(action="sampling.override_size", object_id=str(plan.pk)).exists()
    assert "Overrode the sample size" in html  # the page's audit trail


def test_an_override_without_a_reason_shows_the_error_and_saves_nothing(client, users, selection):
    plan = sampling_plan_prepare(cycle_report_id=selection.pk)
    before = AuditEvent.objects.count()
    response = as_user(client, users["tester"]).post(page(selection), plan_post(override_size="9"))
    assert response.status_code == 200
    assert "Say why the sample size is overridden." in response.content.decode()
    plan.refresh_from_db()
    assert plan.override_size is None and plan.override_reason == ""
    assert AuditEvent.objects.count() == before


def test_a_stratified_plan_needs_a_population_column(client, users, selection):
    client = as_user(client, users["tester"])
    response = client.post(page(selection), plan_post(method="stratified"))
    assert response.status_code == 200 and "Choose the column whose values form the strata." in response.content.decode()
    response = client.post(page(selection), plan_post(method="stratified", stratify_by="nope"))
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    assert not SamplingPlan.objects.exists()
    response = client.post(page(selection), plan_post(method="stratified", stratify_by="region"))
    assert response.status_code == 302
    assert SamplingPlan.objects.get(cycle_report=selection).stratify_by == "region"


# --- samples -----------------------------------------------------------------------------------------


def test_draw_then_pick_and_remove_samples_through_the_page(client, users, selection):
    client = as_user(client, users["tester"])
    client.post(page(selection), plan_post(override_size="5", override_reason="Five is enough here.", seed="42"))
    response = client.post(reverse("cycles:samples-draw", args=[selection.pk]), follow=True)
    assert response.status_code == 200
    assert any("Drew 5 samples with seed 42" in m for m in messages_of(response))
    drawn = list(Sample.objects.filter(cycle_report=selection).order_by("row_index"))
    assert len(drawn) == 5 and all(s.method == "random" and s.key.startswith("A") for s in drawn)
    html = response.content.decode()
    assert all(s.key in html for s in drawn) and "Draw again" in html

    picked = next(f"A{i:04d}" for i in range(ROWS) if f"A{i:04d}" not in {s.key for s in drawn})
    add = reverse("cycles:sample-add", args=[selection.pk])
    response = client.post(add, {"key": picked, "reason": "Largest exposure in the quarter."}, follow=True)
    assert any(f"Sample {picked} added by hand" in m for m in messages_of(response))
    manual = Sample.objects.get(cycle_report=selection, key=picked)
    assert manual.method == "manual" and manual.reason == "Largest exposure in the quarter."

    response = client.post(add, {"key": picked, "reason": ""})
    assert response.status_code == 200 and "This field is required." in response.content.decode()
    response = client.post(add, {"key": "ZZZ", "reason": "Not in the file."})
    assert response.status_code == 400 and "There is no account_id value" in response.content.decode()
    assert Sample.objects.filter(cycle_report=selection).count() == 6

    response = client.post(reverse("cycles:sample-remove", args=[selection.pk, drawn[0].pk]), follow=True)
    assert any(f"Sample {drawn[0].key} removed" in m for m in messages_of(response))
    assert Sample.objects.filter(cycle_report=selection).count() == 5


def test_the_page_is_read_only_while_a_version_awaits_approval(client, users, selection):
    client = as_user(client, users["tester"])
    client.post(page(selection), plan_post(override_size="3", override_reason="Small population slice.", seed="7"))
    samples_draw(user=users["tester"], cycle_report=selection)
    version_create(cycle_report=selection, phase=Phase.SAMPLE_SELECTION, author=users["tester"],
                   items=phase_artifact_items(cycle_report=selection, phase=Phase.SAMPLE_SELECTION))
    html = client.get(page(selection)).content.decode()
    assert "Save the plan" not in html and "Draw again" not in html and "Submit for approval" not in html
    assert "Read-only" in html and "submitted for approval" in html
    keys = set(Sample.objects.filter(cycle_report=selection).values_list("key", flat=True))
    response = client.post(reverse("cycles:samples-draw", args=[selection.pk]), follow=True)
    assert any("submitted for approval" in m for m in messages_of(response))
    assert set(Sample.objects.filter(cycle_report=selection).values_list("key", flat=True)) == keys


def test_submit_without_a_running_workflow_is_a_message(client, users, selection):
    client = as_user(client, users["tester"])
    assert "Submit for approval" in client.get(page(selection)).content.decode()
    response = client.post(reverse("cycles:phase-submit", args=[selection.pk, Phase.SAMPLE_SELECTION]), follow=True)
    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == page(selection)
    assert any("has not been started" in m for m in messages_of(response))


# --- per-sample decisions on the approval screen ----------------------------------------------------------


@pytest.fixture
def submitted(client, users, selection):
    as_user(client, users["tester"]).post(
        page(selection), plan_post(override_size="3", override_reason="Small population slice.", seed="7")
    )
    samples_draw(user=users["tester"], cycle_report=selection)
    return version_create(cycle_report=selection, phase=Phase.SAMPLE_SELECTION, author=users["tester"],
                          items=phase_artifact_items(cycle_report=selection, phase=Phase.SAMPLE_SELECTION))


def test_the_owner_rejects_one_sample_with_a_note_and_approves_another(client, users, selection, submitted):
    url = reverse("versioning:version-detail", args=[submitted.pk])
    decide = reverse("versioning:version-decide", args=[submitted.pk])
    first, second, _ = list(submitted.items.order_by("key"))
    client = as_user(client, users["owner"])
    html = client.get(url).content.decode()
    assert html.count('name="item_decision" value="reject"') == 3 and "Population row" in html

    response = client.post(decide, {"item": first.pk, "item_decision": "reject", "note": ""})
    assert response.status_code == 200
    assert "Say why the sample is rejected: a note is required." in response.content.decode()
    first.refresh_from_db()
    assert first.decision == VersionItem.Decision.PENDING

    response = client.post(decide, {"item": first.pk, "item_decision": "reject", "note": "Account closed in Q2."},
                           follow=True)
    assert any(f"Sample {first.key}: rejected" in m for m in messages_of(response))
    client.post(decide, {"item": second.pk, "item_decision": "approve", "note": ""})
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.decision, first.decision_note, first.decided_by) == ("rejected", "Account closed in Q2.",
                                                                        users["owner"])
    assert second.decision == "approved"
    html = client.get(url).content.decode()
    assert "1 approved · 1 rejected · 1 not decided one by one" in html

    # The tester sees the rejection and its reason on the Sample Selection page.
    tester_page = as_user(client, users["tester"]).get(page(selection)).content.decode()
    assert "Samples the report owner rejected in version 1" in tester_page and "Account closed in Q2." in tester_page


def test_only_an_approver_decides_samples(client, users, selection, submitted):
    decide = reverse("versioning:version-decide", args=[submitted.pk])
    item = submitted.items.first()
    for who in ("tester", "manager", "executive"):
        response = as_user(client, users[who]).post(decide, {"item": item.pk, "item_decision": "approve"})
        assert response.status_code == 403, who
        assert 'value="reject"' not in client.get(
            reverse("versioning:version-detail", args=[submitted.pk])).content.decode()
    assert as_user(client, users["owner2"]).post(decide, {"item": item.pk, "item_decision": "approve"}).status_code == 404
    item.refresh_from_db()
    assert item.decision == VersionItem.Decision.PENDING


# --- the parallel step's progress -------------------------------------------------------------------------


def test_the_cycle_page_shows_both_parallel_phases(client, users, selection):
    html = as_user(client, users["manager"]).get(
        reverse("cycles:cycle-detail", args=[selection.cycle_id])).content.decode()
    assert "Sample Selection (Tester) ‖ Data Owner Identification (Data Executive)" in html
    assert "Being prepared ‖ 2 of 2 attributes need a data owner" in html
    assert str(users["executive"]) in html and str(users["tester"]) in html

    # Once samples are approved, only Data Owner Identification runs.
    PhaseState.objects.filter(cycle_report=selection, phase=Phase.SAMPLE_SELECTION).update(
        status=PhaseState.Status.COMPLETED)
    html = as_user(client, users["manager"]).get(
        reverse("cycles:cycle-detail", args=[selection.cycle_id])).content.decode()
    assert "Sample Selection (Tester) ‖" not in html and "2 of 2 attributes need a data owner" in html


def test_the_report_link_takes_the_data_executive_to_data_owners(client, users, selection):
    link = reverse("cycles:cycle-report", args=[selection.pk])
    assert as_user(client, users["executive"]).get(link)["Location"] == reverse("cycles:data-owners",
                                                                               args=[selection.pk])
    assert as_user(client, users["tester"]).get(link)["Location"] == page(selection)


def test_cycle_page_queries_stay_flat_during_the_parallel_step(client, users, selection, lob):
    def add_report(i):
        report = Report.objects.create(name=f"Report {i}", regulation="FR Y-9C", owner=users["owner"], lob=lob)
        cr = CycleReport.objects.create(cycle=selection.cycle, report=report, tester=users["tester"])
        in_scope(cr, users["tester"], "account_id")
        return parallel_step(cr)

    client = as_user(client, users["manager"])
    url = reverse("cycles:cycle-detail", args=[selection.cycle_id])
    client.get(url)
    with CaptureQueriesContext(connection) as one_report:
        assert client.get(url).status_code == 200
    for i in range(6):
        add_report(i)
    with CaptureQueriesContext(connection) as seven_reports:
        response = client.get(url)
    assert len(seven_reports) <= len(one_report)
    assert response.content.decode().count("Data Owner Identification (Data Executive)") == 7
