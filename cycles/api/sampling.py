"""The API of Sample Selection (the same rules as cycles.api.cycles)."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, status, viewsets
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from cycles.api.common import require, schema_safe
from cycles.api.filters import SampleFilter
from cycles.exceptions import NotFoundError
from cycles.models import Sample, SamplingPlan
from cycles.permissions import can_work_on
from cycles.selectors import cycle_report_get, cycle_reports_visible_to
from cycles.serializers.sampling import (
    SampleManualSerializer,
    SampleSerializer,
    SamplingPlanInputSerializer,
    SamplingPlanSerializer,
)
from cycles.services.sampling import (
    sample_add_manual,
    sample_remove,
    samples_draw,
    samples_for,
    sampling_plan_update,
)
from synapse.authentication import API_AUTHENTICATION_CLASSES

ONLY_TESTER_SAMPLES = "Only the tester assigned to this report can change its samples."


# --- Sample Selection ------------------------------------------------------------------------------


class CycleReportSamplingPlanApi(APIView):
    """GET: the report's sampling plan, its size and how the size was reached. PATCH: change it (the tester).

    The plan is made with its defaults when Sample Selection starts (or at the
    tester's first change), so before that GET is a 404.
    """

    authentication_classes = API_AUTHENTICATION_CLASSES

    @extend_schema(responses={200: SamplingPlanSerializer})
    def get(self, request, pk: int):
        cycle_report = cycle_report_get(user=request.user, pk=pk)
        plan = (
            SamplingPlan.objects.select_related("population_file", "updated_by")
            .filter(cycle_report=cycle_report)
            .first()
        )
        if plan is None:
            raise NotFoundError(
                f"{cycle_report.report} has no sampling plan yet: it is made when Sample Selection starts."
            )
        return Response(SamplingPlanSerializer(plan).data)

    @extend_schema(request=SamplingPlanInputSerializer, responses={200: SamplingPlanSerializer})
    def patch(self, request, pk: int):
        cycle_report = cycle_report_get(user=request.user, pk=pk)
        require(
            can_work_on(request.user, cycle_report),
            "Only the tester assigned to this report can change its sampling plan.",
        )
        data = SamplingPlanInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        plan = sampling_plan_update(user=request.user, cycle_report=cycle_report, **data.validated_data)
        return Response(SamplingPlanSerializer(plan).data)


class CycleReportSamplesApi(ListAPIView):
    """GET: the report's working samples in file order. POST {key, reason}: pick a row by hand (the tester)."""

    authentication_classes = API_AUTHENTICATION_CLASSES
    serializer_class = SampleSerializer

    @schema_safe(Sample)
    def get_queryset(self):
        return samples_for(cycle_report=cycle_report_get(user=self.request.user, pk=self.kwargs["pk"]))

    @extend_schema(request=SampleManualSerializer, responses={201: SampleSerializer})
    def post(self, request, pk: int):
        cycle_report = cycle_report_get(user=request.user, pk=pk)
        require(can_work_on(request.user, cycle_report), ONLY_TESTER_SAMPLES)
        data = SampleManualSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        sample = sample_add_manual(user=request.user, cycle_report=cycle_report, **data.validated_data)
        return Response(SampleSerializer(sample).data, status=status.HTTP_201_CREATED)


class CycleReportSamplesDrawApi(APIView):
    """POST: draw the plan's samples (hand-picked ones stay). Returns the plan, with its seed, and every sample."""

    authentication_classes = API_AUTHENTICATION_CLASSES

    @extend_schema(request=None, responses={200: inline_serializer("SamplesDrawn", {
        "plan": SamplingPlanSerializer(), "samples": SampleSerializer(many=True)})})
    def post(self, request, pk: int):
        cycle_report = cycle_report_get(user=request.user, pk=pk)
        require(can_work_on(request.user, cycle_report), ONLY_TESTER_SAMPLES)
        samples = samples_draw(user=request.user, cycle_report=cycle_report)
        plan = SamplingPlan.objects.select_related("population_file", "updated_by").get(cycle_report=cycle_report)
        return Response(
            {"plan": SamplingPlanSerializer(plan).data, "samples": SampleSerializer(samples, many=True).data}
        )


class SampleViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """One working sample: read by whoever sees its report; removed by the assigned tester."""

    authentication_classes = API_AUTHENTICATION_CLASSES
    filterset_class = SampleFilter
    serializer_class = SampleSerializer

    @schema_safe(Sample)
    def get_queryset(self):
        qs = Sample.objects.filter(
            cycle_report__in=cycle_reports_visible_to(user=self.request.user)
        ).select_related("cycle_report", "added_by").order_by("cycle_report_id", "row_index", "pk")
        return qs

    def destroy(self, request, *args, **kwargs):
        sample = self.get_object()
        require(can_work_on(request.user, sample.cycle_report), ONLY_TESTER_SAMPLES)
        sample_remove(user=request.user, sample=sample)
        return Response(status=status.HTTP_204_NO_CONTENT)


