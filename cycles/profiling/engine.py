"""Per-column statistics of a population file, computed by polars: the building blocks.

What a column is checked as (its plan), type detection from a sample of the
first rows, reading a file lazily, and the shape of a column's profile. The
pass over the rows is cycles.profiling.scan: one read, in chunks, computing
every statistic and every rule's failures in bounded memory.

CSV and XLSX cells are read as text on purpose: a value that does not parse
as the column's type ("abc" in an integer column, 2024-02-30 in a date column)
must be counted as a format violation, not fail the read or turn into null.
"""
from __future__ import annotations

import datetime
import io
import math
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import fastexcel
import polars as pl

STRING = "string"
INTEGER = "integer"
DECIMAL = "decimal"
DATE = "date"
BOOLEAN = "boolean"
DATA_TYPES = (STRING, INTEGER, DECIMAL, DATE, BOOLEAN)

FORMATS = ("csv", "xlsx", "parquet")

TOP_N = 5
SAMPLE_ROWS = 1000
SAMPLE_BYTES = 1 << 20
# A column is detected as a type when this share of its sampled values parse,
# so a few bad values in the first rows do not hide that it is numeric.
DETECT_SHARE = 0.9

TRUE_WORDS = ("true", "t", "yes", "y", "1")
FALSE_WORDS = ("false", "f", "no", "n", "0")
# Detection ignores 0/1: such a column is an integer unless an attribute says boolean.
DETECT_BOOLEAN_WORDS = ("true", "t", "yes", "y", "false", "f", "no", "n")
DATE_FORMATS = (
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%d/%m/%Y",
    "%m/%d/%Y",
    "%d.%m.%Y",
    "%d-%b-%Y",
    "%Y%m%d",
    # XLSX date cells read as text, and timestamps whose date is what matters.
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
)
CSV_SEPARATORS = (",", ";", "\t", "|")
# What reading a damaged or mislabelled file raises, as opposed to a bug here.
READ_ERRORS = (pl.exceptions.PolarsError, fastexcel.FastExcelError, OSError)


class PopulationReadError(Exception):
    """The file can't be read as a population of the given format; the message is for the user."""


@dataclass(frozen=True)
class ColumnExpectation:
    """What the report's attribute says a column holds."""

    data_type: str = STRING
    mandatory: bool = False
    primary_key: bool = False


@dataclass
class ColumnProfile:
    """Statistics of one column. Values are text so any column type fits one shape."""

    name: str
    dtype: str  # the type detected from the data (one of DATA_TYPES)
    source_dtype: str  # the polars type the file gave
    checked_as: str  # the type format violations were counted against
    row_count: int
    null_count: int
    distinct_count: int
    min_value: str | None
    max_value: str | None
    top_values: list[dict] = field(default_factory=list)
    format_violations: int = 0
    rule_failures: dict[str, int] = field(default_factory=dict)


def detect_csv_separator(header_line: str) -> str:
    """The separator used by a CSV header line: the candidate found most often outside quotes."""
    counts = dict.fromkeys(CSV_SEPARATORS, 0)
    quoted = False
    for char in header_line:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in counts:
            counts[char] += 1
    best = max(CSV_SEPARATORS, key=lambda sep: counts[sep])
    return best if counts[best] else ","


def _csv_separator(path: Path) -> str:
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as handle:
        return detect_csv_separator(handle.readline(1 << 20))


def _csv_sample(path: Path, separator: str) -> pl.DataFrame | None:
    """The first rows of a CSV, read from its first bytes.

    Much cheaper than head() on the scan, which still maps the whole file;
    None when those bytes don't parse on their own (a quoted newline cut short).
    """
    with open(path, "rb") as handle:
        head = handle.read(SAMPLE_BYTES)
    if len(head) == SAMPLE_BYTES:
        head = head[: head.rfind(b"\n") + 1]
    try:
        return pl.read_csv(
            io.BytesIO(head), separator=separator, infer_schema=False, n_rows=SAMPLE_ROWS, encoding="utf8-lossy"
        )
    except pl.exceptions.PolarsError:
        return None


def read_population(path: str | Path, fmt: str) -> pl.LazyFrame:
    """A lazy frame over the file; CSV and XLSX cells come as text (see the module docstring)."""
    path = Path(path)
    if fmt not in FORMATS:
        raise PopulationReadError(f"Unknown population file format {fmt!r}.")
    try:
        if fmt == "csv":
            return pl.scan_csv(
                path,
                separator=_csv_separator(path),
                infer_schema=False,
                encoding="utf8",
                raise_if_empty=True,
            )
        if fmt == "xlsx":
            return pl.read_excel(path, sheet_id=1, engine="calamine", infer_schema_length=0).lazy()
        return pl.scan_parquet(path)
    except READ_ERRORS as exc:
        raise PopulationReadError(_read_error_message(fmt, exc)) from exc


def _read_error_message(fmt: str, exc: Exception) -> str:
    if isinstance(exc, OSError):
        # Its text names a server path, which is no business of the reader.
        detail = "the stored file is missing" if isinstance(exc, FileNotFoundError) else (exc.strerror or "I/O error")
    else:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "more fields than defined" in detail:
        detail = "a row has more fields than the header row has column names"
    return f"The file could not be read as {fmt.upper()}: {detail[:300]}."


def profile_population(
    path: str | Path, fmt: str, expectations: dict[str, ColumnExpectation] | None = None
) -> list[ColumnProfile]:
    """Read and profile a file in one pass (cycles.profiling.scan); a read or parse failure becomes PopulationReadError."""
    from cycles.profiling import scan

    profiles, _ = scan.profile_file(path, fmt, expectations, [])
    return profiles


def match_column(name: str, names) -> str | None:
    """The entry of names that is name, or failing that equals it ignoring case and outer spaces."""
    if name in names:
        return name
    folded = name.strip().casefold()
    return next((candidate for candidate in names if candidate.strip().casefold() == folded), None)


# -- type detection ---------------------------------------------------------


def _parse(text: pl.Expr, data_type: str, date_format: str | None) -> pl.Expr:
    """The typed value of a text expression; null where it does not parse."""
    if data_type == INTEGER:
        return text.cast(pl.Int64, strict=False)
    if data_type == DECIMAL:
        number = text.cast(pl.Float64, strict=False)
        # Rust's float parser takes "NaN" and "inf"; in a population they are bad values.
        return pl.when(number.is_finite()).then(number)
    if data_type == DATE:
        return text.str.to_date(date_format or DATE_FORMATS[0], strict=False)
    if data_type == BOOLEAN:
        lower = text.str.to_lowercase()
        return pl.when(lower.is_in(TRUE_WORDS)).then(True).when(lower.is_in(FALSE_WORDS)).then(False)
    return text


@dataclass(frozen=True)
class _Detection:
    data_type: str
    date_format: str  # the format most sampled values parse with, the first listed on ties


def _detect_text_types(sample: pl.DataFrame, names: list[str]) -> dict[str, _Detection]:
    """The type of each text column from its sampled values, scored in a single query."""
    exprs = []
    for i, name in enumerate(names):
        column = pl.col(name)
        exprs.append((column.is_not_null() & (column.str.len_bytes() > 0)).sum().alias(f"{i}:values"))
        exprs.append(_parse(column, INTEGER, None).is_not_null().sum().alias(f"{i}:{INTEGER}"))
        exprs.append(_parse(column, DECIMAL, None).is_not_null().sum().alias(f"{i}:{DECIMAL}"))
        for index, date_format in enumerate(DATE_FORMATS):
            exprs.append(_parse(column, DATE, date_format).is_not_null().sum().alias(f"{i}:{DATE}{index}"))
        exprs.append(column.str.to_lowercase().is_in(DETECT_BOOLEAN_WORDS).sum().alias(f"{i}:{BOOLEAN}"))
    scores = sample.select(exprs).row(0, named=True) if exprs else {}

    detections = {}
    for i, name in enumerate(names):
        values = scores[f"{i}:values"]
        best_date = max(range(len(DATE_FORMATS)), key=lambda index: scores[f"{i}:{DATE}{index}"])
        # In order of preference: "1" is an integer before it is a decimal.
        parsed = {
            INTEGER: scores[f"{i}:{INTEGER}"],
            DECIMAL: scores[f"{i}:{DECIMAL}"],
            DATE: scores[f"{i}:{DATE}{best_date}"],
            BOOLEAN: scores[f"{i}:{BOOLEAN}"],
        }
        data_type = next((t for t, count in parsed.items() if values and count >= DETECT_SHARE * values), STRING)
        detections[name] = _Detection(data_type, DATE_FORMATS[best_date])
    return detections


def _semantic_type(dtype: pl.DataType) -> str:
    if dtype.is_integer():
        return INTEGER
    if dtype.is_float() or dtype.is_decimal():
        return DECIMAL
    if dtype.is_temporal() and dtype != pl.Time and not isinstance(dtype, pl.Duration):
        return DATE
    if dtype == pl.Boolean:
        return BOOLEAN
    return STRING


# -- the query --------------------------------------------------------------


@dataclass
class _ColumnPlan:
    name: str
    source_dtype: pl.DataType
    detected: str
    checked_as: str
    date_format: str | None
    expectation: ColumnExpectation | None

    @property
    def is_text(self) -> bool:
        dtype = self.source_dtype
        return dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum)

    @property
    def is_countable(self) -> bool:
        return not (self.source_dtype.is_nested() or self.source_dtype == pl.Object)


def typed_values(plan: _ColumnPlan, value: pl.Expr) -> tuple[pl.Expr, pl.Expr | None]:
    """The column's values (value) in its checked type, and which of its present values violate it."""
    checked_as = plan.checked_as
    if plan.is_text:
        if checked_as == STRING:
            return value, None
        typed = _parse(value, checked_as, plan.date_format)
        return typed, typed.is_null()
    source_type = _semantic_type(plan.source_dtype)
    if checked_as in (STRING, source_type) or (checked_as, source_type) == (DECIMAL, INTEGER):
        return value, None
    if (checked_as, source_type) == (INTEGER, DECIMAL):
        number = value.cast(pl.Float64)
        return value, number != number.floor()
    # e.g. a parquet integer column whose attribute says date: judge its text.
    typed = _parse(value.cast(pl.String, strict=False), checked_as, plan.date_format)
    return typed, typed.is_null()


def _summarise_uncountable(plan: _ColumnPlan, lazy: pl.LazyFrame, rows: int) -> ColumnProfile:
    """Lists and structs have no order or single format: count them only."""
    column = pl.col(plan.name)
    counted = lazy.select(column.null_count().alias("nulls"), column.drop_nulls().n_unique().alias("distinct"))
    nulls, distinct = counted.collect().row(0)
    return ColumnProfile(
        name=plan.name,
        dtype=plan.detected,
        source_dtype=str(plan.source_dtype),
        checked_as=plan.checked_as,
        row_count=rows,
        null_count=nulls,
        distinct_count=distinct,
        min_value=None,
        max_value=None,
        rule_failures={"mandatory": nulls} if plan.expectation and plan.expectation.mandatory else {},
    )


def _text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    if isinstance(value, datetime.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (datetime.date, Decimal)):
        return str(value)
    return str(value)


def _plan(name: str, dtype: pl.DataType, detection: _Detection | None, expectation) -> _ColumnPlan:
    if detection is not None:
        detected, date_format = detection.data_type, detection.date_format
    else:
        detected, date_format = _semantic_type(dtype), None
    checked_as = expectation.data_type if expectation else detected
    if checked_as not in DATA_TYPES:
        raise ValueError(f"Unknown data type {checked_as!r} for column {name!r}.")
    return _ColumnPlan(name, dtype, detected, checked_as, date_format, expectation)


def profile_frame(
    frame: pl.DataFrame | pl.LazyFrame,
    expectations: dict[str, ColumnExpectation] | None = None,
    *,
    sample: pl.DataFrame | None = None,
) -> list[ColumnProfile]:
    """Profile every column of frame, judging the columns named in expectations by them.

    Expectations are matched to columns by match_column (case-insensitively).
    sample, the frame's first rows if the caller has them cheaper, is used to
    detect the type of text columns.
    """
    from cycles.profiling import scan, sources

    source = sources.frame_source(frame)
    if sample is not None:
        source.sample = sample
    profiles, _ = scan.run(source, expectations, [])
    return profiles
