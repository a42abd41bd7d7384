"""Services of the Data Profiling phase: population files and their profiles.

An upload is checked completely (size, format, encoding, header, rows) in a
temporary file before anything reaches storage or the database, so a bad file
changes nothing. Profiling reads the stored file by path inside the worker's
activity; only the file's id crosses Temporal.
"""
from __future__ import annotations

import codecs
import csv
import hashlib
import io
import os
import re
import tempfile
import time
import zipfile
from pathlib import Path

import fastexcel
import polars as pl
from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.utils import timezone

from cycles.exceptions import InvalidFileError, NotFoundError, PermissionDeniedError
from cycles.models import CycleReport, PopulationFile, ProfileResult
from cycles.permissions import can_work_on
from cycles.profiling import (
    READ_ERRORS,
    ColumnExpectation,
    PopulationReadError,
    detect_csv_separator,
    read_population,
)
from synapse.audit import audit_record, snapshot

CHUNK_BYTES = 1 << 20
# The header and first data row must lie in this much of a CSV's start.
CSV_HEAD_CHARS = 1 << 20
COLUMN_NAME_MAX = 255  # ProfileResult.column_name
TEXT_MAX = 255  # ProfileResult.min_value / max_value, and each top value

EXTENSION_FORMATS = {
    ".csv": PopulationFile.Format.CSV,
    ".xlsx": PopulationFile.Format.XLSX,
    ".parquet": PopulationFile.Format.PARQUET,
    ".pq": PopulationFile.Format.PARQUET,
}
FORMAT_NOUNS = {
    PopulationFile.Format.CSV: "CSV text",
    PopulationFile.Format.XLSX: "an Excel workbook (.xlsx)",
    PopulationFile.Format.PARQUET: "a Parquet file",
}
ZIP_MAGIC = b"PK\x03\x04"
PARQUET_MAGIC = b"PAR1"
# A header cell that is a number or a date is a sign the file has no header row.
VALUE_PATTERN = re.compile(r"[-+]?(\d[\d,]*)?\.?\d+([eE][-+]?\d+)?|\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}")


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):,.0f} MB" if size >= 1024 * 1024 else f"{size:,} bytes"


def _resolve_format(original_name: str, declared_format: str | None) -> str:
    if declared_format:
        fmt = declared_format.strip().lower().lstrip(".")
        if fmt not in PopulationFile.Format.values:
            raise InvalidFileError(
                f"{declared_format!r} is not a population file format; use CSV, XLSX or Parquet."
            )
        return fmt
    fmt = EXTENSION_FORMATS.get(Path(original_name).suffix.lower())
    if fmt is None:
        raise InvalidFileError(
            f"{original_name or 'The file'} does not end in .csv, .xlsx or .parquet; "
            "rename it or declare its format."
        )
    return fmt


class _Utf8Check:
    """Decodes a CSV as it streams by, so a bad byte is found without a second read.

    Keeps the start of the text for the header check, and counts lines so the
    error can say where the bad byte is.
    """

    def __init__(self):
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
        self.offset = 0  # bytes fed before the current chunk
        self.lines = 0  # newlines in those bytes
        self.head = io.StringIO()
        self.head_chars = 0

    def feed(self, chunk: bytes, *, final: bool = False) -> None:
        pending = len(self.decoder.getstate()[0])
        nul = chunk.find(b"\x00")
        try:
            text = self.decoder.decode(chunk, final=final)
        except UnicodeDecodeError as exc:
            # exc.start counts the bytes the decoder held back from the previous chunk too.
            bad = exc.start - pending
            if not 0 <= nul < bad:
                self._fail(chunk, bad, "is not valid UTF-8", "save it as CSV with UTF-8 encoding")
        if nul >= 0:
            # NUL is valid UTF-8, but no CSV holds one: it is UTF-16 text or binary data.
            self._fail(
                chunk,
                nul,
                "contains a NUL byte",
                "it looks like UTF-16 or binary data, so save it as CSV with UTF-8 encoding",
            )
        if self.head_chars < CSV_HEAD_CHARS:
            kept = text[: CSV_HEAD_CHARS - self.head_chars]
            self.head.write(kept)
            self.head_chars += len(kept)
        self.offset += len(chunk)
        self.lines += chunk.count(b"\n")

    def _fail(self, chunk: bytes, position: int, problem: str, remedy: str):
        line = self.lines + 1 + chunk.count(b"\n", 0, max(position, 0))
        raise InvalidFileError(
            f"The file {problem} at byte {self.offset + position:,} (line {line:,}); {remedy} and upload it again."
        )


def _check_header(names: list[str]) -> None:
    if not names or all(not name.strip() for name in names):
        raise InvalidFileError("The first row is empty; it must name the columns.")
    for index, name in enumerate(names, start=1):
        if not name.strip():
            raise InvalidFileError(f"Column {index} has no name in the header row; every column needs one.")
        if len(name) > COLUMN_NAME_MAX:
            raise InvalidFileError(f"The name of column {index} is longer than {COLUMN_NAME_MAX} characters.")
    seen = {}
    for name in names:
        key = name.strip().casefold()
        if key in seen:
            raise InvalidFileError(
                f"The header row names the column {name.strip()!r} twice; column names must be unique."
            )
        seen[key] = name
    if all(VALUE_PATTERN.fullmatch(name.strip()) for name in names):
        raise InvalidFileError(
            "The first row holds values, not column names; add a header row that names the columns."
        )


def _check_csv_text(head: str) -> None:
    head = head.removeprefix("\ufeff")  # the byte-order mark Excel writes at the start of "CSV UTF-8"
    if not head.strip():
        raise InvalidFileError("The file holds only blank lines; there is no header or data.")
    lines = head.splitlines()
    separator = detect_csv_separator(lines[0])
    reader = csv.reader(lines, delimiter=separator)
    try:
        header = next(reader)
    except csv.Error as exc:
        raise InvalidFileError(f"The header row is not valid CSV: {exc}.") from exc
    _check_header(header)
    # Lines after the header's (which may span lines inside quotes): any value makes a data row.
    blank = set(separator + '" \t')
    if not any(set(line) - blank for line in lines[reader.line_num :]):
        raise InvalidFileError("The file has a header row but no data rows.")


def _check_xlsx(path: str) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            is_workbook = "xl/workbook.xml" in archive.namelist()
    except zipfile.BadZipFile:
        is_workbook = False
    if not is_workbook:
        raise InvalidFileError("The file is a damaged zip archive or not an Excel workbook (.xlsx).")
    try:
        reader = fastexcel.read_excel(path)
        if not reader.sheet_names:
            raise InvalidFileError("The workbook has no sheets.")
        # Read the first rows without a header so that names come as written.
        rows = reader.load_sheet(0, header_row=None, n_rows=2, dtypes="string").to_polars()
    except fastexcel.FastExcelError as exc:
        raise InvalidFileError(f"The workbook could not be read: {str(exc).splitlines()[0]}.") from exc
    if rows.height == 0:
        raise InvalidFileError(f"The first sheet ({reader.sheet_names[0]}) is empty.")
    _check_header([cell or "" for cell in rows.row(0)])
    if rows.height < 2:
        raise InvalidFileError("The first sheet has a header row but no data rows.")


def _check_parquet(path: str) -> None:
    try:
        names = list(pl.read_parquet_schema(path))
        rows = pl.scan_parquet(path).select(pl.len()).collect().item()
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise InvalidFileError(f"The Parquet file could not be read: {str(exc).splitlines()[0]}.") from exc
    _check_header(names)
    if rows == 0:
        raise InvalidFileError("The Parquet file has columns but no rows.")


def _detected_format(start: bytes, end: bytes | None = None) -> str | None:
    """The binary format the file's first (and, when given, last) bytes show."""
    if start.startswith(ZIP_MAGIC):
        return PopulationFile.Format.XLSX
    if start.startswith(PARQUET_MAGIC) and (end is None or end.endswith(PARQUET_MAGIC)):
        return PopulationFile.Format.PARQUET
    return None


def _check_magic(fmt: str, start: bytes, end: bytes | None = None) -> None:
    """The file's first and last bytes must be those of its format."""
    found = _detected_format(start, end)
    if found == fmt or (found is None and fmt == PopulationFile.Format.CSV):
        return
    if found:
        raise InvalidFileError(
            f"The file is {FORMAT_NOUNS[found]}, not {FORMAT_NOUNS[fmt]} as its name or declared format says."
        )
    raise InvalidFileError(f"The file is not {FORMAT_NOUNS[fmt]} as its name or declared format says.")


class _TemporaryFile(File):
    """A file already on disk: FileSystemStorage moves it into place instead of copying it."""

    def temporary_file_path(self) -> str:
        return self.file.name


def _receive(uploaded_file, fmt: str, max_bytes: int, temp_path: str) -> tuple[int, str]:
    """Copy the upload to temp_path, checking it on the way; return its size and SHA-256."""
    hasher = hashlib.sha256()
    size = 0
    start = end = b""
    text_check = _Utf8Check() if fmt == PopulationFile.Format.CSV else None
    with open(temp_path, "wb") as out:
        for chunk in uploaded_file.chunks(CHUNK_BYTES):
            if not chunk:
                continue
            size += len(chunk)
            if size > max_bytes:
                raise InvalidFileError(
                    f"The file is larger than the {_megabytes(max_bytes)} allowed for a population file."
                )
            if not start:
                start = chunk[:8]
                if text_check:
                    # Say what a binary file is rather than where its first non-UTF-8 byte is.
                    _check_magic(fmt, start)
            end = (end + chunk)[-8:]
            hasher.update(chunk)
            if text_check:
                text_check.feed(chunk)
            out.write(chunk)
    if size == 0:
        raise InvalidFileError("The file is empty.")
    _check_magic(fmt, start, end)
    if text_check:
        text_check.feed(b"", final=True)
        _check_csv_text(text_check.head.getvalue())
    elif fmt == PopulationFile.Format.XLSX:
        _check_xlsx(temp_path)
    else:
        _check_parquet(temp_path)
    return size, hasher.hexdigest()


def population_file_upload(
    *, user, cycle_report: CycleReport, uploaded_file, declared_format: str | None = None
) -> PopulationFile:
    """Check and store a population file for the report; a bad file raises InvalidFileError and stores nothing."""
    if not can_work_on(user, cycle_report):
        raise PermissionDeniedError("Only the tester assigned to this report can upload its population file.")
    from cycles.services.profiling_checks import population_upload_check

    population_upload_check(cycle_report=cycle_report)
    original_name = Path(uploaded_file.name or "").name[:255]
    fmt = _resolve_format(original_name, declared_format)
    max_bytes = settings.POPULATION_MAX_BYTES
    if uploaded_file.size is not None and uploaded_file.size > max_bytes:
        raise InvalidFileError(
            f"The file is larger than the {_megabytes(max_bytes)} allowed for a population file."
        )

    handle, temp_path = tempfile.mkstemp(prefix="population-", suffix=f".{fmt}", dir=settings.FILE_UPLOAD_TEMP_DIR)
    os.close(handle)
    try:
        size, sha256 = _receive(uploaded_file, fmt, max_bytes, temp_path)
        population_file = PopulationFile(
            cycle_report=cycle_report,
            original_name=original_name,
            format=fmt,
            size_bytes=size,
            sha256=sha256,
            uploaded_by=user,
            status=PopulationFile.Status.UPLOADED,
        )
        stored_name = f"{Path(original_name).stem or 'population'}.{fmt}"
        try:
            with transaction.atomic():
                with open(temp_path, "rb") as temp:
                    population_file.file.save(stored_name, _TemporaryFile(temp), save=False)
                population_file.save()
                audit_record(
                    actor=user,
                    action="population.upload",
                    obj=population_file,
                    after={
                        **snapshot(population_file, ["original_name", "format", "size_bytes", "sha256"]),
                        "file": population_file.file.name,
                    },
                    context={"cycle_report": cycle_report.pk},
                )
        except BaseException:
            if population_file.file.name:
                population_file.file.storage.delete(population_file.file.name)
            raise
    finally:
        if os.path.exists(temp_path):
            os.unlink(temp_path)
    return population_file


def _clip(text: str | None) -> str:
    return (text or "")[:TEXT_MAX]


def _mark_failed(population_file_id: int, message: str) -> None:
    with transaction.atomic():
        population_file = PopulationFile.objects.select_for_update().get(pk=population_file_id)
        population_file.status = PopulationFile.Status.FAILED
        population_file.error = message
        population_file.save(update_fields=["status", "error"])
        audit_record(actor=None, action="population.profile_failed", obj=population_file, context={"error": message})


def population_file_profile(*, population_file_id: int) -> PopulationFile:
    """Profile a stored population file and replace its ProfileResult rows; safe to run again.

    First each attribute is mapped to a column (carried from the previous
    file where the tester confirmed it, else matched by name), so the mapped
    attribute's data type, mandatory and primary-key flags drive the format
    checks. Then the attributes' validation rules are counted (drafted first
    when the report has none), and the primary key is checked: repeats or
    blanks are recorded as a problem for the tester, never worked around.
    An unreadable file is marked failed and raises InvalidFileError.
    """
    from cycles.profiling.rules import profile_with_rules
    from cycles.services.profiling_checks import (
        columns_map,
        key_check,
        mapping_warning,
        rule_results,
        rule_specs,
        rules_draft_for_report,
        rules_for_file,
    )

    try:
        population_file = (PopulationFile.objects.select_related("cycle_report__report", "cycle_report__cycle")
                           .get(pk=population_file_id))
    except PopulationFile.DoesNotExist:
        raise NotFoundError(f"Population file {population_file_id} does not exist.") from None
    PopulationFile.objects.filter(pk=population_file.pk).update(status=PopulationFile.Status.PROFILING, error="")
    try:
        columns = read_population(population_file.file.path, population_file.format).collect_schema().names()
    except (PopulationReadError, *READ_ERRORS) as exc:
        message = str(exc) if isinstance(exc, PopulationReadError) else f"The file could not be read: {exc}"
        _mark_failed(population_file.pk, message)
        raise InvalidFileError(message) from exc
    mappings = columns_map(population_file=population_file, columns=columns)
    attributes = {m.column_name: m.attribute for m in mappings if m.column_name and m.status != "not_in_file"}
    expectations = {
        column: ColumnExpectation(data_type=a.data_type, mandatory=a.mandatory, primary_key=a.primary_key)
        for column, a in attributes.items()
    }

    # Rules are drafted from the attributes alone, so they are counted in the profile's one pass over the file.
    rules_draft_for_report(cycle_report=population_file.cycle_report)
    rules = rules_for_file(population_file)
    specs = rule_specs(population_file, rules)
    started = time.perf_counter()
    try:
        profiles, outcomes = profile_with_rules(
            population_file.file.path, population_file.format, expectations, specs
        )
    except PopulationReadError as exc:
        _mark_failed(population_file.pk, str(exc))
        raise InvalidFileError(str(exc)) from exc
    seconds = time.perf_counter() - started

    per_column = rule_results(specs, rules, outcomes)
    results = []
    for profile in profiles:
        results.append(
            ProfileResult(
                population_file=population_file,
                column_name=profile.name,
                attribute=attributes.get(profile.name),
                dtype=profile.dtype,
                row_count=profile.row_count,
                null_count=profile.null_count,
                distinct_count=profile.distinct_count,
                min_value=_clip(profile.min_value),
                max_value=_clip(profile.max_value),
                top_values=[{"value": _clip(t["value"]), "count": t["count"]} for t in profile.top_values],
                format_violations=profile.format_violations,
                rule_failures=profile.rule_failures,
                rule_results=per_column.get(profile.name, []),
            )
        )
    with transaction.atomic():
        population_file = PopulationFile.objects.select_for_update().get(pk=population_file.pk)
        ProfileResult.objects.filter(population_file=population_file).delete()
        ProfileResult.objects.bulk_create(results)
        population_file.row_count = profiles[0].row_count if profiles else 0
        population_file.columns = [profile.name for profile in profiles]
        population_file.status = PopulationFile.Status.PROFILED
        population_file.error = ""
        population_file.profiled_at = timezone.now()
        population_file.profile_seconds = round(seconds, 3)
        population_file.mapping_warning = mapping_warning(mappings)
        population_file.save(
            update_fields=["row_count", "columns", "status", "error", "profiled_at", "profile_seconds",
                           "mapping_warning"]
        )
        key_check(population_file=population_file, results=results)
        audit_record(
            actor=None,
            action="population.profile",
            obj=population_file,
            after=snapshot(population_file, ["row_count", "columns", "status", "profile_seconds", "key_problem",
                                             "mapping_warning"]),
        )
    population_file.refresh_from_db()
    return population_file


def population_file_current(*, cycle_report: CycleReport) -> PopulationFile | None:
    """The report's most recent profiled population file: the one its phases work from."""
    return (
        cycle_report.population_files.filter(status=PopulationFile.Status.PROFILED)
        .select_related("uploaded_by", "key_resolved_by")
        .order_by("-uploaded_at", "-pk")
        .first()
    )


def population_file_latest(*, cycle_report: CycleReport) -> PopulationFile | None:
    """The report's most recent population file, the one its phase works from."""
    return cycle_report.population_files.order_by("-uploaded_at", "-pk").first()
