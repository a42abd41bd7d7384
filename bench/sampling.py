"""Time sample selection on a large population: stratified must take under 0.5 s.

    .venv/bin/python bench/sampling.py [--rows 1000000] [--strata 30] [--size 200] [--csv PATH]

Builds the population in memory (or reads --csv), timing that apart from the
draws, then times each draw as the best of --repeat runs and prints the
process's peak memory. Exits 1 if the stratified draw misses its budget.
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cycles.sampling import select_random, select_risk_based, select_stratified, with_row_index  # noqa: E402

BUDGET_SECONDS = 0.5


def build_population(rows: int, strata: int) -> pl.DataFrame:
    """A transactions-like file whose regions have very unequal sizes, one of them tiny."""
    rng = np.random.default_rng(20240601)
    weights = 1.0 / np.arange(1, strata + 1)
    weights /= weights.sum()
    region = rng.choice(strata, size=rows, p=weights)
    region[rng.choice(rows, size=3, replace=False)] = strata  # a stratum of three rows
    names = np.array([f"R{i:02d}" for i in range(strata + 1)])
    return pl.DataFrame(
        {
            "transaction_id": np.char.add("TX", np.arange(rows).astype(str)),
            "region": names[region],
            "amount": np.round(rng.lognormal(7, 1.5, rows), 2),
            "booked_on": np.datetime64("2024-01-01") + rng.integers(0, 366, rows).astype("timedelta64[D]"),
            "approved": rng.random(rows) > 0.01,
        }
    )


def best_of(repeat: int, draw) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = draw()
        best = min(best, time.perf_counter() - start)
    return best, result


def peak_mib() -> float:
    # ru_maxrss is KiB on Linux, bytes on macOS.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--strata", type=int, default=30)
    parser.add_argument("--size", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--csv", type=Path, help="read the population from this CSV instead of building it")
    parser.add_argument("--stratify-by", default="region")
    args = parser.parse_args()

    start = time.perf_counter()
    if args.csv:
        df = pl.read_csv(args.csv)
        source = str(args.csv)
    else:
        df = build_population(args.rows, args.strata)
        source = "generated in memory"
    df = with_row_index(df)
    load_seconds = time.perf_counter() - start
    strata = df[args.stratify_by].n_unique()
    print(f"population: {df.height:,} rows, {strata} strata of {args.stratify_by!r} ({source})")
    print(f"load: {load_seconds:.3f} s, peak memory after load {peak_mib():.0f} MiB")

    stratified_seconds, stratified = best_of(
        args.repeat,
        lambda: select_stratified(df, size=args.size, stratify_by=args.stratify_by, seed=42, key_column=None),
    )
    random_seconds, _ = best_of(args.repeat, lambda: select_random(df, size=args.size, seed=42))
    risk_seconds, _ = (
        best_of(args.repeat, lambda: select_risk_based(df, size=args.size, by_column="amount"))
        if "amount" in df.columns
        else (float("nan"), None)
    )
    smallest = min(stratified.allocation, key=lambda a: a.population)
    print(
        f"stratified (size {args.size}): {stratified_seconds:.3f} s best of {args.repeat}; "
        f"{len(stratified.samples)} samples, smallest stratum {smallest.stratum} "
        f"{smallest.population} rows -> {smallest.allocated}"
    )
    print(f"random (size {args.size}): {random_seconds:.3f} s best of {args.repeat}")
    print(f"risk-based largest {args.size} by amount: {risk_seconds:.3f} s best of {args.repeat}")
    print(f"peak memory: {peak_mib():.0f} MiB")
    passed = stratified_seconds < BUDGET_SECONDS
    print(f"{'PASS' if passed else 'FAIL'}: stratified draw {stratified_seconds:.3f} s vs budget {BUDGET_SECONDS} s")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
