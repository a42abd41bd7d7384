"""Synapse's own 404 page, the favicon and static files without DEBUG, and make run's SITE_URL."""
import subprocess
from pathlib import Path

from django.urls import reverse

ROOT = Path(__file__).resolve().parents[2]


def test_a_page_the_user_may_not_see_gets_synapses_own_404_without_the_url_list(client, users, cycle_report):
    client.force_login(users["data_owner2"])

    response = client.get(reverse("cycles:data-profiling", args=[cycle_report.pk]))

    assert response.status_code == 404
    page = response.content.decode()
    assert "This page isn't here" in page and "Go to My work" in page
    assert "URLconf" not in page and "Using the URLconf" not in page


def test_debug_pages_need_debug_explicitly_on():
    from synapse import settings

    assert settings.env.scheme["DEBUG"] == (bool, False)


def test_the_favicon_and_styles_are_served_without_debug(client):
    icon = client.get("/favicon.ico")
    assert icon.status_code == 301 and icon["Location"].endswith("/static/favicon.svg")
    svg = client.get("/static/favicon.svg")
    assert svg.status_code == 200 and b"<svg" in b"".join(svg.streaming_content)
    assert client.get("/static/css/app.css").status_code == 200


def test_make_run_defaults_site_url_so_emails_link_to_pages():
    out = subprocess.run(
        ["make", "-n", "-C", str(ROOT), "run", "HOST=127.0.0.1", "PORT=8123"],
        capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"},
    ).stdout
    assert "SITE_URL=${SITE_URL:-http://127.0.0.1:8123}" in out


def test_every_scoping_field_has_a_label(client, users, cycle_report):
    import re

    from cycles.models import Attribute, Phase

    cycle_report.phase = Phase.SCOPING
    cycle_report.save(update_fields=["phase"])
    for name in ("loan_number", "fico_score", "property_state"):
        Attribute.objects.create(cycle_report=cycle_report, name=name)
    client.force_login(users["tester"])

    page = client.get(reverse("cycles:scoping", args=[cycle_report.pk])).content.decode()

    fields = re.findall(r"<(?:input|select|textarea)[^>]*>", page)
    ids = {re.search(r'\bid="([^"]+)"', f).group(1) for f in fields if 'type="hidden"' not in f and ' id="' in f}
    labelled = set(re.findall(r'<label[^>]*for="([^"]+)"', page))
    assert len(ids) >= 6 and ids - labelled == set()
