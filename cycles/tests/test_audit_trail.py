"""The report's audit trail: the system's decisions shown as its own, names not ids, filtered and exported."""
import csv
import io
import zipfile

import pytest
from django.urls import reverse

from cycles.models import Attribute, Phase
from cycles.services.scoping import scoping_decide, scoping_recommend
from cycles.tests.test_profiling_checks import profiled
from cycles.tests.test_profiling_checks import loans_report  # noqa: F401


@pytest.fixture
def trail(storage, users, loans_report):  # noqa: F811
    profiled(users["tester"], loans_report)
    loans_report.phase = Phase.SCOPING
    loans_report.save(update_fields=["phase"])
    scoping_recommend(cycle_report_id=loans_report.pk)
    scoping_decide(user=users["tester"], attribute=Attribute.objects.get(cycle_report=loans_report, name="fico_score"),
                   in_scope=False, rationale="Tested in the credit report instead.")
    return loans_report


def test_the_page_names_people_and_the_system_in_words(client, users, trail):
    client.force_login(users["owner"])

    page = client.get(reverse("cycles:report-audit", args=[trail.pk])).content.decode()

    assert "Recommended the scope" in page and "The system (scoping recommendation" in page
    assert "Decided an attribute&#x27;s scope" in page and "Uploaded a population file" in page
    assert "Drafted validation rules" in page and "The system (offline)" in page
    assert ">scoping.recommend<" not in page and "decision_id" not in page


def test_the_trail_filters_by_who_and_what(client, users, trail):
    client.force_login(users["owner"])
    url = reverse("cycles:report-audit", args=[trail.pk])

    system = client.get(url, {"who": "system"}).context["rows"]
    tester = client.get(url, {"who": "tester", "action": "scoping.decide"}).context["rows"]
    wrong = client.get(url, {"since": "2026-12-02", "until": "2026-12-01"})

    assert system and all(row["who"].startswith("The system") for row in system)
    assert [row["what"] for row in tester] == ["Decided an attribute's scope"]
    assert "The end date is before the start date." in wrong.content.decode()


def test_the_trail_downloads_as_csv_and_xlsx(client, users, trail):
    client.force_login(users["owner"])
    url = reverse("cycles:report-audit", args=[trail.pk])

    response = client.get(url, {"who": "tester", "format": "csv"})
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    xlsx = client.get(url, {"format": "xlsx"})

    assert response["Content-Disposition"].startswith('attachment; filename="audit-report-')
    assert rows[0] == ["When", "Who", "What", "On", "Before", "After", "Why"]
    assert {row[1] for row in rows[1:]} == {"tester"}
    assert "Decided an attribute's scope" in {row[2] for row in rows[1:]}
    with zipfile.ZipFile(io.BytesIO(xlsx.content)) as book:
        assert "Drafted validation rules" in book.read("xl/sharedStrings.xml").decode()


def test_a_report_the_user_may_not_see_has_no_trail_for_them(client, users, trail):
    client.force_login(users["data_owner2"])
    assert client.get(reverse("cycles:report-audit", args=[trail.pk])).status_code == 404
