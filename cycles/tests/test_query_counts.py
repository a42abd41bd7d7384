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


PHASES = {"planning", "data profiling", "scoping", "sample selection", "data owners", "report requests",
          "test execution", "observations", "final report"}
PHASE_PAGES = [p for p in SCALE_PAGES if p.app == APP and p.label.split(" (")[0] in PHASES]


@pytest.mark.parametrize("page", PHASE_PAGES, ids=lambda p: p.name)
def test_a_phase_page_reads_the_reports_phase_states_once(page, scale_pair):
    """The lock, the progress, the status box and the page's own checks share one read of the phase states."""
    from django.test import Client

    from cycles.testing import queries_of

    ds = scale_pair[0]
    client = Client()
    client.force_login(ds.users[page.role])
    url = page.url(ds)
    client.get(url)
    status, _, sql = queries_of(client, url)
    assert status == 200
    assert sum(' FROM "cycles_phasestate"' in q for q in sql) == 1, url


def test_my_work_reads_of_the_requests_to_review_only_what_their_rows_show(scale_pair):
    """Not the requests' attributes, nor the report's people and field list (a ten-table join, planned afresh)."""
    from django.test import Client
    from django.urls import reverse

    from cycles.testing import queries_of

    ds = scale_pair[1]
    client = Client()
    client.force_login(ds.users["tester"])
    url = reverse("cycles:my-work")
    client.get(url)
    status, _, sql = queries_of(client, url)
    assert status == 200
    requests = [q for q in sql if q.startswith('SELECT "cycles_informationrequest"."id"')]
    assert requests and not any('"cycles_report"."fields"' in q or '"cycles_lob"' in q for q in requests), requests
    assert not any("cycles_informationrequest_attributes" in q for q in sql)
