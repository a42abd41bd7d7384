"""A whole cycle of two reports driven through the API alone, with the real Temporal dev server, worker and
database, each person with their own API token: from creating the LOB and the reports to both reports signed
off, the cycle completed and each evidence package downloaded and verified by `verify_evidence_package`.
The first report has a failed cell, which extends its sample (approved by the owner) and becomes an approved
observation; the second takes the shortest path (every cell passes)."""
from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from workflows.testing import wait_until as _wait_until
from workflows.tests.api_steps import FIELDS, ok, population_csv, token_client

pytestmark = [pytest.mark.temporal, pytest.mark.django_db(transaction=True)]

SIGNERS = (("test_manager", "manager"), ("report_owner", "owner"), ("data_executive", "executive"))


def wait_until(predicate, *, what: str):
    # Patient: the machine may be busy, and each step waits on the worker's activities.
    return _wait_until(predicate, timeout=120, interval=0.3, what=what)


def test_a_cycle_of_two_reports_driven_through_the_api_alone(temporal, users, settings, tmp_path, capsys):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)
    admin, manager, tester, owner, executive, data_owner = (
        token_client(users[n]) for n in ("admin", "manager", "tester", "owner", "executive", "data_owner"))
    signers = {"manager": manager, "owner": owner, "executive": executive}

    def user_id(client, role: str, username: str) -> int:
        rows = ok(client.get("/api/v1/users/", {"role": role}))["results"]
        return next(u["id"] for u in rows if u["username"] == username)

    # Set-up: the LOB, two reports, the cycle, its reports and their tester.
    lob = ok(admin.post("/api/v1/lobs/", {
        "name": "Cards", "code": "cards", "data_executive": user_id(admin, "Data Executive", "executive"),
    }, format="json"), 201)
    cycle = ok(manager.post("/api/v1/cycles/", {
        "name": "2026-Q3", "period_start": "2026-07-01", "period_end": "2026-09-30",
        "configuration": {"rfi_due_days": 10, "slas": {"planning": 5}},
    }, format="json"), 201)
    crs = []
    for name in ("Card balances", "Card originations"):
        report = ok(manager.post("/api/v1/reports/", {
            "name": name, "regulation": "FR Y-14M", "lob": lob["id"], "frequency": "monthly",
            "owner": user_id(manager, "Report Owner", "owner"), "fields": FIELDS,
        }, format="json"), 201)
        crs.append(ok(manager.post(f"/api/v1/cycles/{cycle['id']}/reports/", {
            "report": report["id"], "tester": user_id(manager, "Tester", "tester"),
        }, format="json"), 201)["id"])
    ok(manager.post(f"/api/v1/workflow/start/{cycle['id']}/", {}, format="json"), 201)

    def live(cr: int) -> dict:
        body = ok(tester.get(f"/api/v1/workflow/status/{cycle['id']}/"))
        return next(r for r in body["reports"] if r["cycle_report_id"] == cr)["live"] or {}

    def wait_for(cr: int, phase: str, state: str) -> dict:
        return wait_until(lambda: (s := live(cr)).get("active", {}).get(phase) == state and s,
                          what=f"report {cr}: {phase} {state}")

    def phases(cr: int) -> dict:
        return {p["phase"]: p["status"] for p in ok(tester.get(f"/api/v1/cycle-reports/{cr}/phases/"))}

    def submit(cr: int, phase: str) -> dict:
        submitted = ok(tester.post(f"/api/v1/cycle-reports/{cr}/submit/", {"phase": phase}, format="json"))
        assert submitted["delivered"], submitted
        return submitted

    def approve(version_id: int) -> None:
        decided = ok(owner.post(f"/api/v1/versions/{version_id}/decide/", {"approve": True}, format="json"))
        assert decided["delivered"], decided

    def submit_and_approve(cr: int, phase: str) -> int:
        version_id = submit(cr, phase)["version_id"]
        approve(version_id)
        return version_id

    def answer(cr: int, name: str) -> None:
        """The data owner uploads a file and submits; the tester accepts what is new and the request."""
        request_id = wait_until(lambda: next((r["id"] for r in ok(data_owner.get("/api/v1/requests/"))["results"]
                                              if r["cycle_report"] == cr and r["status"] == "open"), None),
                                what=f"report {cr}: an open request")
        ok(data_owner.post(f"/api/v1/requests/{request_id}/evidence/", {
            "files": [SimpleUploadedFile(name, f"account_id,balance\n{name}\n".encode())],
        }, format="multipart"), 201)
        submitted = ok(data_owner.post(f"/api/v1/requests/{request_id}/submit/"))
        assert submitted["status"] == "submitted" and submitted["workflow"]["delivered"], submitted
        for evidence in ok(tester.get(f"/api/v1/requests/{request_id}/"))["evidence"]:
            if evidence["status"] != "accepted":
                ok(tester.post(f"/api/v1/evidence/{evidence['id']}/review/", {"accept": True}, format="json"))
        reviewed = ok(tester.post(f"/api/v1/requests/{request_id}/review/"))
        assert reviewed["status"] == "accepted" and reviewed["workflow"]["delivered"], reviewed

    def cells(cr: int, **query) -> list[dict]:
        rows, page = [], 1
        while True:
            body = ok(tester.get(f"/api/v1/cycle-reports/{cr}/test-results/", {**query, "page": page}))
            rows += body["results"]
            if not body.get("next"):
                return rows
            page += 1

    def pass_the_rest(cr: int) -> None:
        untested = [c["id"] for c in cells(cr, result="not_tested")]
        if untested:
            ok(tester.post(f"/api/v1/cycle-reports/{cr}/test-results/bulk/", {
                "action": "pass", "result_ids": untested, "comment": "Agrees with the ledger"}, format="json"))

    def up_to_test_execution(cr: int, *, cde: bool) -> list[dict]:
        # Planning: the offline provider drafts the attributes; the tester edits one.
        wait_for(cr, "planning", "awaiting_submission")
        attributes = ok(tester.get("/api/v1/attributes/", {"cycle_report": cr}))["results"]
        assert sorted(a["name"] for a in attributes) == ["account_id", "balance", "origination_date"]
        balance = next(a for a in attributes if a["name"] == "balance")
        ok(tester.patch(f"/api/v1/attributes/{balance['id']}/", {"cde": cde, "risk_score": 9}, format="json"))
        submit_and_approve(cr, "planning")

        # Data Profiling: upload the population; the workflow profiles it.
        wait_for(cr, "data_profiling", "awaiting_upload")
        uploaded = ok(tester.post(f"/api/v1/cycle-reports/{cr}/population-files/", {
            "file": SimpleUploadedFile("population.csv", population_csv(200), content_type="text/csv"),
        }, format="multipart"), 201)
        assert uploaded["workflow"]["delivered"], uploaded
        population = uploaded["file"]["id"]
        wait_for(cr, "data_profiling", "awaiting_submission")
        assert ok(owner.get(f"/api/v1/population-files/{population}/profiles/"))["count"] == 3
        confirmed = ok(tester.post(f"/api/v1/population-files/{population}/mappings/confirm/"))
        assert confirmed == {"population_file": population, "confirmed": 3}, confirmed
        submit_and_approve(cr, "data_profiling")

        # Scoping: account_id and balance in scope.
        wait_for(cr, "scoping", "awaiting_submission")
        for attribute in attributes:
            in_scope = attribute["name"] != "origination_date"
            ok(tester.post(f"/api/v1/cycle-reports/{cr}/scoping/", {
                "attribute_id": attribute["id"], "in_scope": in_scope,
                "rationale": "Tested every cycle" if in_scope else "Not reported this cycle",
            }, format="json"))
        submit_and_approve(cr, "scoping")

        # Sample Selection and Data Owner Identification, in parallel.
        wait_for(cr, "sample_selection", "awaiting_submission")
        now = phases(cr)
        assert now["sample_selection"] == now["data_owner_identification"] == "active"
        wait_until(lambda: tester.get(f"/api/v1/cycle-reports/{cr}/sampling-plan/").status_code == 200,
                   what="sampling plan")
        # A 25% tolerable rate at 10% risk keeps the samples, and the extension a failure calls for, small.
        ok(tester.patch(f"/api/v1/cycle-reports/{cr}/sampling-plan/", {
            "seed": 7, "tolerable_rate": "0.25", "risk_of_overreliance": "0.10"}, format="json"))
        drawn = ok(tester.post(f"/api/v1/cycle-reports/{cr}/samples/draw/"))
        assert drawn["samples"] and drawn["plan"]["seed"] is not None
        version_id = submit_and_approve(cr, "sample_selection")
        assert ok(owner.get(f"/api/v1/versions/{version_id}/"))["status"] == "approved"

        wait_for(cr, "data_owner_identification", "awaiting_data_owners")
        rows = ok(executive.get(f"/api/v1/cycle-reports/{cr}/data-owners/"))["results"]
        assigned = ok(executive.post(f"/api/v1/cycle-reports/{cr}/data-owners/bulk/", {
            "data_owner_id": user_id(executive, "Data Owner", "dataowner"),
            "attribute_ids": [row["attribute_id"] for row in rows],
        }, format="json"))
        assert assigned["missing"] == [] and assigned["workflow"]["delivered"], assigned

        # Requests for Information: the data owner answers, the tester accepts.
        answer(cr, f"ledger-{cr}.csv")
        wait_for(cr, "test_execution", "awaiting_submission")
        return drawn["samples"]

    def observations_and_sign_offs(cr: int, *, observations: int) -> None:
        wait_for(cr, "observations", "awaiting_submission")
        drafted = ok(tester.get(f"/api/v1/cycle-reports/{cr}/observations/"))
        assert len(drafted) == observations, drafted
        for o in drafted:
            ok(tester.patch(f"/api/v1/observations/{o['id']}/", {
                "severity": "high", "impact": "Misstated balance", "root_cause": "Late postings",
                "remediation_owner": users["data_owner"].pk, "remediation_target_date": "2026-12-31"},
                format="json"))
        submit_and_approve(cr, "observations")
        wait_for(cr, "finalize", "awaiting_test_manager_sign_off")
        for role, name in SIGNERS:
            signed = ok(signers[name].post(f"/api/v1/cycle-reports/{cr}/sign-off/", {"role": role}, format="json"))
            assert signed["delivered"], signed

    # The first report: one failed cell, beyond what its sample allows, so the workflow proposes more samples.
    first, second = crs
    samples = up_to_test_execution(first, cde=True)
    progress = ok(tester.get(f"/api/v1/cycle-reports/{first}/test-execution/"))["progress"]
    assert progress["done"] == 0 and progress["total"] == len(samples) * 2, progress
    failed = next(c for c in cells(first) if c["attribute_name"] == "balance")
    ok(tester.post(f"/api/v1/test-results/{failed['id']}/", {
        "outcome": "fail", "observed_value": "0.00", "comment": "The ledger shows no balance",
        "failure_kind": "mismatch"}, format="json"))
    pass_the_rest(first)
    proposed = submit(first, "test_execution")
    assert "proposes" in proposed["message"], proposed
    [extension] = ok(owner.get(f"/api/v1/cycle-reports/{first}/sample-extensions/"))["results"]
    assert extension["status"] == "proposed" and live(first)["pending_extension_id"] == extension["id"]
    assert live(first)["waiting_on"] == "Report Owner"
    decided = ok(owner.post(f"/api/v1/sample-extensions/{extension['id']}/decide/", {
        "approve": True, "notes": "Test the next samples of the seed"}, format="json"))
    assert decided["delivered"], decided

    # The new samples go out through the reopened request on the same workflow and come back into the matrix.
    wait_for(first, "test_execution", "awaiting_evidence")
    answer(first, f"ledger-{first}-extension.csv")
    wait_for(first, "test_execution", "awaiting_submission")
    added = [c for c in cells(first, result="not_tested")]
    assert added and {c["sample_key"] for c in added} <= set(extension["sample_keys"])
    pass_the_rest(first)
    approve(submit(first, "test_execution")["version_id"])
    assert len(ok(owner.get(f"/api/v1/cycle-reports/{first}/sample-extensions/"))["results"]) == 1

    # The failed cell becomes an approved observation; the three sign-offs follow in order.
    observations_and_sign_offs(first, observations=1)

    # The second report: the shortest path, every cell passes.
    up_to_test_execution(second, cde=False)
    pass_the_rest(second)
    approve(submit(second, "test_execution")["version_id"])
    observations_and_sign_offs(second, observations=0)

    # The cycle completes; each package downloads and verifies offline.
    wait_until(lambda: ok(manager.get(f"/api/v1/cycles/{cycle['id']}/results/"))["status"] == "completed",
               what="cycle completed")
    results = ok(manager.get(f"/api/v1/cycles/{cycle['id']}/results/"))
    assert results["totals"]["fail"] == 1, results["totals"]
    observations = ok(owner.get(f"/api/v1/cycle-reports/{first}/observations/"))
    assert [o["status"] for o in observations] == ["open"]
    assert [o["severity"] for o in observations] == ["high"]
    for cr in crs:
        assert ok(manager.get(f"/api/v1/cycle-reports/{cr}/"))["status"] == "completed"
        assert [r["status"] for r in ok(executive.get(f"/api/v1/cycle-reports/{cr}/final-report/"))] == ["signed"]
        download = owner.get(f"/api/v1/cycle-reports/{cr}/package/?download=1")
        assert download.status_code == 200, download.content
        path = tmp_path / f"package-{cr}.zip"
        path.write_bytes(b"".join(download.streaming_content))
        capsys.readouterr()
        call_command("verify_evidence_package", str(path))
        assert capsys.readouterr().out.startswith("OK: "), path
