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

import polars as pl

from cycles.profiling import scan, sources
from cycles.profiling.engine import (
    DATE,
    DATE_FORMATS,
    DECIMAL,
    INTEGER,
    STRING,
    ColumnExpectation,
    ColumnProfile,
    _parse,
)

RANGE, ALLOWED_VALUES, PATTERN, NOT_NULL, UNIQUE, COMPARE = (
    "range", "allowed_values", "pattern", "not_null", "unique", "compare",
)
KINDS = (RANGE, ALLOWED_VALUES, PATTERN, NOT_NULL, UNIQUE, COMPARE)
COMPARISONS = ("<", "<=", "=", ">=", ">")
EXAMPLES = scan.EXAMPLES
ROW_NUMBER = scan.ROW_NUMBER


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


RuleOutcome = scan.Outcome  # failing rows, and the 1-based row numbers of the first few


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
            return _parse(text.str.replace_all(",", "", literal=True), DECIMAL, None)
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


def failing_count(spec: RuleSpec, schema: dict[str, pl.DataType]) -> pl.Expr:
    """How many rows break the rule: failing(spec).sum(), cheaper for a range over numbers written as text.

    Most such values parse as they are; only those that don't are trimmed and
    rid of thousands separators first (which leaves a value that parses
    unchanged), so the costly text work runs on the few, not on every row.
    """
    dtype = schema.get(spec.column)
    p = spec.params
    if spec.kind != RANGE or spec.data_type not in (INTEGER, DECIMAL) or not (dtype is None or dtype == pl.String):
        return failing(spec, schema).sum()
    value = pl.col(spec.column)
    direct = _parse(value, DECIMAL, None)
    rest = _parse(value.filter(direct.is_null() & value.is_not_null()).str.strip_chars()
                  .str.replace_all(",", "", literal=True), DECIMAL, None)

    def outside(number: pl.Expr) -> pl.Expr:
        out = pl.lit(False)
        if p.get("min") is not None:
            out = out | (number < _literal(p["min"], spec.data_type))
        if p.get("max") is not None:
            out = out | (number > _literal(p["max"], spec.data_type))
        return out.fill_null(False).sum()

    return outside(direct) + outside(rest)


def evaluate_rules(lazy: pl.LazyFrame | pl.DataFrame, specs: list[RuleSpec], *,
                   examples: int = EXAMPLES) -> dict[int, RuleOutcome]:
    """How many rows of a frame break each rule, and the 1-based row numbers of the first few."""
    if not specs:
        return {}
    _, outcomes = scan.run(sources.frame_source(lazy), None, specs, statistics=False, examples=examples)
    return outcomes


def evaluate_rules_in_file(path, fmt: str, specs: list[RuleSpec], *, examples: int = EXAMPLES
                           ) -> dict[int, RuleOutcome]:
    """evaluate_rules over a stored file, read in chunks (rules only, no statistics)."""
    if not specs:
        return {}
    _, outcomes = scan.profile_file(path, fmt, None, specs, statistics=False, examples=examples)
    return outcomes


def profile_with_rules(
    path, fmt: str, expectations: dict[str, ColumnExpectation] | None, specs: list[RuleSpec],
    *, examples: int = EXAMPLES,
) -> tuple[list[ColumnProfile], dict[int, RuleOutcome]]:
    """The file's column profiles and each rule's failing rows, from one pass over the file.

    A second pass is made only to count repeated keys exactly, or to find
    example rows of a uniqueness rule that fails (see cycles.profiling.scan).
    """
    return scan.profile_file(path, fmt, expectations, specs, examples=examples)


def flagged(specs: list[RuleSpec], schema: dict[str, pl.DataType]) -> pl.Expr | None:
    """True on rows that break any rule (the risk-based draw's target), None without rules."""
    masks = [failing(spec, schema) for spec in specs if spec.column in schema]
    return pl.any_horizontal(masks) if masks else None
