"""The sealed evidence package of a signed report, and its offline verification.

A zip with the signed PDF report, every evidence file (all versions), the test
matrix (CSV and XLSX), the samples, the observations, the sign-offs, the
report's audit trail, the Temporal event history of its workflow, and
``manifest.json``: the SHA-256 of every other file. `package_verify` needs
nothing but the zip (no database, no Synapse): an auditor runs
``manage.py verify_evidence_package FILE``.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass

from django.core.files import File
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction

from cycles.exceptions import ConflictError
from cycles.models import (
    CycleReport,
    Evidence,
    EvidencePackage,
    FinalReport,
    Observation,
    Sample,
    SignOff,
    TestResult,
)
from synapse.audit import audit_record

MANIFEST = "manifest.json"
MATRIX_COLUMNS = ["sample", "attribute", "expected_value", "observed_value", "result", "failure_kind", "comment",
                  "method", "attempt", "tested_by", "tested_at", "evidence"]


def _sha256_file(fileobj, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    for block in iter(lambda: fileobj.read(chunk), b""):
        digest.update(block)
    return digest.hexdigest()


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "file"


def _json(data) -> bytes:
    return json.dumps(data, cls=DjangoJSONEncoder, indent=2, ensure_ascii=False).encode()


def _matrix_rows(cycle_report: CycleReport) -> list[list]:
    cells = (TestResult.objects.filter(cycle_report=cycle_report)
             .select_related("sample", "attribute", "tested_by").prefetch_related("evidence")
             .order_by("sample__row_index", "attribute__name"))
    return [
        [c.sample.key, c.attribute.name, c.expected_value, c.observed_value, c.result, c.failure_kind, c.comment,
         c.method, c.attempt, c.tested_by.username if c.tested_by else "",
         c.tested_at.isoformat() if c.tested_at else "",
         ";".join(f"{e.original_name} v{e.version}" for e in c.evidence.all())]
        for c in cells
    ]


def matrix_csv(cycle_report: CycleReport, rows: list[list] | None = None) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(MATRIX_COLUMNS)
    writer.writerows(_matrix_rows(cycle_report) if rows is None else rows)
    return out.getvalue().encode()


def workbook_xlsx(cycle_report: CycleReport, *, data: dict | None = None, matrix: list[list] | None = None) -> bytes:
    """Results, test matrix, samples and observations as one XLSX workbook.

    `data`: the results and observations as a final report's generation recorded them (the package's
    workbook shows what was signed); without it, as they are now. `matrix`: the test matrix's rows, if
    the caller read them already.
    """
    import xlsxwriter

    from cycles.services.final_report import final_report_data

    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True, "remove_timezone": True})
    bold = book.add_format({"bold": True})

    def sheet(name: str, header: list[str], rows):
        ws = book.add_worksheet(name)
        ws.write_row(0, 0, header, bold)
        for i, row in enumerate(rows, start=1):
            ws.write_row(i, 0, ["" if v is None else v for v in row])
        ws.freeze_panes(1, 0)

    if data is None or not {"results", "observations"} <= data.keys():
        data = final_report_data(cycle_report)
    results_header = ["attribute", "pass", "fail", "inconclusive", "not_applicable", "not_tested"]
    sheet("Results", results_header, [[r[k] for k in results_header] for r in data["results"]])
    sheet("Test matrix", MATRIX_COLUMNS, _matrix_rows(cycle_report) if matrix is None else matrix)
    sheet("Samples", ["key", "row_index", "stratum", "method", "seed", "reason", "row_data"],
          [[s.key, s.row_index, s.stratum, s.method, s.seed, s.reason, json.dumps(s.row_data)]
           for s in Sample.objects.filter(cycle_report=cycle_report).order_by("row_index")])
    obs_header = ["code", "title", "severity", "type", "description", "impact", "root_cause", "remediation_owner",
                  "remediation_target_date", "cells", "status"]
    sheet("Observations", obs_header, [[o[k] for k in obs_header] for o in data["observations"]])
    book.close()
    return out.getvalue()


def _observations(cycle_report: CycleReport) -> list[dict]:
    return [
        {
            "code": o.code, "title": o.title, "severity": o.severity, "type": o.type, "description": o.description,
            "impact": o.impact, "root_cause": o.root_cause,
            "remediation_owner": o.remediation_owner.username if o.remediation_owner else "",
            "remediation_target_date": o.remediation_target_date, "status": o.status,
            "cells": sorted(f"{c.sample.key}|{c.attribute.name}" for c in o.cells.all()),
            "remediation": [{"from": e.from_status, "to": e.to_status, "by": e.actor.username if e.actor else "",
                             "at": e.at, "note": e.note} for e in o.remediation_events.all()],
        }
        for o in Observation.objects.filter(cycle_report=cycle_report).select_related("remediation_owner")
        .prefetch_related("cells__sample", "cells__attribute", "remediation_events__actor").order_by("number")
    ]


def _audit_trail(cycle_report: CycleReport) -> list[dict]:
    """Every audit event about the report or anything recorded for it."""
    from django.contrib.contenttypes.models import ContentType
    from django.db.models import Q

    from cycles.models import Attribute, InformationRequest, PhaseState
    from synapse.models import AuditEvent
    from versioning.models import Version, VersionItem

    owned = {
        CycleReport: [cycle_report.pk],
        Attribute: Attribute.objects.filter(cycle_report=cycle_report).values_list("pk", flat=True),
        Sample: Sample.objects.filter(cycle_report=cycle_report).values_list("pk", flat=True),
        InformationRequest: InformationRequest.objects.filter(cycle_report=cycle_report).values_list("pk", flat=True),
        Evidence: Evidence.objects.filter(request__cycle_report=cycle_report).values_list("pk", flat=True),
        TestResult: TestResult.objects.filter(cycle_report=cycle_report).values_list("pk", flat=True),
        Observation: Observation.objects.filter(cycle_report=cycle_report).values_list("pk", flat=True),
        FinalReport: FinalReport.objects.filter(cycle_report=cycle_report).values_list("pk", flat=True),
        Version: Version.objects.filter(cycle_report=cycle_report).values_list("pk", flat=True),
        VersionItem: VersionItem.objects.filter(version__cycle_report=cycle_report).values_list("pk", flat=True),
        PhaseState: PhaseState.objects.filter(cycle_report=cycle_report).values_list("pk", flat=True),
    }
    q = Q(pk__in=[])
    for model, ids in owned.items():
        q |= Q(content_type=ContentType.objects.get_for_model(model), object_id__in=[str(i) for i in ids])
    return [
        {"at": e.created_at, "actor": e.actor.username if e.actor else "", "action": e.action,
         "object": f"{e.content_type.app_label}.{e.content_type.model}:{e.object_id}", "object_repr": e.object_repr,
         "before": e.before, "after": e.after, "context": e.context}
        for e in AuditEvent.objects.filter(q).select_related("actor", "content_type").order_by("created_at", "pk")
    ]


def workflow_history_json(workflow_id: str) -> bytes:
    """The Temporal event history of a workflow, as `temporal workflow show --output json` gives it."""
    from workflows.temporal.client import bridge

    async def fetch(client):
        return (await client.get_workflow_handle(workflow_id).fetch_history()).to_json()

    return bridge.run(fetch).encode()


def package_build(*, final_report_id: int, heartbeat: Callable[[str], None] = lambda _: None,
                  history: Callable[[str], bytes] = workflow_history_json) -> EvidencePackage:
    """Build the sealed zip of a signed final report (idempotent: one package per report).

    `heartbeat` is called after each file so a long build shows progress to Temporal.
    Refuses if an evidence file on disk no longer matches the hash recorded at upload.
    """
    existing = EvidencePackage.objects.filter(final_report_id=final_report_id).first()
    if existing:
        return existing
    from cycles.services.final_report import final_report_html, final_report_pdf

    final_report = FinalReport.objects.select_related("cycle_report__report", "cycle_report__cycle").get(
        pk=final_report_id)
    if final_report.status != FinalReport.Status.SIGNED:
        raise ConflictError(f"Final report {final_report.number} is not signed off; only a signed report is "
                            "packaged.")
    cycle_report = final_report.cycle_report
    manifest: dict[str, str] = {}
    with tempfile.TemporaryFile() as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            def add(path: str, content: bytes) -> None:
                zf.writestr(path, content)
                manifest[path] = hashlib.sha256(content).hexdigest()
                heartbeat(path)

            sign_offs = list(final_report.sign_offs.filter(decision=SignOff.Decision.SIGNED).select_related("signer"))
            add("report/final_test_report.pdf", final_report_pdf(final_report, sign_offs=sign_offs))
            add("report/final_test_report.html", final_report_html(final_report, document=True,
                                                                   sign_offs=sign_offs).encode())
            add("report/report_data.json", _json(final_report.data))
            add("report/sign_offs.json", _json([
                {"role": s.role, "decision": s.decision, "name": s.printed_name, "username": s.signer.username,
                 "signed_at": s.signed_at, "meaning": s.meaning, "send_back_to": s.send_back_to, "notes": s.notes,
                 "final_report": s.final_report.number}
                for s in SignOff.objects.filter(final_report__cycle_report=cycle_report)
                .select_related("signer", "final_report").order_by("signed_at", "pk")
            ]))
            for evidence in (Evidence.objects.filter(request__cycle_report=cycle_report)
                             .select_related("request__data_owner").order_by("request_id", "original_name", "version")):
                path = (f"evidence/request-{evidence.request_id}-{_safe(evidence.request.data_owner.username)}/"
                        f"v{evidence.version}-{_safe(evidence.original_name)}")
                with evidence.file.open("rb") as fh:
                    content = fh.read()
                digest = hashlib.sha256(content).hexdigest()
                if digest != evidence.sha256:
                    raise ConflictError(f"Evidence {evidence} no longer matches the hash recorded at upload; "
                                        "the package is not built.")
                add(path, content)
            matrix = _matrix_rows(cycle_report)
            add("test_matrix/test_matrix.csv", matrix_csv(cycle_report, matrix))
            add("test_matrix/workbook.xlsx", workbook_xlsx(cycle_report, data=final_report.data, matrix=matrix))
            add("samples/samples.json", _json([
                {"key": s.key, "row_index": s.row_index, "row_data": s.row_data, "stratum": s.stratum,
                 "method": s.method, "seed": s.seed, "reason": s.reason}
                for s in Sample.objects.filter(cycle_report=cycle_report).order_by("row_index")
            ]))
            add("observations/observations.json", _json(_observations(cycle_report)))
            add("audit/audit_trail.json", _json(_audit_trail(cycle_report)))
            if cycle_report.workflow_id:
                add("workflow/event_history.json", history(cycle_report.workflow_id))
            zf.writestr(MANIFEST, _json({"algorithm": "sha256", "report": str(cycle_report.report),
                                         "cycle": str(cycle_report.cycle), "final_report": final_report.number,
                                         "files": dict(sorted(manifest.items()))}))
        tmp.seek(0)
        digest = _sha256_file(tmp)
        size = tmp.tell()
        tmp.seek(0)
        name = f"evidence-package-{_safe(cycle_report.report.name)}-{cycle_report.cycle_id}-{final_report.number}.zip"
        try:
            with transaction.atomic():
                package = EvidencePackage(final_report=final_report, file_name=name, sha256=digest,
                                          size_bytes=size, manifest=dict(sorted(manifest.items())))
                package.file.save(name, File(tmp), save=False)
                package.save()
                audit_record(actor=None, action="evidence_package.build", obj=final_report,
                             after={"file": name, "sha256": digest, "files": len(manifest)})
        except IntegrityError:
            existing = EvidencePackage.objects.filter(final_report_id=final_report_id).first()
            if existing:
                return existing
            raise
    return package


# --- offline verification ---------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    kind: str  # altered, missing, added, unreadable
    path: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.path}"


def package_verify(path) -> tuple[list[Problem], int]:
    """Check a package against its manifest, offline. Returns (problems, files checked).

    Names every file whose content differs from its manifest hash (altered),
    every file the manifest lists that the zip lacks (missing) and every file
    in the zip the manifest doesn't list (added).
    """
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        return [Problem("unreadable", f"{path} ({err})")], 0
    with zf:
        names = [n for n in zf.namelist() if not n.endswith("/")]
        if MANIFEST not in names:
            return [Problem("missing", MANIFEST)], 0
        try:
            files = json.loads(zf.read(MANIFEST))["files"]
        except (ValueError, KeyError, TypeError):
            return [Problem("unreadable", MANIFEST)], 0
        problems = []
        present = set(names) - {MANIFEST}
        for name in sorted(files):
            if name not in present:
                problems.append(Problem("missing", name))
                continue
            with zf.open(name) as fh:
                if _sha256_file(fh) != files[name]:
                    problems.append(Problem("altered", name))
        problems += [Problem("added", name) for name in sorted(present - set(files))]
        return problems, len(files)
