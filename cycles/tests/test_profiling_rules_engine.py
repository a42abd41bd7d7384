"""The rules engine judges single-column rules over distinct values: it must agree with judging every row."""
import random

import polars as pl
import pytest

from cycles.profiling import ColumnExpectation, profile_population
from cycles.profiling.rules import (
    ROW_NUMBER,
    RuleOutcome,
    RuleSpec,
    evaluate_rules,
    failing,
    profile_with_rules,
)

SPECS = [
    RuleSpec(id=1, kind="range", column="amount", data_type="decimal", params={"min": 0, "max": 500}),
    RuleSpec(id=2, kind="allowed_values", column="state", params={"values": ["TX", "CA"]}),
    RuleSpec(id=3, kind="pattern", column="code", params={"regex": "[A-Z]{2}[0-9]"}),
    RuleSpec(id=4, kind="not_null", column="code"),
    RuleSpec(id=5, kind="unique", column="key"),
    RuleSpec(id=6, kind="compare", column="amount", data_type="decimal", params={"op": "<=", "other": "limit"},
             other_column="limit", other_data_type="decimal"),
    RuleSpec(id=7, kind="range", column="opened", data_type="date", params={"min": "2020-01-01"},
             date_format="%Y-%m-%d"),
    RuleSpec(id=8, kind="range", column="missing_column", data_type="decimal", params={"min": 0}),
]


def _population(seed: int, rows: int = 400) -> pl.DataFrame:
    rng = random.Random(seed)

    def pick(*choices):
        return rng.choice(choices)

    return pl.DataFrame({
        "key": [pick(str(i), f" {i % 50}", f"{i % 50}", "", None) for i in range(rows)],
        "amount": [pick(str(rng.randint(-50, 700)), "1,250.5", "abc", "", None, "NaN") for _ in range(rows)],
        "limit": [pick(str(rng.randint(0, 600)), "", "x") for _ in range(rows)],
        "state": [pick("TX", "CA", " TX", "XX", "", None) for _ in range(rows)],
        "code": [pick("AB1", "ab1", "ZZ9 ", "", None, "AB12") for _ in range(rows)],
        "opened": [pick("2019-05-01", "2021-02-03", "2024-02-30", "", None) for _ in range(rows)],
    }, schema={name: pl.String for name in ("key", "amount", "limit", "state", "code", "opened")})


def _row_by_row(frame: pl.DataFrame, specs: list[RuleSpec]) -> dict[int, RuleOutcome]:
    """Every rule's mask evaluated on every row, the plain way."""
    numbered = frame.with_row_index(ROW_NUMBER, offset=1)
    outcomes = {}
    for spec in specs:
        if spec.column not in frame.columns:
            continue
        hits = numbered.filter(failing(spec, dict(frame.schema)))[ROW_NUMBER]
        outcomes[spec.id] = RuleOutcome(failing=hits.len(), examples=hits.head(5).to_list())
    return outcomes


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_rules_over_distinct_values_agree_with_every_row(seed):
    frame = _population(seed)
    expected = _row_by_row(frame, SPECS)
    assert all(outcome.failing for outcome in expected.values())  # every kind of rule is exercised
    assert evaluate_rules(frame.lazy(), SPECS) == expected


@pytest.mark.parametrize("seed", [7, 8])
def test_profile_with_rules_gives_the_profile_and_the_same_failures(tmp_path, seed):
    frame = _population(seed)
    path = tmp_path / "population.csv"
    frame.write_csv(path)
    expectations = {"amount": ColumnExpectation("decimal"), "key": ColumnExpectation("string", True, True)}

    profiles, outcomes = profile_with_rules(path, "csv", expectations, SPECS)

    assert profiles == profile_population(path, "csv", expectations)
    # The CSV reads empty cells as missing: judge the same file row by row.
    assert outcomes == _row_by_row(pl.read_csv(path, infer_schema=False), SPECS)


def test_a_rule_that_no_row_breaks_has_no_examples():
    frame = pl.DataFrame({"amount": ["1", "2", None]})
    spec = RuleSpec(id=1, kind="range", column="amount", data_type="integer", params={"min": 0})
    assert evaluate_rules(frame.lazy(), [spec]) == {1: RuleOutcome(failing=0, examples=[])}


def test_categorical_columns_are_judged_by_their_text():
    frame = pl.DataFrame({"state": ["TX", "XX", "TX", "XX"]}, schema={"state": pl.Categorical})
    spec = RuleSpec(id=1, kind="allowed_values", column="state", params={"values": ["TX"]})
    assert evaluate_rules(frame.lazy(), [spec]) == {1: RuleOutcome(failing=2, examples=[2, 4])}
