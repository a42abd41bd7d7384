"""Drawing samples from a population file held as a polars DataFrame.

Pure functions (no Django). Every draw works on row numbers and converts only
the chosen rows to dicts, so a draw from a million rows costs a few vectorised
passes, not a Python loop over rows.

Random order comes from SplitMix64 (Steele, Lea and Flood, 2014), written out
here rather than taken from numpy: numpy does not promise that a Generator's
stream stays the same across releases (NEP 19), and an auditor must be able to
redraw a sample from its recorded seed years later. Row r gets the r-th output
of SplitMix64 seeded with the seed; a random sample of size n is the n rows
with the smallest outputs. SplitMix64's mixing step is a bijection, so no two
rows tie, the result does not depend on thread count or row order in memory,
and a larger sample with the same seed contains the smaller one.
"""
from __future__ import annotations

import datetime as dt
import math
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np
import polars as pl

__all__ = [
    "MANUAL",
    "RANDOM",
    "RISK_BASED",
    "ROW_INDEX_COLUMN",
    "STRATIFIED",
    "SelectedSample",
    "Selection",
    "StratumAllocation",
    "allocate_proportional",
    "combine",
    "new_seed",
    "select_manual",
    "select_random",
    "select_risk_based",
    "select_stratified",
    "with_row_index",
]

RANDOM = "random"
STRATIFIED = "stratified"
RISK_BASED = "risk_based"
MANUAL = "manual"

# The row's 0-based position in the population file. The loader may add it;
# otherwise the position in the DataFrame is used. Seeded draws key on it, so a
# DataFrame filtered after loading still draws by file row.
ROW_INDEX_COLUMN = "_row_index"

# Seeds are stored in a signed 64-bit column.
MAX_SEED = 2**63 - 1
# More values than this means the column is an identifier, not a category.
MAX_STRATA = 10_000

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_MAX_LISTED = 20


@dataclass(frozen=True)
class SelectedSample:
    """One chosen row: who it is, where it sits, why it was chosen, and its data."""

    sample_key: str
    row_index: int
    method: str
    detail: str
    stratum: str | None = None
    row: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StratumAllocation:
    stratum: str | None
    population: int
    allocated: int


@dataclass(frozen=True)
class Selection:
    """The samples of one draw and the settings that reproduce it."""

    method: str
    samples: list[SelectedSample]
    seed: int | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)
    allocation: list[StratumAllocation] = field(default_factory=list)

    @property
    def row_indices(self) -> list[int]:
        return [s.row_index for s in self.samples]


def new_seed() -> int:
    """A fresh seed to record with a random or stratified draw."""
    return secrets.randbelow(MAX_SEED + 1)


def with_row_index(df: pl.DataFrame) -> pl.DataFrame:
    """`df` with ROW_INDEX_COLUMN (0-based position) added if it isn't there."""
    if ROW_INDEX_COLUMN in df.columns:
        return df
    return df.with_row_index(ROW_INDEX_COLUMN)


def select_random(
    df: pl.DataFrame, *, size: int, seed: int, key_column: str | None = None
) -> Selection:
    """A simple random sample of `size` rows, the same for the same file, seed and size."""
    _check_size(size)
    _check_seed(seed)
    _check_population(df)
    _check_column(df, key_column, "key column")
    row_numbers = _row_numbers(df)
    take = min(size, df.height)
    keys = _random_keys(row_numbers, seed)
    if take < df.height:
        positions = np.argpartition(keys, take - 1)[:take]
    else:
        positions = np.arange(df.height)
    positions = positions[np.argsort(keys[positions], kind="stable")]
    details = [f"random draw {i} of {take} (seed {seed})" for i in range(1, take + 1)]
    return Selection(
        method=RANDOM,
        seed=seed,
        samples=_samples(df, positions, row_numbers, RANDOM, details, key_column=key_column),
        parameters={"size": size, "population": df.height},
    )


def select_stratified(
    df: pl.DataFrame,
    *,
    size: int,
    stratify_by: str,
    seed: int,
    min_per_stratum: int = 1,
    key_column: str | None = None,
) -> Selection:
    """A seeded sample spread over the values of `stratify_by` in proportion to their rows.

    Each stratum gets its proportional share, rounded by largest remainder so
    the shares add up to `size`, and at least `min_per_stratum` rows (or all its
    rows if it has fewer). Empty values form a stratum of their own.
    """
    _check_size(size)
    _check_seed(seed)
    _check_min_per_stratum(min_per_stratum)
    _check_population(df)
    _check_column(df, stratify_by, "stratification column")
    _check_column(df, key_column, "key column")

    row_numbers = _row_numbers(df)
    keys = _random_keys(row_numbers, seed)
    # One pass groups the row positions by stratum; the draw inside each
    # stratum is then a partial sort of its keys, whatever the sample size.
    groups = (
        df.lazy()
        .select(
            pl.col(stratify_by).alias("stratum"),
            pl.int_range(pl.len(), dtype=pl.UInt32).alias("position"),
        )
        .group_by("stratum")
        .agg(pl.len().alias("rows"), pl.col("position"))
        .collect()
    )
    if groups.height > MAX_STRATA:
        raise ValueError(
            f"Column {stratify_by!r} has {groups.height:,} different values; stratify by a column "
            f"with at most {MAX_STRATA:,}."
        )
    values = groups["stratum"].to_list()
    counts_found = groups["rows"].to_list()
    ends = np.cumsum(counts_found)
    flat = groups["position"].explode().to_numpy()
    order = sorted(range(groups.height), key=lambda g: _stratum_order(values[g]))
    labels = [_stratum_label(values[g]) for g in order]
    counts = [counts_found[g] for g in order]
    allocated = allocate_proportional(counts=counts, size=size, min_per_stratum=min_per_stratum)

    chosen: list[np.ndarray] = []
    details: list[str] = []
    stratum_of: list[str | None] = []
    for g, label, take in zip(order, labels, allocated, strict=True):
        if take == 0:
            continue
        members = flat[ends[g] - counts_found[g] : ends[g]].astype(np.int64)
        if take < len(members):
            members = members[np.argpartition(keys[members], take - 1)[:take]]
        chosen.append(members[np.argsort(keys[members], kind="stable")])
        shown = "(empty)" if label is None else label
        details.extend(
            f"stratum {stratify_by}={shown}: draw {i} of {take} (seed {seed})" for i in range(1, take + 1)
        )
        stratum_of.extend([label] * take)
    positions = np.concatenate(chosen) if chosen else np.empty(0, dtype=np.int64)
    return Selection(
        method=STRATIFIED,
        seed=seed,
        samples=_samples(
            df, positions, row_numbers, STRATIFIED, details, strata=stratum_of, key_column=key_column
        ),
        parameters={
            "size": size,
            "stratify_by": stratify_by,
            "min_per_stratum": min_per_stratum,
            "population": df.height,
        },
        allocation=[
            StratumAllocation(stratum=label, population=rows, allocated=take)
            for label, rows, take in zip(labels, counts, allocated, strict=True)
        ],
    )


def allocate_proportional(
    *,
    counts: Sequence[int],
    size: int,
    min_per_stratum: int = 1,
) -> list[int]:
    """Split `size` over strata of `counts` rows: proportional, floored, capped, summing to `size`.

    Each stratum gets between min(min_per_stratum, rows) and rows. Within those
    bounds the shares are proportional to the rows (one common factor, found
    exactly), then rounded by largest remainder, ties to the larger stratum and
    then to the earlier one. When `size` covers the whole population every
    stratum gives all its rows.
    """
    _check_size(size)
    _check_min_per_stratum(min_per_stratum)
    if any(isinstance(c, bool) or not isinstance(c, int) or c < 1 for c in counts):
        raise ValueError("Every stratum must have at least one row.")
    total = sum(counts)
    if size >= total:
        return list(counts)
    floors = [min(min_per_stratum, c) for c in counts]
    needed = sum(floors)
    if needed > size:
        short = needed - size
        raise ValueError(
            f"A sample of {size} can't give each of the {len(counts)} strata its minimum of "
            f"{min_per_stratum} (that takes {needed} rows): raise the size by {short} to "
            f"{needed}, lower the minimum per stratum, or stratify by a column with fewer values."
        )
    shares = _water_fill(counts, floors, size)
    allocated = [math.floor(s) for s in shares]
    left = size - sum(allocated)
    order = sorted(
        range(len(counts)),
        key=lambda i: (-(shares[i] - allocated[i]), -counts[i], i),
    )
    for i in order[:left]:
        allocated[i] += 1
    return allocated


def select_risk_based(
    df: pl.DataFrame,
    *,
    size: int | None = None,
    by_column: str | None = None,
    flagged_mask: pl.Expr | pl.Series | Sequence[bool] | None = None,
    key_column: str | None = None,
) -> Selection:
    """The riskiest rows: the largest by `by_column`, or those `flagged_mask` marks, or both.

    With `by_column`, the `size` rows with the largest values (empty values
    never count as large; ties go to the earlier row). With `flagged_mask`
    (e.g. rows failing a profiling rule), the flagged rows in file order, at
    most `size` of them. With both, the largest among the flagged.
    """
    if by_column is None and flagged_mask is None:
        raise ValueError("Say which rows are risky: a numeric column to rank by, the flagged rows, or both.")
    if size is not None:
        _check_size(size)
    elif by_column is not None:
        raise ValueError("Say how many of the largest rows to take.")
    _check_population(df)
    _check_column(df, by_column, "ranking column")
    _check_column(df, key_column, "key column")
    if by_column is not None and not df.schema[by_column].is_numeric():
        raise ValueError(
            f"Column {by_column!r} holds {df.schema[by_column]}, not numbers: it can't rank rows by size."
        )

    row_numbers = _row_numbers(df)
    columns = [
        pl.int_range(pl.len(), dtype=pl.UInt32).alias("position"),
        pl.Series("row_number", row_numbers),
    ]
    if by_column is not None:
        columns.append(pl.col(by_column).alias("value"))
    frame = df.lazy().select(columns)
    if flagged_mask is not None:
        frame = frame.with_columns(_mask(df, flagged_mask).alias("flagged")).filter(pl.col("flagged"))
    if by_column is not None:
        value = pl.col("value")
        keep = value.is_not_null()
        if df.schema[by_column].is_float():
            keep = keep & value.is_not_nan()
        frame = frame.filter(keep).sort(["value", "row_number"], descending=[True, False])
    else:
        frame = frame.sort("row_number")
    if size is not None:
        frame = frame.head(size)
    picked = frame.collect()
    positions = picked["position"].to_numpy().astype(np.int64)
    if by_column is not None:
        values = picked["value"].to_list()
        prefix = "flagged, " if flagged_mask is not None else ""
        details = [
            f"{prefix}rank {i} by {by_column} ({_json_safe(v)})" for i, v in enumerate(values, start=1)
        ]
    else:
        details = ["flagged by a risk rule"] * len(positions)
    return Selection(
        method=RISK_BASED,
        samples=_samples(df, positions, row_numbers, RISK_BASED, details, key_column=key_column),
        parameters={
            "size": size,
            "by_column": by_column,
            "flagged": flagged_mask is not None,
            "population": df.height,
        },
    )


def select_manual(
    df: pl.DataFrame,
    *,
    keys: Iterable[object],
    key_column: str | None = None,
    reason: str = "",
) -> Selection:
    """Rows picked by hand, by `key_column` value, or by row index when no key column is given.

    Keys are compared as text, so "1001" finds 1001 in a numeric column.
    """
    _check_population(df)
    _check_column(df, key_column, "key column")
    wanted = list(dict.fromkeys(str(k).strip() for k in keys))
    if not wanted:
        raise ValueError("Pick at least one row.")
    row_numbers = _row_numbers(df)
    if key_column is None:
        # Row numbers shown to people count from 1 (the first data row), positions from 0.
        lookup = pl.DataFrame(
            {"position": np.arange(df.height, dtype=np.int64), "key": row_numbers + 1}
        ).with_columns(pl.col("key").cast(pl.Utf8))
    else:
        lookup = df.lazy().select(
            pl.int_range(pl.len(), dtype=pl.Int64).alias("position"),
            pl.col(key_column).cast(pl.Utf8).alias("key"),
        ).collect()
    found = lookup.filter(pl.col("key").is_in(wanted))
    per_key = found.group_by("key").agg(pl.col("position").min(), pl.len().alias("matches"))
    hits = dict(zip(per_key["key"].to_list(), per_key["position"].to_list(), strict=True))
    unknown = [k for k in wanted if k not in hits]
    what = f"{key_column} value" if key_column else "row number"
    if unknown:
        raise ValueError(
            f"{len(unknown)} picked {what}{'s are' if len(unknown) > 1 else ' is'} not in the "
            f"population: {_listing(unknown)}."
        )
    ambiguous = per_key.filter(pl.col("matches") > 1)["key"].to_list()
    if ambiguous:
        ambiguous = [k for k in wanted if k in set(ambiguous)]
        raise ValueError(
            f"{key_column} doesn't identify one row: {_listing(ambiguous)} "
            f"match{'' if len(ambiguous) > 1 else 'es'} several. Pick by row number instead."
        )
    reason = (reason or "").strip()
    detail = f"picked by hand: {reason}" if reason else "picked by hand"
    positions = np.array([hits[k] for k in wanted], dtype=np.int64)
    return Selection(
        method=MANUAL,
        samples=_samples(df, positions, row_numbers, MANUAL, [detail] * len(positions), key_column=key_column),
        parameters={"keys": wanted, "key_column": key_column, "reason": reason, "population": df.height},
    )


def combine(*selections: Selection) -> list[SelectedSample]:
    """The samples of all `selections` in order; a row chosen twice keeps its first method."""
    seen: set[int] = set()
    merged: list[SelectedSample] = []
    for selection in selections:
        for sample in selection.samples:
            if sample.row_index not in seen:
                seen.add(sample.row_index)
                merged.append(sample)
    return merged


def _random_keys(row_numbers: np.ndarray, seed: int) -> np.ndarray:
    # The r-th SplitMix64 output: state = seed + (r + 1) * golden, then mix.
    with np.errstate(over="ignore"):
        z = (row_numbers.astype(np.uint64) + np.uint64(1)) * _GOLDEN + np.uint64(seed)
        z ^= z >> np.uint64(30)
        z *= _MIX1
        z ^= z >> np.uint64(27)
        z *= _MIX2
        z ^= z >> np.uint64(31)
    return z


def _water_fill(counts: Sequence[int], floors: Sequence[int], size: int) -> list[Fraction]:
    """Exact shares clip(f * count, floor, count) summing to `size`, for the one factor f."""
    pairs = list(zip(floors, counts, strict=True))

    def total(f: Fraction) -> Fraction:
        return sum((min(max(f * c, fl), c) for fl, c in pairs), Fraction(0))

    # The sum is piecewise linear and non-decreasing in f, with kinks where a
    # stratum leaves its floor (f = floor / count); f stays below 1 because
    # size < population, so no stratum reaches its cap before rounding.
    kinks = sorted({Fraction(fl, c) for fl, c in pairs} | {Fraction(0), Fraction(1)})
    lo, hi = 0, len(kinks) - 1  # total(kinks[lo]) <= size < total(kinks[hi])
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if total(kinks[mid]) <= size:
            lo = mid
        else:
            hi = mid
    low, high = kinks[lo], kinks[hi]
    # Between two adjacent kinks the strata still on their floor stay there and
    # the rest grow with f: solve that linear piece for the exact factor.
    fixed = sum((Fraction(fl) for fl, c in pairs if Fraction(fl, c) >= high), Fraction(0))
    free = sum(c for fl, c in pairs if Fraction(fl, c) <= low)
    factor = (size - fixed) / free if free else low
    factor = min(max(factor, low), high)
    return [min(max(factor * c, Fraction(fl)), Fraction(c)) for fl, c in pairs]


def _samples(
    df: pl.DataFrame,
    positions: np.ndarray,
    row_numbers: np.ndarray,
    method: str,
    details: Sequence[str],
    *,
    strata: Sequence[str | None] | None = None,
    key_column: str | None = None,
) -> list[SelectedSample]:
    if len(positions) == 0:
        return []
    data = df.drop(ROW_INDEX_COLUMN, strict=False)[positions].to_dicts()
    samples = []
    for i, (position, row) in enumerate(zip(positions.tolist(), data, strict=True)):
        row_index = int(row_numbers[position])
        key = row.get(key_column) if key_column else None
        samples.append(
            SelectedSample(
                sample_key=str(row_index + 1) if key is None else str(key),
                row_index=row_index,
                method=method,
                detail=details[i],
                stratum=strata[i] if strata is not None else None,
                row={name: _json_safe(value) for name, value in row.items()},
            )
        )
    return samples


def _row_numbers(df: pl.DataFrame) -> np.ndarray:
    if ROW_INDEX_COLUMN in df.columns:
        column = df[ROW_INDEX_COLUMN]
        if not column.dtype.is_integer() or column.null_count() or (df.height and column.min() < 0):
            raise ValueError(f"{ROW_INDEX_COLUMN} must hold the rows' file positions as whole numbers.")
        if column.n_unique() != df.height:
            raise ValueError(f"{ROW_INDEX_COLUMN} repeats a row number: each row needs its own.")
        return column.to_numpy().astype(np.int64, copy=False)
    return np.arange(df.height, dtype=np.int64)


def _mask(df: pl.DataFrame, mask: pl.Expr | pl.Series | Sequence[bool]) -> pl.Series:
    if isinstance(mask, pl.Expr):
        series = df.select(mask.alias("flagged")).to_series()
    else:
        series = pl.Series("flagged", mask)
    if series.dtype != pl.Boolean:
        raise ValueError(f"The flagged rows must be given as true/false values (got {series.dtype}).")
    if series.len() != df.height:
        raise ValueError(f"The flags cover {series.len()} rows but the population has {df.height}.")
    return series.fill_null(False)


def _check_population(df: pl.DataFrame) -> None:
    if df.height == 0:
        raise ValueError("The population has no rows to sample from.")


def _check_size(size: object) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"The sample size must be a whole number of at least 1 (got {size!r}).")


def _check_min_per_stratum(minimum: object) -> None:
    if isinstance(minimum, bool) or not isinstance(minimum, int) or minimum < 0:
        raise ValueError(f"The minimum per stratum must be a whole number of at least 0 (got {minimum!r}).")


def _check_seed(seed: object) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"The seed must be a whole number from 0 to {MAX_SEED} (got {seed!r}).")


def _check_column(df: pl.DataFrame, column: str | None, role: str) -> None:
    if column is not None and column not in df.columns:
        raise ValueError(f"The {role} {column!r} is not in the population; its columns are: {_listing(df.columns)}.")


def _stratum_label(value: object) -> str | None:
    return None if value is None else str(_json_safe(value))


def _stratum_order(value: object) -> tuple[int, Any]:
    # Empty values last; values compare within their own column's type.
    return (1, 0) if value is None else (0, value)


def _listing(items: Sequence[object]) -> str:
    shown = ", ".join(str(i) for i in items[:_MAX_LISTED])
    more = len(items) - _MAX_LISTED
    return f"{shown} and {more} more" if more > 0 else shown


def _json_safe(value: Any) -> Any:
    """Row values as JSON can store them (jsonb refuses NaN; dates become ISO text)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    return value
