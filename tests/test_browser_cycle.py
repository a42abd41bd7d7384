"""A whole cycle of two reports in a real browser, from "Start workflow" to the cycle completed, as each
role, through the pages only: the first report has one failed cell that extends its sample (the owner
approves the extension) and becomes an approved observation; the second takes the shortest path (every
cell passes). The downloaded package verifies with `verify_evidence_package`, and altering one byte of an
evidence file, removing a file or adding one each make it fail and name the file.

Headless Debian Chromium driven by Playwright, against the live server, the real Temporal dev server and
worker behind it.
"""
from __future__ import annotations

import io
import os
import re
import zipfile
from pathlib import Path

import pytest
from django.core.management import call_command

from cycles.models import CycleReport, InformationRequest, Observation, Report, SampleExtension, TestCycle
from tests.test_browser_walk import Person
from versioning.models import Version
from workflows.testing import wait_until as _wait_until

pytestmark = [pytest.mark.browser, pytest.mark.temporal, pytest.mark.django_db(transaction=True)]

SECOND_FIELDS = [{"name": "account_id", "description": "Unique account identifier"},
                 {"name": "balance", "description": "Outstanding balance in USD"}]


def wait_until(predicate, *, what: str):
    # Patient: the machine may be busy, and each step waits on the worker's activities.
    return _wait_until(predicate, timeout=120, interval=0.5, what=what)


class Role(Person):
    """A Person whose waits are patient and who can approve a report's latest submitted version."""

    def __init__(self, browser, live_server, username: str):
        super().__init__(browser, live_server, username)
        self.page.set_default_timeout(90_000)

    def reload_until(self, path: str, predicate, what: str):
        def ready():
            self.open(path)
            return predicate(self.page)

        wait_until(ready, what=what)

    def submit(self, path: str, ready: str = "text=Submit for approval"):
        self.reload_until(path, lambda p: p.locator(ready).count() == 1, f"submit on {path}")
        self.page.click("text=Submit for approval")
        self.page.wait_for_selector(".messages")
        return self.page

    def approve_latest(self, cycle_report, phase: str):
        wait_until(lambda: Version.objects.filter(cycle_report=cycle_report, phase=phase,
                                                  status="submitted").exists(), what=f"{phase} submitted")
        super().approve_latest(cycle_report, phase)


def _bulk_pass(person, path):
    page = person.open(path)
    for box in page.locator("input[name=cells]").all():
        box.check()
    page.select_option("select[name=action]", "pass")
    page.click("#bulk-form button:has-text('Apply')")
    page.wait_for_selector(".messages")
    return page


def _tested(page) -> tuple[int, int]:
    done, total = re.search(r"(\d+) of (\d+) cells tested", page.content()).groups()
    return int(done), int(total)


def _verify(path: Path) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("verify_evidence_package", str(path), stdout=out, stderr=err)
    except SystemExit as exit_:
        return exit_.code, err.getvalue()
    return 0, out.getvalue()


def _rewrite(source: Path, target: Path, *, change=None, drop=None, add=None) -> None:
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w") as zout:
        for item in zin.infolist():
            if item.filename == drop:
                continue
            data = zin.read(item)
            if item.filename == change:
                data = bytes([data[0] ^ 0x01]) + data[1:]
            zout.writestr(item, data)
        if add:
            zout.writestr(add, b"planted after sign-off\n")


def test_a_cycle_of_two_reports_from_start_to_completed_through_the_pages(
    browser, live_server, temporal, users, cycle, cycle_report, lob, settings, tmp_path
):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    shots = Path(os.environ.get("SYNAPSE_SCREENSHOTS", tmp_path))
    second = CycleReport.objects.create(
        cycle=cycle, tester=users["tester"],
        report=Report.objects.create(name="Card balances", regulation="FR Y-14M", owner=users["owner"], lob=lob,
                                     frequency="monthly", fields=SECOND_FIELDS))
    manager, tester, owner, executive, data_owner = (
        Role(browser, live_server, name) for name in ("manager", "tester", "owner", "executive", "dataowner"))

    # The test manager starts the cycle: one report workflow per report.
    page = manager.open(f"/cycles/{cycle.pk}/")
    page.click("#start-workflow")
    page.wait_for_selector(".messages")
    assert "started" in page.content().lower()

    def up_to_test_execution(report: CycleReport, population: str, columns: int) -> InformationRequest:
        pk = report.pk
        # Planning: the drafted attributes appear; the tester submits; the owner approves.
        tester.reload_until(f"/cycle-reports/{pk}/planning/",
                            lambda p: p.locator("td:has-text('account_id')").count() >= 1, "drafted attributes")
        tester.submit(f"/cycle-reports/{pk}/planning/")
        owner.approve_latest(report, "planning")

        # Data Profiling: the population is uploaded and profiled, its columns confirmed.
        path = tmp_path / f"population-{pk}.csv"
        path.write_text(population)
        tester.reload_until(f"/cycle-reports/{pk}/data-profiling/",
                            lambda p: p.locator("input[type=file]").count() == 1, "upload form")
        tester.page.set_input_files("input[type=file]", str(path))
        tester.page.click("text=Upload and profile")
        tester.page.wait_for_selector("text=Profiled 120 rows")
        tester.page.click(f"#mapping button:has-text('Confirm the {columns} match')")
        tester.page.wait_for_selector(f"text={columns} columns confirmed")
        tester.submit(f"/cycle-reports/{pk}/data-profiling/")
        owner.approve_latest(report, "data_profiling")

        # Scoping: the recommendations stand.
        tester.submit(f"/cycle-reports/{pk}/scoping/")
        owner.approve_latest(report, "scoping")

        # Sample Selection: a 25% tolerable rate at 10% risk keeps the sample, and its extension, small.
        tester.reload_until(f"/cycle-reports/{pk}/sample-selection/",
                            lambda p: p.locator("text=Draw samples").count() == 1, "sample selection page")
        page = tester.page
        if not page.locator("details.plan-settings[open]").count():
            page.click("text=Change the sampling settings")
        page.fill("#id_tolerable_rate", "0.25")
        page.fill("#id_risk_of_overreliance", "0.10")
        page.fill("#id_seed", "7")
        page.click("text=Save the plan")
        page.wait_for_selector(".messages")
        page.click("text=Draw samples")
        page.wait_for_selector("text=Submit for approval")
        page.click("text=Submit for approval")
        page.wait_for_selector(".messages")
        owner.approve_latest(report, "sample_selection")

        # Data Owner Identification: the data executive assigns one data owner and confirms.
        executive.reload_until(f"/cycle-reports/{pk}/data-owners/",
                               lambda p: p.locator("input[name=attributes]").count() >= 1, "attributes to assign")
        page = executive.page
        for box in page.locator("input[name=attributes]").all():
            box.check()
        page.select_option("#bulk-form select[name=data_owner]", label=str(users["data_owner"]))
        page.click("text=Assign to the ticked attributes")
        page.wait_for_selector("text=confirm with")
        page.click("button:has-text('Assignments complete')")
        page.wait_for_selector(".messages")

        # Requests for Information: the data owner answers, the tester accepts.
        request = wait_until(lambda: InformationRequest.objects.filter(cycle_report=report).first(),
                             what="request sent")
        answer(request, f"ledger-{pk}.pdf")
        return request

    def answer(request: InformationRequest, name: str) -> None:
        data_owner.reload_until(f"/requests/{request.pk}/", lambda p: p.locator("input[type=file]").count() == 1,
                                f"request {request.pk} open")
        evidence = tmp_path / name
        evidence.write_bytes(b"%PDF-1.4\n% " + name.encode() + b"\n")
        page = data_owner.page
        page.set_input_files("input[type=file]", str(evidence))
        page.click("button:has-text('Upload')")
        page.wait_for_selector(f"text={name}")
        page.click("text=Submit evidence")
        page.wait_for_selector(".messages")
        page = tester.open(f"/requests/{request.pk}/")
        new_file = page.locator(f"tr:has-text('{name}') form.review-form")
        new_file.locator("input[value=accept]").check()
        new_file.locator("button:has-text('Save')").click()
        page.wait_for_selector(".messages")
        page.click("text=Finish review")
        page.wait_for_selector(".messages")

    def observations_and_sign_offs(report: CycleReport, observations: int) -> None:
        pk = report.pk
        tester.reload_until(f"/cycle-reports/{pk}/observations/",
                            lambda p: p.locator("text=Submit for approval").count() == 1, "observations page")
        assert tester.page.locator("form.observation-form").count() == observations
        for observation in Observation.objects.filter(cycle_report=report).order_by("number"):
            page = tester.open(f"/cycle-reports/{pk}/observations/")
            prefix = f"#id_o{observation.pk}-"
            page.select_option(prefix + "severity", "high")
            page.fill(prefix + "impact", "A balance misstated in the regulatory submission.")
            page.fill(prefix + "root_cause", "A manual adjustment not posted to the ledger.")
            page.select_option(prefix + "remediation_owner", str(users["data_owner"].pk))
            page.fill(prefix + "remediation_target_date", "2026-12-31")
            page.click(f"#observation-{observation.pk} button:has-text('Save {observation.code}')")
            page.wait_for_selector(".messages")
            assert f"{observation.code} saved." in page.content()
        tester.submit(f"/cycle-reports/{pk}/observations/")
        owner.approve_latest(report, "observations")
        for person, label in ((manager, "test manager"), (owner, "report owner"), (executive, "data executive")):
            person.reload_until(f"/cycle-reports/{pk}/final-report/",
                                lambda p: p.locator("#sign-off-form").count() == 1, f"the {label}'s turn")
            assert "means:" in person.page.locator("#sign-off-form").inner_text()
            person.page.click("#sign-off-form button[type=submit]")
            person.page.wait_for_selector(".messages")

    # The first report: one failed cell.
    first = cycle_report
    request = up_to_test_execution(first, "account_id,customer_name,balance,origination_date,is_delinquent\n" + "".join(
        f"A{i:04d},Customer {i},{100 + i}.50,2024-02-{1 + i % 28:02d},false\n" for i in range(120)), columns=5)
    matrix = f"/cycle-reports/{first.pk}/test-execution/"
    tester.reload_until(matrix, lambda p: p.locator("tr[id^=cell-]").count() > 0, "the matrix prepared")
    tester.page.screenshot(path=str(shots / "cycle-matrix.png"), full_page=True)
    # The first cell of the matrix (an attribute the scoping recommendations kept) fails.
    cell_id = int(tester.page.locator("tr[id^=cell-]").first.get_attribute("id")[5:])
    page = tester.open(f"{matrix}cells/{cell_id}/")
    page.check("input[name=outcome][value=fail]")
    page.fill("input[name=observed_value]", "999")
    page.select_option("select[name=failure_kind]", "mismatch")
    page.fill("textarea[name=comment]", "The ledger shows 999, the report a different balance.")
    page.check("input[name=evidence]")
    page.click("button:has-text('Save the result')")
    page.wait_for_url(re.compile(r".*/test-execution/.*#cell-\d+"))
    assert "Fail" in page.inner_text(f"#cell-{cell_id}")
    page = _bulk_pass(tester, matrix + "?show=untested")
    done, total = _tested(page)
    assert done == total
    page = tester.open(matrix)
    page.click("text=Submit for approval")
    page.wait_for_selector(".messages")
    assert "more samples" in page.inner_text(".messages")

    # The owner approves the extension; the new samples go out on the reopened request and come back.
    page = owner.open(matrix)
    assert "Extension 1 proposed" in page.content()
    page.check("input[name=decision][value=approve]")
    page.click("text=Record the decision")
    page.wait_for_selector(".messages")
    assert "approved" in page.inner_text(".messages")
    extension = SampleExtension.objects.get(cycle_report=first)
    answer(request, f"ledger-{first.pk}-extension.pdf")
    tester.reload_until(matrix, lambda p: p.locator("text=Submit for approval").count() == 1
                        and _tested(p)[1] > total, "the extended matrix")
    page = _bulk_pass(tester, matrix + "?show=untested")
    done, extended = _tested(page)
    assert done == extended == total + (extension.new_size - extension.current_size)
    tester.submit(matrix)
    owner.approve_latest(first, "test_execution")
    observations_and_sign_offs(first, observations=1)

    # The second report: the shortest path, every cell passes, no observations.
    up_to_test_execution(second, "account_id,balance\n" + "".join(f"B{i:04d},{200 + i}.00\n" for i in range(120)),
                         columns=2)
    matrix = f"/cycle-reports/{second.pk}/test-execution/"
    tester.reload_until(matrix, lambda p: p.locator("tr[id^=cell-]").count() > 0, "the matrix prepared")
    page = _bulk_pass(tester, matrix + "?show=untested")
    done, total = _tested(page)
    assert done == total > 0
    tester.submit(matrix)
    owner.approve_latest(second, "test_execution")
    observations_and_sign_offs(second, observations=0)

    # The cycle completes; its page shows the results and links both packages.
    wait_until(lambda: TestCycle.objects.get(pk=cycle.pk).status == TestCycle.Status.COMPLETED, what="completed")
    page = manager.open(f"/cycles/{cycle.pk}/")
    assert page.locator("#cycle-results a:has-text('evidence-package-')").count() == 2
    page.screenshot(path=str(shots / "cycle-completed.png"), full_page=True)
    approved = Observation.objects.get(cycle_report=first)
    assert (approved.status, approved.severity) == ("open", "high")

    # The first report's package downloads and verifies; each tampering fails and names the file.
    page = manager.open(f"/cycle-reports/{first.pk}/final-report/")
    with page.expect_download() as download:
        page.click("#download-package")
    package = tmp_path / "package.zip"
    download.value.save_as(package)
    code, out = _verify(package)
    assert code == 0 and out.startswith("OK: "), out
    with zipfile.ZipFile(package) as zf:
        evidence = sorted(n for n in zf.namelist() if n.startswith("evidence/") and not n.endswith("/"))
    assert any(name.endswith("extension.pdf") for name in evidence), evidence
    for kind, changes, named in (
        ("altered", {"change": evidence[0]}, evidence[0]),
        ("missing", {"drop": evidence[-1]}, evidence[-1]),
        ("added", {"add": "evidence/planted.pdf"}, "evidence/planted.pdf"),
    ):
        tampered = tmp_path / f"package-{kind}.zip"
        _rewrite(package, tampered, **changes)
        code, err = _verify(tampered)
        assert code == 1 and f"{kind}: {named}" in err.splitlines(), (kind, err)
