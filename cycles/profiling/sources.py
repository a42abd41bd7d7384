"""Where a population's rows come from, chunk by chunk, for the one pass of cycles.profiling.scan.

A CSV is read in pieces of CHUNK_BYTES cut only between records (never
inside a quoted value) and parsed by a reader thread ahead of the reduction;
it is never memory-mapped whole (a mapped 1.3 GB file counts in full against
the process's resident memory). Frames, workbooks and Parquet files are
read in slices of CHUNK_ROWS rows.
"""
from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from cycles.profiling.engine import SAMPLE_ROWS, _csv_sample, _csv_separator, read_population

# Bytes of CSV parsed at a time: large enough that per-chunk overhead is small, small enough to stay lean.
CHUNK_BYTES = 16 << 20
# Rows at a time from a frame, a workbook or a Parquet file.
CHUNK_ROWS = 250_000


@dataclass
class Source:
    """A population's column types and a way to read its rows chunk by chunk (as often as needed)."""

    schema: dict[str, pl.DataType]
    chunks: Callable[[], Iterator[pl.DataFrame]]
    sample: pl.DataFrame | None = None  # the first rows, when they come cheaper than the first chunk
    lazy: pl.LazyFrame | None = None  # for columns that can't be tallied (lists, structs)


def _record_end(data: bytes, end: int) -> int:
    """The last record boundary (just after a newline outside quotes) at or before end; -1 if none."""
    if data.find(b'"', 0, end) < 0:
        return data.rfind(b"\n", 0, end) + 1 or -1
    quotes_before = data.count(b'"', 0, end)
    position = data.rfind(b"\n", 0, end)
    while position >= 0:
        # A doubled quote inside a quoted value keeps the parity, so even parity means outside quotes.
        if (quotes_before - data.count(b'"', position, end)) % 2 == 0:
            return position + 1
        end = position
        quotes_before = data.count(b'"', 0, end)
        position = data.rfind(b"\n", 0, end)
    return -1


def _csv_records(path: Path, chunk_bytes: int) -> Iterator[bytes]:
    """The file's bytes after the header, in pieces that each end between records.

    Each piece is read once, by position, already ending just after a
    newline (found first by a small read near where the piece should end),
    so no piece is joined to a carried-over tail or sliced: those copies
    cost more CPU than reading the file. A piece holding a quote is checked
    for a record cut inside a quoted value, and then ends at its last
    record boundary instead; the next piece starts there.
    """
    with open(path, "rb", buffering=0) as handle:
        fd = handle.fileno()
        size = os.fstat(fd).st_size
        position = _header_end(fd, size)
        if position < 0:
            return
        while position < size:
            end = size if position + chunk_bytes >= size else _newline_before(fd, position, position + chunk_bytes)
            while True:
                data = os.pread(fd, end - position, position)
                if len(data) < end - position:  # the file shrank while being read
                    end = position + len(data)
                cut = len(data) if end >= size or data.find(b'"') < 0 else _record_end(data, len(data))
                if cut > 0 or end >= size:
                    break
                # One record (a quoted value with newlines) longer than the piece: read a longer piece.
                end = size if end + chunk_bytes >= size else _newline_before(fd, end, end + chunk_bytes)
            if cut <= 0:
                cut = len(data)
            if not data:
                return
            yield data if cut == len(data) else data[:cut]
            position += cut


# Bytes read at a time when looking for a newline near the end of a piece.
_PROBE_BYTES = 1 << 16


def _newline_before(fd: int, start: int, end: int) -> int:
    """Just past the last newline in the file's bytes [start, end); or past the first one after end (or EOF)."""
    probe_end = end
    while probe_end > start:
        probe_start = max(start, probe_end - _PROBE_BYTES)
        found = os.pread(fd, probe_end - probe_start, probe_start).rfind(b"\n")
        if found >= 0:
            return probe_start + found + 1
        probe_end = probe_start
    # No newline in the whole piece: it ends with the record that runs past it.
    while True:
        probe = os.pread(fd, _PROBE_BYTES, end)
        if not probe:
            return end
        found = probe.find(b"\n")
        if found >= 0:
            return end + found + 1
        end += len(probe)


def _header_end(fd: int, size: int) -> int:
    """Just past the header record (a newline outside quotes); -1 when the file has no complete header."""
    length = 1 << 20
    while True:
        head = os.pread(fd, length, 0)
        end = _first_record_end(head)
        if end >= 0 or len(head) >= size:
            return end
        length *= 2


def _first_record_end(data: bytes) -> int:
    quotes = 0
    start = 0
    while True:
        position = data.find(b"\n", start)
        if position < 0:
            return -1
        quotes += data.count(b'"', start, position)
        if quotes % 2 == 0:
            return position + 1
        start = position + 1


def csv_source(path: str | Path) -> Source:
    path = Path(path)
    separator = _csv_separator(path)
    lazy = read_population(path, "csv")
    schema = dict(lazy.collect_schema())
    names = list(schema)
    text_schema = {name: pl.String for name in names}

    def parse(data: bytes) -> pl.DataFrame:
        return pl.read_csv(
            data, has_header=False, new_columns=names, schema=text_schema, separator=separator,
            encoding="utf8", low_memory=True, rechunk=False,
        )

    def chunks() -> Iterator[pl.DataFrame]:
        # A reader thread reads, cuts and parses the next chunks while the caller reduces this one
        # (polars lets go of the GIL), at most two ahead.
        return _read_ahead(parse(data) for data in _csv_records(path, CHUNK_BYTES))

    return Source(schema=schema, chunks=chunks, sample=_csv_sample(path, separator))


_DONE = object()


def _read_ahead(produce: Iterator[pl.DataFrame], depth: int = 2) -> Iterator[pl.DataFrame]:
    """The items of produce, made in a thread of their own; an error there is raised here."""
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def hand_over(item) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False  # the caller stopped reading

    def work():
        try:
            for item in produce:
                if not hand_over(item):
                    return
            hand_over(_DONE)
        except BaseException as exc:  # handed to the caller, which raises it
            hand_over(exc)

    thread = threading.Thread(target=work, name="population-chunks", daemon=True)
    thread.start()
    try:
        while True:
            item = ready.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


def frame_source(frame: pl.DataFrame | pl.LazyFrame) -> Source:
    """Any frame: collected once, read in slices (workbooks are read whole by nature)."""
    lazy = frame.lazy()
    data = frame if isinstance(frame, pl.DataFrame) else lazy.collect()

    def chunks() -> Iterator[pl.DataFrame]:
        if data.height == 0:
            yield data
        for offset in range(0, data.height, CHUNK_ROWS):
            yield data.slice(offset, CHUNK_ROWS)

    return Source(schema=dict(data.schema), chunks=chunks, sample=data.head(SAMPLE_ROWS), lazy=data.lazy())


def parquet_source(path: str | Path) -> Source:
    lazy = read_population(path, "parquet")
    schema = dict(lazy.collect_schema())
    rows = lazy.select(pl.len()).collect().item()

    def chunks() -> Iterator[pl.DataFrame]:
        if rows == 0:
            yield lazy.collect()
        for offset in range(0, rows, CHUNK_ROWS):
            yield lazy.slice(offset, CHUNK_ROWS).collect()

    return Source(schema=schema, chunks=chunks, sample=lazy.head(SAMPLE_ROWS).collect(), lazy=lazy)


def file_source(path: str | Path, fmt: str) -> Source:
    if fmt == "csv":
        return csv_source(path)
    if fmt == "parquet":
        return parquet_source(path)
    return frame_source(read_population(path, fmt))
