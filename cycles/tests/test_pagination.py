"""Long lists are paged, keep their filters in the page links, and say how many rows there are."""
import re

import pytest
from django.test import Client
from django.urls import reverse

from conftest import built_once_per_module
from cycles.models import InformationRequest
from cycles.testing import scale_dataset_build
from versioning.models import VersionItem


@pytest.fixture(scope="module")
def _big_of_module(django_db_setup, django_db_blocker):
    # 5 reports past Sample Selection (all but the one in the parallel step) × 10 data owners = 50 requests;
    # 60 attributes; 60 samples. Built once for the module (conftest.built_once_per_module).
    yield from built_once_per_module(django_db_blocker, lambda: scale_dataset_build(
        reports=6, attributes=60, samples=60, data_owners=10, prefix="pg"))


@pytest.fixture
def big(_big_of_module, db, settings):
    address, dataset = _big_of_module
    settings.TEMPORAL_ADDRESS = address
    return dataset


def as_role(ds, role) -> Client:
    client = Client()
    client.force_login(ds.users[role])
    return client


def page_links(html: str) -> list[str]:
    return re.findall(r'<nav class="pagination".*?</nav>', html, re.S)


def test_request_list_is_paged_and_keeps_its_filter(big):
    client = as_role(big, "manager")
    first = client.get(reverse("cycles:request-list")).content.decode()
    assert "50 requests" in first
    assert first.count(">Open</a>") == 25
    assert 'href="?page=2"' in page_links(first)[0]

    submitted = InformationRequest.objects.filter(
        cycle_report__cycle_id=big.cycle_id, status=InformationRequest.Status.SUBMITTED).count()
    filtered = client.get(reverse("cycles:request-list"), {"status": "submitted"}).content.decode()
    assert f"{submitted} requests match" in filtered
    assert "badge-open" not in filtered
    assert '<option value="submitted" selected>' in filtered

    second = client.get(reverse("cycles:request-list"), {"report": "report 000", "page": "2"}).content.decode()
    # Ten requests of one report fit on the first page: past the end shows the last page, the filter kept.
    assert "10 requests match" in second and 'value="report 000"' in second


def test_request_list_refuses_nothing_for_a_bad_page_or_status(big):
    response = as_role(big, "manager").get(reverse("cycles:request-list"), {"page": "x", "status": "nonsense"})
    assert response.status_code == 200
    assert "50 requests" in response.content.decode()


def test_my_work_pages_each_list_on_its_own(big):
    client = as_role(big, "tester")
    html = client.get(reverse("cycles:my-work"), {"review": "2"}).content.decode()
    # 2 reports in Request for Information × 5 submitted requests = 10 to review: one page; the tester's 6
    # reports: one page.
    assert "Evidence to review" in html
    assert not page_links(html)

    owner_html = as_role(big, "data_owner").get(reverse("cycles:my-work"), {"report": "report 002"}).content.decode()
    assert 'value="report 002"' in owner_html
    assert "report 004" not in owner_html


def test_phase_tables_are_paged(big):
    client = as_role(big, "tester")
    scoping = client.get(reverse("cycles:scoping", args=[big.parallel_id])).content.decode()
    assert "of 60 in scope" in scoping
    assert 'href="?page=2"' in page_links(scoping)[0]
    page2 = client.get(reverse("cycles:scoping", args=[big.parallel_id]), {"page": "2"}).content.decode()
    assert "field_059" in page2 and "field_000" not in page2


def test_version_items_are_paged_and_an_item_decision_returns_to_its_page(big):
    owner = as_role(big, "owner")
    url = reverse("versioning:version-detail", args=[big.sample_version_id])
    html = owner.get(url).content.decode()
    assert 'href="?items=2#items"' in page_links(html)[0]
    last = VersionItem.objects.filter(version_id=big.sample_version_id).order_by("-key").first()
    assert last.key not in html
    response = owner.post(reverse("versioning:version-decide", args=[big.sample_version_id]),
                          {"item": last.pk, "item_decision": "approve", "note": ""})
    assert response.status_code == 302
    assert response["Location"].endswith(f"?items=2#item-{last.pk}")
    assert last.key in owner.get(response["Location"]).content.decode()


def test_data_owners_page_counts_its_rows_and_those_without_an_owner(big):
    from cycles.models import Attribute, DataOwnerAssignment

    executive = as_role(big, "executive")
    url = reverse("cycles:data-owners", args=[big.parallel_id])
    in_scope = Attribute.objects.filter(cycle_report_id=big.parallel_id, scoping__in_scope=True)
    total = in_scope.count()
    missing = in_scope.filter(data_owner_assignment__isnull=True).count()
    assert total > 25  # more than a page
    html = executive.get(url).content.decode()
    assert f"{total} in-scope attributes · {missing} without an owner" in html
    assert 'href="?page=2"' in page_links(html)[0]
    # One more assigned: one fewer without an owner, the same rows.
    DataOwnerAssignment.objects.filter(attribute__in=in_scope).first().delete()
    html = executive.get(url + "?page=2").content.decode()
    assert f"{total} in-scope attributes · {missing + 1} without an owner" in html
    assert html.count('type="checkbox" name="attributes"') == min(total - 25, 25)  # the second page's rows


def test_data_profiling_counts_mappings_and_those_to_confirm(big):
    from cycles.models import ColumnMapping, CycleReport, Phase, PhaseState, PopulationFile

    # Back in Data Profiling, so the tester confirms matches here.
    CycleReport.objects.filter(pk=big.parallel_id).update(phase=Phase.DATA_PROFILING)
    PhaseState.objects.filter(cycle_report_id=big.parallel_id).exclude(phase=Phase.PLANNING).delete()
    PhaseState.objects.create(cycle_report_id=big.parallel_id, phase=Phase.DATA_PROFILING)
    current = PopulationFile.objects.get(cycle_report_id=big.parallel_id)
    mappings = ColumnMapping.objects.filter(population_file=current)
    mappings.filter(pk__in=list(mappings.values_list("pk", flat=True)[:7])).update(
        status=ColumnMapping.Status.MATCHED)
    html = as_role(big, "tester").get(reverse("cycles:data-profiling", args=[big.parallel_id])).content.decode()
    assert f'Columns of the attributes <span class="count">{mappings.count()}</span>' in html
    assert 'href="?mappings=2#mapping"' in "".join(page_links(html))
    assert "Confirm the 7 matches by name" in html
