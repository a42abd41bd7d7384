"""The cycles API for LOBs, reports, cycles, cycle reports, attributes, scoping, submission.

Every queryset comes from a selector scoped to the requesting user, so a list
can't leak and someone else's object is a 404. Writes go through
cycles.services (or workflows.services for the workflow's decisions), which
check the rules again; the views only parse, look up and render.
"""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from cycles.api.common import decision_response, require, schema_safe
from cycles.api.filters import AttributeFilter, CycleFilter, CycleReportFilter, ReportFilter
from cycles.exceptions import NotFoundError, PermissionDeniedError
from cycles.models import LOB, Attribute, CycleReport, Report, ScopingDecision, TestCycle
from cycles.permissions import can_create_cycle, can_manage_cycle, can_work_on, is_admin
from cycles.selectors import (
    cycle_report_get,
    cycle_reports_visible_to,
    cycles_visible_to,
    lobs_visible_to,
    reports_visible_to,
)
from cycles.serializers.cycles import (
    AttributeInputSerializer,
    AttributeSerializer,
    CycleAddReportSerializer,
    CycleConfigurationSerializer,
    CycleCreateSerializer,
    CycleReportSerializer,
    CycleReportTesterSerializer,
    LOBCreateSerializer,
    LOBSerializer,
    ReportCreateSerializer,
    ReportSerializer,
    ScopingDecideSerializer,
    ScopingDecisionSerializer,
    SubmitVersionSerializer,
    TestCycleSerializer,
)
from cycles.services.cycles import (
    cycle_add_report,
    cycle_create,
    cycle_report_assign_tester,
    cycle_update_configuration,
    lob_create,
    report_create,
)
from cycles.services.planning import (
    attribute_create,
    attribute_delete,
    attribute_update,
)
from cycles.services.scoping import scoping_decide
from synapse.authentication import API_AUTHENTICATION_CLASSES
from synapse.roles import Role, has_role
from workflows.serializers import DecisionOutcomeSerializer
from workflows.services import workflow_submit_version

ONLY_TESTER_EDITS = "Only the tester assigned to this report can change its attributes."


class LOBViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet):
    """Lines of business: everyone reads them; an Admin creates them."""

    authentication_classes = API_AUTHENTICATION_CLASSES
    serializer_class = LOBSerializer

    @schema_safe(LOB)
    def get_queryset(self):
        return lobs_visible_to(user=self.request.user)

    @extend_schema(request=LOBCreateSerializer, responses={201: LOBSerializer})
    def create(self, request, *args, **kwargs):
        if not is_admin(request.user):
            raise PermissionDeniedError("Only an Admin can create an LOB.")
        data = LOBCreateSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        lob = lob_create(actor=request.user, **data.validated_data)
        return Response(LOBSerializer(lob).data, status=status.HTTP_201_CREATED)


class ReportViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    """Regulatory reports the user may see; an Admin or a Test Manager creates them. Filter: ?lob=."""

    authentication_classes = API_AUTHENTICATION_CLASSES
    filterset_class = ReportFilter
    serializer_class = ReportSerializer

    @schema_safe(Report)
    def get_queryset(self):
        return reports_visible_to(user=self.request.user).order_by("name", "pk")

    @extend_schema(request=ReportCreateSerializer, responses={201: ReportSerializer})
    def create(self, request, *args, **kwargs):
        if not (is_admin(request.user) or has_role(request.user, Role.TEST_MANAGER)):
            raise PermissionDeniedError("Only an Admin or a Test Manager can create a report.")
        data = ReportCreateSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        report = report_create(actor=request.user, **data.validated_data)
        return Response(ReportSerializer(report).data, status=status.HTTP_201_CREATED)


class CycleViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    """Test cycles the user takes part in. PATCH changes only the configuration, while in draft. Filter: ?status=."""

    authentication_classes = API_AUTHENTICATION_CLASSES
    filterset_class = CycleFilter
    serializer_class = TestCycleSerializer

    @schema_safe(TestCycle)
    def get_queryset(self):
        # The selector's count annotation makes a GROUP BY, which drops Meta.ordering.
        return cycles_visible_to(user=self.request.user).order_by("-created_at", "-pk")

    @extend_schema(request=CycleCreateSerializer, responses={201: TestCycleSerializer})
    def create(self, request, *args, **kwargs):
        require(can_create_cycle(request.user), "Only a Test Manager can create a cycle.")
        data = CycleCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        cycle = cycle_create(user=request.user, **data.validated_data)
        return Response(self._render(cycle), status=status.HTTP_201_CREATED)

    @extend_schema(request=CycleConfigurationSerializer, responses={200: TestCycleSerializer})
    def partial_update(self, request, *args, **kwargs):
        cycle = self.get_object()
        require(can_manage_cycle(request.user, cycle), "Only the cycle's Test Manager can change its configuration.")
        data = CycleConfigurationSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        cycle = cycle_update_configuration(user=request.user, cycle=cycle, **data.validated_data)
        return Response(self._render(cycle))

    def _render(self, cycle: TestCycle) -> dict:
        # Re-read through the selector for its annotations (report_count).
        return TestCycleSerializer(cycles_visible_to(user=self.request.user).get(pk=cycle.pk)).data


class CycleReportsApi(ListAPIView):
    """GET: the cycle's reports the user may see (paginated). POST {report, tester?}: add a report to a draft cycle."""

    authentication_classes = API_AUTHENTICATION_CLASSES
    serializer_class = CycleReportSerializer

    def _cycle(self, request, pk: int) -> TestCycle:
        cycle = cycles_visible_to(user=request.user).filter(pk=pk).first()
        if cycle is None:
            raise NotFoundError("No such cycle among those you can see.")
        return cycle

    @schema_safe(CycleReport)
    def get_queryset(self):
        cycle = self._cycle(self.request, self.kwargs["pk"])
        return cycle_reports_visible_to(user=self.request.user).filter(cycle=cycle).order_by("pk")

    @extend_schema(request=CycleAddReportSerializer, responses={201: CycleReportSerializer})
    def post(self, request, pk: int):
        cycle = self._cycle(request, pk)
        require(can_manage_cycle(request.user, cycle), "Only the cycle's Test Manager can add reports.")
        data = CycleAddReportSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        cycle_report = cycle_add_report(user=request.user, cycle=cycle, **data.validated_data)
        cycle_report = cycle_report_get(user=request.user, pk=cycle_report.pk)
        return Response(CycleReportSerializer(cycle_report).data, status=status.HTTP_201_CREATED)


class CycleReportViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Reports inside cycles, with phase, status and tester. PATCH {tester}: assign the tester.

    Filters: ?cycle=, ?phase=, ?status=, ?tester=.
    """

    authentication_classes = API_AUTHENTICATION_CLASSES
    filterset_class = CycleReportFilter
    serializer_class = CycleReportSerializer

    @schema_safe(CycleReport)
    def get_queryset(self):
        return cycle_reports_visible_to(user=self.request.user).order_by("pk")

    @extend_schema(request=CycleReportTesterSerializer, responses={200: CycleReportSerializer})
    def partial_update(self, request, *args, **kwargs):
        cycle_report = self.get_object()
        require(can_manage_cycle(request.user, cycle_report.cycle), "Only the cycle's Test Manager can assign testers.")
        data = CycleReportTesterSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        cycle_report = cycle_report_assign_tester(user=request.user, cycle_report=cycle_report, **data.validated_data)
        return Response(CycleReportSerializer(cycle_report).data)


class CycleReportAttributesApi(ListAPIView):
    """GET: the report's attributes. POST: add one by hand (the assigned tester, in Planning)."""

    authentication_classes = API_AUTHENTICATION_CLASSES
    serializer_class = AttributeSerializer

    def get_cycle_report(self) -> CycleReport:
        return cycle_report_get(user=self.request.user, pk=self.kwargs["pk"])

    @schema_safe(Attribute)
    def get_queryset(self):
        return Attribute.objects.filter(cycle_report=self.get_cycle_report()).order_by("name")

    @extend_schema(request=AttributeInputSerializer, responses={201: AttributeSerializer})
    def post(self, request, pk: int):
        cycle_report = self.get_cycle_report()
        require(can_work_on(request.user, cycle_report), ONLY_TESTER_EDITS)
        data = AttributeInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        attribute = attribute_create(user=request.user, cycle_report=cycle_report, **data.validated_data)
        return Response(AttributeSerializer(attribute).data, status=status.HTTP_201_CREATED)


class AttributeViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin, mixins.UpdateModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    """One attribute: read by whoever sees its report; changed or removed by the assigned tester in Planning."""

    authentication_classes = API_AUTHENTICATION_CLASSES
    filterset_class = AttributeFilter
    serializer_class = AttributeSerializer

    @schema_safe(Attribute)
    def get_queryset(self):
        qs = Attribute.objects.filter(
            cycle_report__in=cycle_reports_visible_to(user=self.request.user)
        ).select_related("cycle_report").order_by("cycle_report_id", "name", "pk")
        return qs

    @extend_schema(request=AttributeInputSerializer, responses={200: AttributeSerializer})
    def update(self, request, *args, **kwargs):
        attribute = self.get_object()
        require(can_work_on(request.user, attribute.cycle_report), ONLY_TESTER_EDITS)
        data = AttributeInputSerializer(data=request.data, partial=kwargs.get("partial", False))
        data.is_valid(raise_exception=True)
        attribute = attribute_update(user=request.user, attribute=attribute, **data.validated_data)
        return Response(AttributeSerializer(attribute).data)

    def destroy(self, request, *args, **kwargs):
        attribute_delete(user=request.user, attribute=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class CycleReportScopingApi(ListAPIView):
    """GET: the report's scoping decisions. POST {attribute_id, in_scope, rationale}: decide one (the tester)."""

    authentication_classes = API_AUTHENTICATION_CLASSES
    serializer_class = ScopingDecisionSerializer

    @schema_safe(ScopingDecision)
    def get_queryset(self):
        cycle_report = cycle_report_get(user=self.request.user, pk=self.kwargs["pk"])
        return ScopingDecision.objects.filter(attribute__cycle_report=cycle_report).select_related(
            "attribute", "decided_by"
        )

    @extend_schema(request=ScopingDecideSerializer, responses={200: ScopingDecisionSerializer})
    def post(self, request, pk: int):
        cycle_report = cycle_report_get(user=request.user, pk=pk)
        require(can_work_on(request.user, cycle_report), "Only the report's assigned tester can scope its attributes.")
        data = ScopingDecideSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        attribute = Attribute.objects.filter(cycle_report=cycle_report, pk=fields["attribute_id"]).first()
        if attribute is None:
            raise ValidationError({"attribute_id": ["No such attribute in this report."]})
        decision = scoping_decide(
            user=request.user, attribute=attribute, in_scope=fields["in_scope"], rationale=fields["rationale"]
        )
        return Response(ScopingDecisionSerializer(decision).data)


class CycleReportSubmitApi(APIView):
    """POST {phase, notes}: the assigned tester submits the phase's work for approval.

    200 when the workflow took it, 202 when Temporal is unreachable and the
    submission is stored to be delivered when it is back.
    """

    authentication_classes = API_AUTHENTICATION_CLASSES

    @extend_schema(request=SubmitVersionSerializer,
                   responses={200: DecisionOutcomeSerializer, 202: DecisionOutcomeSerializer})
    def post(self, request, pk: int):
        cycle_report = cycle_report_get(user=request.user, pk=pk)
        require(can_work_on(request.user, cycle_report), "Only the report's assigned tester can submit it.")
        data = SubmitVersionSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        outcome = workflow_submit_version(user=request.user, cycle_report=cycle_report, **data.validated_data)
        return decision_response(outcome)
