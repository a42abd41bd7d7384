"""Benchmark of population profiling: our engine against the same statistics in plain polars.

    .venv/bin/python bench/profiling.py [--rows 1000000,10000000] [--cols 20] [--runs 3] [--no-rules]

Generates (once, deterministically, under $BENCH_OUT, by default
/tmp/synapse-bench) a CSV of mixed columns with nulls and bad values, then
profiles it with the validation rules, as Data Profiling does
(cycles.profiling.rules.profile_with_rules), each run in a fresh child process
so that its peak resident memory is its own.

At 1M rows it also runs a plain polars baseline computing the same statistics
(one streaming group-by per column over one scan) and the same rule failure
counts, checks both agree, and prints the ratio of times. At 10M rows it
prints the engine's time and peak memory (the baseline needs several GiB
there; --baseline runs it anyway). Each figure is printed against its target
with PASS/FAIL, with the machine's load average, and the exit status is
non-zero when a target is missed: at 1M rows under 3 s, under 1 GiB and at
most 1.2x plain polars; at 10M rows under 8 s and under 1.5 GiB. The 10M-row
file (1.3 GB) is deleted after its run unless --keep.

Columns with more than cycles.profiling.scan.COUNTED_MAX distinct values have
no top values in the engine (it counts them by hashes); the baseline leaves
theirs out too, so the statistics compared are the same.

Needs polars and numpy, not Django.
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parent.parent
OUT = Path(os.environ.get("BENCH_OUT", "/tmp/synapse-bench"))
SEED = 20260701
GENERATOR_VERSION = 1

TARGET_SECONDS = 3.0
TARGET_PEAK_BYTES = 1024**3
TARGET_RATIO = 1.2

# (column name, data type); more columns than these repeat them with a suffix.
COLUMNS = [
    ("account_id", "integer"),
    ("customer_id", "integer"),
    ("branch", "integer"),
    ("customer_name", "string"),
    ("city", "string"),
    ("state", "string"),
    ("product", "string"),
    ("balance", "decimal"),
    ("rate", "decimal"),
    ("credit_limit", "integer"),
    ("origination_date", "date"),
    ("maturity_date", "date"),
    ("is_delinquent", "boolean"),
    ("fico", "integer"),
    ("ltv", "decimal"),
    ("segment", "string"),
    ("officer", "string"),
    ("days_past_due", "integer"),
    ("collateral", "decimal"),
    ("is_secured", "boolean"),
]
CITIES = ["Austin", "Boston", "Chicago", "Denver", "El Paso", "Fresno", "Glendale", "Houston", "Irvine", "Jackson"]
TRUE_WORDS = ("true", "t", "yes", "y", "1")
FALSE_WORDS = ("false", "f", "no", "n", "0")


def column_specs(cols: int) -> list[tuple[str, str]]:
    specs = []
    for i in range(cols):
        name, data_type = COLUMNS[i % len(COLUMNS)]
        specs.append((name if i < len(COLUMNS) else f"{name}_{i // len(COLUMNS)}", data_type))
    return specs


# -- the file -----------------------------------------------------------------


def _column(kind: str, rows: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "account_id":
        return np.arange(1, rows + 1).astype(str)
    if kind == "customer_id":
        return rng.integers(100_000, 999_999, rows).astype(str)
    if kind == "branch":
        return rng.integers(1, 500, rows).astype(str)
    if kind == "customer_name":
        return np.char.add("Cust ", rng.integers(0, rows, rows).astype(str))
    if kind == "city":
        return np.array(CITIES)[rng.integers(0, len(CITIES), rows)]
    if kind == "state":
        return np.array(["TX", "MA", "IL", "CO", "CA"])[rng.integers(0, 5, rows)]
    if kind == "product":
        return np.array(["MORTGAGE", "AUTO", "CARD", "HELOC"])[rng.integers(0, 4, rows)]
    if kind == "balance":
        return np.round(rng.gamma(2.0, 5000, rows), 2).astype(str)
    if kind == "rate":
        return np.round(rng.uniform(0.01, 0.25, rows), 4).astype(str)
    if kind == "credit_limit":
        return (rng.integers(1, 100, rows) * 1000).astype(str)
    if kind in ("origination_date", "maturity_date"):
        start = np.datetime64("2015-01-01" if kind == "origination_date" else "2025-01-01")
        return (start + rng.integers(0, 3650, rows).astype("timedelta64[D]")).astype(str)
    if kind == "is_delinquent":
        return np.array(["false", "true"])[(rng.random(rows) < 0.07).astype(int)]
    if kind == "fico":
        return rng.integers(300, 850, rows).astype(str)
    if kind == "ltv":
        return np.round(rng.uniform(0.2, 1.2, rows), 3).astype(str)
    if kind == "segment":
        return np.array(["RETAIL", "SMB", "PRIVATE"])[rng.integers(0, 3, rows)]
    if kind == "officer":
        return np.char.add("OFF", rng.integers(0, 2000, rows).astype(str))
    if kind == "days_past_due":
        return rng.integers(0, 120, rows).astype(str)
    if kind == "collateral":
        return np.round(rng.gamma(2.0, 20000, rows), 0).astype(str)
    if kind == "is_secured":
        return np.array(["Y", "N"])[rng.integers(0, 2, rows)]
    raise ValueError(kind)


# Share of empty cells, and a bad value planted in 0.1% of rows, per kind of column.
NULL_SHARE = {"customer_id": 0.01, "balance": 0.02, "origination_date": 0.005, "city": 0.03, "fico": 0.01}
BAD_VALUE = {"fico": "abc", "origination_date": "2024-02-30", "balance": "n/a", "is_delinquent": "maybe"}


def generate(rows: int, cols: int) -> Path:
    """The benchmark CSV, written once per size and reused."""
    OUT.mkdir(parents=True, exist_ok=True)
    ignore = OUT / ".gitignore"
    if not ignore.exists():
        ignore.write_text("*\n")  # generated data never goes into git
    path = OUT / f"population_{rows}x{cols}_v{GENERATOR_VERSION}.csv"
    if path.exists():
        return path
    rng = np.random.default_rng(SEED)
    data = {}
    for i, (name, _) in enumerate(column_specs(cols)):
        kind = COLUMNS[i % len(COLUMNS)][0]
        series = pl.Series(name, _column(kind, rows, rng))
        if kind in NULL_SHARE:
            series = series.scatter(np.flatnonzero(rng.random(rows) < NULL_SHARE[kind]), None)
        if kind in BAD_VALUE:
            series = series.scatter(np.flatnonzero(rng.random(rows) < 0.001), BAD_VALUE[kind])
        data[name] = series
    partial = path.with_suffix(".partial")
    pl.DataFrame(data).write_csv(partial)
    partial.rename(path)
    return path


# -- what the children run ---------------------------------------------------------


def _text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    if isinstance(value, datetime.date):
        return value.isoformat()
    return str(value)


# The validation rules profiled with the statistics (Data Profiling's rules): (column, kind, params).
RULES = [
    ("fico", "range", {"min": 300, "max": 850}),
    ("ltv", "range", {"min": 0, "max": 150}),
    ("state", "allowed_values", {"values": ["TX", "CA", "NY", "FL", "IL", "WA", "MA", "CO", "GA", "NC"]}),
    ("account_id", "not_null", {}),
    ("balance", "range", {"min": 0, "max": None}),
    # Broken by about a quarter of the rows, so example rows are looked up too.
    ("days_past_due", "range", {"min": 0, "max": 90}),
]


def _rule_specs(specs: list[tuple[str, str]]):
    from cycles.profiling.rules import RuleSpec

    types = dict(specs)
    return [RuleSpec(id=i, kind=kind, column=column, data_type=types[column], params=params)
            for i, (column, kind, params) in enumerate(RULES) if column in types]


def run_engine(path: Path, specs: list[tuple[str, str]], rules: bool = False) -> dict:
    from cycles.profiling.engine import ColumnExpectation
    from cycles.profiling.rules import profile_with_rules

    expectations = {name: ColumnExpectation(data_type=data_type) for name, data_type in specs}
    # Statistics and rule failures in one pass over the file, as Data Profiling does.
    profiles, outcomes = profile_with_rules(path, "csv", expectations, _rule_specs(specs) if rules else [])
    failing = {str(rule_id): outcome.failing for rule_id, outcome in outcomes.items()}
    return {"__rules__": failing} | {
        p.name: {
            "nulls": p.null_count,
            "distinct": p.distinct_count,
            "min": p.min_value,
            "max": p.max_value,
            "violations": p.format_violations,
            "top": [[t["value"], t["count"]] for t in p.top_values],
        }
        for p in profiles
    }


def _baseline_parse(value: pl.Expr, data_type: str) -> pl.Expr:
    if data_type == "integer":
        return value.cast(pl.Int64, strict=False)
    if data_type == "decimal":
        number = value.cast(pl.Float64, strict=False)
        return pl.when(number.is_finite()).then(number)
    if data_type == "date":
        return value.str.to_date("%Y-%m-%d", strict=False)
    if data_type == "boolean":
        lower = value.str.to_lowercase()
        return pl.when(lower.is_in(TRUE_WORDS)).then(True).when(lower.is_in(FALSE_WORDS)).then(False)
    return value


def _baseline_rules(path: Path, specs: list[tuple[str, str]]) -> dict:
    """The rules' failing row counts in plain polars: one pass, a sum per rule."""
    types = dict(specs)
    lazy = pl.scan_csv(path, infer_schema=False)
    sums = []
    for i, (column, kind, params) in enumerate(RULES):
        if column not in types:
            continue
        text = pl.col(column).str.strip_chars()
        empty = pl.col(column).is_null() | (text == "")
        if kind == "not_null":
            fails = empty
        elif kind == "allowed_values":
            fails = ~empty & ~text.is_in(params["values"])
        else:
            number = text.str.replace_all(",", "").cast(pl.Float64, strict=False)
            number = pl.when(number.is_finite()).then(number)
            fails = pl.lit(False)
            if params.get("min") is not None:
                fails = fails | (number < params["min"])
            if params.get("max") is not None:
                fails = fails | (number > params["max"])
            fails = fails.fill_null(False)
        sums.append(fails.sum().alias(str(i)))
    return {k: int(v) for k, v in lazy.select(sums).collect(engine="streaming").row(0, named=True).items()}


# The engine's exact tally limit (cycles.profiling.scan.COUNTED_MAX), here without importing it.
COUNTED_MAX = 50_000


def run_baseline(path: Path, specs: list[tuple[str, str]], rules: bool = False) -> dict:
    """The same statistics written directly in polars, with the column types known in advance.

    It takes the fastest route we know: one streaming group-by per column over
    a single scan, then every statistic over the distinct values.
    """
    lazy = pl.scan_csv(path, infer_schema=False)
    counts = pl.collect_all(
        [lazy.select(pl.col(name).alias("value")).group_by("value").agg(pl.len().alias("count")) for name, _ in specs],
        engine="streaming",
    )
    rows = counts[0]["count"].sum()
    result = {}
    for (name, data_type), frame in zip(specs, counts):
        value = pl.col("value")
        typed = _baseline_parse(value, data_type)
        stats = (
            frame.lazy()
            .filter(value.is_not_null() & (value.str.len_bytes() > 0))
            .select(
                (rows - pl.col("count").sum()).alias("nulls"),
                pl.len().alias("distinct"),
                typed.min().alias("min"),
                typed.max().alias("max"),
                (pl.col("count").filter(typed.is_null()).sum() if data_type != "string" else pl.lit(0)).alias(
                    "violations"
                ),
                pl.struct("value", "count")
                .top_k_by(["count", "value"], 5, reverse=[False, True])
                .implode()
                .alias("top"),
            )
            .collect()
            .row(0, named=True)
        )
        top = sorted(((t["value"], t["count"]) for t in stats["top"]), key=lambda t: (-t[1], t[0]))
        if stats["distinct"] > COUNTED_MAX:
            top = []  # the engine gives none past its exact tally
        result[name] = {
            "nulls": stats["nulls"],
            "distinct": stats["distinct"],
            "min": _text(stats["min"]),
            "max": _text(stats["max"]),
            "violations": stats["violations"],
            "top": [list(t) for t in top],
        }
    return {"__rules__": _baseline_rules(path, specs) if rules else {}} | result


def child(which: str, path: Path, cols: int, rules: bool = False) -> None:
    specs = column_specs(cols)
    if which == "engine":
        # Imported before the clock starts, as polars is for the baseline.
        sys.path.insert(0, str(ROOT))
        import cycles.profiling.rules  # noqa: F401
    runner = run_engine if which == "engine" else run_baseline
    started, cpu_started = time.perf_counter(), time.process_time()
    stats = runner(path, specs, rules)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    json.dump({"seconds": seconds, "cpu_seconds": cpu_seconds, "peak_bytes": _peak_bytes(), "stats": stats}, sys.stdout)


def _peak_bytes() -> int:
    """This process's peak resident memory.

    VmHWM where Linux has it: ru_maxrss also counts the parent's resident
    memory at the moment it started this child (the parent may hold a whole
    generated population then).
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# -- the parent ----------------------------------------------------------------------


def run_child(which: str, path: Path, cols: int, rules: bool = False) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--child", which, "--path", str(path), "--cols", str(cols)]
        + (["--rules"] if rules else []),
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout)


def measure(path: Path, cols: int, runs: int, rules: bool = False, sides=("engine", "baseline")) -> dict[str, dict]:
    """Best time and highest peak of each side; runs alternate so both meet the same machine load."""
    best: dict[str, dict] = {}
    for _ in range(runs):
        for which in sides:
            result = run_child(which, path, cols, rules)
            if which not in best:
                best[which] = result
            else:
                best[which]["seconds"] = min(best[which]["seconds"], result["seconds"])
                best[which]["cpu_seconds"] = min(best[which]["cpu_seconds"], result["cpu_seconds"])
                best[which]["peak_bytes"] = max(best[which]["peak_bytes"], result["peak_bytes"])
    return best


# Past COUNTED_MAX distinct values the engine estimates the distinct count (HyperLogLog, about 0.8%
# standard error); the comparison allows 2% there and asks every other figure to be equal.
DISTINCT_TOLERANCE = 0.02


def same_statistics(ours: dict, theirs: dict) -> bool:
    if ours.keys() != theirs.keys():
        return False
    for name, stats in ours.items():
        other = theirs[name]
        if name == "__rules__" or other.get("distinct", 0) <= COUNTED_MAX:
            if stats != other:
                return False
            continue
        if {k: v for k, v in stats.items() if k != "distinct"} != {k: v for k, v in other.items() if k != "distinct"}:
            return False
        if abs(stats["distinct"] - other["distinct"]) > DISTINCT_TOLERANCE * other["distinct"]:
            return False
    return True


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


# Per size: (time limit, peak memory limit); the ratio to plain polars is checked at 1M rows.
TARGETS = {1_000_000: (TARGET_SECONDS, TARGET_PEAK_BYTES), 10_000_000: (8.0, 1.5 * 1024**3)}


def report(rows: int, cols: int, runs: int, rules: bool, keep: bool, baseline: bool) -> bool:
    started = time.perf_counter()
    path = generate(rows, cols)
    generated = time.perf_counter() - started
    compare = baseline or rows <= 1_000_000
    load_before = os.getloadavg()
    measured = measure(path, cols, runs, rules, ("engine", "baseline") if compare else ("engine",))
    load_after = os.getloadavg()
    ours = measured["engine"]
    seconds_target, peak_target = TARGETS.get(rows, (TARGET_SECONDS, TARGET_PEAK_BYTES))
    checks = {"time": ours["seconds"] < seconds_target, "memory": ours["peak_bytes"] < peak_target}
    mib = 1024 * 1024
    print(f"rows            {rows:,}")
    print(f"cols            {cols}   rules {len(RULES) if rules else 0}")
    print(f"file            {path.stat().st_size / 1e6:.1f} MB  {path}  ({generated:.1f} s to get)")
    print(f"cpus            {os.cpu_count()}, load average {' '.join(f'{x:.2f}' for x in load_before)} before, "
          f"{' '.join(f'{x:.2f}' for x in load_after)} after")
    print(f"engine          {ours['seconds']:.3f} s   best of {runs}   target < {seconds_target:g} s  "
          f"{verdict(checks['time'])}   (cpu {ours['cpu_seconds']:.2f} s)")
    print(f"peak memory     {ours['peak_bytes'] / mib:.0f} MiB   target < {peak_target / mib:.0f} MiB  "
          f"{verdict(checks['memory'])}")
    if compare:
        theirs = measured["baseline"]
        ratio = ours["seconds"] / theirs["seconds"]
        agree = same_statistics(ours["stats"], theirs["stats"])
        if rows == 1_000_000:
            checks["ratio"] = ratio <= TARGET_RATIO
        checks["same"] = agree
        print(f"baseline        {theirs['seconds']:.3f} s   best of {runs}   (plain polars, same statistics; "
              f"cpu {theirs['cpu_seconds']:.2f} s; peak {theirs['peak_bytes'] / mib:.0f} MiB)")
        print(f"ratio           {ratio:.2f}      target <= {TARGET_RATIO}"
              f"{'  ' + verdict(checks['ratio']) if 'ratio' in checks else ' (checked at 1M rows)'}"
              f"   (cpu ratio {ours['cpu_seconds'] / theirs['cpu_seconds']:.2f})")
        print(f"same statistics {'yes' if agree else 'NO'}      {verdict(agree)}   "
              f"(distinct counts past {COUNTED_MAX:,} values within {DISTINCT_TOLERANCE:.0%})")
        if not agree:
            for name in ours["stats"]:
                if ours["stats"][name] != theirs["stats"].get(name):
                    print(f"  {name}: engine {ours['stats'][name]} != baseline {theirs['stats'].get(name)}")
    print("PASS" if all(checks.values()) else "FAIL")
    print()
    if not keep and rows >= 10_000_000:
        path.unlink()  # 1.3 GB: regenerated (deterministically) when needed again
    return all(checks.values())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=str, default="1000000,10000000",
                        help="comma-separated population sizes; each is reported")
    parser.add_argument("--cols", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3, help="runs of each side; the best time counts")
    parser.add_argument("--no-rules", action="store_true", help="statistics only, no validation rules")
    parser.add_argument("--keep", action="store_true", help="keep the 10M-row file")
    parser.add_argument("--baseline", action="store_true", help="run the plain polars baseline at every size")
    parser.add_argument("--child", choices=["engine", "baseline"], help=argparse.SUPPRESS)
    parser.add_argument("--rules", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--path", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.path, args.cols, args.rules)
        return 0
    sizes = [int(size.replace("_", "")) for size in args.rows.split(",") if size.strip()]
    results = [report(rows, args.cols, args.runs, not args.no_rules, args.keep, args.baseline) for rows in sizes]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
