"""How far a sample grows when an attribute shows more deviations than its size allows.

Pure functions (no Django). The rule is the one that sized the sample, AICPA
attribute sampling: a sample of n supports the tolerable rate with k deviations
when P(X <= k | n, tolerable rate) <= risk of overreliance, X binomial. When an
attribute fails more often than its sample allows, the extended size is the
smallest n at which the deviations found would still be allowed.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from decimal import Decimal

from scipy.stats import binom

from cycles.sampling.size import MAX_SAMPLE_SIZE


@dataclass(frozen=True)
class ExtensionSize:
    sample_size: int
    rule: str


def allowed_deviations(*, sample_size: int, risk_of_overreliance: float | Decimal,
                       tolerable_rate: float | Decimal) -> int:
    """The most deviations a sample of `sample_size` may show and still support the tolerable rate (0 if none)."""
    # The matrix asks it for every attribute, nearly always with the same three figures.
    return _allowed_deviations(int(sample_size), float(risk_of_overreliance), float(tolerable_rate))


@functools.lru_cache(maxsize=1024)
def _allowed_deviations(sample_size: int, risk: float, tolerable: float) -> int:
    k = 0
    while k < sample_size and binom.cdf(k + 1, sample_size, tolerable) <= risk:
        k += 1
    return k if binom.cdf(k, sample_size, tolerable) <= risk else 0


def extended_sample_size(*, deviations: int, risk_of_overreliance: float | Decimal,
                         tolerable_rate: float | Decimal, population: int | None = None) -> ExtensionSize:
    """The smallest sample that allows `deviations`, capped at the population (tested in full)."""
    if deviations < 0:
        raise ValueError("Deviations can't be negative.")
    risk, tolerable = float(risk_of_overreliance), float(tolerable_rate)
    if not 0 < risk < 1 or not 0 < tolerable < 1:
        raise ValueError("The risk of overreliance and the tolerable rate must be between 0% and 100%.")
    low, high = deviations + 1, MAX_SAMPLE_SIZE
    if binom.cdf(deviations, high, tolerable) > risk:
        size = high
    else:
        # P(X <= k | n, p) falls as n grows: the first n that meets the risk, by bisection.
        while low < high:
            mid = (low + high) // 2
            if binom.cdf(deviations, mid, tolerable) <= risk:
                high = mid
            else:
                low = mid + 1
        size = low
    rule = (
        f"AICPA attribute sampling: {deviations} deviation{'s' if deviations != 1 else ''} at "
        f"{risk * 100:g}% risk and {tolerable * 100:g}% tolerable rate → {size}"
    )
    if population is not None and size > population:
        rule += f", capped at the population of {population} (tested in full)"
        size = population
    return ExtensionSize(sample_size=size, rule=rule)
