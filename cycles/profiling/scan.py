"""One pass over a population: every column's statistics and every rule's failures, in bounded memory.

The file is read in chunks of a few megabytes (cycles.profiling.sources)
and each chunk is reduced at once, so memory does not grow with the file.

Per column, distinct values are tallied exactly, (value, count), while the
column has at most COUNTED_MAX of them. Its statistics (missing values,
minimum and maximum in its checked type, format violations, distinct count,
top values) and its rules are then judged over those distinct values, not
over the rows. A column with more distinct values (an account number, a
balance) is judged row by row, as reductions in the chunk's one query; its
distinct count is estimated by a HyperLogLog sketch over 64-bit hashes of
its values (standard error about 0.8%, marked as an estimate on the
page), and it has no top values (each of its values is rare; a value that
is frequent and wrong still shows in the format violations and the rules).

Keys are exact, whatever the size: a primary key's repeats and a uniqueness
rule's failures are counted from the tally, or, past it, from per-chunk
counts of the keys' hashes (16 bytes per row at most); when a hash repeats,
a second pass reads only the rows with repeated hashes and counts their real
keys, so a hash collision never shows as a repeat. That second pass is the
only one, made only when a key repeats; it also finds a uniqueness rule's
example rows. Every other rule's examples (the first EXAMPLES failing rows)
are found in the first pass, looking at a chunk's rows only while a failing
rule still has too few.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from cycles.profiling import engine, sources
from cycles.profiling.engine import (
    READ_ERRORS,
    SAMPLE_ROWS,
    TOP_N,
    ColumnExpectation,
    ColumnProfile,
    PopulationReadError,
    _ColumnPlan,
    _detect_text_types,
    _plan,
    _read_error_message,
    _text,
    match_column,
)
from cycles.profiling.sources import Source

# Chunks' tallies are merged this many at a time.
MERGE_EVERY = 8
# A column's exact (value, count) tally is kept up to this many distinct values.
COUNTED_MAX = 50_000
HASH_SEEDS = (0x5EED, 0xC0FFEE, 0xFACADE, 0xD00D)
EXAMPLES = 5
ROW_NUMBER = "__row_number"


def _hash(expr: pl.Expr) -> pl.Expr:
    return expr.hash(*HASH_SEEDS)


# -- what is kept per column and per key ------------------------------------------------------


@dataclass
class _Column:
    plan: _ColumnPlan
    nulls: int = 0
    violations: int = 0
    lows: list = field(default_factory=list)
    highs: list = field(default_factory=list)
    counts: pl.DataFrame | None = None  # (value, count) while exact
    sketch: np.ndarray | None = None  # HyperLogLog registers once it outgrew the tally
    pending: list[pl.DataFrame] = field(default_factory=list)  # chunks' tallies not merged yet
    rows_tallied: int = 0  # rows the exact tally covers

    @property
    def exact(self) -> bool:
        return self.sketch is None


@dataclass
class _Key:
    """Repeats of one column's key (raw for a primary key, trimmed for a uniqueness rule)."""

    column: str
    trimmed: bool
    parts: list[pl.DataFrame] = field(default_factory=list)  # (h, n): hash of a key, rows with it

    def key(self, dtype) -> pl.Expr:
        value = pl.col(self.column)
        if dtype == pl.String or isinstance(dtype, (pl.Categorical, pl.Enum)):
            value = value.cast(pl.String)
            return value.str.strip_chars() if self.trimmed else value
        return value

    def present(self, dtype) -> pl.Expr:
        key = self.key(dtype)
        if dtype == pl.String or isinstance(dtype, (pl.Categorical, pl.Enum)):
            return key.is_not_null() & (key.str.len_bytes() > 0)
        return key.is_not_null()


def _kept(plan: _ColumnPlan) -> pl.Expr:
    value = pl.col(plan.name)
    if plan.is_text:
        # An empty cell is a missing value, whatever the file format made of it.
        return value.is_not_null() & (value.cast(pl.String).str.len_bytes() > 0)
    return value.is_not_null()


def _value(plan: _ColumnPlan) -> pl.Expr:
    value = pl.col(plan.name)
    return value.cast(pl.String) if plan.is_text and plan.source_dtype != pl.String else value


def _typed_values_of(plan: _ColumnPlan) -> tuple[pl.Expr, pl.Expr | None]:
    return engine.typed_values(plan, _value(plan))


# -- distinct values past the tally: HyperLogLog over the values' 64-bit hashes -------------------

SKETCH_BITS = 14  # 16,384 registers: a standard error of about 0.8%
SKETCH_REGISTERS = 1 << SKETCH_BITS


def _sketch_query(hashes: pl.LazyFrame) -> pl.LazyFrame:
    """Per hash, its register (the hash's first bits) and rank (leading zeros of the rest + 1)."""
    h = pl.col("h")
    rest_bits = 64 - SKETCH_BITS
    rest = h % (1 << rest_bits)
    return hashes.select(
        (h // (1 << rest_bits)).cast(pl.UInt32).alias("register"),
        (rest.bitwise_leading_zeros().cast(pl.Int16) - SKETCH_BITS + 1).cast(pl.UInt8).alias("rank"),
    )


def _new_sketch() -> np.ndarray:
    """HyperLogLog registers, each the highest rank seen (0: never hit)."""
    return np.zeros(SKETCH_REGISTERS, dtype=np.uint8)


def _sketch_add(column: _Column, ranks: pl.DataFrame) -> None:
    # An unbuffered per-register maximum, far cheaper than a group-by of the chunk's hashes.
    np.maximum.at(column.sketch, ranks["register"].to_numpy(), ranks["rank"].to_numpy())


def _sketch_estimate(column: _Column) -> int:
    registers = column.sketch
    m = SKETCH_REGISTERS
    alpha = 0.7213 / (1 + 1.079 / m)
    zeros = int(np.count_nonzero(registers == 0))
    # A register never hit holds rank 0 and adds 2^0.
    total = float(np.ldexp(1.0, -registers.astype(np.int32)).sum())
    estimate = alpha * m * m / total
    if estimate <= 2.5 * m and zeros:
        estimate = m * math.log(m / zeros)  # few values: count the empty registers instead
    return round(estimate)


# -- the pass ----------------------------------------------------------------------------------


@dataclass
class Outcome:
    """A rule's failing rows, and the 1-based row numbers of the first few."""

    failing: int
    examples: list[int]


def _plans(source: Source, expectations: dict[str, ColumnExpectation]) -> list[_ColumnPlan]:
    text_columns = [name for name, dtype in source.schema.items() if dtype == pl.String]
    sample = source.sample
    if text_columns and (sample is None or sample.columns != list(source.schema)):
        sample = _first_rows(source)
    detections = _detect_text_types(sample.select(text_columns), text_columns) if text_columns else {}
    plans = []
    for name, dtype in source.schema.items():
        key = match_column(name, expectations)
        plans.append(_plan(name, dtype, detections.get(name), expectations[key] if key is not None else None))
    return plans


def _first_rows(source: Source) -> pl.DataFrame:
    taken = []
    for chunk in source.chunks():
        taken.append(chunk)
        if sum(frame.height for frame in taken) >= SAMPLE_ROWS:
            break
    return pl.concat(taken).head(SAMPLE_ROWS)


def run(
    source: Source,
    expectations: dict[str, ColumnExpectation] | None,
    specs: list,
    *,
    statistics: bool = True,
    examples: int = EXAMPLES,
) -> tuple[list[ColumnProfile], dict[int, Outcome]]:
    """Profile the columns (when statistics) and judge the rules, in one pass and a bounded second one.

    A column tallied exactly is judged over its distinct values: its
    statistics at the end, its rules chunk by chunk (the rows of a chunk are
    looked at only to find example rows, while too few are known). A column
    tallied by hashes, and every comparison of two columns, is judged row by
    row, as reductions in the chunk's one query.
    """
    from cycles.profiling.rules import COMPARE, UNIQUE, failing, failing_count

    expectations = expectations or {}
    schema = source.schema
    specs = [s for s in specs if s.column in schema and (s.other_column is None or s.other_column in schema)]
    plans = _plans(source, expectations) if statistics else []
    columns = {plan.name: _Column(plan) for plan in plans if plan.is_countable}
    for spec in specs:
        # A column a rule reads is tallied even when its statistics aren't wanted.
        if spec.kind not in (UNIQUE, COMPARE) and spec.column not in columns:
            columns[spec.column] = _Column(_plan(spec.column, schema[spec.column], None, None))
    keys: dict[tuple[str, bool], _Key] = {}
    for column in columns.values():
        if column.plan.expectation and column.plan.expectation.primary_key:
            keys[(column.plan.name, False)] = _Key(column.plan.name, trimmed=False)
    for spec in specs:
        if spec.kind == UNIQUE:
            keys.setdefault((spec.column, True), _Key(spec.column, trimmed=True))
    judged = [s for s in specs if s.kind != UNIQUE]
    fails = {s.id: 0 for s in judged}
    found: dict[int, list[int]] = {s.id: [] for s in judged}

    rows = 0
    for chunk in source.chunks():
        wide = [c for c in columns.values() if not c.exact]
        exact = [c for c in columns.values() if c.exact]
        row_rules = [s for s in judged if s.kind == COMPARE or not columns[s.column].exact]
        wanted = {s.id for s in row_rules if len(found[s.id]) < examples}
        reductions = []
        for column in wide:
            plan, name = column.plan, column.plan.name
            kept = _kept(plan)
            typed, violates = _typed_values_of(plan)
            reductions += [
                (~kept).sum().alias(f"{name}\0nulls"),
                typed.filter(kept).min().alias(f"{name}\0min"),
                typed.filter(kept).max().alias(f"{name}\0max"),
                ((kept & violates).sum() if violates is not None else pl.lit(0)).alias(f"{name}\0violations"),
            ]
        masks = {s.id: failing(s, schema) for s in row_rules}
        reductions += [failing_count(s, schema).alias(f"\0r{s.id}") for s in row_rules]
        queries = [chunk.lazy().select(reductions)] if reductions else []
        # Each exact tally: (value, count), nulls and empty text included.
        queries += [chunk.lazy().select(_value(c.plan).alias("value").value_counts(name="count")).unnest("value")
                    .with_columns(pl.col("count").cast(pl.UInt32)) for c in exact]
        queries += [_sketch_query(chunk.lazy().select(_hash(_value(c.plan).filter(_kept(c.plan))).alias("h")))
                    for c in wide]
        tallied_keys = [k for k in keys.values() if k.trimmed or k.column not in columns or not columns[k.column].exact]
        for key in tallied_keys:
            dtype = schema[key.column]
            queries.append(chunk.lazy().select(_hash(key.key(dtype).filter(key.present(dtype))).alias("h"))
                           .group_by("h").agg(pl.len().alias("n")))
        results = iter(pl.collect_all(queries)) if queries else iter(())
        reduced = next(results).row(0, named=True) if reductions else {}
        for column in wide:
            name = column.plan.name
            column.nulls += reduced[f"{name}\0nulls"]
            column.violations += reduced[f"{name}\0violations"] or 0
            if reduced[f"{name}\0min"] is not None:
                column.lows.append(reduced[f"{name}\0min"])
                column.highs.append(reduced[f"{name}\0max"])
        # Example rows are looked for only in a chunk where the rule failed, while too few are known.
        lookups = {}
        for rule_id, mask in masks.items():
            count = reduced[f"\0r{rule_id}"] or 0
            fails[rule_id] += count
            if count and rule_id in wanted:
                lookups[rule_id] = pl.col(ROW_NUMBER).filter(mask).head(examples).implode().alias(str(rule_id))
        chunk_tallies = {c.plan.name: next(results) for c in exact}
        for column in wide:
            _sketch_add(column, next(results))
        for key in tallied_keys:
            key.parts.append(next(results))
        # Rules of exactly tallied columns, judged over the chunk's distinct values.
        for spec in judged:
            if spec.id in masks:
                continue
            count, values = _failing_values(spec, chunk_tallies[spec.column])
            fails[spec.id] += count
            if count and len(found[spec.id]) < examples:
                key = _value(columns[spec.column].plan)
                hit = key.is_in(values.drop_nulls().implode())
                if values.null_count():
                    hit = hit | key.is_null()
                lookups[spec.id] = pl.col(ROW_NUMBER).filter(hit).head(examples).implode().alias(str(spec.id))
        if lookups:
            numbered = chunk.with_row_index(ROW_NUMBER, offset=rows + 1)
            rows_found = numbered.select(list(lookups.values())).row(0, named=True)
            for rule_id in lookups:
                found[rule_id] += rows_found[str(rule_id)][: examples - len(found[rule_id])]
        for column in exact:
            outgrown = _add_tally(column, chunk_tallies[column.plan.name], rows + chunk.height)
            key = keys.get((column.plan.name, False))
            if outgrown is not None and key is not None:
                # The primary key's repeats so far, from the tally it outgrew; hashes from now on.
                key.parts.append(outgrown.select(_hash(pl.col("value")).alias("h"), pl.col("count").alias("n")))
        rows += chunk.height

    for column in columns.values():
        if column.exact:
            _tally_merge(column)
    outcomes = {s.id: Outcome(failing=int(fails[s.id]), examples=[int(n) for n in found[s.id]]) for s in judged}
    repeats = _key_repeats(source, columns, keys, specs, outcomes, examples)
    profiles = []
    for plan in plans:
        if plan.is_countable:
            profiles.append(_profile(columns[plan.name], rows, repeats.get((plan.name, False))))
        else:
            profiles.append(engine._summarise_uncountable(plan, source.lazy, rows))
    return profiles, {s.id: outcomes[s.id] for s in specs}


def _failing_values(spec, counts: pl.DataFrame) -> tuple[int, pl.Series]:
    """A single-column rule judged over distinct values: failing rows, and the values that fail."""
    from cycles.profiling.rules import failing

    count_column = "__count" if spec.column != "__count" else "__count_"
    frame = counts.rename({"value": spec.column, "count": count_column})
    frame = frame.filter(failing(spec, dict(frame.schema)))
    return int(frame[count_column].sum()), frame[spec.column]


def _tally_stats(column: _Column, tally: pl.DataFrame) -> None:
    """Add the statistics of an exact tally (all rows so far) to the column's."""
    plan = column.plan
    value = pl.col("value")
    kept = value.is_not_null() & (value.cast(pl.String).str.len_bytes() > 0) if plan.is_text else value.is_not_null()
    present = tally.filter(kept)
    typed, violates = engine.typed_values(plan, value)
    stats = present.select(
        pl.col("count").sum().alias("kept"),
        typed.min().alias("min"),
        typed.max().alias("max"),
        (pl.col("count").filter(violates).sum() if violates is not None else pl.lit(0)).alias("violations"),
    ).row(0, named=True)
    column.nulls += column.rows_tallied - int(stats["kept"] or 0)
    column.violations += int(stats["violations"] or 0)
    if stats["min"] is not None:
        column.lows.append(stats["min"])
        column.highs.append(stats["max"])


def _add_tally(column: _Column, tally: pl.DataFrame, rows: int) -> pl.DataFrame | None:
    """Add a chunk's (value, count) to the column's; past COUNTED_MAX values, switch to a sketch.

    Tallies are merged every few chunks (or sooner when they may hold more
    than COUNTED_MAX values). Returns the tally of present values when it was
    outgrown just now.
    """
    column.pending.append(tally)
    column.rows_tallied = rows
    if len(column.pending) < MERGE_EVERY and sum(part.height for part in column.pending) <= COUNTED_MAX:
        return None
    _tally_merge(column)
    if column.counts.height > COUNTED_MAX:
        _tally_stats(column, column.counts)
        kept = column.counts.filter(_kept(_rename(column.plan, "value")))
        column.sketch = _new_sketch()
        column.counts = None
        _sketch_add(column, _sketch_query(kept.lazy().select(_hash(pl.col("value")).alias("h"))).collect())
        return kept
    return None


def _tally_merge(column: _Column) -> None:
    if column.pending:
        parts = [column.counts, *column.pending] if column.counts is not None else column.pending
        column.pending = []
        merged = pl.concat(parts)
        column.counts = merged.group_by("value").agg(pl.col("count").sum()) if len(parts) > 1 else merged


def _rename(plan: _ColumnPlan, name: str) -> _ColumnPlan:
    return _ColumnPlan(name, plan.source_dtype, plan.detected, plan.checked_as, plan.date_format, plan.expectation)


def _distinct(column: _Column) -> int:
    if column.exact:
        if column.counts is None:
            return 0
        return column.counts.filter(_kept(_rename(column.plan, "value"))).height
    return _sketch_estimate(column)


def _profile(column: _Column, rows: int, key_repeats: int | None) -> ColumnProfile:
    plan = column.plan
    if column.exact and column.counts is not None:
        _tally_stats(column, column.counts)
    distinct = _distinct(column)
    top_values = []
    if column.exact and column.counts is not None:
        kept = column.counts.filter(_kept(_rename(plan, "value")))
        top = kept.top_k(TOP_N, by=["count", "value"], reverse=[False, True])
        top_values = sorted(
            ({"value": _text(v), "count": n} for v, n in top.iter_rows()),
            key=lambda item: (-item["count"], item["value"]),
        )
    rules = {}
    if plan.expectation and plan.expectation.mandatory:
        rules["mandatory"] = column.nulls
    if plan.expectation and plan.expectation.primary_key:
        # Rows repeating an earlier key.
        rules["primary_key"] = key_repeats if key_repeats is not None else rows - column.nulls - distinct
        if not column.exact:
            distinct = rows - column.nulls - rules["primary_key"]
    return ColumnProfile(
        name=plan.name,
        dtype=plan.detected,
        source_dtype=str(plan.source_dtype),
        checked_as=plan.checked_as,
        row_count=rows,
        null_count=column.nulls,
        distinct_count=distinct,
        min_value=_text(min(column.lows)) if column.lows else None,
        max_value=_text(max(column.highs)) if column.highs else None,
        top_values=top_values,
        format_violations=int(column.violations),
        rule_failures=rules,
    )


def _key_repeats(source, columns, keys, specs, outcomes, examples) -> dict[tuple[str, bool], int]:
    """Exact repeats of each key; fills in the uniqueness rules' outcomes. May read the file a second time.

    A key tallied exactly is counted from its tally. A key tallied by hashes
    is unique when no hash repeats (equal keys always share a hash); when
    some do, the rows holding those hashes are read again and their real
    keys counted.
    """
    from cycles.profiling.rules import UNIQUE

    schema = source.schema
    by_name = columns
    repeats: dict[tuple[str, bool], int] = {}
    suspects: dict[tuple[str, bool], pl.Series] = {}
    for ident, key in keys.items():
        column = by_name.get(key.column)
        if column is not None and column.exact and not key.trimmed:
            counts = column.counts.filter(_kept(_rename(column.plan, "value"))) if column.counts is not None else None
            repeats[ident] = int((counts["count"] - 1).sum()) if counts is not None and counts.height else 0
            continue
        tally = pl.concat(key.parts).group_by("h").agg(pl.col("n").sum()) if key.parts else None
        doubled = tally.filter(pl.col("n") > 1)["h"] if tally is not None else pl.Series("h", [], pl.UInt64)
        if doubled.len() == 0:
            repeats[ident] = 0
        else:
            suspects[ident] = doubled

    unique_specs = [s for s in specs if s.kind == UNIQUE]
    for spec in unique_specs:
        if (spec.column, True) not in suspects:
            outcomes[spec.id] = Outcome(failing=0, examples=[])
    pending = [s for s in unique_specs if (s.column, True) in suspects]
    if not suspects:
        return repeats

    # The second pass: per suspect key, its rows and the first few row numbers, chunk by chunk.
    gathered: dict[tuple[str, bool], list[pl.DataFrame]] = {ident: [] for ident in suspects}
    rows = 0
    for chunk in source.chunks():
        numbered = chunk.with_row_index(ROW_NUMBER, offset=rows + 1)
        queries = []
        for ident, doubled in suspects.items():
            key = keys[ident]
            dtype = schema[key.column]
            queries.append(
                numbered.lazy()
                .filter(key.present(dtype) & _hash(key.key(dtype)).is_in(doubled.implode()))
                .group_by(key.key(dtype).alias("key"))
                .agg(pl.len().alias("n"), pl.col(ROW_NUMBER).head(examples).alias("rows"))
            )
        for ident, frame in zip(suspects, pl.collect_all(queries)):
            gathered[ident].append(frame)
            if len(gathered[ident]) >= 8:
                gathered[ident] = [_merge_keys(gathered[ident], examples)]
        rows += chunk.height
    for ident, frames in gathered.items():
        repeated = _merge_keys(frames, examples).filter(pl.col("n") > 1)
        repeats[ident] = int((repeated["n"] - 1).sum()) if repeated.height else 0
        for spec in pending:
            if (spec.column, True) == ident:
                first = repeated["rows"].explode().sort().head(examples) if repeated.height else []
                outcomes[spec.id] = Outcome(failing=int(repeated["n"].sum()) if repeated.height else 0,
                                            examples=[int(n) for n in first])
    return repeats


def _merge_keys(frames: list[pl.DataFrame], examples: int) -> pl.DataFrame:
    return (
        pl.concat(frames)
        .group_by("key")
        .agg(pl.col("n").sum(), pl.col("rows").flatten().sort().head(examples))
    )


def profile_file(
    path: str | Path, fmt: str, expectations: dict[str, ColumnExpectation] | None, specs: list,
    *, statistics: bool = True, examples: int = EXAMPLES,
) -> tuple[list[ColumnProfile], dict[int, Outcome]]:
    """Read and profile a file (and judge the rules); a read or parse failure becomes PopulationReadError."""
    try:
        return run(sources.file_source(path, fmt), expectations, specs, statistics=statistics, examples=examples)
    except READ_ERRORS as exc:
        raise PopulationReadError(_read_error_message(fmt, exc)) from exc
