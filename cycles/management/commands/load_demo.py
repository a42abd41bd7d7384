"""Load the demo: a user per role, two LOBs, three reports with population files, one cycle.

Idempotent: objects are found by their natural keys (username, LOB code, report
name, cycle name and test manager) and only what is missing is created, through
the same services the pages call. Population files come from fixed seeds, so
every run produces the same bytes and rewrites nothing that is already right.
"""
from __future__ import annotations

import csv
import datetime
import io
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils.text import slugify

from cycles.models import LOB, CycleReport, Frequency, Report, TestCycle
from cycles.services.cycles import cycle_add_report, cycle_create, lob_create, report_create
from synapse.exceptions import ApplicationError
from synapse.roles import Role

DEFAULT_PASSWORD = "synapse-demo"
POPULATION_ROWS = 5000
REPORTING_DATE = "2026-09-30"
CYCLE_NAME = "Q3 2026"
CYCLE_PERIOD = (datetime.date(2026, 7, 1), datetime.date(2026, 9, 30))


@dataclass(frozen=True)
class DemoUser:
    username: str
    role: str
    first_name: str
    last_name: str
    title: str
    superuser: bool = False


USERS: tuple[DemoUser, ...] = (
    DemoUser("admin", Role.ADMIN, "Alex", "Morgan", "Synapse Administrator", superuser=True),
    DemoUser("manager", Role.TEST_MANAGER, "Priya", "Raman", "Head of Regulatory Reporting Testing"),
    DemoUser("tester", Role.TESTER, "Sam", "Lee", "Regulatory Reporting Tester"),
    DemoUser("owner", Role.REPORT_OWNER, "Jordan", "Blake", "Regulatory Reporting Owner"),
    DemoUser("executive", Role.DATA_EXECUTIVE, "Morgan", "Chen", "Chief Data Officer"),
    DemoUser("dataowner", Role.DATA_OWNER, "Taylor", "Brooks", "Mortgage Servicing Data Owner"),
    DemoUser("dataowner2", Role.DATA_OWNER, "Casey", "Nguyen", "Treasury Data Owner"),
)

# (code, name); the demo's data executive owns both.
LOBS: tuple[tuple[str, str], ...] = (
    ("retail", "Consumer & Commercial Lending"),
    ("treasury", "Corporate Treasury"),
)


# --- population generators ---------------------------------------------------
#
# Each draws its rows from its own random.Random(seed), so the files are the
# same on every machine. A small share of values is deliberately wrong (nulls
# in mandatory columns, out-of-range scores, malformed dates and codes,
# duplicate keys) so that profiling has findings to show.


def _iso(day: datetime.date) -> str:
    return day.isoformat()


def _random_day(rng: random.Random, start: datetime.date, end: datetime.date) -> datetime.date:
    return start + datetime.timedelta(days=rng.randrange((end - start).days + 1))


def _flaw(rng: random.Random, rate: float, value, bad):
    return bad if rng.random() < rate else value


STATES = ["CA", "TX", "FL", "NY", "IL", "PA", "OH", "GA", "NC", "MI", "NJ", "VA", "WA", "AZ", "MA", "CO"]


def _mortgage_row(rng: random.Random, i: int, previous: list[dict]) -> dict:
    originated = _random_day(rng, datetime.date(2005, 1, 1), datetime.date(2026, 6, 30))
    original = round(min(max(rng.lognormvariate(12.6, 0.55), 50_000), 2_500_000), 2)
    years_paid = (datetime.date(2026, 9, 30) - originated).days / 365.25
    balance = round(original * max(0.02, 1 - years_paid / 30 - rng.uniform(0, 0.05)), 2)
    loan_number = f"ML{100_000_000 + i}"
    if previous and rng.random() < 0.0008:
        # A servicer re-boarding error: the same loan reported twice.
        loan_number = previous[rng.randrange(len(previous))]["loan_number"]
    origination = _iso(originated)
    if rng.random() < 0.0015:
        origination = originated.strftime("%m/%d/%Y")
    return {
        "loan_number": _flaw(rng, 0.0006, loan_number, ""),
        "reporting_date": REPORTING_DATE,
        "origination_date": _flaw(rng, 0.001, origination, ""),
        "original_loan_amount": f"{original:.2f}",
        "unpaid_principal_balance": _flaw(rng, 0.001, f"{balance:.2f}", f"{-balance:.2f}"),
        "interest_rate": _flaw(rng, 0.002, f"{rng.uniform(2.5, 8.0):.3f}", ""),
        "original_ltv": _flaw(rng, 0.0008, f"{rng.uniform(40, 97):.1f}", f"{rng.uniform(150, 250):.1f}"),
        "fico_score": _flaw(rng, 0.008, _flaw(rng, 0.0008, str(rng.randint(580, 850)), "999"), ""),
        "property_state": _flaw(rng, 0.001, _flaw(rng, 0.0006, rng.choice(STATES), "XX"), ""),
        "delinquency_status": rng.choices(
            ["Current", "30-59", "60-89", "90-119", "120+"], weights=[93, 3, 1.5, 1, 1.5]
        )[0],
        "loan_purpose": rng.choices(["Purchase", "Refinance", "Cash-out refinance"], weights=[60, 28, 12])[0],
    }


RCC_LINES = ["1.a.(1)", "1.a.(2)", "1.c.(2)(a)", "1.d", "1.e.(1)", "2.a", "4.a", "6.a", "6.b", "6.c", "9.b.(1)"]
NAICS = ["236220", "423430", "441110", "484121", "522110", "531120", "541511", "622110", "722511", "811111"]
NAME_PARTS = (
    ["Harbor", "Summit", "Granite", "Bluewater", "Prairie", "Keystone", "Redwood", "Lakeside", "Meridian", "Ironbridge"],
    ["Logistics", "Foods", "Holdings", "Builders", "Medical Group", "Motors", "Realty", "Systems", "Partners", "Supply"],
    ["LLC", "Inc.", "Corp.", "LP", "Co."],
)


def _call_report_row(rng: random.Random, i: int, previous: list[dict]) -> dict:
    # Loans on the book at quarter end: originated within their term before it.
    term = datetime.timedelta(days=rng.choice([365, 730, 1095, 1825, 2555, 3650]))
    originated = _random_day(rng, datetime.date(2026, 9, 30) - term + datetime.timedelta(days=1),
                             datetime.date(2026, 9, 15))
    matures = originated + term
    if rng.random() < 0.001:
        # Maturity keyed before origination: a classic booking error.
        matures = originated - datetime.timedelta(days=rng.randint(30, 900))
    past_due = 0 if rng.random() < 0.94 else rng.choice([15, 31, 45, 62, 95, 130, 200])
    borrower = " ".join(rng.choice(part) for part in NAME_PARTS)
    return {
        "loan_id": f"CL-{i + 1:07d}",
        "reporting_date": REPORTING_DATE,
        "borrower_name": _flaw(rng, 0.002, borrower, ""),
        "rcc_line_item": _flaw(rng, 0.0008, rng.choice(RCC_LINES), "4.z"),
        "borrower_domicile": rng.choices(["US", "Non-US"], weights=[92, 8])[0],
        "naics_code": _flaw(rng, 0.003, _flaw(rng, 0.001, rng.choice(NAICS), "99999"), ""),
        "origination_date": _iso(originated),
        "maturity_date": _iso(matures),
        "outstanding_balance_thousands": _flaw(
            rng, 0.001, f"{rng.lognormvariate(6.5, 1.4):.1f}", f"{-rng.uniform(1, 500):.1f}"
        ),
        "days_past_due": str(past_due),
        "nonaccrual_status": _flaw(rng, 0.0008, "Y" if past_due >= 90 else "N", "U"),
        "collateral_type": _flaw(
            rng, 0.004,
            rng.choice(["Real estate", "Equipment", "Receivables", "Inventory", "Securities", "Unsecured"]),
            "",
        ),
    }


TABLE_PRODUCTS = {
    "I.A": 4, "I.U": 8, "I.S": 6, "O.W": 19, "O.S": 11, "O.D": 15, "O.O": 22, "S.B": 6,
}
SECURED_TABLES = {"I.S", "O.S"}
COLLATERAL = ["A-0-Q", "A-1-Q", "A-2-Q", "G-1-Q", "G-2-Q", "S-1-Q", "S-2-Q", "C-1-Q", "Z-1"]
COUNTERPARTIES = [
    "Retail", "Small Business", "Non-Financial Corporate", "Sovereign", "Central Bank",
    "Bank", "Broker-Dealer", "Investment Company or Adviser", "Pension Fund", "Other Supervised Non-Bank",
]
BUCKETS = ["Open", *[f"Day {d}" for d in range(1, 31)], "31-60 days", "61-90 days", "91-180 days",
           "181-270 days", "271 days-1 year", "1-2 years", "2-3 years", "3-5 years", ">5 years"]


def _liquidity_row(rng: random.Random, i: int, previous: list[dict]) -> dict:
    table = rng.choices(list(TABLE_PRODUCTS), weights=[10, 12, 14, 14, 16, 20, 8, 6])[0]
    product = f"{table}.{rng.randint(1, TABLE_PRODUCTS[table])}"
    # Collateral class and insurance apply only to some tables: blank elsewhere is correct.
    collateral = rng.choice(COLLATERAL) if table in SECURED_TABLES else ""
    if table in SECURED_TABLES and rng.random() < 0.004:
        collateral = ""
    insured = rng.choices(["FDIC", "Uninsured", "Other"], weights=[70, 27, 3])[0] if table == "O.D" else ""
    currency = rng.choices(["USD", "EUR", "GBP", "JPY", "CAD", "CHF"], weights=[80, 8, 5, 3, 2, 2])[0]
    return {
        "record_id": f"LQ{i + 1:08d}",
        "as_of_date": REPORTING_DATE,
        "reporting_entity": rng.choice(["Synapse Holdings Inc.", "Synapse Bank N.A.", "Synapse Securities LLC"]),
        "table_code": table,
        "product_code": product,
        "currency": _flaw(rng, 0.0008, currency, "US$"),
        "maturity_bucket": _flaw(rng, 0.002, rng.choice(BUCKETS), ""),
        "maturity_amount": _flaw(
            rng, 0.001, f"{rng.lognormvariate(2.0, 1.8):.3f}", f"{-rng.uniform(0.1, 50):.3f}"
        ),
        "collateral_class": collateral,
        "counterparty_sector": _flaw(rng, 0.002, rng.choice(COUNTERPARTIES), ""),
        "insured_status": insured,
    }


@dataclass(frozen=True)
class DemoReport:
    name: str
    regulation: str
    lob_code: str
    frequency: str
    description: str
    fields: list[dict]
    seed: int
    make_row: Callable[[random.Random, int, list[dict]], dict]

    @property
    def slug(self) -> str:
        return slugify(self.name)


def _fields(*pairs: tuple[str, str]) -> list[dict]:
    return [{"name": name, "description": description} for name, description in pairs]


REPORTS: tuple[DemoReport, ...] = (
    DemoReport(
        name="FR Y-14Q Retail - First Lien Mortgage",
        regulation="FR Y-14Q",
        lob_code="retail",
        frequency=Frequency.QUARTERLY,
        description=(
            "Schedule A.1 of the Federal Reserve's quarterly Capital Assessments and Stress Testing "
            "report: loan-level data on domestic first lien closed-end residential mortgages."
        ),
        fields=_fields(
            ("loan_number", "Unique loan identifier assigned by the servicer; one row per loan."),
            ("reporting_date", "As-of date of the reporting quarter (YYYY-MM-DD)."),
            ("origination_date", "Date the loan was originated (YYYY-MM-DD)."),
            ("original_loan_amount", "Principal amount at origination, in US dollars."),
            ("unpaid_principal_balance", "Unpaid principal balance at quarter end, in US dollars; never negative."),
            ("interest_rate", "Current note interest rate, in percent."),
            ("original_ltv", "Loan-to-value ratio at origination, in percent (0-150)."),
            ("fico_score", "Borrower credit score at origination (300-850)."),
            ("property_state", "Two-letter US state code of the property."),
            ("delinquency_status", "Payment status: Current, 30-59, 60-89, 90-119 or 120+ days past due."),
            ("loan_purpose", "Purchase, Refinance or Cash-out refinance."),
        ),
        seed=14_0001,
        make_row=_mortgage_row,
    ),
    DemoReport(
        name="FFIEC 031 Call Report - Schedule RC-C Loans",
        regulation="FFIEC 031",
        lob_code="retail",
        frequency=Frequency.QUARTERLY,
        description=(
            "Consolidated Reports of Condition and Income for banks with domestic and foreign offices, "
            "Schedule RC-C Part I: loans and leases held for investment, by category."
        ),
        fields=_fields(
            ("loan_id", "Unique identifier of the loan in the loan system of record."),
            ("reporting_date", "Call Report as-of date (YYYY-MM-DD)."),
            ("borrower_name", "Legal name of the borrower."),
            ("rcc_line_item", "Schedule RC-C line item the loan is reported on, e.g. 1.c.(2)(a), 4.a, 6.b."),
            ("borrower_domicile", "US or Non-US addressee, for the domestic/foreign split."),
            ("naics_code", "Six-digit NAICS industry code of the borrower."),
            ("origination_date", "Date the loan was originated (YYYY-MM-DD)."),
            ("maturity_date", "Contractual maturity date (YYYY-MM-DD); on or after the origination date."),
            ("outstanding_balance_thousands", "Amortized cost at the as-of date, in thousands of US dollars."),
            ("days_past_due", "Days the oldest unpaid payment is past due."),
            ("nonaccrual_status", "Y if the loan is in nonaccrual status, else N."),
            ("collateral_type", "Primary collateral: Real estate, Equipment, Receivables, Inventory, Securities or Unsecured."),
        ),
        seed=31_0001,
        make_row=_call_report_row,
    ),
    DemoReport(
        name="FR 2052a Complex Institution Liquidity Monitoring",
        regulation="FR 2052a",
        lob_code="treasury",
        frequency=Frequency.DAILY,
        description=(
            "The Federal Reserve's Complex Institution Liquidity Monitoring Report: inflows, outflows and "
            "supplemental items by product, counterparty, currency and maturity bucket."
        ),
        fields=_fields(
            ("record_id", "Unique identifier of the reported position."),
            ("as_of_date", "Report as-of date (YYYY-MM-DD)."),
            ("reporting_entity", "Legal entity reporting the position."),
            ("table_code", "FR 2052a table: I.A, I.U, I.S, O.W, O.S, O.D, O.O or S.B."),
            ("product_code", "Product within the table, e.g. O.D.5 or I.S.1."),
            ("currency", "ISO 4217 currency code of the position."),
            ("maturity_bucket", "Time to maturity bucket: Open, Day 1 to Day 30, then ranges up to >5 years."),
            ("maturity_amount", "Amount maturing in the bucket, in millions of US dollars."),
            ("collateral_class", "Collateral class for secured tables (e.g. A-1-Q); blank for unsecured."),
            ("counterparty_sector", "Counterparty type, e.g. Retail, Non-Financial Corporate, Bank."),
            ("insured_status", "Deposit insurance for O.D deposits: FDIC, Uninsured or Other; blank elsewhere."),
        ),
        seed=2052_0001,
        make_row=_liquidity_row,
    ),
)


def population_csv(report: DemoReport, rows: int = POPULATION_ROWS) -> bytes:
    """Return the report's demo population file: the same bytes for the same report and row count."""
    rng = random.Random(report.seed)
    names = [f["name"] for f in report.fields]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=names, lineterminator="\n", extrasaction="raise")
    writer.writeheader()
    written: list[dict] = []
    for i in range(rows):
        row = report.make_row(rng, i, written)
        if set(row) != set(names):
            raise CommandError(f"The demo row of {report.name} doesn't match its fields.")
        writer.writerow(row)
        written.append(row)
    return buffer.getvalue().encode("utf-8")


# --- the command --------------------------------------------------------------


class Command(BaseCommand):
    help = (
        "Create the demo users (one per role), LOBs, reports with population files and the "
        "Q3 2026 cycle. Safe to run again: it creates only what is missing."
    )

    def handle(self, *args, **options):
        self.verbosity = options["verbosity"]
        password = os.environ.get("DEMO_PASSWORD") or DEFAULT_PASSWORD
        data_dir = Path(settings.DATA_DIR) / "demo"
        try:
            with transaction.atomic():
                users, logins = self._users(password)
                lobs = self._lobs(users)
                reports = self._reports(users, lobs)
                cycle = self._cycle(users, reports)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        files = self._population_files(data_dir)
        self._print_summary(logins, cycle, files)

    def _say(self, message: str) -> None:
        if self.verbosity >= 1:
            self.stdout.write(message)

    def _users(self, password: str):
        User = get_user_model()
        users, logins = {}, []
        for spec in USERS:
            user = User.objects.filter(username=spec.username).first()
            if user is None:
                user = User.objects.create_user(
                    username=spec.username,
                    password=password,
                    email=f"{spec.username}@synapse.example.com",
                    first_name=spec.first_name,
                    last_name=spec.last_name,
                    title=spec.title,
                    is_staff=spec.superuser,
                    is_superuser=spec.superuser,
                )
                self._say(f"Created user {spec.username} ({spec.role}).")
                shown = password
            else:
                if spec.superuser and not (user.is_staff and user.is_superuser):
                    user.is_staff = user.is_superuser = True
                    user.save(update_fields=["is_staff", "is_superuser"])
                # An existing account keeps its password: say so rather than print a wrong one.
                shown = password if user.check_password(password) else "(changed since the demo was loaded)"
            group = Group.objects.filter(name=spec.role).first()
            if group is None:
                raise CommandError(f"The group {spec.role!r} is missing: run `manage.py migrate` first.")
            if not user.groups.filter(pk=group.pk).exists():
                user.groups.add(group)
            users[spec.username] = user
            logins.append((spec.role, spec.username, f"{spec.first_name} {spec.last_name}", shown))
        return users, logins

    def _lobs(self, users) -> dict[str, LOB]:
        lobs = {}
        for code, name in LOBS:
            lob = LOB.objects.filter(code=code).first()
            if lob is None:
                lob = lob_create(name=name, code=code, data_executive=users["executive"], actor=users["admin"])
                self._say(f"Created LOB {name}.")
            lobs[code] = lob
        return lobs

    def _reports(self, users, lobs) -> list[Report]:
        reports = []
        for spec in REPORTS:
            report = Report.objects.filter(name=spec.name).first()
            if report is None:
                report = report_create(
                    name=spec.name,
                    regulation=spec.regulation,
                    owner=users["owner"],
                    lob=lobs[spec.lob_code],
                    frequency=spec.frequency,
                    fields=spec.fields,
                    description=spec.description,
                    actor=users["admin"],
                )
                self._say(f"Created report {spec.name}.")
            reports.append(report)
        return reports

    def _cycle(self, users, reports) -> TestCycle:
        manager = users["manager"]
        cycle = TestCycle.objects.filter(name=CYCLE_NAME, test_manager=manager).order_by("pk").first()
        if cycle is None:
            cycle = cycle_create(
                user=manager, name=CYCLE_NAME, period_start=CYCLE_PERIOD[0], period_end=CYCLE_PERIOD[1]
            )
            self._say(f"Created cycle {CYCLE_NAME}.")
        present = set(CycleReport.objects.filter(cycle=cycle).values_list("report_id", flat=True))
        for report in reports:
            if report.pk in present:
                continue
            if cycle.status != TestCycle.Status.DRAFT:
                # A started cycle can't take new reports; the demo leaves it as it is.
                self._say(f"Cycle {cycle} has started; {report} was not added.")
                continue
            cycle_add_report(user=manager, cycle=cycle, report=report, tester=users["tester"])
            self._say(f"Added {report} to {cycle}.")
        return cycle

    def _population_files(self, data_dir: Path) -> list[tuple[str, Path]]:
        data_dir.mkdir(parents=True, exist_ok=True)
        files = []
        for spec in REPORTS:
            path = data_dir / f"{spec.slug}.csv"
            content = population_csv(spec)
            if not path.exists() or path.read_bytes() != content:
                path.write_bytes(content)
                self._say(f"Wrote {path}.")
            files.append((spec.name, path))
        return files

    def _print_summary(self, logins, cycle: TestCycle, files) -> None:
        out = self.stdout
        headers = ("Role", "Username", "Name", "Password")
        widths = [max(len(str(row[i])) for row in [headers, *logins]) for i in range(len(headers))]
        rule = "  ".join("-" * w for w in widths)
        out.write("")
        out.write(self.style.SUCCESS("Synapse demo data is ready. Logins:"))
        out.write("")
        out.write(("  " + "  ".join(h.ljust(w) for h, w in zip(headers, widths))).rstrip())
        out.write("  " + rule)
        for row in logins:
            out.write(("  " + "  ".join(str(v).ljust(w) for v, w in zip(row, widths))).rstrip())
        out.write("")
        cycle_reports = list(cycle.cycle_reports.select_related("tester"))
        testers = sorted({cr.tester.username for cr in cycle_reports if cr.tester})
        out.write(
            f"Cycle {cycle.name!r} ({cycle.get_status_display().lower()}): {len(cycle_reports)} reports, "
            f"managed by {cycle.test_manager.username}, tested by {', '.join(testers) or 'nobody yet'}."
        )
        out.write("Population files (upload each on its report's Data Profiling page):")
        for name, path in files:
            out.write(f"  {name}: {path}")
        out.write("")
