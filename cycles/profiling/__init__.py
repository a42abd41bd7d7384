"""Column profiling of population files with polars.

Pure data code: no Django here, so the benchmark and the worker can use it
without settings. cycles.services.profiling stores what it computes.
"""
from cycles.profiling.engine import (
    ColumnExpectation,
    ColumnProfile,
    PopulationReadError,
    READ_ERRORS,
    detect_csv_separator,
    match_column,
    profile_frame,
    profile_population,
    read_population,
)

__all__ = [
    "ColumnExpectation",
    "ColumnProfile",
    "PopulationReadError",
    "READ_ERRORS",
    "detect_csv_separator",
    "match_column",
    "profile_frame",
    "profile_population",
    "read_population",
]
