"""The API of reassignments on a running cycle (issue 7).

POST .../data-owners/reassign/: the LOB's data executive gives an attribute another data owner after
"Assignments complete"; its open request moves (or the part for the attribute is split off, and the
workflow is told). POST .../tester/reassign/: the cycle's test manager gives a report another tester.
GET .../reassignments/: the report's history. Each refusal is an RFC 9457 problem from the service.
"""
from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework.exceptions import ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from cycles.api.common import require, schema_safe
from cycles.api.requests import WORKFLOW_FIELDS, is_lob_data_executive, workflow_result
from cycles.models import Attribute, Reassignment
from cycles.permissions import can_manage_cycle
from cycles.selectors import cycle_report_get
from cycles.serializers.cycles import CycleReportSerializer
from cycles.serializers.reassignments import (
    DataOwnerReassignInputSerializer,
    ReassignmentSerializer,
    TesterReassignInputSerializer,
)
from cycles.serializers.requests import InformationRequestSerializer
from cycles.services.reassignments import cycle_report_reassign_tester, data_owner_reassign, reassignments_of
from synapse.authentication import API_AUTHENTICATION_CLASSES
from workflows.services import workflow_request_added

DATA_OWNER_REASSIGNED = inline_serializer("DataOwnerReassigned", {
    "reassignment": ReassignmentSerializer(),
    "request": InformationRequestSerializer(allow_null=True, help_text="The request the attribute is in now."),
    **WORKFLOW_FIELDS,
})
TESTER_REASSIGNED = inline_serializer("TesterReassigned", {
    "reassignment": ReassignmentSerializer(), "cycle_report": CycleReportSerializer()})


class CycleReportDataOwnerReassignApi(APIView):
    """POST {attribute_id, data_owner_id, reason}: after "Assignments complete", the LOB's data executive
    moves an attribute (and its open request, or the part of it for the attribute) to another data owner."""

    authentication_classes = API_AUTHENTICATION_CLASSES

    @extend_schema(request=DataOwnerReassignInputSerializer, responses={200: DATA_OWNER_REASSIGNED})
    def post(self, request, pk: int):
        cycle_report = cycle_report_get(user=request.user, pk=pk)
        require(is_lob_data_executive(request.user, cycle_report),
                f"Only the data executive of {cycle_report.report.lob} reassigns data owners for "
                f"{cycle_report.report}.")
        data = DataOwnerReassignInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        attribute = Attribute.objects.filter(cycle_report=cycle_report, pk=fields["attribute_id"]).first()
        if attribute is None:
            raise ValidationError({"attribute_id": ["No such attribute in this report."]})
        result = data_owner_reassign(user=request.user, attribute=attribute, data_owner=fields["data_owner_id"],
                                     reason=fields["reason"])
        body = {
            "reassignment": ReassignmentSerializer(result.reassignment).data,
            "request": InformationRequestSerializer(result.request).data if result.request else None,
        }
        if result.decision is not None:
            body.update(workflow_result(lambda: workflow_request_added(decision=result.decision)))
        return Response(body)


class CycleReportTesterReassignApi(APIView):
    """POST {tester_id, reason}: on a running cycle, the test manager gives the report another tester."""

    authentication_classes = API_AUTHENTICATION_CLASSES

    @extend_schema(request=TesterReassignInputSerializer, responses={200: TESTER_REASSIGNED})
    def post(self, request, pk: int):
        cycle_report = cycle_report_get(user=request.user, pk=pk)
        require(can_manage_cycle(request.user, cycle_report.cycle), "Only the cycle's Test Manager reassigns its testers.")
        data = TesterReassignInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        reassignment = cycle_report_reassign_tester(user=request.user, cycle_report=cycle_report,
                                                    tester=data.validated_data["tester_id"],
                                                    reason=data.validated_data["reason"])
        cycle_report = cycle_report_get(user=request.user, pk=pk)
        return Response({"reassignment": ReassignmentSerializer(reassignment).data,
                         "cycle_report": CycleReportSerializer(cycle_report).data})


class CycleReportReassignmentsApi(ListAPIView):
    """GET: the report's reassignments (data owners and tester), newest first. ?kind=data_owner|tester."""

    authentication_classes = API_AUTHENTICATION_CLASSES
    serializer_class = ReassignmentSerializer

    @schema_safe(Reassignment)
    def get_queryset(self):
        cycle_report = cycle_report_get(user=self.request.user, pk=self.kwargs["pk"])
        kind = self.request.query_params.get("kind") or None
        if kind is not None and kind not in Reassignment.Kind.values:
            raise ValidationError({"kind": [f"Expected one of: {', '.join(Reassignment.Kind.values)}."]})
        return reassignments_of(cycle_report=cycle_report, kind=kind)
