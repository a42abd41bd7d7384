"""Drawing samples: seeded reproducibility, stratified proportions, risk-based and manual picks."""
import datetime as dt
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import polars as pl
import pytest

from cycles.sampling import (
    MANUAL,
    RANDOM,
    RISK_BASED,
    ROW_INDEX_COLUMN,
    STRATIFIED,
    allocate_proportional,
    combine,
    new_seed,
    select_manual,
    select_random,
    select_risk_based,
    select_stratified,
    with_row_index,
)

REPO = Path(__file__).resolve().parents[2]


def population(rows=1000):
    """Rows T0000.. with regions EU/US/APAC in 70/20/10% spread through the file."""
    pattern = ["EU"] * 7 + ["US"] * 2 + ["APAC"]
    return pl.DataFrame(
        {
            "id": [f"T{i:04d}" for i in range(rows)],
            "region": [pattern[(i * 3) % 10] for i in range(rows)],
            "amount": [float((i * 7919) % 1000) for i in range(rows)],
        }
    )


def keys(selection):
    return [s.sample_key for s in selection.samples]


def test_same_seed_same_file_same_samples():
    df = population()

    first = select_random(df, size=25, seed=20240601, key_column="id")
    again = select_random(population(), size=25, seed=20240601, key_column="id")

    assert keys(first) == keys(again)
    assert len(set(keys(first))) == 25
    assert first.seed == 20240601
    assert first.method == RANDOM


def test_another_seed_draws_other_samples():
    df = population()

    assert set(keys(select_random(df, size=25, seed=1))) != set(keys(select_random(df, size=25, seed=2)))


def test_random_draw_follows_the_splitmix64_reference_stream():
    # SplitMix64 seeded with 1234567 first outputs 6457827717110365317,
    # 3203168211198807973, 9817491932198370423, 4593380528125082431,
    # 16408922859458223821 (the reference implementation's test vector);
    # rows are drawn in ascending order of their output.
    df = pl.DataFrame({"x": list("abcde")})

    assert select_random(df, size=5, seed=1234567).row_indices == [1, 3, 0, 2, 4]


def test_draw_keys_on_file_rows_not_memory_order():
    df = with_row_index(population())
    shuffled = df.sample(fraction=1.0, shuffle=True, seed=3)

    drawn = select_random(df, size=20, seed=9, key_column="id")
    redrawn = select_random(shuffled, size=20, seed=9, key_column="id")

    assert keys(redrawn) == keys(drawn)
    assert redrawn.row_indices == drawn.row_indices


def test_a_larger_sample_with_the_same_seed_contains_the_smaller():
    df = population()

    small = select_random(df, size=10, seed=77).row_indices
    large = select_random(df, size=30, seed=77).row_indices

    assert large[:10] == small


def test_draws_do_not_depend_on_the_polars_thread_count():
    script = (
        "import json, polars as pl\n"
        "from cycles.tests.test_sample_selection import population\n"
        "from cycles.sampling import select_random, select_stratified\n"
        "df = population(50000)\n"
        "print(json.dumps([select_random(df, size=40, seed=5).row_indices,"
        " select_stratified(df, size=40, stratify_by='region', seed=5).row_indices,"
        " pl.thread_pool_size()]))\n"
    )
    env = {**os.environ, "POLARS_MAX_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True, check=True
    )
    single_random, single_stratified, threads = json.loads(out.stdout)
    df = population(50000)

    assert threads == 1
    assert single_random == select_random(df, size=40, seed=5).row_indices
    assert single_stratified == select_stratified(df, size=40, stratify_by="region", seed=5).row_indices


def test_stratified_allocation_is_proportional():
    df = population()

    selection = select_stratified(df, size=100, stratify_by="region", seed=11, key_column="id")

    assert {a.stratum: (a.population, a.allocated) for a in selection.allocation} == {
        "APAC": (100, 10),
        "EU": (700, 70),
        "US": (200, 20),
    }
    assert Counter(s.stratum for s in selection.samples) == {"EU": 70, "US": 20, "APAC": 10}
    assert all(s.row["region"] == s.stratum for s in selection.samples)
    assert all(s.method == STRATIFIED for s in selection.samples)
    assert len({s.row_index for s in selection.samples}) == 100


def test_stratified_draw_is_reproducible_and_seed_dependent():
    df = population()

    first = select_stratified(df, size=30, stratify_by="region", seed=4)
    again = select_stratified(df, size=30, stratify_by="region", seed=4)
    other = select_stratified(df, size=30, stratify_by="region", seed=5)

    assert first.row_indices == again.row_indices
    assert set(first.row_indices) != set(other.row_indices)


def test_minimum_per_stratum_lifts_a_tiny_stratum_and_the_total_stays():
    df = pl.DataFrame({"kind": ["big"] * 900 + ["mid"] * 97 + ["tiny"] * 3})

    selection = select_stratified(df, size=50, stratify_by="kind", seed=8, min_per_stratum=5)

    # tiny gives all 3 rows; mid's 4.85 rises to the minimum 5; big takes the rest.
    assert {a.stratum: a.allocated for a in selection.allocation} == {"big": 42, "mid": 5, "tiny": 3}
    assert len(selection.samples) == 50


def test_largest_remainder_keeps_the_total():
    # Equal remainders go to the earlier stratum.
    assert allocate_proportional(counts=[100, 100, 100], size=7, min_per_stratum=0) == [3, 2, 2]
    # Shares 4.5, 2.7, 1.8: the two spare units go to the largest remainders, .8 and .7.
    assert allocate_proportional(counts=[50, 30, 20], size=9, min_per_stratum=0) == [4, 3, 2]
    assert sum(allocate_proportional(counts=[501, 333, 166], size=13)) == 13


def test_empty_values_form_their_own_stratum():
    df = pl.DataFrame({"branch": ["A"] * 60 + [None] * 40})

    selection = select_stratified(df, size=10, stratify_by="branch", seed=1)

    assert {a.stratum: a.allocated for a in selection.allocation} == {"A": 6, None: 4}
    assert "branch=(empty)" in next(s.detail for s in selection.samples if s.stratum is None)


def test_too_small_a_size_for_the_strata_says_by_how_much():
    df = pl.DataFrame({"region": list("ABCDEFG") * 10})

    with pytest.raises(ValueError, match=r"7 strata.*raise the size by 2 to 7"):
        select_stratified(df, size=5, stratify_by="region", seed=1)


def test_a_negative_minimum_per_stratum_is_refused():
    with pytest.raises(ValueError, match="minimum per stratum"):
        allocate_proportional(counts=[10, 10], size=5, min_per_stratum=-1)


def test_stratifying_by_a_missing_column_is_refused():
    with pytest.raises(ValueError, match="'country' is not in the population"):
        select_stratified(population(), size=10, stratify_by="country", seed=1)


def test_a_size_covering_the_population_takes_every_row():
    df = population(30)

    assert sorted(select_stratified(df, size=50, stratify_by="region", seed=1).row_indices) == list(range(30))
    assert sorted(select_random(df, size=50, seed=1).row_indices) == list(range(30))


@pytest.mark.parametrize("seed", [-1, 2**63, True, 1.5])
def test_seed_must_fit_a_bigint(seed):
    with pytest.raises(ValueError, match="seed"):
        select_random(population(), size=5, seed=seed)


def test_new_seed_fits_a_bigint():
    seed = new_seed()

    assert 0 <= seed < 2**63
    select_random(population(), size=1, seed=seed)


def test_risk_based_picks_the_largest_with_ties_to_the_earlier_row():
    df = pl.DataFrame({"id": list("abcdef"), "amount": [5.0, 9.0, None, 9.0, float("nan"), 7.0]})

    selection = select_risk_based(df, size=3, by_column="amount", key_column="id")

    assert keys(selection) == ["b", "d", "f"]
    assert selection.samples[0].detail == "rank 1 by amount (9.0)"
    assert all(s.method == RISK_BASED for s in selection.samples)


def test_risk_based_breaks_ties_by_file_row_not_memory_order():
    df = with_row_index(pl.DataFrame({"id": list("abcd"), "amount": [3, 9, 9, 1]})).reverse()

    assert keys(select_risk_based(df, size=2, by_column="amount", key_column="id")) == ["b", "c"]
    assert keys(select_risk_based(df, flagged_mask=pl.col("amount") > 2, key_column="id")) == ["a", "b", "c"]


def test_risk_based_takes_flagged_rows_in_file_order():
    df = population(20)

    flagged = select_risk_based(df, flagged_mask=pl.col("amount") > 800, key_column="id")
    as_list = select_risk_based(df, flagged_mask=[a > 800 for a in df["amount"]], size=2)

    expected = [i for i, a in enumerate(df["amount"]) if a > 800]
    assert flagged.row_indices == expected
    assert as_list.row_indices == expected[:2]


def test_risk_based_ranks_within_the_flagged_rows():
    df = pl.DataFrame({"amount": [100, 50, 90, 10], "failed_rule": [False, True, True, True]})

    selection = select_risk_based(df, size=2, by_column="amount", flagged_mask=pl.col("failed_rule"))

    assert selection.row_indices == [2, 1]


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(size=3), "Say which rows are risky"),
        (dict(by_column="amount"), "how many"),
        (dict(size=3, by_column="id"), "not numbers"),
        (dict(size=3, flagged_mask=[True, False]), "cover 2 rows"),
        (dict(size=3, flagged_mask=pl.col("amount")), "true/false"),
    ],
)
def test_risk_based_refuses_unclear_requests(kwargs, message):
    with pytest.raises(ValueError, match=message):
        select_risk_based(population(10), **kwargs)


def test_manual_picks_by_key_and_by_row_number():
    df = population()

    by_key = select_manual(df, keys=["T0042", "T0007", "T0042"], key_column="id", reason="large manual entries")
    by_row = select_manual(df, keys=[4, "6"])  # row numbers count from 1

    assert keys(by_key) == ["T0042", "T0007"]
    assert by_key.samples[0].detail == "picked by hand: large manual entries"
    assert by_key.samples[0].method == MANUAL
    assert by_row.row_indices == [3, 5]


def test_manual_lists_unknown_keys():
    with pytest.raises(ValueError, match="2 picked id values are not in the population: X1, X2"):
        select_manual(population(), keys=["T0001", "X1", "X2"], key_column="id")


def test_manual_refuses_a_key_that_matches_several_rows():
    with pytest.raises(ValueError, match="region doesn't identify one row: EU"):
        select_manual(population(), keys=["EU"], key_column="region")


def test_combine_keeps_the_first_method_for_a_row_chosen_twice():
    df = population()
    risky = select_risk_based(df, size=5, by_column="amount")
    manual = select_manual(df, keys=[risky.row_indices[0] + 1, 501])

    merged = combine(risky, manual)

    assert [s.row_index for s in merged] == risky.row_indices + [500]
    assert [s.method for s in merged] == [RISK_BASED] * 5 + [MANUAL]


def test_samples_keep_their_row_data_ready_for_json():
    df = with_row_index(
        pl.DataFrame(
            {
                "id": ["a", "b"],
                "booked_on": [dt.date(2024, 3, 31), dt.date(2024, 4, 1)],
                "rate": [float("nan"), 1.5],
            }
        )
    )

    sample = select_manual(df, keys=["a"], key_column="id").samples[0]

    assert sample.row == {"id": "a", "booked_on": "2024-03-31", "rate": None}
    assert ROW_INDEX_COLUMN not in sample.row
    json.dumps(sample.row)
