"""Final Test Report: generated from the data, signed in order, reopened by send-backs, sealed after sign-off."""
import hashlib
import uuid

import pytest
from django.db import DatabaseError, connection, transaction

from cycles.exceptions import ConflictError, PermissionDeniedError
from cycles.models import (
    Evidence,
    FinalReport,
    Observation,
    Phase,
    PhaseState,
    SignOff,
    TestResult,
)
from cycles.services.artifacts import phase_lock_reason
from cycles.services.final_report import (
    cycle_report_is_sealed,
    cycle_results_summary,
    final_report_generate,
    phase_is_reopened,
    phase_reopen,
    sign_off_next_role,
    sign_off_record,
)
from cycles.services.observations import observation_remediation_move, observation_update
from cycles.tests.test_observations import approved_observations, build_tested_report, enter  # noqa: F401
from versioning.models import VersionStatus
from versioning.services import version_create
from workflows.models import WorkflowDecision

SIGNERS = {"test_manager": "manager", "report_owner": "owner", "data_executive": "executive"}


@pytest.fixture
def finalizing(cycle_report, users, storage):  # noqa: F811
    build_tested_report(cycle_report, users)
    approved_observations(cycle_report, users)
    enter(cycle_report, Phase.FINALIZE)
    return cycle_report


def _sign(final_report, users, role, *, who=None, sign=True, send_back_to="", notes=""):
    return sign_off_record(decision_id=str(uuid.uuid4()), final_report_id=final_report.pk, role=role,
                           user_id=users[who or SIGNERS[role]].pk, sign=sign, send_back_to=send_back_to, notes=notes)


def _sign_all(final_report, users):
    for role in SIGNERS:
        _sign(final_report, users, role)
    final_report.refresh_from_db()


def test_the_report_is_generated_from_the_data_as_html_with_a_chart_and_as_pdf(finalizing):
    report = final_report_generate(cycle_report_id=finalizing.pk, generation=1, workflow_id="wf-1")
    data = report.data
    assert (data["cells"], data["totals"]["pass"], data["totals"]["fail"]) == (9, 6, 3)
    assert {r["attribute"]: r["fail"] for r in data["results"]} == {"account_id": 0, "balance": 2, "customer_name": 1}
    assert [o["code"] for o in data["observations"]] == ["OBS-1", "OBS-2"]
    assert len(data["exceptions"]) == 3 and data["samples"] == 3
    assert "<svg" in report.html and 'aria-label="Results per attribute"' in report.html
    assert "balance" in report.html and "OBS-1" in report.html
    with report.pdf.open("rb") as fh:
        pdf = fh.read()
    assert pdf.startswith(b"%PDF") and hashlib.sha256(pdf).hexdigest() == report.pdf_sha256
    # The same generation asked again (an activity retry) returns the same report.
    assert final_report_generate(cycle_report_id=finalizing.pk, generation=1, workflow_id="wf-1").pk == report.pk
    assert FinalReport.objects.filter(cycle_report=finalizing).count() == 1


def test_sign_offs_go_in_order_each_recording_name_time_and_meaning(finalizing, users):
    report = final_report_generate(cycle_report_id=finalizing.pk, generation=1)
    with pytest.raises(ConflictError, match="signs after the Test Manager"):
        _sign(report, users, "report_owner")
    with pytest.raises(PermissionDeniedError):
        _sign(report, users, "test_manager", who="owner")
    decision = str(uuid.uuid4())
    first = sign_off_record(decision_id=decision, final_report_id=report.pk, role="test_manager",
                            user_id=users["manager"].pk, sign=True)
    # A retried activity records nothing twice.
    assert sign_off_record(decision_id=decision, final_report_id=report.pk, role="test_manager",
                           user_id=users["manager"].pk, sign=True).pk == first.pk
    assert (first.printed_name, first.decision) == ("manager", "signed") and first.signed_at
    assert "performed as planned" in first.meaning
    with pytest.raises(ConflictError, match="already signed"):
        _sign(report, users, "test_manager")
    with pytest.raises(ConflictError, match="signs after the Report Owner"):
        _sign(report, users, "data_executive")
    _sign(report, users, "report_owner")
    assert sign_off_next_role(report) == "data_executive"
    assert not cycle_report_is_sealed(finalizing)
    _sign(report, users, "data_executive")
    report.refresh_from_db()
    assert report.status == FinalReport.Status.SIGNED and report.signed_at
    assert cycle_report_is_sealed(finalizing)
    assert list(report.sign_offs.values_list("role", flat=True)) == ["test_manager", "report_owner", "data_executive"]


def test_a_send_back_names_what_it_reopens_and_the_next_generation_starts_over(finalizing, users):
    report = final_report_generate(cycle_report_id=finalizing.pk, generation=1)
    _sign(report, users, "test_manager")
    with pytest.raises(Exception, match="notes are required"):
        _sign(report, users, "report_owner", sign=False, send_back_to=Phase.OBSERVATIONS)
    back = _sign(report, users, "report_owner", sign=False, send_back_to=Phase.OBSERVATIONS, notes="OBS-2 is high")
    report.refresh_from_db()
    assert report.status == FinalReport.Status.SENT_BACK
    with pytest.raises(ConflictError, match="takes no more sign-offs"):
        _sign(report, users, "data_executive")

    # Observations reopen: editable again, and a new version may follow the approved one.
    assert phase_lock_reason(finalizing, Phase.OBSERVATIONS) is not None
    phase_reopen(cycle_report_id=finalizing.pk, phase=Phase.OBSERVATIONS, sign_off_id=back.pk)
    phase_reopen(cycle_report_id=finalizing.pk, phase=Phase.OBSERVATIONS, sign_off_id=back.pk)  # idempotent
    assert phase_is_reopened(finalizing, Phase.OBSERVATIONS)
    assert PhaseState.objects.get(cycle_report=finalizing, phase=Phase.OBSERVATIONS).status == "active"
    finalizing.refresh_from_db()
    assert phase_lock_reason(finalizing, Phase.OBSERVATIONS) is None
    observation = Observation.objects.filter(cycle_report=finalizing).first()
    observation_update(user=users["tester"], observation=observation, severity="high")
    from cycles.services.artifacts import phase_artifact_items

    v2 = version_create(cycle_report=finalizing, phase=Phase.OBSERVATIONS, author=users["tester"],
                        items=phase_artifact_items(cycle_report=finalizing, phase=Phase.OBSERVATIONS),
                        after_approved=True)
    assert (v2.number, v2.parent.status) == (2, VersionStatus.APPROVED)

    second = final_report_generate(cycle_report_id=finalizing.pk, generation=2)
    assert second.number == 2 and sign_off_next_role(second) == "test_manager"
    _sign_all(second, users)
    assert second.status == FinalReport.Status.SIGNED


def test_signing_through_the_workflow_service_is_checked_before_anything_is_stored(finalizing, users):
    from workflows.services import workflow_sign_off

    finalizing.workflow_id = "cycle-1-report-1"
    finalizing.save(update_fields=["workflow_id"])
    with pytest.raises(ConflictError, match="not been generated"):
        workflow_sign_off(user=users["manager"], cycle_report=finalizing, role="test_manager")
    final_report_generate(cycle_report_id=finalizing.pk, generation=1)
    with pytest.raises(ConflictError, match="signs after the Test Manager"):
        workflow_sign_off(user=users["owner"], cycle_report=finalizing, role="report_owner")
    with pytest.raises(PermissionDeniedError):
        workflow_sign_off(user=users["tester"], cycle_report=finalizing, role="test_manager")
    assert not WorkflowDecision.objects.exists()


def test_a_sign_off_is_checked_on_the_latest_generation_without_its_figures(finalizing, users,
                                                                             django_assert_num_queries):
    """The check reads the generation's number and status and who has signed: not its data and HTML (the
    bulk of the row at scale), and not again the report the caller loaded."""
    from cycles.models import CycleReport
    from cycles.services.final_report import final_report_latest, sign_off_check

    final_report_generate(cycle_report_id=finalizing.pk, generation=1)
    report = CycleReport.objects.select_related("cycle", "report").get(pk=finalizing.pk)
    latest = final_report_latest(cycle_report=report, figures=False)
    assert {"data", "html"} <= latest.get_deferred_fields()
    # The signed roles, then the signer's groups: nothing of the report again.
    with django_assert_num_queries(2):
        sign_off_check(user=users["manager"], final_report=latest, role="test_manager", sign=True)
    assert final_report_latest(cycle_report=report).get_deferred_fields() == set()


def test_after_sign_off_the_database_refuses_changes_to_results_observations_evidence_and_versions(finalizing, users):
    report = final_report_generate(cycle_report_id=finalizing.pk, generation=1)
    _sign_all(report, users)
    cell = TestResult.objects.filter(cycle_report=finalizing, result="fail").first()
    observation = Observation.objects.filter(cycle_report=finalizing).first()
    evidence = Evidence.objects.filter(request__cycle_report=finalizing).first()

    refused = [
        lambda: TestResult.objects.filter(pk=cell.pk).update(result="pass", failure_kind=""),
        lambda: Observation.objects.filter(pk=observation.pk).update(severity="low"),
        lambda: Evidence.objects.filter(pk=evidence.pk).update(review_note="changed"),
        lambda: FinalReport.objects.filter(pk=report.pk).update(status="sent_back"),
        lambda: SignOff.objects.filter(final_report=report).update(notes="changed"),
        lambda: version_create(cycle_report=finalizing, phase=Phase.OBSERVATIONS, author=users["tester"],
                               items=[("x", {})], after_approved=True),
    ]
    if connection.vendor == "postgresql":
        # SQLite keeps DELETE triggers off (see synapse.db_triggers); PostgreSQL refuses deletes too.
        refused += [
            lambda: TestResult.objects.filter(pk=cell.pk).delete(),
            lambda: observation.cells.clear(),
            lambda: SignOff.objects.filter(final_report=report).delete(),
        ]
    for change in refused:
        with pytest.raises(DatabaseError), transaction.atomic():
            change()
    cell.refresh_from_db()
    assert cell.result == "fail" and observation.cells.count() >= 1

    # The services say so in words; remediation goes on after sign-off.
    with pytest.raises(ConflictError, match="sealed"):
        observation_update(user=users["tester"], observation=observation, severity="low")
    observation_remediation_move(user=users["data_owner"], observation=observation, to_status="in_progress")
    assert Observation.objects.get(pk=observation.pk).status == "in_progress"


def test_before_sign_off_the_same_changes_are_allowed(finalizing, users):
    report = final_report_generate(cycle_report_id=finalizing.pk, generation=1)
    _sign(report, users, "test_manager")
    cell = TestResult.objects.filter(cycle_report=finalizing, result="fail").first()
    assert TestResult.objects.filter(pk=cell.pk).update(comment="checked twice") == 1
    assert Observation.objects.filter(cycle_report=finalizing).update(impact="Restated") == 2


def test_the_cycle_summary_counts_results_and_observations_across_reports(finalizing, users):
    summary = cycle_results_summary(user=users["manager"], cycle=finalizing.cycle)
    assert summary["totals"]["pass"] == 6 and summary["totals"]["fail"] == 3
    assert {s["value"]: s["count"] for s in summary["severities"]}["medium"] == 2
    assert summary["rows"][0]["final_report"] is None and summary["any_results"]


def test_progress_says_who_signs_next(finalizing, users):
    from cycles.selectors import cycle_report_progress

    assert cycle_report_progress(finalizing).state_label == "Generating the report"
    report = final_report_generate(cycle_report_id=finalizing.pk, generation=1)
    _sign(report, users, "test_manager")
    progress = cycle_report_progress(finalizing)
    assert progress.waiting_on == "Report Owner (owner)"
    assert progress.state_label == "Report 1 awaits the Report Owner's sign-off"
    _sign(report, users, "report_owner")
    assert cycle_report_progress(finalizing).waiting_on == "Data Executive (executive)"


def test_the_page_body_is_rendered_once_per_set_of_signatures(finalizing, users, django_assert_num_queries):
    from cycles.services.final_report import final_report_html

    report = final_report_generate(cycle_report_id=finalizing.pk, generation=1)
    first = final_report_html(report)
    assert "Test Manager" in first
    with django_assert_num_queries(1):  # the signatures; the body comes from the cache
        assert final_report_html(report) == first
    _sign(report, users, "test_manager")
    signed = final_report_html(report)
    printed_name = SignOff.objects.get(final_report=report).printed_name
    assert signed.count(printed_name) > first.count(printed_name)


def _pdf_pages(content: bytes):
    from io import BytesIO

    from pypdf import PdfReader

    return PdfReader(BytesIO(content)).pages


def _text(page) -> str:
    return " ".join(page.extract_text().split())


def test_a_signed_pdf_is_the_generated_pages_with_the_sign_off_page_rendered_again(finalizing, users, monkeypatch):
    from cycles import pdf
    from cycles.services.final_report import final_report_pdf

    report = final_report_generate(cycle_report_id=finalizing.pk, generation=1)
    with report.pdf.open("rb") as fh:
        generated = _pdf_pages(fh.read())
    count = len(generated)
    # Nothing of the templates' own syntax (a comment over two lines, once) reaches the page or the PDF.
    assert not any(token in report.html for token in ("{#", "#}", "{%", "comment"))
    last = _text(generated[-1])
    assert "{#" not in last and "Section 7" not in last
    assert "7. Sign-offs" in last and "not signed" in last and "6. Exceptions" not in last
    _sign_all(report, users)

    composed = []
    replace = pdf.replace_last_page
    monkeypatch.setattr(pdf, "replace_last_page", lambda *args: composed.append(replace(*args)) or composed[-1])
    signed = _pdf_pages(final_report_pdf(report))
    assert len(signed) == count and composed[0] is not None
    # The pages the signers were given are in it as they were; the last one now carries their signatures.
    assert [_text(p) for p in signed[:-1]] == [_text(p) for p in generated[:-1]]
    last = _text(signed[-1])
    assert "not signed" not in last and f"page {count} of {count}" in last
    assert finalizing.report.name in last and f"generation {report.number}" in last
    for sign_off in SignOff.objects.filter(final_report=report):
        assert sign_off.printed_name in last


def test_every_table_of_the_pdf_has_column_widths_of_its_own(finalizing):
    """The PDF lays tables out at fixed widths (measuring every cell's text was a fifth of a rendering): a table
    the stylesheet gives no widths would get even columns, its long column as narrow as a yes/no one."""
    import re
    from pathlib import Path

    from cycles.services.final_report import final_report_html

    report = final_report_generate(cycle_report_id=finalizing.pk, generation=1)
    document = final_report_html(report, document=True)
    style = document.split("<style>", 1)[1].split("</style>", 1)[0]
    assert "table-layout: fixed" in style
    tables = re.findall(r'<table class="table ([\w-]+)"', document)
    assert len(tables) == len(re.findall(r"<table", document)) and len(tables) >= 6, tables
    # The tables shown only for some reports (the profile's) too: every one the templates have.
    for template in ("final_report_body.html", "final_report_signatures.html"):
        source = (Path(__file__).resolve().parent.parent / "templates" / "cycles" / template).read_text()
        assert len(re.findall(r"<table", source)) == len(re.findall(r'<table class="table [\w-]+"', source))
        tables += re.findall(r'<table class="table ([\w-]+)"', source)
    assert "fr-profile" in tables
    for name in tables:
        assert re.search(rf"table\.{name} th\b[^{{]*{{ width: \d+%; }}", style), f"no column widths for table.{name}"


def test_a_signed_pdf_is_rendered_whole_when_the_stored_one_is_not_the_generated_one(finalizing, users, monkeypatch):
    from cycles import pdf
    from cycles.services.final_report import SIGNATURE_PAGE, final_report_pdf

    report = final_report_generate(cycle_report_id=finalizing.pk, generation=1)
    _sign_all(report, users)
    monkeypatch.setattr(pdf, "replace_last_page", lambda *args: pytest.fail("the stored PDF was used"))
    # Altered on disk after its hash was recorded: not used.
    with report.pdf.storage.open(report.pdf.name, "wb") as fh:
        fh.write(b"%PDF-1.7 altered")
    whole = _pdf_pages(final_report_pdf(report))
    assert "not signed" not in _text(whole[-1])
    # A generation from before the sign-offs had a page of their own: rendered whole too.
    report = FinalReport.objects.get(pk=report.pk)
    report.data.pop(SIGNATURE_PAGE)
    with report.pdf.open("rb") as fh:
        report.pdf_sha256 = hashlib.sha256(fh.read()).hexdigest()
    assert "not signed" not in _text(_pdf_pages(final_report_pdf(report))[-1])


@pytest.mark.django_db(transaction=True)
def test_a_sign_off_does_not_wait_for_another_report_of_the_cycle(finalizing, users):
    """Recording a signature locks its final report's row only: not the cycle's, which every report of the cycle
    shares (twenty reports signed at once queued behind one another on it)."""
    from synapse.testing import row_locked_elsewhere

    if connection.vendor != "postgresql":
        pytest.skip("row locks: PostgreSQL")
    report = final_report_generate(cycle_report_id=finalizing.pk, generation=1)
    with row_locked_elsewhere(finalizing.cycle):  # another report of the cycle, mid-transaction
        assert _sign(report, users, "test_manager").decision == SignOff.Decision.SIGNED
