"""The Final Test Report API: generations and sign-offs, the PDF and package, removal, the cycle's results.

Sign-offs and removals are decisions sent to the workflow (200 when it took
them, 202 when stored for later delivery); the rest reads.
"""
from __future__ import annotations

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from cycles.api.common import decision_response, require
from cycles.exceptions import NotFoundError, PermissionDeniedError
from cycles.models import EvidencePackage, FinalReport
from cycles.permissions import can_manage_cycle, can_sign_off
from cycles.selectors import cycle_report_get, cycles_visible_to
from cycles.serializers.final_report import (
    EvidencePackageSerializer,
    FinalReportSerializer,
    RemoveReportInputSerializer,
    SignOffInputSerializer,
)
from cycles.services.final_report import cycle_results_summary
from synapse.authentication import API_AUTHENTICATION_CLASSES
from workflows.serializers import DecisionOutcomeSerializer
from workflows.services import workflow_remove_report, workflow_sign_off


class CycleReportFinalReportApi(APIView):
    """GET: every generation of the report's final test report, newest first, with its sign-offs."""

    authentication_classes = API_AUTHENTICATION_CLASSES

    @extend_schema(responses={200: FinalReportSerializer(many=True)})
    def get(self, request, pk: int):
        cycle_report = cycle_report_get(user=request.user, pk=pk)
        reports = FinalReport.objects.filter(cycle_report=cycle_report).prefetch_related("sign_offs__signer")
        return Response(FinalReportSerializer(reports, many=True).data)


class CycleReportFinalReportPdfApi(APIView):
    """GET: the PDF of the latest generation."""

    authentication_classes = API_AUTHENTICATION_CLASSES

    @extend_schema(responses={(200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY)})
    def get(self, request, pk: int):
        cycle_report = cycle_report_get(user=request.user, pk=pk)
        report = FinalReport.objects.filter(cycle_report=cycle_report).order_by("-number").first()
        if report is None:
            raise NotFoundError("The final test report has not been generated yet.")
        return FileResponse(report.pdf.open("rb"), as_attachment=True, content_type="application/pdf",
                            filename=f"final-test-report-{cycle_report.pk}-{report.number}.pdf")


class CycleReportSignOffApi(APIView):
    """POST {role, sign, send_back_to, notes}: sign in one's role (in order) or send back naming what reopens."""

    authentication_classes = API_AUTHENTICATION_CLASSES

    @extend_schema(request=SignOffInputSerializer, responses={200: DecisionOutcomeSerializer, 202: DecisionOutcomeSerializer})
    def post(self, request, pk: int):
        cycle_report = cycle_report_get(user=request.user, pk=pk)
        data = SignOffInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        role = data.validated_data["role"]
        if not can_sign_off(request.user, cycle_report, role):
            raise PermissionDeniedError(f"Only the report's {role.replace('_', ' ')} signs in that role.")
        return decision_response(workflow_sign_off(user=request.user, cycle_report=cycle_report,
                                                   **data.validated_data))


class CycleReportPackageApi(APIView):
    """GET: the sealed package's file name, SHA-256 and size; ?download=1 for the zip."""

    authentication_classes = API_AUTHENTICATION_CLASSES

    @extend_schema(responses={(200, "application/json"): EvidencePackageSerializer, (200, "application/zip"): OpenApiResponse(OpenApiTypes.BINARY)})
    def get(self, request, pk: int):
        cycle_report = cycle_report_get(user=request.user, pk=pk)
        package = EvidencePackage.objects.filter(final_report__cycle_report=cycle_report).first()
        if package is None:
            raise NotFoundError("The evidence package is built after the last sign-off.")
        if request.query_params.get("download"):
            return FileResponse(package.file.open("rb"), as_attachment=True, filename=package.file_name,
                                content_type="application/zip")
        return Response(EvidencePackageSerializer(package).data)


class CycleReportRemoveApi(APIView):
    """POST {reason}: the test manager takes the report out of its running cycle."""

    authentication_classes = API_AUTHENTICATION_CLASSES

    @extend_schema(request=RemoveReportInputSerializer, responses={200: DecisionOutcomeSerializer, 202: DecisionOutcomeSerializer})
    def post(self, request, pk: int):
        cycle_report = cycle_report_get(user=request.user, pk=pk)
        require(can_manage_cycle(request.user, cycle_report.cycle),
                "Only the cycle's Test Manager can remove a report from it.")
        data = RemoveReportInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return decision_response(workflow_remove_report(user=request.user, cycle_report=cycle_report,
                                                        reason=data.validated_data["reason"]))


class CycleResultsApi(APIView):
    """GET: results across the cycle's reports the user may see (counts, observations by severity, packages)."""

    authentication_classes = API_AUTHENTICATION_CLASSES

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request, pk: int):
        cycle = cycles_visible_to(user=request.user).filter(pk=pk).first()
        if cycle is None:
            raise NotFoundError("No such cycle.")
        summary = cycle_results_summary(user=request.user, cycle=cycle)
        return Response({
            "status": cycle.status,
            "totals": summary["totals"],
            "observations_by_severity": {s["value"]: s["count"] for s in summary["severities"]},
            "reports": [
                {"cycle_report": row["cycle_report"].pk, "report": row["cycle_report"].report.name,
                 "results": row["counts"], "observations": row["severities"],
                 "removed": row["removed"],
                 "signed_at": row["final_report"].signed_at if row["final_report"] else None,
                 "package": EvidencePackageSerializer(row["package"]).data if row["package"] else None}
                for row in summary["rows"]
            ],
        })
