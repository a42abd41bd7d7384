"""Data Profiling's checks: the wrong file flagged, columns mapped, key problems resolved, rules counted."""
import hashlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from cycles.exceptions import ApplicationError, ConflictError, PhaseLockedError
from cycles.models import Attribute, ColumnMapping, Phase, PopulationFile, ProfilingRule, ScopingDecision
from cycles.services.artifacts import phase_artifact_items
from cycles.services.profiling import population_file_current, population_file_profile, population_file_upload
from cycles.services.profiling_checks import (
    column_mapping_decide,
    column_mappings_confirm_matched,
    population_key_column,
    population_key_resolve,
    population_rules_recheck,
    profiling_open_points,
    profiling_rule_save,
)
from cycles.services.scoping import scoping_recommend
from cycles.testing import artifact_refusal
from synapse.models import AuditEvent

LOANS = (
    "loan_number,original_loan_amount,unpaid_principal_balance,original_ltv,fico_score,property_state,servicer_id\n"
    "ML1,100000,90000,80.0,700,CA,S1\n"
    "ML2,200000,-5,90.0,999,XX,S2\n"  # a negative balance, a FICO of 999, a state XX
    "ML2,150000,160000,247.7,650,TX,S3\n"  # a repeated key, a balance above the original, an LTV of 247.7
    ",120000,100000,70,720,NY,S4\n"  # a blank key
    "ML5,90000,1000,60,810,ca,S5\n"  # a lower-case state
)
WRONG_FILE = "account,segment,exposure\nA1,retail,10\nA2,corporate,20\n"

ATTRIBUTES = [
    # name, data type, mandatory, primary key, description
    ("loan_number", "string", True, True, "Unique loan identifier."),
    ("original_loan_amount", "decimal", True, False, "Principal amount at origination."),
    ("unpaid_principal_balance", "decimal", True, False, "Unpaid principal balance; never negative."),
    ("original_ltv", "decimal", False, False, "Loan-to-value ratio at origination, in percent (0-150)."),
    ("fico_score", "integer", False, False, "Borrower credit score at origination (300-850)."),
    ("property_state", "string", False, False, "Two-letter US state code of the property."),
    ("occupancy_type", "string", True, False, "Owner-occupied, second home or investment."),
]


@pytest.fixture
def loans_report(cycle_report):
    cycle_report.phase = Phase.DATA_PROFILING
    cycle_report.save(update_fields=["phase"])
    for name, data_type, mandatory, key, description in ATTRIBUTES:
        Attribute.objects.create(cycle_report=cycle_report, name=name, data_type=data_type, mandatory=mandatory,
                                 primary_key=key, description=description)
    return cycle_report


def upload(user, cycle_report, name, text):
    return population_file_upload(user=user, cycle_report=cycle_report,
                                  uploaded_file=SimpleUploadedFile(name, text.encode()))


def profiled(user, cycle_report, name="loans.csv", text=LOANS):
    return population_file_profile(population_file_id=upload(user, cycle_report, name, text).pk)


def mappings(population_file):
    return {m.attribute.name: m for m in population_file.mappings.select_related("attribute")}


def test_the_wrong_report_file_is_flagged_and_the_phase_cannot_be_submitted(storage, users, loans_report):
    wrong = profiled(users["tester"], loans_report, "other_report.csv", WRONG_FILE)

    assert wrong.mapping_warning.startswith("Only 0 of the report's 7 attributes match a column")
    assert {m.status for m in mappings(wrong).values()} == {ColumnMapping.Status.UNMATCHED}
    points = profiling_open_points(cycle_report=loans_report)
    assert "occupancy_type" in points[0] and "loan_number" in points[0]
    with pytest.raises(ApplicationError, match="Data Profiling isn't finished"):
        phase_artifact_items(cycle_report=loans_report, phase=Phase.DATA_PROFILING)
    assert artifact_refusal(loans_report, Phase.DATA_PROFILING)  # a submission is refused so before it is sent


def test_a_replacement_is_profiled_and_every_file_stays_in_history_with_its_hash(storage, users, loans_report):
    tester = users["tester"]
    wrong = profiled(tester, loans_report, "other_report.csv", WRONG_FILE)

    right = profiled(tester, loans_report)

    assert population_file_current(cycle_report=loans_report) == right
    assert right.mapping_warning == ""
    assert list(loans_report.population_files.order_by("pk").values_list("sha256", flat=True)) == [
        hashlib.sha256(WRONG_FILE.encode()).hexdigest(), hashlib.sha256(LOANS.encode()).hexdigest()]
    # The earlier file keeps its own mappings and profile.
    assert wrong.profile_results.count() == 3 and right.profile_results.count() == 7


def test_an_upload_while_another_waits_to_be_profiled_is_refused_before_anything_is_saved(storage, users, loans_report):
    profiled(users["tester"], loans_report)
    upload(users["tester"], loans_report, "second.csv", LOANS)

    with pytest.raises(ConflictError, match="second.csv is still waiting to be profiled"):
        upload(users["tester"], loans_report, "third.csv", LOANS)

    assert loans_report.population_files.count() == 2
    assert not loans_report.population_files.filter(original_name="third.csv").exists()


def test_uploads_stop_once_scoping_is_submitted_or_the_report_moved_on(storage, users, loans_report):
    loans_report.phase = Phase.SAMPLE_SELECTION
    loans_report.save(update_fields=["phase"])

    with pytest.raises(PhaseLockedError, match="replaced until Scoping is approved"):
        upload(users["tester"], loans_report, "late.csv", LOANS)
    assert loans_report.population_files.count() == 0


def test_an_attribute_without_a_column_is_flagged_until_marked_not_in_the_file(storage, users, loans_report):
    tester = users["tester"]
    population_file = profiled(tester, loans_report)
    found = mappings(population_file)
    assert found["occupancy_type"].status == ColumnMapping.Status.UNMATCHED
    assert found["fico_score"].status == ColumnMapping.Status.MATCHED
    assert found["fico_score"].decided_by is None  # the system's match, not the tester's

    with pytest.raises(ApplicationError, match="choose its column, or say why"):
        column_mapping_decide(user=tester, mapping=found["occupancy_type"])
    column_mapping_decide(user=tester, mapping=found["occupancy_type"],
                          not_in_file_reason="Occupancy comes from the origination system, not the servicing tape.")
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        assert column_mappings_confirm_matched(user=tester, population_file=population_file) == 6
    # The six confirmed in one statement, not one each.
    assert len([q for q in queries if q["sql"].startswith('UPDATE "cycles_columnmapping"')]) == 1

    found = mappings(population_file)
    assert found["occupancy_type"].status == ColumnMapping.Status.NOT_IN_FILE
    assert found["fico_score"].decided_by == tester
    assert not any("Confirm the column" in p for p in profiling_open_points(cycle_report=loans_report))


def test_the_tester_can_map_an_attribute_to_another_column_but_not_a_taken_one(storage, users, loans_report):
    tester = users["tester"]
    population_file = profiled(tester, loans_report)
    found = mappings(population_file)

    with pytest.raises(ConflictError, match="already holds fico_score"):
        column_mapping_decide(user=tester, mapping=found["occupancy_type"], column_name="fico_score")
    column_mapping_decide(user=tester, mapping=found["occupancy_type"], column_name="servicer_id")

    result = population_file.profile_results.get(column_name="servicer_id")
    assert result.attribute.name == "occupancy_type"


def test_values_that_break_the_attributes_meaning_fail_their_rules_with_1_based_example_rows(
    storage, users, loans_report
):
    population_file = profiled(users["tester"], loans_report)

    rules = {(r.attribute.name, r.kind): r for r in ProfilingRule.objects.filter(attribute__cycle_report=loans_report)}
    assert rules[("fico_score", "range")].params == {"min": 300, "max": 850}
    assert rules[("original_ltv", "range")].params == {"min": 0, "max": 150}
    assert rules[("unpaid_principal_balance", "compare")].params == {"op": "<=", "other": "original_loan_amount"}
    assert all(r.source == ProfilingRule.Source.SYSTEM and r.created_by is None for r in rules.values())

    outcomes = {}
    for result in population_file.profile_results.all():
        for outcome in result.rule_results:
            outcomes[(result.column_name, outcome["kind"])] = (outcome["failing"], outcome["examples"])
    assert outcomes[("fico_score", "range")] == (1, [2])
    assert outcomes[("original_ltv", "range")] == (1, [3])
    assert outcomes[("unpaid_principal_balance", "range")] == (1, [2])
    assert outcomes[("unpaid_principal_balance", "compare")] == (1, [3])
    assert outcomes[("property_state", "allowed_values")] == (2, [2, 5])
    assert outcomes[("loan_number", "unique")] == (2, [2, 3])
    assert outcomes[("loan_number", "not_null")] == (1, [4])
    assert AuditEvent.objects.filter(action="rules.draft", actor=None).exists()


def test_the_tester_edits_a_rule_and_its_failures_are_counted_again(storage, users, loans_report):
    tester = users["tester"]
    population_file = profiled(tester, loans_report)
    state = ProfilingRule.objects.get(attribute__name="property_state", kind="allowed_values")
    attribute = state.attribute

    with pytest.raises(ApplicationError, match="is not a valid regular expression"):
        profiling_rule_save(user=tester, attribute=attribute, kind="pattern", params={"regex": "[A-Z"}, rule=state)
    with pytest.raises(ApplicationError, match="lowest value 900 is above the highest 300"):
        profiling_rule_save(user=tester, attribute=attribute.cycle_report.attributes.get(name="fico_score"),
                            kind="range", params={"min": "900", "max": "300"})
    profiling_rule_save(user=tester, attribute=attribute, kind="pattern", params={"regex": "[A-Z]{2}"}, rule=state)
    population_rules_recheck(user=tester, population_file=population_file)

    state.refresh_from_db()
    assert (state.source, state.created_by) == (ProfilingRule.Source.PERSON, tester)
    result = population_file.profile_results.get(column_name="property_state")
    assert [(r["kind"], r["failing"], r["examples"]) for r in result.rule_results] == [("pattern", 1, [5])]


def test_a_primary_key_with_repeats_and_blanks_is_a_problem_the_tester_resolves(storage, users, loans_report):
    tester = users["tester"]
    population_file = profiled(tester, loans_report)

    assert population_file.key_column == ""
    assert population_file.key_problem.startswith("The primary key loan_number has 1 repeated value and 1 blank")
    with pytest.raises(ApplicationError, match="Resolve it in Data Profiling first"):
        population_key_column(population_file)
    with pytest.raises(ApplicationError, match="loan_number can.t be the key either"):
        population_key_resolve(user=tester, population_file=population_file, key_column="loan_number")
    with pytest.raises(ApplicationError, match="say why rows are named by their row number"):
        population_key_resolve(user=tester, population_file=population_file)

    population_key_resolve(user=tester, population_file=population_file, key_column="servicer_id")

    population_file.refresh_from_db()
    assert population_key_column(population_file) == "servicer_id"
    assert population_file.key_resolution == PopulationFile.KeyResolution.COLUMN
    assert AuditEvent.objects.filter(action="population.key_resolve", actor=tester).exists()


def test_row_numbers_are_accepted_only_with_a_reason(storage, users, loans_report):
    tester = users["tester"]
    population_file = profiled(tester, loans_report)

    population_key_resolve(user=tester, population_file=population_file,
                           reason="The servicer re-used loan numbers after a merger; rows are named by position.")

    population_file.refresh_from_db()
    assert population_key_column(population_file) is None
    assert population_file.key_resolution == PopulationFile.KeyResolution.ROW_NUMBERS


def test_a_settled_profile_builds_the_version_the_owner_approves(storage, users, loans_report):
    tester = users["tester"]
    population_file = profiled(tester, loans_report)
    found = mappings(population_file)
    column_mapping_decide(user=tester, mapping=found["occupancy_type"], not_in_file_reason="Not on the tape.")
    column_mappings_confirm_matched(user=tester, population_file=population_file)
    assert profiling_open_points(cycle_report=loans_report) == [population_file.key_problem]
    population_key_resolve(user=tester, population_file=population_file, key_column="servicer_id")

    items = dict(phase_artifact_items(cycle_report=loans_report, phase=Phase.DATA_PROFILING))

    assert items["population file"]["sha256"] == population_file.sha256
    assert items["population file"]["key_column"] == "servicer_id"
    assert items["occupancy_type"]["mapping"] == "not_in_file"
    fico = items["fico_score"]
    assert fico["column"] == "fico_score"
    assert [(r["label"], r["failing"]) for r in fico["rules"]] == [("between 300 and 850", 1)]


def test_confirmed_columns_carry_over_to_a_replacement(storage, users, loans_report):
    tester = users["tester"]
    first = profiled(tester, loans_report)
    found = mappings(first)
    column_mapping_decide(user=tester, mapping=found["occupancy_type"], column_name="servicer_id")
    column_mapping_decide(user=tester, mapping=found["fico_score"], column_name="fico_score")

    second = profiled(tester, loans_report, "loans-v2.csv")

    carried = mappings(second)
    assert (carried["occupancy_type"].column_name, carried["occupancy_type"].status) == (
        "servicer_id", ColumnMapping.Status.CONFIRMED)
    assert carried["occupancy_type"].decided_by == tester
    assert carried["original_ltv"].status == ColumnMapping.Status.MATCHED


def test_scoping_recommendations_are_the_systems_and_name_an_attribute_missing_from_the_file(
    storage, users, loans_report
):
    tester = users["tester"]
    population_file = profiled(tester, loans_report)
    column_mapping_decide(user=tester, mapping=mappings(population_file)["occupancy_type"],
                          not_in_file_reason="Not on the servicing tape.")

    scoping_recommend(cycle_report_id=loans_report.pk)

    decisions = {d.attribute.name: d for d in ScopingDecision.objects.filter(attribute__cycle_report=loans_report)}
    assert all(d.decided_by is None and d.decided_by_rule for d in decisions.values())
    occupancy = decisions["occupancy_type"]
    assert not occupancy.in_scope and "Not on the servicing tape" in occupancy.rationale
    # FICO has no risk, key or CDE flag: its 999 alone brings it into scope.
    assert decisions["fico_score"].in_scope and "profiling found failures" in decisions["fico_score"].rationale


def test_the_page_shows_the_profiled_file_when_the_workflow_refuses_a_new_one(storage, users, loans_report, client):
    tester = users["tester"]
    current = profiled(tester, loans_report)
    client.force_login(tester)

    response = client.post(
        reverse("cycles:data-profiling", args=[loans_report.pk]),
        {"file": SimpleUploadedFile("replacement.csv", LOANS.encode())},
        follow=True,
    )

    refused = loans_report.population_files.get(original_name="replacement.csv")
    assert refused.status == PopulationFile.Status.REFUSED
    assert population_file_current(cycle_report=loans_report) == current
    page = response.content.decode()
    assert "replacement.csv was not profiled" in page
    assert response.context["population_file"] == current
    assert "data_profiling" not in refused.error
    # The next upload isn't blocked by the refused one.
    assert profiling_open_points(cycle_report=loans_report)[0].startswith("Confirm the column")


def test_the_page_labels_every_mapping_and_rule_field(storage, users, loans_report, client):
    profiled(users["tester"], loans_report)
    client.force_login(users["tester"])

    page = client.get(reverse("cycles:data-profiling", args=[loans_report.pk])).content.decode()

    assert "Only the report" not in page
    assert 'for="id_mapping_' in page and "Column of occupancy_type" in page
    assert "The primary key loan_number has 1 repeated value and 1 blank" in page
    assert "between 300 and 850" in page and "row 2" in page
    import re

    fields = re.findall(r'<(?:input|select|textarea)[^>]*>', page)
    inputs = {re.search(r'\bid="([^"]+)"', f).group(1) for f in fields if 'type="hidden"' not in f and ' id="' in f}
    labelled = set(re.findall(r'<label[^>]*for="([^"]+)"', page))
    assert inputs - labelled == set()


def test_the_page_marks_estimated_distinct_counts_and_keeps_the_keys_exact(storage, users, loans_report, client,
                                                                             monkeypatch):
    from cycles.profiling import scan
    from cycles.views import pages

    # Past the exact tally (here 3 values) a column's distinct values are estimated; a key's never are.
    monkeypatch.setattr(scan, "COUNTED_MAX", 3)
    monkeypatch.setattr(pages, "COUNTED_MAX", 3)
    population_file = profiled(users["tester"], loans_report)
    results = {r.column_name: r for r in population_file.profile_results.all()}
    assert results["loan_number"].distinct_count == 3  # ML1, ML2, ML5: exact, as the key check needs
    assert results["servicer_id"].top_values == []
    client.force_login(users["tester"])

    page = client.get(reverse("cycles:data-profiling", args=[loans_report.pk])).content.decode()

    assert page.count("too many distinct values to rank") == 6  # every column but the key
    assert "≈&nbsp;5" in page
