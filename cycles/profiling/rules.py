"""Validation rules over a population: which rows break each, counted in one pass over the file.

Rules are plain data (RuleSpec) so the worker, the sampler and the benchmark
share them without Django. Text cells are parsed as the attribute's data type
first; an empty or unparsable value fails only not-null (and the format
check of the profile), never a range or a comparison, so one bad cell is
counted once per reason.
"""
from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from cycles.profiling.engine import (
    DATE,
    DATE_FORMATS,
    DECIMAL,
    INTEGER,
    READ_ERRORS,
    STRING,
    ColumnExpectation,
    ColumnProfile,
    PopulationReadError,
    _csv_sample,
    _csv_separator,
    _parse,
    _read_error_message,
    profile_frame_with,
    read_population,
)

RANGE, ALLOWED_VALUES, PATTERN, NOT_NULL, UNIQUE, COMPARE = (
    "range", "allowed_values", "pattern", "not_null", "unique", "compare",
)
KINDS = (RANGE, ALLOWED_VALUES, PATTERN, NOT_NULL, UNIQUE, COMPARE)
COMPARISONS = ("<", "<=", "=", ">=", ">")
EXAMPLES = 5
ROW_NUMBER = "__row_number"


class RuleError(ValueError):
    """A rule's parameters don't make sense (the message is for the person who wrote it)."""


@dataclass(frozen=True)
class RuleSpec:
    """One rule, bound to the file's columns."""

    id: int
    kind: str
    column: str
    data_type: str = STRING
    params: dict = field(default_factory=dict)
    other_column: str | None = None  # compare: the column on the right-hand side
    other_data_type: str = STRING
    date_format: str | None = None


@dataclass
class RuleOutcome:
    failing: int
    examples: list[int]  # 1-based row numbers of the first failing rows


def _empty(column: str, dtype: pl.DataType | None) -> pl.Expr:
    value = pl.col(column)
    if dtype is None or dtype == pl.String:
        return value.is_null() | (value.cast(pl.String).str.strip_chars() == "")
    return value.is_null()


def _typed(column: str, data_type: str, dtype: pl.DataType | None, date_format: str | None) -> pl.Expr:
    value = pl.col(column)
    if dtype is None or dtype == pl.String:
        text = value.str.strip_chars()
        if data_type == DATE:
            # The format the profile detected, else any of the usual ones.
            formats = [date_format] if date_format else list(DATE_FORMATS)
            return pl.coalesce([_parse(text, DATE, f) for f in formats])
        if data_type in (INTEGER, DECIMAL):
            return _parse(text.str.replace_all(",", ""), DECIMAL, None)
        return _parse(text, data_type, date_format)
    if data_type in (INTEGER, DECIMAL) and dtype.is_numeric():
        return value.cast(pl.Float64)
    return value


def _literal(value, data_type: str):
    if data_type == DATE:
        try:
            return datetime.date.fromisoformat(str(value))
        except ValueError:
            raise RuleError(f"{value!r} is not a date (write it as YYYY-MM-DD).") from None
    if data_type in (INTEGER, DECIMAL):
        try:
            return float(value)
        except (TypeError, ValueError):
            raise RuleError(f"{value!r} is not a number.") from None
    return str(value)


def check_params(kind: str, params: dict, data_type: str) -> dict:
    """The rule's parameters cleaned, or RuleError saying what is wrong."""
    params = dict(params or {})
    if kind not in KINDS:
        raise RuleError(f"{kind!r} is not a kind of rule.")
    if kind == RANGE:
        low, high = params.get("min"), params.get("max")
        low = None if low in (None, "") else low
        high = None if high in (None, "") else high
        if low is None and high is None:
            raise RuleError("A range needs a lowest value, a highest value, or both.")
        if low is not None and high is not None and _literal(low, data_type) > _literal(high, data_type):
            raise RuleError(f"The lowest value {low} is above the highest {high}.")
        for v in (low, high):
            if v is not None:
                _literal(v, data_type)
        return {"min": low, "max": high}
    if kind == ALLOWED_VALUES:
        values = params.get("values")
        if isinstance(values, str):
            values = [v.strip() for v in values.split(",")]
        values = [str(v).strip() for v in values or [] if str(v).strip()]
        if not values:
            raise RuleError("List the allowed values, separated by commas.")
        return {"values": list(dict.fromkeys(values))}
    if kind == PATTERN:
        regex = str(params.get("regex") or "").strip()
        if not regex:
            raise RuleError("Give the pattern as a regular expression.")
        try:
            pl.select(pl.lit("x").str.contains(regex))
        except pl.exceptions.PolarsError:
            raise RuleError(f"{regex!r} is not a valid regular expression.") from None
        return {"regex": regex}
    if kind == COMPARE:
        op = params.get("op") or "<="
        other = str(params.get("other") or "").strip()
        if op not in COMPARISONS:
            raise RuleError(f"{op!r} is not a comparison; use one of {', '.join(COMPARISONS)}.")
        if not other:
            raise RuleError("Name the attribute to compare with.")
        return {"op": op, "other": other}
    return {}


def failing(spec: RuleSpec, schema: dict[str, pl.DataType]) -> pl.Expr:
    """True on the rows that break the rule."""
    dtype = schema.get(spec.column)
    empty = _empty(spec.column, dtype)
    p = spec.params
    if spec.kind == NOT_NULL:
        return empty
    if spec.kind == UNIQUE:
        key = pl.col(spec.column).cast(pl.String).str.strip_chars() if dtype == pl.String else pl.col(spec.column)
        return ~empty & key.is_duplicated()
    if spec.kind == PATTERN:
        text = pl.col(spec.column).cast(pl.String).str.strip_chars()
        return ~empty & ~text.str.contains(f"^(?:{p['regex']})$").fill_null(False)
    if spec.kind == ALLOWED_VALUES:
        text = pl.col(spec.column).cast(pl.String).str.strip_chars()
        return ~empty & ~text.is_in([str(v) for v in p["values"]])
    typed = _typed(spec.column, spec.data_type, dtype, spec.date_format)
    if spec.kind == RANGE:
        outside = pl.lit(False)
        if p.get("min") is not None:
            outside = outside | (typed < _literal(p["min"], spec.data_type))
        if p.get("max") is not None:
            outside = outside | (typed > _literal(p["max"], spec.data_type))
        return outside.fill_null(False)
    if spec.kind == COMPARE:
        if not spec.other_column:
            return pl.lit(False)
        other = _typed(spec.other_column, spec.other_data_type, schema.get(spec.other_column), None)
        op = p.get("op", "<=")
        holds = {
            "<": typed < other, "<=": typed <= other, "=": typed == other, ">=": typed >= other, ">": typed > other,
        }[op]
        return (~holds).fill_null(False)
    raise RuleError(f"{spec.kind!r} is not a kind of rule.")


def _value_key(column: str, dtype: pl.DataType | None) -> pl.Expr:
    """The column as the profile's (value, count) tables hold it: categories as their text."""
    value = pl.col(column)
    if isinstance(dtype, (pl.Categorical, pl.Enum)):
        return value.cast(pl.String)
    return value


def _value_counts(lazy: pl.LazyFrame, columns, schema) -> list[pl.LazyFrame]:
    return [
        lazy.select(_value_key(column, schema.get(column)).alias("value")).group_by("value").agg(pl.len().alias("count"))
        for column in columns
    ]


def _failing_values(spec: RuleSpec, counts: pl.DataFrame) -> tuple[int, pl.Series]:
    """A single-column rule judged over the column's distinct values: failing rows, and the values that fail."""
    if spec.kind == UNIQUE:
        text = pl.col("value").cast(pl.String).str.strip_chars() if counts.schema["value"] == pl.String else None
        frame = counts.with_columns((text if text is not None else pl.col("value")).alias("key"))
        frame = frame.filter(~_empty("value", counts.schema["value"]))
        frame = frame.filter(pl.col("count").sum().over("key") > 1)
        return int(frame["count"].sum()), frame["value"]
    frame = counts.rename({"value": spec.column, "count": "__count"}) if spec.column != "__count" else None
    if frame is None:  # a column named like our own count column
        frame = counts.rename({"value": spec.column, "count": "__count_"})
    count_column = frame.columns[1]
    frame = frame.filter(failing(spec, dict(frame.schema)))
    return int(frame[count_column].sum()), frame[spec.column]


def _compare_query(lazy: pl.LazyFrame, compare: list[RuleSpec], examples: int) -> pl.LazyFrame:
    """Comparisons of two columns, row by row: failing rows (n<i>) and the first few row numbers (e<i>)."""
    schema = dict(lazy.collect_schema())
    masks = [failing(spec, schema) for spec in compare]
    return lazy.with_row_index(ROW_NUMBER, offset=1).select(
        [mask.sum().alias(f"n{i}") for i, mask in enumerate(masks)]
        + [pl.col(ROW_NUMBER).filter(mask).head(examples).implode().alias(f"e{i}") for i, mask in enumerate(masks)]
    )


def _evaluate(
    lazy: pl.LazyFrame,
    specs: list[RuleSpec],
    examples: int,
    counts: dict[str, pl.DataFrame] | None = None,
    compared: pl.DataFrame | None = None,
) -> dict[int, RuleOutcome]:
    """Each rule's failing rows. counts, the profile's (value, count) per column, saves counting again.

    Rules on one column are judged over its distinct values (their counts
    summed), comparisons row by row; a second, narrow read finds the first
    failing row numbers, only for the rules that fail.
    """
    schema = dict(lazy.collect_schema())
    specs = [s for s in specs if s.column in schema]
    if not specs:
        return {}
    single = [s for s in specs if s.kind != COMPARE]
    compare = [s for s in specs if s.kind == COMPARE]
    counts = dict(counts or {})
    missing = list(dict.fromkeys(s.column for s in single if s.column not in counts))
    numbered = lazy.with_row_index(ROW_NUMBER, offset=1)
    queries = _value_counts(lazy, missing, schema)
    if compare and compared is None:
        queries.append(_compare_query(lazy, compare, examples))
    collected = pl.collect_all(queries, engine="streaming") if queries else []
    counts.update(zip(missing, collected))
    if compare and compared is None:
        compared = collected[-1]

    outcomes: dict[int, RuleOutcome] = {}
    if compare:
        row = compared.row(0, named=True)
        for i, spec in enumerate(compare):
            outcomes[spec.id] = RuleOutcome(failing=int(row[f"n{i}"] or 0), examples=[int(n) for n in row[f"e{i}"]])

    wanted = {}
    for spec in single:
        count, values = _failing_values(spec, counts[spec.column])
        outcomes[spec.id] = RuleOutcome(failing=count, examples=[])
        if count:
            key = _value_key(spec.column, schema.get(spec.column))
            hit = key.is_in(values.drop_nulls().implode())
            if values.null_count():
                hit = hit | key.is_null()
            wanted[spec.id] = hit
    if wanted:
        found = numbered.select(
            [pl.col(ROW_NUMBER).filter(hit).head(examples).implode().alias(str(rule_id)) for rule_id, hit in wanted.items()]
        ).collect(engine="streaming").row(0, named=True)
        for rule_id in wanted:
            outcomes[rule_id].examples = [int(n) for n in found[str(rule_id)]]
    return {spec.id: outcomes[spec.id] for spec in specs}


def evaluate_rules(lazy: pl.LazyFrame, specs: list[RuleSpec], *, examples: int = EXAMPLES) -> dict[int, RuleOutcome]:
    """How many rows break each rule, and the 1-based row numbers of the first few."""
    if not specs:
        return {}
    return _evaluate(lazy, specs, examples)


def profile_with_rules(
    path, fmt: str, expectations: dict[str, ColumnExpectation] | None, specs: list[RuleSpec],
    *, examples: int = EXAMPLES,
) -> tuple[list[ColumnProfile], dict[int, RuleOutcome]]:
    """The file's column profiles and each rule's failing rows.

    Statistics and the failing counts come from one pass over the file (the
    rules read the profile's counts of distinct values); a narrow second read
    finds example rows, only when a rule fails.
    """
    path = Path(path)
    try:
        sample = _csv_sample(path, _csv_separator(path)) if fmt == "csv" else None
        lazy = read_population(path, fmt)
        schema = lazy.collect_schema()
        compare = [s for s in specs if s.kind == COMPARE and s.column in schema]
        profiles, counts, extra = profile_frame_with(
            lazy, expectations, sample=sample,
            queries=(lambda frame: [_compare_query(frame, compare, examples)]) if compare else None,
        )
        return profiles, _evaluate(lazy, specs, examples, counts, extra[0] if compare else None) if specs else {}
    except READ_ERRORS as exc:
        raise PopulationReadError(_read_error_message(fmt, exc)) from exc


def flagged(specs: list[RuleSpec], schema: dict[str, pl.DataType]) -> pl.Expr | None:
    """True on rows that break any rule (the risk-based draw's target), None without rules."""
    masks = [failing(spec, schema) for spec in specs if spec.column in schema]
    return pl.any_horizontal(masks) if masks else None
