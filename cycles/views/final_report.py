"""The Final Test Report page: the generated report, its sign-offs, downloads; removing a report from its cycle."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_POST

from cycles.forms.final_report import RemoveReportForm, SignOffForm
from cycles.models import EvidencePackage, FinalReport, Phase, SignOff, SignOffRole
from cycles.models.reporting import SIGN_OFF_MEANING
from cycles.permissions import can_manage_cycle, can_sign_off
from cycles.services.final_report import final_report_html, final_report_latest, sign_off_next_role
from cycles.services.final_report import final_report_pdf as final_report_pdf_bytes
from cycles.services.package import workbook_xlsx
from cycles.views.pages import _cycle_report_or_404, _flash_outcome, _phase_context, phase_url, refuse
from synapse.exceptions import ApplicationError
from workflows.services import workflow_remove_report, workflow_sign_off

TEMPLATE = "cycles/final_report.html"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@login_required
@require_GET
def final_report_page(request, pk: int):
    cycle_report = _cycle_report_or_404(request.user, pk)
    context = _phase_context(request, cycle_report, Phase.FINALIZE)
    latest = final_report_latest(cycle_report=cycle_report)
    next_role = sign_off_next_role(latest) if latest else None
    can_sign = bool(next_role and can_sign_off(request.user, cycle_report, next_role))
    context.update({
        "final_report": latest,
        "report_body": final_report_html(latest) if latest else "",
        "next_role": next_role,
        "next_role_label": SignOffRole(next_role).label if next_role else "",
        "meaning": SIGN_OFF_MEANING.get(next_role, ""),
        "sign_form": SignOffForm() if can_sign else None,
        "history": list(SignOff.objects.filter(final_report__cycle_report=cycle_report)
                        .select_related("signer", "final_report").order_by("signed_at", "pk")),
        "package": EvidencePackage.objects.filter(final_report__cycle_report=cycle_report).first(),
    })
    return render(request, TEMPLATE, context)


@login_required
@require_POST
def final_report_sign(request, pk: int):
    cycle_report = _cycle_report_or_404(request.user, pk)
    latest = final_report_latest(cycle_report=cycle_report)
    role = sign_off_next_role(latest) if latest else None
    if role is None:
        messages.error(request, "The report is not waiting for a sign-off.")
        return redirect(phase_url(cycle_report, Phase.FINALIZE))
    if not can_sign_off(request.user, cycle_report, role):
        return refuse(request, f"The report waits for the {SignOffRole(role).label}'s sign-off; it isn't yours to give.")
    form = SignOffForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            messages.error(request, " ".join(errors))
        return redirect(phase_url(cycle_report, Phase.FINALIZE))
    sign = form.cleaned_data["decision"] == "sign"
    try:
        outcome = workflow_sign_off(user=request.user, cycle_report=cycle_report, role=role, sign=sign,
                                    send_back_to=form.cleaned_data["send_back_to"], notes=form.cleaned_data["notes"])
    except ApplicationError as err:
        messages.error(request, err.message)
    else:
        _flash_outcome(request, outcome)
    return redirect(phase_url(cycle_report, Phase.FINALIZE))


@login_required
@require_GET
def final_report_pdf(request, pk: int, report_id: int):
    cycle_report = _cycle_report_or_404(request.user, pk)
    report = FinalReport.objects.filter(cycle_report=cycle_report, pk=report_id).first()
    if report is None:
        raise Http404("No such final report.")
    name = f"final-test-report-{slugify(cycle_report.report.name)}-{report.number}.pdf"
    if report.status == FinalReport.Status.SIGNED:
        # The generated PDF predates the signatures; a signed report's PDF shows them (as in the package).
        response = HttpResponse(final_report_pdf_bytes(report), content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="{name.replace(".pdf", "-signed.pdf")}"'
        return response
    return FileResponse(report.pdf.open("rb"), as_attachment=True, filename=name, content_type="application/pdf")


@login_required
@require_GET
def final_report_xlsx(request, pk: int):
    """Results, test matrix, samples and observations as an XLSX workbook."""
    cycle_report = _cycle_report_or_404(request.user, pk)
    response = HttpResponse(workbook_xlsx(cycle_report), content_type=XLSX)
    response["Content-Disposition"] = f'attachment; filename="results-{slugify(cycle_report.report.name)}.xlsx"'
    return response


@login_required
@require_GET
def package_download(request, pk: int):
    cycle_report = _cycle_report_or_404(request.user, pk)
    package = EvidencePackage.objects.filter(final_report__cycle_report=cycle_report).first()
    if package is None:
        raise Http404("The evidence package is built after the last sign-off.")
    return FileResponse(package.file.open("rb"), as_attachment=True, filename=package.file_name,
                        content_type="application/zip")


@login_required
@require_POST
def cycle_report_remove(request, pk: int):
    cycle_report = _cycle_report_or_404(request.user, pk)
    if not can_manage_cycle(request.user, cycle_report.cycle):
        return refuse(request, "Only the cycle's Test Manager can remove a report from it.")
    form = RemoveReportForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Say why the report is removed from the cycle.")
        return redirect("cycles:cycle-detail", pk=cycle_report.cycle_id)
    try:
        outcome = workflow_remove_report(user=request.user, cycle_report=cycle_report,
                                         reason=form.cleaned_data["reason"])
    except ApplicationError as err:
        messages.error(request, err.message)
    else:
        _flash_outcome(request, outcome)
    return redirect("cycles:cycle-detail", pk=cycle_report.cycle_id)
