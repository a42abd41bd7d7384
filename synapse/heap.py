"""The garbage collector's settings for Synapse's long-lived processes (worker, PDF renderers, web).

Python's cyclic collector runs after every 700 net allocations, and now and then goes through every object the
process holds. A worker holds a few hundred thousand objects it keeps for its whole life (Django, the Temporal
SDK, the libraries its activities use) and allocates millions more while it works (query sets, protobufs,
WeasyPrint's boxes): measured over twenty reports, the PDF processes spent a third of their CPU collecting,
the worker and the web a tenth.

`settle()`, called once a process has loaded what it keeps, moves those objects out of the collector's sight
(gc.freeze: they are never garbage) and lets more allocations pass between young collections, so that
short-lived objects are freed by their reference counts before a collection looks at them. Cycles are still
collected, later: over twenty reports the worker's memory stayed the same and a PDF process held about 25 MB
more (docs/operators.md).
"""
from __future__ import annotations

import gc
import os

# (young, middle, old) as gc.set_threshold takes them; SYNAPSE_GC_THRESHOLDS="700,10,10" puts back Python's own.
DEFAULT_THRESHOLDS = (20_000, 20, 20)


def thresholds() -> tuple[int, int, int]:
    raw = os.environ.get("SYNAPSE_GC_THRESHOLDS", "")
    if not raw:
        return DEFAULT_THRESHOLDS
    try:
        values = tuple(int(v) for v in raw.split(","))
    except ValueError:
        return DEFAULT_THRESHOLDS
    return values if len(values) == 3 and values[0] > 0 else DEFAULT_THRESHOLDS


def settle() -> None:
    """Once the process has loaded what it keeps: collect, freeze what is left, and collect less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*thresholds())


def load_pages() -> None:
    """Import the URLconf (and every view behind it) and build its reverse map, as the first request or the
    first reverse() would: the web shows pages, and the worker's activities reverse their addresses (links
    in notifications, the evidence package). Measured over twenty reports, the worker's first activities
    spent a second of its CPU doing this while the reports waited."""
    from django.urls import get_resolver

    get_resolver().reverse_dict  # noqa: B018 - reading it imports the URLconf and populates the map


def settle_web() -> None:
    """A web process, once its application is made: load the pages before the first request rather than
    during it, then settle."""
    load_pages()
    settle()
