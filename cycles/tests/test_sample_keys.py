"""Sample keys: the key Data Profiling settled names samples, never a silent switch; keys sort as people read them."""
import hashlib
from pathlib import Path

import pytest

from cycles.exceptions import ApplicationError
from cycles.models import Attribute, Phase, PopulationFile, ProfilingRule, SamplingPlan, ScopingDecision
from cycles.sampling.keys import natural_sorted
from cycles.services.sampling import sample_add_manual, samples_draw, sampling_plan_update

ROWS = 30
# loan_number repeats ML100000003 and leaves one blank; servicer_id names each row once.
LINES = ["loan_number,servicer_id,fico_score"]
for i in range(ROWS):
    number = "ML100000003" if i == 7 else "" if i == 9 else f"ML1000000{i:02d}"
    LINES.append(f"{number},S{i:03d},{999 if i in (4, 11) else 600 + i}")
CSV_TEXT = "\n".join(LINES) + "\n"


def test_keys_sort_with_numbers_as_numbers():
    assert natural_sorted(["1145", "1163", "186", "217", "ML10", "ML9", "ml8"]) == [
        "186", "217", "1145", "1163", "ml8", "ML9", "ML10"]


@pytest.fixture
def population(settings, tmp_path, cycle_report, users):
    settings.MEDIA_ROOT = str(tmp_path)
    path = Path(tmp_path) / "populations" / "loans.csv"
    path.parent.mkdir(parents=True)
    path.write_text(CSV_TEXT, encoding="utf-8")
    return PopulationFile.objects.create(
        cycle_report=cycle_report, file="populations/loans.csv", original_name="loans.csv",
        format=PopulationFile.Format.CSV, size_bytes=path.stat().st_size,
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(), row_count=ROWS,
        columns=["loan_number", "servicer_id", "fico_score"], status=PopulationFile.Status.PROFILED,
        uploaded_by=users["tester"],
        key_problem="The primary key loan_number has 1 repeated value and 1 blank, so it can't name each row.",
    )


@pytest.fixture
def selection(cycle_report, population, users):
    tester = users["tester"]
    for name, key in (("loan_number", True), ("servicer_id", False), ("fico_score", False)):
        attribute = Attribute.objects.create(cycle_report=cycle_report, name=name, primary_key=key, risk_score=8,
                                             data_type="integer" if name == "fico_score" else "string")
        ScopingDecision.objects.create(attribute=attribute, in_scope=True, rationale="test", decided_by=tester)
    cycle_report.phase = Phase.SAMPLE_SELECTION
    cycle_report.save(update_fields=["phase"])
    return cycle_report


def test_an_unresolved_key_problem_stops_the_draw_instead_of_switching_to_row_numbers(selection, users):
    with pytest.raises(ApplicationError, match="loan_number has 1 repeated value.*Resolve it in Data Profiling"):
        samples_draw(user=users["tester"], cycle_report=selection)


def test_the_key_column_the_tester_chose_names_the_samples(selection, population, users):
    population.key_resolution, population.key_column = PopulationFile.KeyResolution.COLUMN, "servicer_id"
    population.save()

    drawn = samples_draw(user=users["tester"], cycle_report=selection)
    # A row the draw (seeded afresh each run) did not take.
    row = next(i for i in reversed(range(ROWS)) if f"S{i:03d}" not in {s.key for s in drawn})
    added = sample_add_manual(user=users["tester"], cycle_report=selection, key=f"S{row:03d}", reason="largest loan")

    assert all(s.key == s.row_data["servicer_id"] for s in drawn)
    assert added.row_index == row


def test_accepted_row_numbers_count_from_one_and_say_why_a_key_is_refused(selection, population, users):
    population.key_resolution = PopulationFile.KeyResolution.ROW_NUMBERS
    population.key_reason = "Loan numbers were re-used after the merger."
    population.save()

    drawn = samples_draw(user=users["tester"], cycle_report=selection)

    assert all(s.key == str(s.row_index + 1) for s in drawn)
    with pytest.raises(ApplicationError, match="because the tester chose row numbers in Data Profiling: Loan numbers"):
        sample_add_manual(user=users["tester"], cycle_report=selection, key="ML100000012", reason="by hand")
    # The first row the draw (seeded afresh each run) did not take, with a loan number of its own
    # (rows 8 and 10 repeat one or leave it blank); row n is the file's (n - 1)th data row.
    row = next(n for n in range(1, ROWS + 1) if n not in (8, 10) and str(n) not in {s.key for s in drawn})
    picked = sample_add_manual(user=users["tester"], cycle_report=selection, key=str(row), reason="by hand")
    assert picked.row_data["loan_number"] == f"ML1000000{row - 1:02d}"


def test_a_risk_based_draw_targets_rows_that_break_a_rule(selection, population, users):
    from cycles.models import ColumnMapping

    population.key_resolution, population.key_column = PopulationFile.KeyResolution.COLUMN, "servicer_id"
    population.save()
    for attribute in Attribute.objects.filter(cycle_report=selection):
        ColumnMapping.objects.create(population_file=population, attribute=attribute, column_name=attribute.name,
                                     status=ColumnMapping.Status.CONFIRMED)
    ProfilingRule.objects.create(attribute=Attribute.objects.get(cycle_report=selection, name="fico_score"),
                                 kind="range", params={"min": 300, "max": 850})
    sampling_plan_update(user=users["tester"], cycle_report=selection, method=SamplingPlan.Method.RISK_BASED,
                         override_size=2, override_reason="two rows break the FICO range")

    drawn = samples_draw(user=users["tester"], cycle_report=selection)

    assert sorted(s.key for s in drawn) == ["S004", "S011"]
