"""Every page, API list and admin page of the cycles app answers in as many queries at 3× the rows as at 1×.

Two data sets live side by side (cycles.testing.scale_dataset_build): the
small one and one with three times the reports, attributes, samples and data
owners. Each page is fetched once to warm per-process caches (content types),
then counted on both; a count that grows with rows is an N+1.
"""
import pytest

from cycles.testing import SCALE_PAGES, assert_same_queries_at_scale

APP = "cycles"


@pytest.mark.parametrize("page", [p for p in SCALE_PAGES if p.app == APP], ids=lambda p: p.name)
def test_queries_do_not_grow_with_rows(page, scale_pair):
    assert_same_queries_at_scale(page, scale_pair)
