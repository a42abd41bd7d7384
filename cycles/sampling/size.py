"""Sample sizes for tests of controls: AICPA attribute sampling and the frequency table.

Pure functions (no Django): the Sample Selection service calls them and stores
the result's `rule` next to the size so the page can say where a size came from.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction

import numpy as np
from scipy.stats import beta, binom

__all__ = [
    "AICPA_METHOD",
    "DEFAULT_FREQUENCY_TABLE",
    "FREQUENCIES",
    "FREQUENCY_LABELS",
    "FREQUENCY_METHOD",
    "MAX_SAMPLE_SIZE",
    "OVERRIDE_METHOD",
    "RISK_LEVELS",
    "SampleSizeResult",
    "attribute_sample_size",
    "frequency_sample_size",
    "override_sample_size",
    "upper_deviation_limit",
]

AICPA_METHOD = "AICPA binomial"
FREQUENCY_METHOD = "Frequency table"
OVERRIDE_METHOD = "Override"

# Beyond this the expected rate is so close to the tolerable rate that attribute
# sampling stops being a sensible test (Table A-1's largest cell is 1,936).
MAX_SAMPLE_SIZE = 5000

FREQUENCIES = ("annual", "quarterly", "monthly", "weekly", "daily", "many_per_day")
RISK_LEVELS = ("low", "medium", "high")
FREQUENCY_LABELS = {
    "annual": "annual",
    "quarterly": "quarterly",
    "monthly": "monthly",
    "weekly": "weekly",
    "daily": "daily",
    "many_per_day": "many times a day",
}

# Common practice for tests of controls by how often the control runs, not a
# standard: there is no authoritative table, so these are defaults an admin edits.
# Annual 1, quarterly 2, monthly 2/3/5 by risk: a practitioner's table accepted
# by a Big 4 auditor (sarbanes-oxley-forum.com/post/16601). Weekly 5/10/15 by
# risk: Big 4 guidance quoted in sarbanes-oxley-forum.com/topic/8142. Daily
# 25 (a Big 4 IT audit table, sarbanes-oxley-forum.com/topic/6411) within the
# usual 20-40 range for daily and recurring manual controls. Many times a day
# tops at 60, which is about the statistical size for a 5% tolerable rate, 5%
# risk and no expected deviations (59 in AICPA Table A-1).
DEFAULT_FREQUENCY_TABLE: dict[str, dict[str, int]] = {
    "annual": {"low": 1, "medium": 1, "high": 1},
    "quarterly": {"low": 2, "medium": 2, "high": 2},
    "monthly": {"low": 2, "medium": 3, "high": 5},
    "weekly": {"low": 5, "medium": 10, "high": 15},
    "daily": {"low": 20, "medium": 30, "high": 40},
    "many_per_day": {"low": 25, "medium": 45, "high": 60},
}


@dataclass(frozen=True)
class SampleSizeResult:
    """A sample size and the rule that produced it, as shown to the tester."""

    sample_size: int
    method: str
    rule: str
    # For AICPA sizes: the deviations the sample may contain while still
    # supporting the tolerable rate (the number in parentheses in the tables).
    allowed_deviations: int | None = None
    # P(at most allowed_deviations | n, tolerable rate): at or below the risk.
    achieved_risk: float | None = None
    parameters: Mapping[str, object] = field(default_factory=dict)


def attribute_sample_size(
    *,
    risk_of_overreliance: float | Decimal,
    tolerable_rate: float | Decimal,
    expected_rate: float | Decimal,
) -> SampleSizeResult:
    """The smallest n whose expected deviations still keep the risk at or below the target.

    The method of the AICPA Audit Guide "Audit Sampling" (2017), Appendix A:
    for each n, the deviations the sample may contain are k = ceil(n x expected
    rate); n is the first size where P(X <= k | n, tolerable rate) <= risk, X
    binomial. k is computed in exact decimal arithmetic: in floating point
    400 x 0.035 is 14.000000000000002 and its ceiling 15, which is not what the
    table prints. This reproduces every cell of Tables A-1 and A-2 except two
    cells of A-2 that print 112 where P(X <= 4 | 112, 7%) = 0.1007 exceeds the
    10% risk; we return the conservative 113 there.
    """
    risk = _rate("risk_of_overreliance", risk_of_overreliance)
    tolerable = _rate("tolerable_rate", tolerable_rate)
    expected = _rate("expected_rate", expected_rate)
    if not 0 < risk <= Fraction(1, 2):
        raise ValueError(
            f"The risk of overreliance must be above 0% and at most 50% (got {_pct(risk)})."
        )
    if not 0 < tolerable < 1:
        raise ValueError(
            f"The tolerable deviation rate must be between 0% and 100% (got {_pct(tolerable)})."
        )
    if not 0 <= expected < 1:
        raise ValueError(
            f"The expected deviation rate must be at least 0% and below 100% (got {_pct(expected)})."
        )
    if expected >= tolerable:
        raise ValueError(
            f"The expected deviation rate ({_pct(expected)}) must be below the tolerable "
            f"deviation rate ({_pct(tolerable)}): no sample can show the control works if "
            "deviations are expected at or above what can be tolerated."
        )

    sizes = np.arange(1, MAX_SAMPLE_SIZE + 1, dtype=np.int64)
    num, den = expected.numerator, expected.denominator
    # Python ints: num * n overflows int64 for rates like 1/3 given as floats.
    allowed = np.fromiter(
        (-(-n * num // den) for n in range(1, MAX_SAMPLE_SIZE + 1)),
        dtype=np.int64,
        count=MAX_SAMPLE_SIZE,
    )
    risks = binom.cdf(allowed, sizes, float(tolerable))
    meets = np.flatnonzero(risks <= float(risk))
    if meets.size == 0:
        raise ValueError(
            f"No sample of up to {MAX_SAMPLE_SIZE:,} items reaches a {_pct(risk)} risk of "
            f"overreliance with a tolerable rate of {_pct(tolerable)} and an expected rate "
            f"of {_pct(expected)}: the expected rate is too close to the tolerable rate. "
            "Lower the expected rate, raise the tolerable rate, or set the size by hand."
        )
    i = int(meets[0])
    n, k = int(sizes[i]), int(allowed[i])
    deviations = "no deviations" if k == 0 else f"up to {k} deviation{'s' if k > 1 else ''}"
    return SampleSizeResult(
        sample_size=n,
        allowed_deviations=k,
        achieved_risk=float(risks[i]),
        method=AICPA_METHOD,
        rule=(
            f"AICPA attribute sampling (binomial): {_pct(risk)} risk of overreliance, "
            f"tolerable rate {_pct(tolerable)}, expected rate {_pct(expected)} → {n} "
            f"({deviations} allowed)"
        ),
        parameters={
            "risk_of_overreliance": str(_decimal(risk)),
            "tolerable_rate": str(_decimal(tolerable)),
            "expected_rate": str(_decimal(expected)),
        },
    )


def upper_deviation_limit(
    *, sample_size: int, deviations: int, risk_of_overreliance: float | Decimal
) -> float:
    """The upper deviation rate at the given risk after finding `deviations` in the sample.

    The exact binomial (Clopper-Pearson) bound used by AICPA Tables A-3 and A-4,
    which print it rounded up to 0.1%. The control supports the planned reliance
    when this is at or below the tolerable rate.
    """
    if isinstance(sample_size, bool) or not isinstance(sample_size, int) or sample_size < 1:
        raise ValueError(f"The sample size must be a whole number of at least 1 (got {sample_size!r}).")
    if isinstance(deviations, bool) or not isinstance(deviations, int) or not 0 <= deviations <= sample_size:
        raise ValueError(
            f"The deviations found must be a whole number between 0 and the sample size "
            f"{sample_size} (got {deviations!r})."
        )
    risk = _rate("risk_of_overreliance", risk_of_overreliance)
    if not 0 < risk < 1:
        raise ValueError(f"The risk of overreliance must be between 0% and 100% (got {_pct(risk)}).")
    if deviations == sample_size:
        return 1.0
    return float(beta.ppf(1 - float(risk), deviations + 1, sample_size - deviations))


def frequency_sample_size(
    *,
    frequency: str,
    risk: str,
    table: Mapping[str, Mapping[str, int]] = DEFAULT_FREQUENCY_TABLE,
) -> SampleSizeResult:
    """The size the frequency table gives a control run at `frequency` with `risk`."""
    if frequency not in table:
        raise ValueError(
            f"Unknown control frequency {frequency!r}; the table has: {', '.join(table)}."
        )
    row = table[frequency]
    if risk not in row:
        raise ValueError(
            f"Unknown risk level {risk!r} for {frequency!r}; the table has: {', '.join(row)}."
        )
    size = row[risk]
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(
            f"The frequency table's size for {frequency!r}, {risk!r} risk must be a whole "
            f"number of at least 1 (got {size!r})."
        )
    label = FREQUENCY_LABELS.get(frequency, frequency)
    return SampleSizeResult(
        sample_size=size,
        method=FREQUENCY_METHOD,
        rule=f"Frequency table: {label}, {risk} risk → {size}",
        parameters={"frequency": frequency, "risk": risk},
    )


def override_sample_size(
    *, result: SampleSizeResult, sample_size: int, reason: str
) -> SampleSizeResult:
    """The tester's own size in place of `result`, keeping the rule it replaced."""
    if isinstance(sample_size, bool) or not isinstance(sample_size, int) or sample_size < 1:
        raise ValueError(f"The sample size must be a whole number of at least 1 (got {sample_size!r}).")
    reason = (reason or "").strip()
    if not reason:
        raise ValueError("Say why the sample size is overridden.")
    return SampleSizeResult(
        sample_size=sample_size,
        method=OVERRIDE_METHOD,
        rule=(
            f"Overridden: {sample_size} instead of {result.sample_size} "
            f"({result.rule}). Reason: {reason}"
        ),
        parameters={
            "reason": reason,
            "replaced_size": result.sample_size,
            "replaced_method": result.method,
            "replaced_rule": result.rule,
        },
    )


def _rate(name: str, value: object) -> Fraction:
    # Through str() so 0.035 means 35/1000, as written, not its binary neighbour.
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal, Fraction)):
        raise ValueError(f"{name} must be a number between 0 and 1 (got {value!r}).")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{name} must be a number between 0 and 1 (got {value!r}).")
    if isinstance(value, Fraction):
        return value
    if isinstance(value, Decimal) and not value.is_finite():
        raise ValueError(f"{name} must be a number between 0 and 1 (got {value!r}).")
    return Fraction(Decimal(str(value)))


def _decimal(rate: Fraction) -> Decimal:
    return Decimal(rate.numerator) / Decimal(rate.denominator)


def _pct(rate: Fraction) -> str:
    text = f"{_decimal(rate) * 100:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"{text}%"
