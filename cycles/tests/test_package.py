"""The sealed evidence package and `manage.py verify_evidence_package`."""
import io
import json
import zipfile

import pytest
from django.core.management import call_command

from cycles.exceptions import ConflictError
from cycles.models import Evidence, EvidencePackage, Phase
from cycles.services.final_report import final_report_generate
from cycles.services.package import package_build, package_verify
from cycles.tests.test_final_report import _sign_all
from cycles.tests.test_observations import approved_observations, build_tested_report, enter  # noqa: F401

HISTORY = json.dumps({"events": [{"eventId": "1", "eventType": "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED"}]})


def _history(workflow_id: str) -> bytes:
    # The Temporal history itself is fetched with the client in workflows/tests/test_finalize_integration.py.
    return HISTORY.encode()


@pytest.fixture
def signed(cycle_report, users, storage):  # noqa: F811
    build_tested_report(cycle_report, users)
    approved_observations(cycle_report, users)
    enter(cycle_report, Phase.FINALIZE)
    cycle_report.workflow_id = "cycle-1-report-1"
    cycle_report.save(update_fields=["workflow_id"])
    report = final_report_generate(cycle_report_id=cycle_report.pk, generation=1)
    _sign_all(report, users)
    return report


@pytest.fixture
def package(signed, tmp_path):
    built = package_build(final_report_id=signed.pk, history=_history)
    path = tmp_path / built.file_name
    with built.file.open("rb") as fh:
        path.write_bytes(fh.read())
    return built, path


def _verify(path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("verify_evidence_package", str(path), stdout=out, stderr=err)
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    return code, out.getvalue(), err.getvalue()


def _rewrite(path, *, change=None, drop=None, add=None):
    """Copy the zip with one file changed, dropped or added (the manifest left as it was)."""
    with zipfile.ZipFile(path) as src:
        entries = [(info.filename, src.read(info.filename)) for info in src.infolist()]
    with zipfile.ZipFile(path, "w") as dst:
        for name, content in entries:
            if name == drop:
                continue
            if change and name == change:
                content = bytes([content[0] ^ 0x01]) + content[1:]
            dst.writestr(name, content)
        if add:
            dst.writestr(add, b"not part of the package")


def test_the_package_holds_report_evidence_matrix_samples_observations_trails_and_a_manifest(package, signed):
    built, path = package
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        manifest = json.loads(zf.read("manifest.json"))
        assert zf.read("report/final_test_report.pdf").startswith(b"%PDF")
        matrix = zf.read("test_matrix/test_matrix.csv").decode()
        trail = json.loads(zf.read("audit/audit_trail.json"))
        observations = json.loads(zf.read("observations/observations.json"))
        assert zf.read("workflow/event_history.json") == HISTORY.encode()
    evidence = Evidence.objects.filter(request__cycle_report=signed.cycle_report)
    evidence_paths = {n for n in names if n.startswith("evidence/")}
    assert len(evidence_paths) == evidence.count() == 3  # every version of every file
    assert any(p.endswith("v1-ledger.pdf") for p in evidence_paths) and any(
        p.endswith("v2-ledger.pdf") for p in evidence_paths)
    assert {"test_matrix/workbook.xlsx", "samples/samples.json", "report/sign_offs.json"} <= names
    assert set(manifest["files"]) == names - {"manifest.json"}
    assert built.manifest == manifest["files"]
    assert matrix.count("\n") == 10 and ",fail,mismatch," in matrix
    assert {"final_report.generate", "final_report.signed", "observation.draft", "version.approved"} <= {
        e["action"] for e in trail}
    assert [o["code"] for o in observations] == ["OBS-1", "OBS-2"]
    # Built once: asking again returns the same package.
    assert package_build(final_report_id=signed.pk, history=_history).pk == built.pk
    assert EvidencePackage.objects.count() == 1


def test_an_intact_package_verifies(package):
    _, path = package
    code, out, err = _verify(path)
    assert (code, err) == (0, "")
    assert out.startswith("OK: ") and "files match the manifest" in out


def test_one_altered_byte_of_one_evidence_file_is_named(package):
    _, path = package
    with zipfile.ZipFile(path) as zf:
        target = sorted(n for n in zf.namelist() if n.startswith("evidence/"))[0]
    _rewrite(path, change=target)
    code, _, err = _verify(path)
    assert code == 1
    assert err.splitlines() == [f"altered: {target}"]


def test_a_removed_file_and_an_added_file_are_named(package):
    _, path = package
    _rewrite(path, drop="test_matrix/test_matrix.csv", add="evidence/extra.pdf")
    code, _, err = _verify(path)
    assert code == 1
    assert err.splitlines() == ["missing: test_matrix/test_matrix.csv", "added: evidence/extra.pdf"]


def test_something_that_is_not_a_package_exits_2_with_one_line(tmp_path):
    bogus = tmp_path / "bogus.zip"
    bogus.write_bytes(b"not a zip")
    code, _, err = _verify(bogus)
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith("unreadable: ")
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("a.txt", b"x")
    assert [str(p) for p in package_verify(empty)[0]] == ["missing: manifest.json"]


def test_only_a_signed_report_is_packaged_and_evidence_must_match_its_recorded_hash(signed, users, cycle_report):
    evidence = Evidence.objects.filter(request__cycle_report=cycle_report).first()
    # Someone altered the stored file behind Synapse's back: the package is not built.
    with open(evidence.file.path, "r+b") as fh:
        first = fh.read(1)
        fh.seek(0)
        fh.write(bytes([first[0] ^ 0x01]))
    with pytest.raises(ConflictError, match="no longer matches the hash"):
        package_build(final_report_id=signed.pk, history=_history)
    assert not EvidencePackage.objects.exists()


def test_an_unsigned_report_is_not_packaged(cycle_report, users, storage):  # noqa: F811
    build_tested_report(cycle_report, users)
    approved_observations(cycle_report, users)
    enter(cycle_report, Phase.FINALIZE)
    report = final_report_generate(cycle_report_id=cycle_report.pk, generation=1)
    with pytest.raises(ConflictError, match="not signed off"):
        package_build(final_report_id=report.pk, history=_history)


def test_the_workbook_shows_the_results_and_observations_that_were_signed(signed):
    """The package's workbook is made from the signed generation's figures, the ones report_data.json holds
    (the database refuses changes to them once signed, so they are also the figures there), and the test
    matrix is read once for the CSV and the workbook's sheet."""
    import polars as pl
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        built = package_build(final_report_id=signed.pk, history=_history)
    matrix_reads = [q for q in captured.captured_queries if 'FROM "cycles_testresult"' in q["sql"] and q["sql"]
                    .endswith('ORDER BY "cycles_sample"."row_index" ASC, "cycles_attribute"."name" ASC')]
    assert len(matrix_reads) == 1, [q["sql"][:120] for q in matrix_reads]
    with built.file.open("rb") as fh, zipfile.ZipFile(fh) as zf:
        workbook = zf.read("test_matrix/workbook.xlsx")
        recorded = json.loads(zf.read("report/report_data.json"))
        matrix = zf.read("test_matrix/test_matrix.csv").decode().splitlines()
    observations = pl.read_excel(io.BytesIO(workbook), sheet_name="Observations")
    results = pl.read_excel(io.BytesIO(workbook), sheet_name="Results")
    cells = pl.read_excel(io.BytesIO(workbook), sheet_name="Test matrix")
    assert observations["title"].to_list() == [o["title"] for o in recorded["observations"]] and len(observations)
    assert results["attribute"].to_list() == [r["attribute"] for r in recorded["results"]]
    assert results["fail"].to_list() == [r["fail"] for r in recorded["results"]]
    assert cells.height == len(matrix) - 1 == recorded["cells"]  # the CSV and the sheet: the same rows
