"""Sample sizes against the AICPA tables, the frequency table, and overrides."""
import math
from decimal import Decimal

import pytest
from scipy.stats import binom

from cycles.sampling import (
    AICPA_METHOD,
    DEFAULT_FREQUENCY_TABLE,
    FREQUENCIES,
    FREQUENCY_METHOD,
    OVERRIDE_METHOD,
    RISK_LEVELS,
    attribute_sample_size,
    frequency_sample_size,
    override_sample_size,
    upper_deviation_limit,
)

# AICPA Audit Guide "Audit Sampling" (2017), Appendix A. Tables A-1 (5% risk of
# overreliance) and A-2 (10%): sample size with, in parentheses, the expected
# number of deviations. Rows are expected population deviation rates, columns
# tolerable deviation rates; cells left blank in the guide are absent here.
# Sizes as transcribed in the jfa R package's benchmark tests
# (github.com/koenderks/jfa, tests/testthat/test-validation-appendix-a.R);
# the deviations in parentheses as printed in the guide.
PUBLISHED_CELLS = [
    # (risk, tolerable, expected, size, deviations)
    # Table A-1, 5% risk of overreliance
    (0.05, 0.02, 0.0, 149, 0),
    (0.05, 0.03, 0.0, 99, 0),
    (0.05, 0.04, 0.0, 74, 0),
    (0.05, 0.05, 0.0, 59, 0),
    (0.05, 0.06, 0.0, 49, 0),
    (0.05, 0.07, 0.0, 42, 0),
    (0.05, 0.08, 0.0, 36, 0),
    (0.05, 0.09, 0.0, 32, 0),
    (0.05, 0.10, 0.0, 29, 0),
    (0.05, 0.15, 0.0, 19, 0),
    (0.05, 0.20, 0.0, 14, 0),
    (0.05, 0.02, 0.0025, 236, 1),
    (0.05, 0.03, 0.005, 157, 1),
    (0.05, 0.05, 0.0025, 93, 1),
    (0.05, 0.05, 0.01, 93, 1),
    (0.05, 0.04, 0.01, 156, 2),
    (0.05, 0.06, 0.01, 78, 1),
    (0.05, 0.05, 0.015, 124, 2),
    (0.05, 0.05, 0.0175, 153, 3),
    (0.05, 0.05, 0.02, 181, 4),
    (0.05, 0.05, 0.0225, 208, 5),
    (0.05, 0.06, 0.02, 127, 3),
    (0.05, 0.07, 0.02, 88, 2),
    (0.05, 0.06, 0.03, 195, 6),
    (0.05, 0.07, 0.03, 129, 4),
    (0.05, 0.08, 0.03, 95, 3),
    (0.05, 0.09, 0.03, 84, 3),
    (0.05, 0.10, 0.03, 61, 2),
    # Table A-2, 10% risk of overreliance
    (0.10, 0.02, 0.0, 114, 0),
    (0.10, 0.03, 0.0, 76, 0),
    (0.10, 0.04, 0.0, 57, 0),
    (0.10, 0.05, 0.0, 45, 0),
    (0.10, 0.06, 0.0, 38, 0),
    (0.10, 0.07, 0.0, 32, 0),
    (0.10, 0.08, 0.0, 28, 0),
    (0.10, 0.09, 0.0, 25, 0),
    (0.10, 0.10, 0.0, 22, 0),
    (0.10, 0.15, 0.0, 15, 0),
    (0.10, 0.20, 0.0, 11, 0),
    (0.10, 0.05, 0.01, 77, 1),
    (0.10, 0.03, 0.01, 176, 2),
    (0.10, 0.04, 0.01, 96, 1),
    (0.10, 0.04, 0.02, 198, 4),
    (0.10, 0.05, 0.02, 132, 3),
    (0.10, 0.06, 0.02, 88, 2),
    (0.10, 0.07, 0.02, 75, 2),
]


@pytest.mark.parametrize("risk,tolerable,expected,size,deviations", PUBLISHED_CELLS)
def test_size_and_deviations_match_the_published_cell(risk, tolerable, expected, size, deviations):
    result = attribute_sample_size(
        risk_of_overreliance=risk, tolerable_rate=tolerable, expected_rate=expected
    )

    assert (result.sample_size, result.allowed_deviations) == (size, deviations)
    assert result.method == AICPA_METHOD
    assert result.achieved_risk <= risk


EXPECTED_RATES = [r / 100 for r in (0, 0.25, 0.5, 0.75, 1, 1.25, 1.5, 1.75, 2, 2.25, 2.5, 2.75, 3,
                                    3.25, 3.5, 3.75, 4, 5, 6, 7, 8, 9, 10, 12.5, 15, 17.5)]
# Each list is one tolerable-rate column of the 2017 table, from the 0% row down
# to the last printed cell. Source as above.
TABLE_A1 = {
    0.02: [149, 236, 313, 386, 590, 1030],
    0.03: [99, 157, 157, 208, 257, 303, 392, 562, 846, 1466],
    0.04: [74, 117, 117, 117, 156, 156, 192, 227, 294, 390, 513, 722, 1098, 1936],
    0.05: [59, 93, 93, 93, 93, 124, 124, 153, 181, 208, 234, 286, 361, 458, 624, 877, 1348],
    0.06: [49, 78, 78, 78, 78, 78, 103, 103, 127, 127, 150, 173, 195, 238, 280, 341, 421, 1580],
    0.07: [42, 66, 66, 66, 66, 66, 66, 88, 88, 88, 109, 109, 129, 148, 167, 185, 221, 478, 1832],
    0.08: [36, 58, 58, 58, 58, 58, 58, 77, 77, 77, 77, 95, 95, 112, 112, 129, 146, 240, 532],
    0.09: [32, 51, 51, 51, 51, 51, 51, 51, 68, 68, 68, 68, 84, 84, 84, 100, 100, 158, 266, 585],
    0.10: [29, 46, 46, 46, 46, 46, 46, 46, 46, 61, 61, 61, 61, 61, 76, 76, 89, 116, 179, 298, 649],
    0.15: [19, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 40, 40, 40, 40, 50, 68, 85, 110,
           150, 576],
    0.20: [14, 22, 22, 22, 22, 22, 22, 22, 22, 22, 22, 22, 22, 22, 22, 22, 22, 30, 30, 37, 37, 44,
           50, 88, 193, 720],
}
TABLE_A2 = {
    0.02: [114, 194, 194, 265, 398, 708, 1463],
    0.03: [76, 129, 129, 129, 176, 221, 265, 390, 590, 974],
    0.04: [57, 96, 96, 96, 96, 132, 132, 166, 198, 262, 353, 471, 730, 1258],
    0.05: [45, 77, 77, 77, 77, 77, 105, 105, 132, 132, 158, 209, 258, 306, 400, 583, 873],
    0.06: [38, 64, 64, 64, 64, 64, 64, 88, 88, 88, 110, 132, 132, 153, 194, 235, 274, 1019],
    0.07: [32, 55, 55, 55, 55, 55, 55, 55, 75, 75, 75, 94, 94, 112, 112, 131, 149, 318, 1150],
    0.08: [28, 48, 48, 48, 48, 48, 48, 48, 48, 65, 65, 65, 65, 82, 82, 98, 98, 160, 349, 1300],
    0.09: [25, 42, 42, 42, 42, 42, 42, 42, 42, 42, 58, 58, 58, 58, 73, 73, 73, 115, 182, 385, 1437],
    0.10: [22, 38, 38, 38, 38, 38, 38, 38, 38, 38, 38, 52, 52, 52, 52, 52, 65, 78, 116, 199, 424,
           1577],
    0.15: [15, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 34, 43, 52, 60, 77,
           100, 368],
    0.20: [11, 18, 18, 18, 18, 18, 18, 18, 18, 18, 18, 18, 18, 18, 18, 18, 18, 18, 25, 25, 25, 32,
           38, 63, 126, 457],
}
# Table A-2 prints 112 for a 7% tolerable rate at 3.25% and 3.5% expected, but
# 112 items with 4 allowed deviations leave a 10.07% risk; 113 is the smallest
# size that keeps the risk at 10%.
A2_MISPRINTS = {(0.07, 0.0325): 113, (0.07, 0.035): 113}


@pytest.mark.parametrize("risk,table", [(0.05, TABLE_A1), (0.10, TABLE_A2)], ids=["A-1", "A-2"])
def test_every_printed_cell_of_the_table(risk, table):
    mismatches = []
    for tolerable, column in table.items():
        for expected, published in zip(EXPECTED_RATES, column):
            want = A2_MISPRINTS.get((tolerable, expected), published) if risk == 0.10 else published
            got = attribute_sample_size(
                risk_of_overreliance=risk, tolerable_rate=tolerable, expected_rate=expected
            ).sample_size
            if got != want:
                mismatches.append((tolerable, expected, published, got))

    assert mismatches == []


def test_the_two_a2_misprints_do_not_reach_the_risk():
    assert binom.cdf(4, 112, 0.07) > 0.10
    assert binom.cdf(4, 113, 0.07) <= 0.10
    result = attribute_sample_size(risk_of_overreliance=0.10, tolerable_rate=0.07, expected_rate=0.035)
    assert (result.sample_size, result.allowed_deviations) == (113, 4)


def test_expected_deviations_use_exact_decimals():
    # 400 x 0.035 is 14.000000000000002 in binary floating point; the table means 14.
    result = attribute_sample_size(risk_of_overreliance=0.10, tolerable_rate=0.05, expected_rate=0.035)

    assert (result.sample_size, result.allowed_deviations) == (400, 14)


def test_decimal_inputs_give_the_same_size():
    result = attribute_sample_size(
        risk_of_overreliance=Decimal("0.05"), tolerable_rate=Decimal("0.05"), expected_rate=Decimal("0.01")
    )

    assert result.sample_size == 93


def test_rule_says_where_the_size_came_from():
    result = attribute_sample_size(risk_of_overreliance=0.05, tolerable_rate=0.05, expected_rate=0.01)

    assert result.rule == (
        "AICPA attribute sampling (binomial): 5% risk of overreliance, tolerable rate 5%, "
        "expected rate 1% → 93 (up to 1 deviation allowed)"
    )
    assert result.parameters == {
        "risk_of_overreliance": "0.05",
        "tolerable_rate": "0.05",
        "expected_rate": "0.01",
    }


def test_other_risk_levels_are_computed_too():
    # 0.99^n <= 0.01 first at n = 459 (ln 0.01 / ln 0.99 = 458.2).
    result = attribute_sample_size(risk_of_overreliance=0.01, tolerable_rate=0.01, expected_rate=0)

    assert result.sample_size == math.ceil(math.log(0.01) / math.log(0.99)) == 459


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(risk_of_overreliance=0, tolerable_rate=0.05, expected_rate=0), "risk of overreliance"),
        (dict(risk_of_overreliance=0.6, tolerable_rate=0.05, expected_rate=0), "at most 50%"),
        (dict(risk_of_overreliance=0.05, tolerable_rate=0, expected_rate=0), "tolerable deviation rate"),
        (dict(risk_of_overreliance=0.05, tolerable_rate=1, expected_rate=0), "tolerable deviation rate"),
        (dict(risk_of_overreliance=0.05, tolerable_rate=0.05, expected_rate=-0.01), "expected deviation rate"),
        (dict(risk_of_overreliance=0.05, tolerable_rate=0.05, expected_rate=0.05), "must be below"),
        (dict(risk_of_overreliance=0.05, tolerable_rate=0.05, expected_rate=0.07), "must be below"),
        (dict(risk_of_overreliance=0.05, tolerable_rate=float("nan"), expected_rate=0), "tolerable_rate"),
        (dict(risk_of_overreliance="5%", tolerable_rate=0.05, expected_rate=0), "risk_of_overreliance"),
        (dict(risk_of_overreliance=0.05, tolerable_rate=True, expected_rate=0), "tolerable_rate"),
    ],
)
def test_invalid_inputs_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        attribute_sample_size(**kwargs)


def test_sizes_beyond_the_cap_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="No sample of up to 5,000 items.*too close to the tolerable rate"):
        attribute_sample_size(risk_of_overreliance=0.05, tolerable_rate=0.02, expected_rate=0.0175)


@pytest.mark.parametrize(
    "risk,size,deviations,published",
    [
        # Table A-3 (5% risk) and A-4 (10% risk), upper deviation rate in %,
        # printed rounded up to 0.1%. Source as above.
        (0.05, 20, 0, 14.0),
        (0.05, 50, 2, 12.1),
        (0.05, 100, 1, 4.7),
        (0.05, 200, 4, 4.6),
        (0.10, 20, 0, 10.9),
        (0.10, 100, 3, 6.6),
        (0.10, 500, 10, 3.1),
    ],
)
def test_upper_deviation_limit_matches_the_evaluation_tables(risk, size, deviations, published):
    limit = upper_deviation_limit(sample_size=size, deviations=deviations, risk_of_overreliance=risk)

    assert math.ceil(round(limit * 1000, 6)) / 10 == published


def test_upper_deviation_limit_refuses_more_deviations_than_items():
    with pytest.raises(ValueError, match="between 0 and the sample size 20"):
        upper_deviation_limit(sample_size=20, deviations=21, risk_of_overreliance=0.05)


def test_allowed_deviations_keep_the_upper_limit_within_the_tolerable_rate():
    result = attribute_sample_size(risk_of_overreliance=0.05, tolerable_rate=0.06, expected_rate=0.02)

    within = upper_deviation_limit(
        sample_size=result.sample_size, deviations=result.allowed_deviations, risk_of_overreliance=0.05
    )
    beyond = upper_deviation_limit(
        sample_size=result.sample_size, deviations=result.allowed_deviations + 1, risk_of_overreliance=0.05
    )
    assert within <= 0.06 < beyond


def test_frequency_table_covers_every_frequency_and_risk():
    assert set(DEFAULT_FREQUENCY_TABLE) == set(FREQUENCIES)
    for frequency, row in DEFAULT_FREQUENCY_TABLE.items():
        assert set(row) == set(RISK_LEVELS)
        sizes = [row[risk] for risk in RISK_LEVELS]
        assert sizes == sorted(sizes), frequency


def test_frequency_size_names_its_rule():
    result = frequency_sample_size(frequency="monthly", risk="high")

    assert result.sample_size == 5
    assert result.method == FREQUENCY_METHOD
    assert result.rule == "Frequency table: monthly, high risk → 5"
    assert result.allowed_deviations is None


def test_frequency_size_reads_an_edited_table():
    table = {**DEFAULT_FREQUENCY_TABLE, "daily": {"low": 25, "medium": 35, "high": 45}}

    result = frequency_sample_size(frequency="daily", risk="medium", table=table)

    assert result.sample_size == 35
    assert frequency_sample_size(frequency="many_per_day", risk="high").rule == (
        "Frequency table: many times a day, high risk → 60"
    )


@pytest.mark.parametrize(
    "frequency,risk,table,message",
    [
        ("hourly", "high", DEFAULT_FREQUENCY_TABLE, "Unknown control frequency 'hourly'"),
        ("monthly", "extreme", DEFAULT_FREQUENCY_TABLE, "Unknown risk level 'extreme'"),
        ("monthly", "high", {"monthly": {"high": 0}}, "at least 1"),
    ],
)
def test_frequency_size_refuses_what_the_table_lacks(frequency, risk, table, message):
    with pytest.raises(ValueError, match=message):
        frequency_sample_size(frequency=frequency, risk=risk, table=table)


def test_override_keeps_the_replaced_rule_and_the_reason():
    original = frequency_sample_size(frequency="weekly", risk="medium")

    result = override_sample_size(result=original, sample_size=12, reason="  two missed weeks  ")

    assert result.sample_size == 12
    assert result.method == OVERRIDE_METHOD
    assert result.rule == (
        "Overridden: 12 instead of 10 (Frequency table: weekly, medium risk → 10). Reason: two missed weeks"
    )
    assert result.parameters["replaced_size"] == 10


@pytest.mark.parametrize("size,reason,message", [(12, "  ", "Say why"), (0, "ok", "at least 1")])
def test_override_needs_a_reason_and_a_size(size, reason, message):
    original = frequency_sample_size(frequency="weekly", risk="medium")

    with pytest.raises(ValueError, match=message):
        override_sample_size(result=original, sample_size=size, reason=reason)
