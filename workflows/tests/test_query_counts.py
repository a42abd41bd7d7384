"""The workflow tracking admin's lists answer in as many queries at 3× the rows as at 1×."""
import pytest

from cycles.testing import SCALE_PAGES, assert_same_queries_at_scale

APP = "workflows"


@pytest.mark.parametrize("page", [p for p in SCALE_PAGES if p.app == APP], ids=lambda p: p.name)
def test_queries_do_not_grow_with_rows(page, scale_pair):
    assert_same_queries_at_scale(page, scale_pair)
