"""The API of Sample Selection, Data Owner Identification, Requests for Information and evidence.

The same rules as cycles.api: querysets come from selectors scoped to the
user (someone else's object is a 404), a role refused is a 403 before the body
is read, and every write goes through cycles.services, which checks again.

Some writes also tell the report's workflow (data owners complete, a request
submitted or reviewed). The change is saved first and stays saved whatever the
workflow answers: the body then carries "workflow" (what became of the
message) or "workflow_error" (why it was not sent or was refused).
"""
from __future__ import annotations

import logging
from collections.abc import Callable

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from cycles.api.common import require, schema_safe
from cycles.api.filters import InformationRequestFilter
from cycles.exceptions import ApplicationError, NotFoundError
from cycles.models import Attribute, CycleReport, Evidence, InformationRequest
from cycles.permissions import can_work_on
from cycles.selectors import cycle_report_get
from cycles.serializers.requests import (
    DataOwnerAssignInputSerializer,
    DataOwnerAssignmentSerializer,
    DataOwnerBulkInputSerializer,
    DataOwnerRowSerializer,
    EvidenceReviewSerializer,
    EvidenceSerializer,
    InformationRequestDetailSerializer,
    InformationRequestSerializer,
    MissingAttributeSerializer,
)
from cycles.services.requests import (
    attributes_in_scope,
    data_owner_assign,
    data_owner_identification_missing,
    data_owners_assign_bulk,
    evidence_can_download,
    evidence_review,
    evidence_upload,
    information_request_review,
    information_request_submit,
    information_requests_listed,
    information_requests_visible_to,
)
from synapse.authentication import API_AUTHENTICATION_CLASSES
from synapse.roles import Role, has_role
from workflows.serializers import DecisionOutcomeSerializer
from workflows.services import (
    DecisionOutcome,
    workflow_complete_data_owners,
    workflow_request_reviewed,
    workflow_request_submitted,
)

logger = logging.getLogger(__name__)

ONLY_TESTER_REVIEWS = "Only the tester assigned to the report reviews its evidence."
ONLY_REQUEST_OWNER = "Only the data owner the request was sent to can answer it."


WORKFLOW_FIELDS = {
    "workflow": DecisionOutcomeSerializer(required=False, help_text="What became of the message to the workflow."),
    "workflow_error": serializers.CharField(required=False, help_text="Why the workflow was not told."),
}
ASSIGNMENT_RESPONSE = inline_serializer("DataOwnerAssigned", {
    "assignment": DataOwnerAssignmentSerializer(), "missing": MissingAttributeSerializer(many=True), **WORKFLOW_FIELDS})
BULK_RESPONSE = inline_serializer("DataOwnersAssigned", {
    "assignments": DataOwnerAssignmentSerializer(many=True), "missing": MissingAttributeSerializer(many=True),
    **WORKFLOW_FIELDS})


class RequestWithWorkflowSerializer(InformationRequestDetailSerializer):
    workflow = DecisionOutcomeSerializer(required=False, read_only=True)
    workflow_error = serializers.CharField(required=False, read_only=True)

    class Meta(InformationRequestDetailSerializer.Meta):
        fields = [*InformationRequestDetailSerializer.Meta.fields, "workflow", "workflow_error"]
        read_only_fields = fields


def workflow_result(call: Callable[[], DecisionOutcome]) -> dict:
    """{"workflow": outcome} or {"workflow_error": message}; the caller's change is already committed."""
    try:
        outcome = call()
    except ApplicationError as err:
        return {"workflow_error": err.message}
    return {"workflow": DecisionOutcomeSerializer(outcome).data}


def is_lob_data_executive(user, cycle_report: CycleReport) -> bool:
    return has_role(user, Role.DATA_EXECUTIVE) and cycle_report.report.lob.data_executive_id == user.pk


def is_request_data_owner(user, info_request: InformationRequest) -> bool:
    return has_role(user, Role.DATA_OWNER) and info_request.data_owner_id == user.pk


def information_request_get(*, user, pk: int) -> InformationRequest:
    info_request = information_requests_visible_to(user=user).filter(pk=pk).first()
    if info_request is None:
        raise NotFoundError("No such request among those you can see.")
    return info_request


# --- Data Owner Identification --------------------------------------------------------------------


def require_data_executive(user, cycle_report: CycleReport) -> None:
    require(
        is_lob_data_executive(user, cycle_report),
        f"Only the data executive of {cycle_report.report.lob} assigns data owners for {cycle_report.report}.",
    )


def after_assignment(user, cycle_report: CycleReport, body: dict) -> dict:
    """Add what is still missing; when nothing is, tell the workflow the phase's work is done."""
    missing = data_owner_identification_missing(cycle_report=cycle_report)
    body["missing"] = MissingAttributeSerializer(missing, many=True).data
    if not missing:
        body.update(workflow_result(lambda: workflow_complete_data_owners(user=user, cycle_report=cycle_report)))
    return body


class CycleReportDataOwnersApi(ListAPIView):
    """GET: the in-scope attributes with their data owner (null when none yet).

    POST {attribute_id, data_owner_id}: the LOB's data executive assigns (or
    replaces) one attribute's data owner. When that leaves no attribute without
    one, the workflow is told Data Owner Identification is complete.
    """

    authentication_classes = API_AUTHENTICATION_CLASSES
    serializer_class = DataOwnerRowSerializer

    @schema_safe(Attribute)
    def get_queryset(self):
        cycle_report = cycle_report_get(user=self.request.user, pk=self.kwargs["pk"])
        return (
            attributes_in_scope(cycle_report=cycle_report)
            .select_related("data_owner_assignment__data_owner", "data_owner_assignment__assigned_by")
            .order_by("name")
        )

    @extend_schema(request=DataOwnerAssignInputSerializer, responses={200: ASSIGNMENT_RESPONSE})
    def post(self, request, pk: int):
        cycle_report = cycle_report_get(user=request.user, pk=pk)
        require_data_executive(request.user, cycle_report)
        data = DataOwnerAssignInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        attribute = Attribute.objects.filter(cycle_report=cycle_report, pk=fields["attribute_id"]).first()
        if attribute is None:
            raise ValidationError({"attribute_id": ["No such attribute in this report."]})
        assignment = data_owner_assign(user=request.user, attribute=attribute, data_owner=fields["data_owner_id"])
        body = {"assignment": DataOwnerAssignmentSerializer(assignment).data}
        return Response(after_assignment(request.user, cycle_report, body))


class CycleReportDataOwnersBulkApi(APIView):
    """POST {data_owner_id, attribute_ids}: one data owner for several attributes, all or none (the data executive)."""

    authentication_classes = API_AUTHENTICATION_CLASSES

    @extend_schema(request=DataOwnerBulkInputSerializer, responses={200: BULK_RESPONSE})
    def post(self, request, pk: int):
        cycle_report = cycle_report_get(user=request.user, pk=pk)
        require_data_executive(request.user, cycle_report)
        data = DataOwnerBulkInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        assignments = data_owners_assign_bulk(
            user=request.user,
            cycle_report=cycle_report,
            data_owner=data.validated_data["data_owner_id"],
            attribute_ids=data.validated_data["attribute_ids"],
        )
        body = {"assignments": DataOwnerAssignmentSerializer(assignments, many=True).data}
        return Response(after_assignment(request.user, cycle_report, body))


# --- Requests for Information -----------------------------------------------------------------------


class InformationRequestViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Requests the user may see (a data owner only their own); retrieve adds sample keys and evidence.

    Filters: ?status=, ?cycle_report=.
    """

    filterset_class = InformationRequestFilter
    authentication_classes = API_AUTHENTICATION_CLASSES

    def get_serializer_class(self):
        return InformationRequestSerializer if self.action == "list" else InformationRequestDetailSerializer

    @schema_safe(InformationRequest)
    def get_queryset(self):
        requests = information_requests_visible_to(user=self.request.user).order_by("due_date", "pk")
        # A page's attributes are read by its serializer (InformationRequestListSerializer), not prefetched.
        return information_requests_listed(requests, attributes=False) if self.action == "list" else requests


def request_body(user, pk: int, workflow: dict) -> dict:
    # Read again through the selector: the service returns a bare row, and the workflow may have moved on.
    return {**InformationRequestDetailSerializer(information_request_get(user=user, pk=pk)).data, **workflow}


class InformationRequestEvidenceApi(APIView):
    """POST multipart, files under "files": the request's data owner uploads evidence (201, one row per file).

    If any file is refused (type, size, content), none is stored.
    """

    authentication_classes = API_AUTHENTICATION_CLASSES
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        request={"multipart/form-data": inline_serializer("EvidenceUpload", {
            "files": serializers.ListField(child=serializers.FileField())})},
        responses={201: EvidenceSerializer(many=True)},
    )
    def post(self, request, pk: int):
        info_request = information_request_get(user=request.user, pk=pk)
        require(is_request_data_owner(request.user, info_request), ONLY_REQUEST_OWNER)
        created = evidence_upload(user=request.user, request=info_request, files=request.FILES.getlist("files"))
        return Response(EvidenceSerializer(created, many=True).data, status=status.HTTP_201_CREATED)


class InformationRequestSubmitApi(APIView):
    """POST: the data owner says the evidence is complete; the workflow is told (see "workflow" in the body)."""

    authentication_classes = API_AUTHENTICATION_CLASSES

    @extend_schema(request=None, responses={200: RequestWithWorkflowSerializer})
    def post(self, request, pk: int):
        info_request = information_request_get(user=request.user, pk=pk)
        require(is_request_data_owner(request.user, info_request), ONLY_REQUEST_OWNER)
        info_request = information_request_submit(user=request.user, request=info_request)
        workflow = workflow_result(lambda: workflow_request_submitted(user=request.user, request=info_request))
        return Response(request_body(request.user, info_request.pk, workflow))


class InformationRequestReviewApi(APIView):
    """POST: the tester finishes reviewing (accepted when every file is, else returned); the workflow is told."""

    authentication_classes = API_AUTHENTICATION_CLASSES

    @extend_schema(request=None, responses={200: RequestWithWorkflowSerializer})
    def post(self, request, pk: int):
        info_request = information_request_get(user=request.user, pk=pk)
        require(can_work_on(request.user, info_request.cycle_report), ONLY_TESTER_REVIEWS)
        info_request = information_request_review(user=request.user, request=info_request)
        workflow = workflow_result(lambda: workflow_request_reviewed(user=request.user, request=info_request))
        return Response(request_body(request.user, info_request.pk, workflow))


# --- evidence -----------------------------------------------------------------------------------------


class EvidenceReviewApi(APIView):
    """POST {accept, note}: the tester accepts one evidence file or returns it (a note is required then)."""

    authentication_classes = API_AUTHENTICATION_CLASSES

    @extend_schema(request=EvidenceReviewSerializer, responses={200: EvidenceSerializer})
    def post(self, request, pk: int):
        evidence = (
            Evidence.objects.filter(request__in=information_requests_visible_to(user=request.user))
            .select_related("request__cycle_report")
            .filter(pk=pk)
            .first()
        )
        if evidence is None:
            raise NotFoundError("No such evidence file among those you can see.")
        require(can_work_on(request.user, evidence.request.cycle_report), ONLY_TESTER_REVIEWS)
        data = EvidenceReviewSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        evidence = evidence_review(user=request.user, evidence=evidence, **data.validated_data)
        return Response(EvidenceSerializer(evidence).data)


class EvidenceDownloadApi(APIView):
    """GET: the stored file, as uploaded; a 404 to anyone evidence_can_download refuses."""

    authentication_classes = API_AUTHENTICATION_CLASSES

    def perform_content_negotiation(self, request, force=False):
        # The answer is the file whatever the client says it accepts; errors still render as JSON.
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiResponse(
        OpenApiTypes.BINARY, description="The file as uploaded, as an attachment.")})
    def get(self, request, pk: int):
        evidence = (
            Evidence.objects.select_related(
                "request__cycle_report__cycle", "request__cycle_report__report__lob"
            )
            .filter(pk=pk)
            .first()
        )
        if evidence is None or not evidence_can_download(request.user, evidence):
            raise NotFoundError("No such evidence file among those you can see.")
        try:
            handle = evidence.file.storage.open(evidence.file.name, "rb")
        except FileNotFoundError:
            logger.error("Evidence %s is recorded but its file %s is missing", evidence.pk, evidence.file.name)
            raise NotFoundError(f"The stored file of {evidence} is missing: tell an Admin.") from None
        return FileResponse(
            handle, as_attachment=True, filename=evidence.original_name, content_type=evidence.content_type
        )
