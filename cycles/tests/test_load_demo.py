"""The demo loader: everything `make run` shows, created once however often it runs."""
import csv
import io
from collections import Counter

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from cycles.management.commands.load_demo import DEFAULT_PASSWORD, REPORTS, USERS, population_csv
from cycles.models import LOB, CycleReport, Report, TestCycle
from synapse.models import AuditEvent
from synapse.roles import Role


@pytest.fixture
def demo_dir(settings, tmp_path, monkeypatch):
    settings.DATA_DIR = tmp_path
    # The default hasher's hundreds of thousands of rounds would dominate the test's time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    monkeypatch.delenv("DEMO_PASSWORD", raising=False)
    return tmp_path / "demo"


def run_demo() -> str:
    out = io.StringIO()
    call_command("load_demo", stdout=out)
    return out.getvalue()


def summary(output: str) -> str:
    return output[output.index("Synapse demo data is ready"):]


def read_csv(path):
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        return next(reader), list(reader)


@pytest.mark.django_db
def test_load_demo_creates_the_demo_and_a_second_run_changes_nothing(demo_dir):
    first = run_demo()

    User = get_user_model()
    assert User.objects.count() == len(USERS) == 7
    for spec in USERS:
        user = User.objects.get(username=spec.username)
        assert list(user.groups.values_list("name", flat=True)) == [spec.role]
        assert user.check_password(DEFAULT_PASSWORD)
    admin = User.objects.get(username="admin")
    assert admin.is_superuser and admin.is_staff
    assert User.objects.filter(groups__name=Role.DATA_OWNER).count() == 2

    assert LOB.objects.count() == 2
    assert {lob.data_executive.username for lob in LOB.objects.all()} == {"executive"}
    assert Report.objects.count() == 3
    for report in Report.objects.all():
        assert 8 <= len(report.fields) <= 12
        assert all(f["name"] and f["description"] for f in report.fields)
        assert report.owner.username == "owner"

    cycle = TestCycle.objects.get()
    assert (cycle.name, cycle.test_manager.username, cycle.status) == ("Q3 2026", "manager", TestCycle.Status.DRAFT)
    cycle_reports = CycleReport.objects.filter(cycle=cycle)
    assert cycle_reports.count() == 3
    assert {cr.tester.username for cr in cycle_reports} == {"tester"}

    for spec in REPORTS:
        path = demo_dir / f"{spec.slug}.csv"
        assert str(path) in first
        header, rows = read_csv(path)
        assert header == Report.objects.get(name=spec.name).field_names
        assert len(rows) == 5000
        # Every column carries data: a generator that forgot a field would leave it blank.
        for index, name in enumerate(header):
            assert any(row[index] for row in rows), name

    for username in ("admin", "manager", "tester", "owner", "executive", "dataowner", "dataowner2"):
        assert username in summary(first)
    assert DEFAULT_PASSWORD in summary(first)

    audit_events = AuditEvent.objects.count()
    files = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in demo_dir.iterdir()}

    second = run_demo()

    assert summary(second) == summary(first)
    assert "Created" not in second and "Wrote" not in second
    assert User.objects.count() == 7
    assert LOB.objects.count() == 2
    assert Report.objects.count() == 3
    assert TestCycle.objects.count() == 1
    assert CycleReport.objects.count() == 3
    assert AuditEvent.objects.count() == audit_events
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in demo_dir.iterdir()} == files


@pytest.mark.django_db
def test_load_demo_takes_the_password_from_the_environment(demo_dir, monkeypatch):
    monkeypatch.setenv("DEMO_PASSWORD", "another-demo-secret")

    output = run_demo()

    tester = get_user_model().objects.get(username="tester")
    assert tester.check_password("another-demo-secret")
    assert "another-demo-secret" in summary(output)
    assert DEFAULT_PASSWORD not in output


@pytest.mark.django_db
def test_load_demo_keeps_a_changed_password_and_says_so(demo_dir):
    run_demo()
    tester = get_user_model().objects.get(username="tester")
    tester.set_password("chosen-by-the-tester")
    tester.save()

    output = summary(run_demo())

    tester.refresh_from_db()
    assert tester.check_password("chosen-by-the-tester")
    tester_line = next(line for line in output.splitlines() if " tester " in f"{line} ")
    assert "changed since the demo was loaded" in tester_line
    manager_line = next(line for line in output.splitlines() if " manager " in f"{line} ")
    assert DEFAULT_PASSWORD in manager_line


@pytest.mark.django_db
def test_load_demo_restores_a_missing_report_in_the_cycle(demo_dir):
    run_demo()
    CycleReport.objects.filter(report__regulation="FR 2052a").delete()

    run_demo()

    assert CycleReport.objects.filter(report__regulation="FR 2052a", tester__username="tester").count() == 1
    assert TestCycle.objects.count() == 1


def test_population_files_are_deterministic_and_carry_flaws_for_profiling():
    mortgage = next(spec for spec in REPORTS if spec.regulation == "FR Y-14Q")
    content = population_csv(mortgage)
    assert population_csv(mortgage) == content

    rows = list(csv.DictReader(io.StringIO(content.decode())))
    loan_numbers = Counter(row["loan_number"] for row in rows if row["loan_number"])
    assert any(count > 1 for count in loan_numbers.values())
    assert any(not row["loan_number"] for row in rows)
    assert any(row["fico_score"] == "999" for row in rows)
    assert any(not row["fico_score"] for row in rows)
    assert any(row["property_state"] == "XX" for row in rows)
    assert any(row["unpaid_principal_balance"].startswith("-") for row in rows)
    assert any("/" in row["origination_date"] for row in rows)
