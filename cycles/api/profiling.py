"""The API of Data Profiling (population upload, profiles), a report's phase states, and data owner completion.

The same services and checks as the pages (cycles.views.pages.data_profiling,
cycles.views.requests.data_owners_complete).
"""
from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from cycles.api.common import require, schema_safe
from cycles.api.requests import WORKFLOW_FIELDS, is_lob_data_executive, workflow_result
from cycles.exceptions import ConflictError, NotFoundError
from cycles.models import Phase, PhaseState, PopulationFile, ProfileResult
from cycles.permissions import can_work_on
from cycles.selectors import cycle_report_get, cycle_reports_visible_to
from cycles.serializers.profiling import (
    PhaseStateSerializer,
    PopulationFileSerializer,
    PopulationUploadSerializer,
    ProfileResultSerializer,
)
from cycles.serializers.requests import MissingAttributeSerializer
from cycles.services.profiling import population_file_upload
from cycles.services.profiling_checks import column_mappings_confirm_matched
from cycles.services.requests import attributes_in_scope, data_owner_identification_missing
from synapse.authentication import API_AUTHENTICATION_CLASSES
from workflows.services import workflow_complete_data_owners, workflow_register_population

UPLOADED = inline_serializer("PopulationUploaded", {"file": PopulationFileSerializer(), **WORKFLOW_FIELDS})


class CycleReportPopulationFilesApi(ListAPIView):
    """GET: the report's population files, newest first. POST multipart {file, declared_format?}: the tester
    uploads one; the workflow is then told to profile it ("workflow" / "workflow_error" in the body)."""

    authentication_classes = API_AUTHENTICATION_CLASSES
    serializer_class = PopulationFileSerializer
    parser_classes = [MultiPartParser, FormParser]

    @schema_safe(PopulationFile)
    def get_queryset(self):
        cycle_report = cycle_report_get(user=self.request.user, pk=self.kwargs["pk"])
        return PopulationFile.objects.filter(cycle_report=cycle_report).select_related("uploaded_by").order_by(
            "-uploaded_at", "-pk")

    @extend_schema(request={"multipart/form-data": PopulationUploadSerializer}, responses={201: UPLOADED})
    def post(self, request, pk: int):
        cycle_report = cycle_report_get(user=request.user, pk=pk)
        require(can_work_on(request.user, cycle_report),
                "Only the report's assigned tester can upload its population file.")
        data = PopulationUploadSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        population_file = population_file_upload(
            user=request.user, cycle_report=cycle_report, uploaded_file=data.validated_data["file"],
            declared_format=data.validated_data["declared_format"] or None,
        )
        body = {"file": PopulationFileSerializer(population_file).data}
        body.update(workflow_result(lambda: workflow_register_population(user=request.user,
                                                                         population_file=population_file)))
        return Response(body, status=status.HTTP_201_CREATED)


class PopulationFileProfilesApi(ListAPIView):
    """GET: a population file's profile, one row per column (empty until the workflow has profiled it)."""

    authentication_classes = API_AUTHENTICATION_CLASSES
    serializer_class = ProfileResultSerializer

    @schema_safe(ProfileResult)
    def get_queryset(self):
        population_file = PopulationFile.objects.filter(
            pk=self.kwargs["pk"], cycle_report__in=cycle_reports_visible_to(user=self.request.user)
        ).first()
        if population_file is None:
            raise NotFoundError("No such population file among the reports you can see.")
        return ProfileResult.objects.filter(population_file=population_file).order_by("pk")


class PopulationFileMappingsConfirmApi(APIView):
    """POST: the tester confirms every attribute-to-column match made by name (as the page's "Confirm the
    matches by name" does); the body says how many were confirmed."""

    authentication_classes = API_AUTHENTICATION_CLASSES

    @extend_schema(request=None, responses={200: inline_serializer("MappingsConfirmed", {
        "population_file": serializers.IntegerField(), "confirmed": serializers.IntegerField()})})
    def post(self, request, pk: int):
        population_file = PopulationFile.objects.select_related("cycle_report").filter(
            pk=pk, cycle_report__in=cycle_reports_visible_to(user=request.user)
        ).first()
        if population_file is None:
            raise NotFoundError("No such population file among the reports you can see.")
        require(can_work_on(request.user, population_file.cycle_report),
                "Only the report's assigned tester can map its attributes to columns.")
        confirmed = column_mappings_confirm_matched(user=request.user, population_file=population_file)
        return Response({"population_file": population_file.pk, "confirmed": confirmed})


class CycleReportPhasesApi(APIView):
    """GET: every phase of the report in order, with its state (pending, active, completed, skipped)."""

    authentication_classes = API_AUTHENTICATION_CLASSES

    @extend_schema(responses={200: PhaseStateSerializer(many=True)})
    def get(self, request, pk: int):
        cycle_report = cycle_report_get(user=request.user, pk=pk)
        states = {s.phase: s for s in PhaseState.objects.filter(cycle_report=cycle_report)}
        rows = []
        for phase in Phase:
            state = states.get(phase.value)
            rows.append({
                "phase": phase.value, "phase_display": phase.label,
                "status": state.status if state else "pending",
                "current": cycle_report.phase == phase.value and (state is None or state.status == "active"),
                "started_at": state.started_at if state else None,
                "completed_at": state.completed_at if state else None,
            })
        return Response(PhaseStateSerializer(rows, many=True).data)


class CycleReportDataOwnersCompleteApi(APIView):
    """POST: the LOB's data executive says every in-scope attribute has its data owner; the workflow is told.

    409 while an attribute has none (listed in "missing"). Assigning the last one
    tells the workflow by itself; this is for telling it again after a refusal.
    """

    authentication_classes = API_AUTHENTICATION_CLASSES

    @extend_schema(request=None, responses={200: inline_serializer("DataOwnersComplete", {
        "missing": MissingAttributeSerializer(many=True), **WORKFLOW_FIELDS})})
    def post(self, request, pk: int):
        cycle_report = cycle_report_get(user=request.user, pk=pk)
        require(is_lob_data_executive(request.user, cycle_report),
                f"Only the data executive of {cycle_report.report.lob} completes this phase.")
        missing = data_owner_identification_missing(cycle_report=cycle_report)
        if missing:
            raise ConflictError(
                "Assign a data owner to every in-scope attribute first; missing: "
                + ", ".join(a.name for a in missing) + ".",
                extra={"missing": [a.name for a in missing]},
            )
        if not attributes_in_scope(cycle_report=cycle_report).exists():
            raise ConflictError("No attribute is in scope: there is nothing to assign.")
        body = {"missing": []}
        body.update(workflow_result(lambda: workflow_complete_data_owners(user=request.user,
                                                                          cycle_report=cycle_report)))
        return Response(body)
