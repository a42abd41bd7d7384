"""Finalize Test Report: generate the report from the data, record sign-offs in order, reopen phases, seal.

The report is generated, never typed: `final_report_data` gathers the figures,
one template (`cycles/final_report_body.html`) renders them for the page and,
wrapped in `cycles/final_report_document.html`, for the PDF (WeasyPrint).
"""
from __future__ import annotations

import hashlib
import json
import logging

from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.db.models import Count, Max
from django.template.loader import render_to_string
from django.utils import timezone

from cycles.exceptions import ApplicationError, ConflictError, PermissionDeniedError
from cycles.models import (
    Attribute,
    CycleReport,
    FinalReport,
    Observation,
    Phase,
    PhaseReopening,
    PhaseState,
    PopulationFile,
    ProfileResult,
    SamplingPlan,
    SignOff,
    SignOffRole,
    TestResult,
    TestResultCount,
    TestResultValue,
)
from cycles.models.reporting import SEND_BACK_TARGETS, SIGN_OFF_MEANING, SIGN_OFF_ORDER
from cycles.permissions import can_sign_off
from cycles.services.execution import result_counts
from synapse.audit import audit_record

BODY_CACHE_SECONDS = 3600
RESULT_ORDER = [TestResultValue.PASS, TestResultValue.FAIL, TestResultValue.INCONCLUSIVE,
                TestResultValue.NOT_APPLICABLE, TestResultValue.NOT_TESTED]
RESULT_COLOURS = {
    TestResultValue.PASS: "#2e7d32",
    TestResultValue.FAIL: "#c62828",
    TestResultValue.INCONCLUSIVE: "#f9a825",
    TestResultValue.NOT_APPLICABLE: "#90a4ae",
    TestResultValue.NOT_TESTED: "#e0e0e0",
}
CHART_WIDTH = 420


# --- seal -------------------------------------------------------------------

logger = logging.getLogger(__name__)


def cycle_report_is_sealed(cycle_report: CycleReport) -> bool:
    """Signed off by all three: its evidence, results, observations and versions are frozen."""
    return FinalReport.objects.filter(cycle_report=cycle_report, status=FinalReport.Status.SIGNED).exists()


def cycle_report_require_unsealed(cycle_report: CycleReport) -> None:
    if cycle_report_is_sealed(cycle_report):
        raise ConflictError(f"{cycle_report.report} is signed off and sealed; nothing in it can change.")


# --- the figures --------------------------------------------------------------


def _jsonable(data: dict) -> dict:
    return json.loads(json.dumps(data, cls=DjangoJSONEncoder))


def results_by_attribute(cycle_report_ids) -> dict[int, dict[str, dict[str, int]]]:
    """{cycle report id: {attribute name: {result: count}}} in one query, from the stored counts."""
    counts: dict[int, dict[str, dict[str, int]]] = {}
    for cr_id, name, result, n in (
        TestResultCount.objects.filter(cycle_report_id__in=list(cycle_report_ids), n__gt=0)
        .values_list("cycle_report_id", "attribute__name", "result", "n")
        .order_by("cycle_report_id", "attribute__name", "result")
    ):
        counts.setdefault(cr_id, {}).setdefault(name, {})[result] = n
    return counts


def results_by_report(cycle_report_ids) -> dict[int, dict[str, int]]:
    """{cycle report id: {result: count}} in one query (a cycle's summary needs no per-attribute rows)."""
    return result_counts(cycle_report_ids)


def chart_rows(results: dict[str, dict[str, int]], *, width: int = CHART_WIDTH) -> list[dict]:
    """Stacked horizontal bars (one per attribute) as SVG geometry, drawn by the template."""
    rows = []
    for index, (name, counts) in enumerate(sorted(results.items())):
        total = sum(counts.values()) or 1
        x, segments = 0.0, []
        for result in RESULT_ORDER:
            n = counts.get(result, 0)
            if not n:
                continue
            w = width * n / total
            segments.append({"x": round(x, 2), "width": round(w, 2), "colour": RESULT_COLOURS[result],
                             "label": f"{TestResultValue(result).label}: {n}"})
            x += w
        rows.append({"name": name, "y": index * 26, "segments": segments,
                     "summary": " · ".join(f"{counts.get(r, 0)} {TestResultValue(r).label.lower()}"
                                           for r in RESULT_ORDER if counts.get(r))})
    return rows


def final_report_data(cycle_report: CycleReport) -> dict:
    """Every figure the final report shows, from the database (JSON-ready, stored with the report)."""
    cycle = cycle_report.cycle
    report = cycle_report.report
    attributes = list(Attribute.objects.filter(cycle_report=cycle_report).select_related("scoping")
                      .order_by("name"))
    population = (PopulationFile.objects.filter(cycle_report=cycle_report, status=PopulationFile.Status.PROFILED)
                  .order_by("-uploaded_at").first())
    profile = list(ProfileResult.objects.filter(population_file=population).order_by("id")) if population else []
    plan = SamplingPlan.objects.filter(cycle_report=cycle_report).first()
    results = results_by_attribute([cycle_report.pk]).get(cycle_report.pk, {})
    totals = {r: sum(c.get(r, 0) for c in results.values()) for r in RESULT_ORDER}
    exceptions = list(
        TestResult.objects.filter(cycle_report=cycle_report,
                                  result__in=[TestResultValue.FAIL, TestResultValue.INCONCLUSIVE])
        .select_related("sample", "attribute").order_by("attribute__name", "sample__row_index")
    )
    observations = list(Observation.objects.filter(cycle_report=cycle_report)
                        .select_related("remediation_owner").annotate(cell_count=Count("cells")).order_by("number"))
    samples = cycle_report.samples.count()
    extensions = []
    if hasattr(cycle_report, "sample_extensions"):
        extensions = [
            {"number": e.number, "current_size": e.current_size, "new_size": e.new_size, "status": e.status,
             "rule": e.rule}
            for e in cycle_report.sample_extensions.all().order_by("number")
        ]
    data = {
        "report": {"name": report.name, "regulation": report.regulation, "owner": str(report.owner),
                   "lob": str(report.lob), "frequency": report.get_frequency_display()},
        "cycle": {"name": cycle.name, "period_start": cycle.period_start, "period_end": cycle.period_end,
                  "test_manager": str(cycle.test_manager)},
        "tester": str(cycle_report.tester) if cycle_report.tester else "",
        "skipped_phases": [Phase(p).label for p in cycle_report.skipped_phases if p in Phase.values],
        "scope": [
            {"name": a.name, "data_type": a.get_data_type_display(), "cde": a.cde, "primary_key": a.primary_key,
             "risk_score": a.risk_score,
             "in_scope": bool(getattr(a, "scoping", None) and a.scoping.in_scope),
             "rationale": a.scoping.rationale if getattr(a, "scoping", None) else ""}
            for a in attributes
        ],
        "population": {
            "file": population.original_name, "rows": population.row_count, "sha256": population.sha256,
            "columns": len(population.columns),
        } if population else None,
        "profile": [
            {"column": p.column_name, "dtype": p.dtype, "nulls": p.null_count, "distinct": p.distinct_count,
             "min": p.min_value, "max": p.max_value, "format_violations": p.format_violations}
            for p in profile
        ],
        "sampling": {
            "method": plan.get_method_display(), "seed": plan.seed, "size_rule": plan.get_size_rule_display(),
            "size": plan.sample_size, "explanation": plan.size_explanation,
            "allowed_deviations": plan.allowed_deviations,
            "override_reason": plan.override_reason,
        } if plan else None,
        "samples": samples,
        "extensions": extensions,
        "results": [{"attribute": name, **{r: counts.get(r, 0) for r in RESULT_ORDER}}
                    for name, counts in sorted(results.items())],
        "totals": totals,
        "cells": sum(totals.values()),
        "exceptions": [
            {"sample": c.sample.key, "attribute": c.attribute.name, "result": c.get_result_display(),
             "expected": c.expected_value, "observed": c.observed_value, "comment": c.comment}
            for c in exceptions
        ],
        "observations": [
            {"code": o.code, "title": o.title, "severity": o.get_severity_display(), "type": o.get_type_display(),
             "description": o.description, "impact": o.impact, "root_cause": o.root_cause,
             "remediation_owner": str(o.remediation_owner) if o.remediation_owner else "",
             "remediation_target_date": o.remediation_target_date, "cells": o.cell_count,
             "status": o.get_status_display()}
            for o in observations
        ],
    }
    return _jsonable(data)


def final_report_context(final_report: FinalReport, *, sign_offs=None) -> dict:
    data = final_report.data
    results = {row["attribute"]: {r: row.get(r, 0) for r in RESULT_ORDER} for row in data["results"]}
    if sign_offs is None:
        sign_offs = _signed(final_report)
    return {
        "final_report": final_report,
        "data": data,
        "chart": chart_rows(results),
        "chart_height": max(len(results), 1) * 26,
        "chart_width": CHART_WIDTH,
        "legend": [{"label": TestResultValue(r).label, "colour": RESULT_COLOURS[r]} for r in RESULT_ORDER],
        "sign_offs": sign_offs,
        "signature_rows": [
            {"role": r, "label": SignOffRole(r).label, "meaning": SIGN_OFF_MEANING[r],
             "sign_off": next((s for s in sign_offs if s.role == r), None)}
            for r in SIGN_OFF_ORDER
        ],
    }


def final_report_html(final_report: FinalReport, *, document: bool = False, sign_offs=None) -> str:
    """The report as HTML: the body the page shows, or the whole document the PDF is made from."""
    if sign_offs is None:
        sign_offs = _signed(final_report)
    if not document and final_report.pk is not None:
        return _body_cached(final_report, sign_offs)
    context = final_report_context(final_report, sign_offs=sign_offs)
    body = render_to_string("cycles/final_report_body.html", context)
    if not document:
        return body
    return render_to_string("cycles/final_report_document.html", {**context, "body": body})


def _signed(final_report: FinalReport) -> list[SignOff]:
    return list(final_report.sign_offs.filter(decision=SignOff.Decision.SIGNED).select_related("signer"))


def _body_cached(final_report: FinalReport, sign_offs) -> str:
    """The body, rendered once per generation and set of signatures.

    A generation's figures never change and signatures are only added, so the body the page shows is the
    same until the next signature; rendering its hundreds of rows (scope, profile, exceptions) on every
    view is what made the page slow. The key holds the generation's time too, so a reused id (a test
    database) never finds another report's body, and the time zone the signature times are shown in.
    """
    key = "final-report-body:{}:{}:{}:{}".format(
        final_report.pk, final_report.generated_at.isoformat() if final_report.generated_at else "",
        timezone.get_current_timezone_name(), ".".join(str(s.pk) for s in sign_offs),
    )
    body = cache.get(key)
    if body is None:
        body = render_to_string("cycles/final_report_body.html", final_report_context(final_report, sign_offs=sign_offs))
        cache.set(key, body, timeout=BODY_CACHE_SECONDS)
    return body


# In a generation's data: its PDF has the sign-offs alone on its last page (generations from before don't).
SIGNATURE_PAGE = "pdf_signature_page"


def final_report_pdf(final_report: FinalReport, *, sign_offs=None) -> bytes:
    """The report as a PDF (WeasyPrint): in the worker's rendering processes, else in this one (cycles.pdf).

    Without signatures (a new generation) the whole document is rendered, the sign-offs alone on its last
    page. Signed, it is the generation's stored PDF, the pages the signers were given (its SHA-256 checked
    against the one recorded), with that last page rendered again with their signatures: laying the whole
    report out again cost four times as much, and would make pages the signers never saw.
    """
    from cycles import pdf

    if sign_offs is None:
        sign_offs = _signed(final_report)
    generated = _generated_pdf(final_report) if sign_offs and final_report.data.get(SIGNATURE_PAGE) else None
    if generated is not None:
        context = final_report_context(final_report, sign_offs=sign_offs)
        page = render_to_string("cycles/final_report_document.html", {
            **context, "body": render_to_string("cycles/final_report_signatures.html", context),
            "page_label": pdf.LAST_PAGE_LABEL,
        })
        signed = pdf.replace_last_page(generated, page)
        if signed is not None:
            return signed
    return pdf.render(final_report_html(final_report, document=True, sign_offs=sign_offs))


def _generated_pdf(final_report: FinalReport) -> bytes | None:
    """The generation's PDF as stored, if it is the one whose SHA-256 was recorded (else None)."""
    if not final_report.pdf or not final_report.pdf_sha256:
        return None
    try:
        with final_report.pdf.open("rb") as fh:
            content = fh.read()
    except (OSError, ValueError):
        content = b""
    if hashlib.sha256(content).hexdigest() != final_report.pdf_sha256:
        logger.warning("final report %s: the stored PDF is missing or not the one generated; rendering it whole",
                       final_report.pk)
        return None
    return content


def final_report_generate(*, cycle_report_id: int, generation: int, workflow_id: str = "") -> FinalReport:
    """Generate the next final report from the data (idempotent per workflow and generation)."""
    key = f"{workflow_id or cycle_report_id}:{generation}"
    existing = FinalReport.objects.filter(request_key=key).first()
    if existing:
        return existing
    cycle_report = CycleReport.objects.select_related("cycle__test_manager", "report__owner", "report__lob",
                                                       "tester").get(pk=cycle_report_id)
    cycle_report_require_unsealed(cycle_report)
    data = {**final_report_data(cycle_report), SIGNATURE_PAGE: True}
    try:
        with transaction.atomic():
            CycleReport.objects.select_for_update(no_key=True).get(pk=cycle_report.pk)
            number = (FinalReport.objects.filter(cycle_report=cycle_report).aggregate(n=Max("number"))["n"] or 0) + 1
            # A generation that nobody signed is replaced by this one.
            FinalReport.objects.filter(cycle_report=cycle_report, status=FinalReport.Status.AWAITING_SIGN_OFF).update(
                status=FinalReport.Status.SENT_BACK)
            final_report = FinalReport(cycle_report=cycle_report, number=number, data=data, request_key=key, html="")
            final_report.html = final_report_html(final_report, sign_offs=[])
            pdf = final_report_pdf(final_report, sign_offs=[])
            final_report.pdf_sha256 = hashlib.sha256(pdf).hexdigest()
            final_report.pdf.save(f"final-report-{cycle_report.pk}-{number}.pdf", ContentFile(pdf), save=False)
            final_report.save()
            audit_record(actor=None, action="final_report.generate", obj=final_report,
                         after={"number": number, "pdf_sha256": final_report.pdf_sha256, "cells": data["cells"]},
                         context={"workflow_id": workflow_id, "generation": generation})
    except IntegrityError:
        existing = FinalReport.objects.filter(request_key=key).first()
        if existing:
            return existing
        raise
    return final_report


def final_report_latest(*, cycle_report: CycleReport, figures: bool = True) -> FinalReport | None:
    """The report's latest generation, with `cycle_report` as its report (and what the caller loaded with it).

    `figures=False` leaves its data and HTML unread (a sign-off's checks need neither; at 300 attributes they
    are the bulk of the row).
    """
    generations = FinalReport.objects.filter(cycle_report=cycle_report).order_by("-number")
    latest = (generations if figures else generations.defer("data", "html")).first()
    if latest is not None:
        latest.cycle_report = cycle_report
    return latest


# --- sign-offs ----------------------------------------------------------------


def sign_off_next_role(final_report: FinalReport) -> str | None:
    """The role whose signature the report waits for (None once signed or sent back)."""
    if final_report.status != FinalReport.Status.AWAITING_SIGN_OFF:
        return None
    signed = set(final_report.sign_offs.filter(decision=SignOff.Decision.SIGNED).values_list("role", flat=True))
    for role in SIGN_OFF_ORDER:
        if role not in signed:
            return role
    return None


def sign_off_check(*, user, final_report: FinalReport, role: str, sign: bool, send_back_to: str = "",
                   notes: str = "") -> None:
    """Everything that makes a sign-off acceptable now; raises with the reason it is not."""
    if role not in SIGN_OFF_ORDER:
        raise ApplicationError(f"{role!r} is not a signing role.")
    if not can_sign_off(user, final_report.cycle_report, role):
        raise PermissionDeniedError(f"Only the report's {SignOffRole(role).label} signs in that role.")
    if final_report.status != FinalReport.Status.AWAITING_SIGN_OFF:
        raise ConflictError(f"Final report {final_report.number} is {final_report.get_status_display().lower()}; "
                            "it takes no more sign-offs.")
    expected = sign_off_next_role(final_report)
    if role != expected:
        if SIGN_OFF_ORDER.index(role) < SIGN_OFF_ORDER.index(expected):
            raise ConflictError(f"The {SignOffRole(role).label} has already signed this report.")
        raise ConflictError(f"The {SignOffRole(role).label} signs after the {SignOffRole(expected).label}: "
                            f"waiting for the {SignOffRole(expected).label}'s sign-off.")
    if not sign:
        if send_back_to not in SEND_BACK_TARGETS:
            raise ApplicationError("A send-back names what it reopens: the report, Observations or Test Execution.")
        if send_back_to in final_report.cycle_report.skipped_phases:
            raise ApplicationError(f"{Phase(send_back_to).label} was skipped in this cycle; it can't reopen.")
        if not notes.strip():
            raise ApplicationError("Say what needs to change: notes are required when sending the report back.")


def sign_off_record(*, decision_id: str, final_report_id: int, role: str, user_id: int, sign: bool,
                    send_back_to: str = "", notes: str = "", context: dict | None = None) -> SignOff:
    """Record a signature (name, time, meaning) or a send-back; the last signature seals the report.

    Idempotent by the decision id: a retry returns what the first call recorded.
    """
    existing = SignOff.objects.filter(request_id=decision_id).first()
    if existing:
        return existing
    user = get_user_model().objects.get(pk=user_id)
    with transaction.atomic():
        # Only the final report's row is locked: the rows joined for the checks (the cycle, shared by every
        # report in it, and the LOB) would make every report's sign-offs wait for one another.
        final_report = (FinalReport.objects.select_for_update(of=("self",))
                        .select_related("cycle_report__cycle", "cycle_report__report__lob").get(pk=final_report_id))
        sign_off_check(user=user, final_report=final_report, role=role, sign=sign, send_back_to=send_back_to,
                       notes=notes)
        meaning = SIGN_OFF_MEANING[role] if sign else (
            f"Sent back: {SEND_BACK_TARGETS[send_back_to]} reopens. {notes.strip()}")
        sign_off = SignOff.objects.create(
            final_report=final_report, role=role,
            decision=SignOff.Decision.SIGNED if sign else SignOff.Decision.SENT_BACK,
            signer=user, printed_name=user.get_full_name() or user.username, meaning=meaning,
            send_back_to="" if sign else send_back_to, notes=notes.strip(), request_id=decision_id,
        )
        audit_record(actor=user, action=f"final_report.{sign_off.decision}", obj=final_report,
                     after={"role": role, "meaning": meaning, "send_back_to": send_back_to,
                            "signed_at": sign_off.signed_at}, context={**(context or {}), "decision_id": decision_id})
        if not sign:
            final_report.status = FinalReport.Status.SENT_BACK
            final_report.save(update_fields=["status"])
        elif role == SIGN_OFF_ORDER[-1]:
            final_report.status = FinalReport.Status.SIGNED
            final_report.signed_at = sign_off.signed_at
            final_report.save(update_fields=["status", "signed_at"])
            audit_record(actor=user, action="final_report.sealed", obj=final_report.cycle_report,
                         after={"final_report": final_report.number, "signed_at": sign_off.signed_at})
    return sign_off


# --- send-backs reopen phases --------------------------------------------------


def phase_reopen(*, cycle_report_id: int, phase: str, sign_off_id: int, context: dict | None = None) -> PhaseReopening:
    """Open a completed phase again after a send-back (idempotent per sign-off and phase)."""
    with transaction.atomic():
        cycle_report = CycleReport.objects.select_for_update(no_key=True).get(pk=cycle_report_id)
        cycle_report_require_unsealed(cycle_report)
        sign_off = SignOff.objects.get(pk=sign_off_id)
        reopening, created = PhaseReopening.objects.get_or_create(
            cycle_report=cycle_report, phase=phase, sign_off=sign_off)
        if not created:
            return reopening
        PhaseState.objects.update_or_create(
            cycle_report=cycle_report, phase=phase,
            defaults={"status": PhaseState.Status.ACTIVE, "completed_at": None})
        before = cycle_report.phase
        cycle_report.phase = phase
        cycle_report.save(update_fields=["phase", "updated_at"])
        audit_record(actor=sign_off.signer, action="cycle_report.reopen_phase", obj=cycle_report,
                     before={"phase": before}, after={"phase": phase, "sign_off": sign_off.pk,
                                                     "notes": sign_off.notes}, context=context)
    return reopening


def phase_is_reopened(cycle_report: CycleReport, phase: str) -> bool:
    """A send-back reopened the phase after its last approved version: a new version may follow it."""
    from versioning.models import Version, VersionStatus

    approved = (Version.objects.filter(cycle_report=cycle_report, phase=phase, status=VersionStatus.APPROVED)
                .order_by("-number").values_list("decided_at", flat=True).first())
    if approved is None:
        return False
    return PhaseReopening.objects.filter(cycle_report=cycle_report, phase=phase, reopened_at__gt=approved).exists()


# --- the cycle page's summary ------------------------------------------------------


def cycle_results_summary(*, user, cycle) -> dict:
    """Pass/fail counts, observations by severity and each report's package, across the cycle's reports
    the user may see."""
    from cycles.models import Severity
    from cycles.selectors import cycle_reports_visible_to

    # A row shows the report's name and links by id: nothing else of the report, its cycle or its people is read.
    cycle_reports = list(cycle_reports_visible_to(user=user).filter(cycle=cycle).select_related(None)
                         .select_related("report").only("pk", "report__name").order_by("report__name"))
    ids = [cr.pk for cr in cycle_reports]
    results = results_by_report(ids)
    severities = {
        (row["cycle_report_id"], row["severity"]): row["n"]
        for row in Observation.objects.filter(cycle_report_id__in=ids).values("cycle_report_id", "severity")
        .annotate(n=Count("pk"))
    }
    signed = {
        fr.cycle_report_id: fr
        for fr in FinalReport.objects.filter(cycle_report_id__in=ids, status=FinalReport.Status.SIGNED)
        # The summary shows when each was signed and its package: not the report's stored figures and HTML
        # (hundreds of KB each, decoded for nothing).
        .select_related("package").defer("data", "html")
    }
    removed = dict(
        CycleReport.objects.filter(pk__in=ids, removal__isnull=False).values_list("pk", "removal__reason"))
    rows = []
    for cr in cycle_reports:
        counts = {r: results.get(cr.pk, {}).get(r, 0) for r in RESULT_ORDER}
        final_report = signed.get(cr.pk)
        rows.append({
            "cycle_report": cr,
            "counts": counts,
            "severities": {s: severities.get((cr.pk, s), 0) for s in Severity.values},
            "final_report": final_report,
            "package": getattr(final_report, "package", None) if final_report else None,
            "removed": removed.get(cr.pk),
        })
    totals = {r: sum(row["counts"][r] for row in rows) for r in RESULT_ORDER}
    by_report = {row["cycle_report"].report.name: row["counts"] for row in rows}
    return {
        "rows": rows,
        "totals": totals,
        "severities": [{"value": s, "label": Severity(s).label,
                        "count": sum(row["severities"][s] for row in rows)} for s in Severity.values],
        "chart": chart_rows(by_report),
        "chart_height": max(len(rows), 1) * 26,
        "chart_width": CHART_WIDTH,
        "legend": [{"label": TestResultValue(r).label, "colour": RESULT_COLOURS[r]} for r in RESULT_ORDER],
        "any_results": any(sum(row["counts"].values()) for row in rows),
    }

