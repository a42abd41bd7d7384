"""The API of Test Execution (the same services and checks as the page, cycles.views.execution)."""
from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from cycles.api.common import apply_query_filters, decision_response, query_choice, query_int, require, schema_safe
from cycles.exceptions import NotFoundError
from cycles.models import Attribute, Evidence, SampleExtension, TestResult, TestResultValue
from cycles.permissions import can_approve, can_work_on
from cycles.selectors import cycle_report_get
from cycles.serializers.execution import (
    BulkResultsSerializer,
    EvidenceLinksSerializer,
    ExecutionRuleSerializer,
    ExtensionDecisionSerializer,
    SampleExtensionSerializer,
    TestResultDetailSerializer,
    TestResultInputSerializer,
    TestResultSerializer,
)
from cycles.services import execution as execution_services
from cycles.services.execution import evidence_links_set, execution_rule_set, request_coverage
from cycles.services.requests import information_requests_visible_to
from cycles.services.sample_extension import sample_extension_check
from synapse.authentication import API_AUTHENTICATION_CLASSES

ONLY_TESTER = "Only the tester assigned to this report records its test results."


class CycleReportTestResultsApi(ListAPIView):
    """GET: the report's cells, paginated; ?result=fail|not_tested|…, ?attribute=<id>, ?sample=<id>."""

    authentication_classes = API_AUTHENTICATION_CLASSES
    serializer_class = TestResultSerializer

    @schema_safe(TestResult)
    def get_queryset(self):
        cycle_report = cycle_report_get(user=self.request.user, pk=self.kwargs["pk"])
        cells = execution_services.test_results_for(user=self.request.user, cycle_report=cycle_report)
        return apply_query_filters(cells, self.request, {
            "result": ("result", query_choice(list(TestResultValue.values))),
            "attribute": ("attribute_id", query_int),
            "sample": ("sample_id", query_int),
        })

    def filter_queryset(self, queryset):
        # Paged in the matrix's order without sorting the report's every cell (MatrixCells).
        return execution_services.MatrixCells(super().filter_queryset(queryset))


class CycleReportTestExecutionApi(APIView):
    """GET: progress (cells done / total, per result) and, per attribute, failures against the allowed deviations."""

    authentication_classes = API_AUTHENTICATION_CLASSES

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request, pk: int):
        cycle_report = cycle_report_get(user=request.user, pk=pk)
        return Response({
            "progress": execution_services.test_execution_progress(cycle_report=cycle_report),
            "attributes": [
                {"attribute": r["attribute"].pk, "name": r["attribute"].name, "cells": r["size"],
                 "failures": r["failures"], "allowed_deviations": r["allowed"], "exceeds": r["exceeds"]}
                for r in sample_extension_check(cycle_report=cycle_report)
            ],
        })


def _cell(request, pk: int):
    return execution_services.test_result_get(user=request.user, result_id=pk)


class TestResultApi(APIView):
    """GET: a cell with its history. POST {outcome, observed_value, comment, failure_kind, evidence_ids}: record
    the tester's result (a re-test keeps the earlier one in the history)."""

    __test__ = False
    authentication_classes = API_AUTHENTICATION_CLASSES

    @extend_schema(responses={200: TestResultDetailSerializer})
    def get(self, request, pk: int):
        return Response(TestResultDetailSerializer(_cell(request, pk)).data)

    @extend_schema(request=TestResultInputSerializer, responses={200: TestResultDetailSerializer})
    def post(self, request, pk: int):
        cell = _cell(request, pk)
        require(can_work_on(request.user, cell.cycle_report), ONLY_TESTER)
        data = TestResultInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        cell = execution_services.test_result_record(user=request.user, result=cell, **data.validated_data)
        return Response(TestResultDetailSerializer(_cell(request, cell.pk)).data)


class CycleReportTestResultsBulkApi(APIView):
    """POST {action: pass|not_applicable|run_rules, result_ids, comment}: one action on many cells."""

    authentication_classes = API_AUTHENTICATION_CLASSES

    @extend_schema(request=BulkResultsSerializer, responses={200: OpenApiTypes.OBJECT})
    def post(self, request, pk: int):
        cycle_report = cycle_report_get(user=request.user, pk=pk)
        require(can_work_on(request.user, cycle_report), ONLY_TESTER)
        data = BulkResultsSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        changed = execution_services.test_results_bulk(user=request.user, cycle_report=cycle_report,
                                                       **data.validated_data)
        return Response({"changed": changed,
                         "progress": execution_services.test_execution_progress(cycle_report=cycle_report)})


class AttributeExecutionRuleApi(APIView):
    """GET: the attribute's rule. PUT {kind, source_column, tolerance, pattern, min_value, max_value}: set it;
    untested cells are tested by it at once."""

    authentication_classes = API_AUTHENTICATION_CLASSES

    def _attribute(self, request, pk: int) -> Attribute:
        attribute = Attribute.objects.select_related("cycle_report").filter(pk=pk).first()
        if attribute is None:
            raise NotFoundError("No such attribute.")
        cycle_report_get(user=request.user, pk=attribute.cycle_report_id)
        return attribute

    @extend_schema(responses={200: ExecutionRuleSerializer})
    def get(self, request, pk: int):
        attribute = self._attribute(request, pk)
        rule = getattr(attribute, "execution_rule", None)
        if rule is None:
            raise NotFoundError(f"{attribute.name} has no execution rule: it is tested by hand.")
        return Response(ExecutionRuleSerializer(rule).data)

    @extend_schema(request=ExecutionRuleSerializer, responses={200: ExecutionRuleSerializer})
    def put(self, request, pk: int):
        attribute = self._attribute(request, pk)
        require(can_work_on(request.user, attribute.cycle_report), "Only the report's assigned tester sets rules.")
        data = ExecutionRuleSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        rule = execution_rule_set(user=request.user, attribute=attribute, **data.validated_data)
        execution_services.test_matrix_prepare(cycle_report_id=attribute.cycle_report_id)
        return Response(ExecutionRuleSerializer(rule).data)


class CycleReportSampleExtensionsApi(ListAPIView):
    """GET: the report's sample extensions, proposed and decided."""

    authentication_classes = API_AUTHENTICATION_CLASSES
    serializer_class = SampleExtensionSerializer

    @schema_safe(SampleExtension)
    def get_queryset(self):
        cycle_report = cycle_report_get(user=self.request.user, pk=self.kwargs["pk"])
        return SampleExtension.objects.filter(cycle_report=cycle_report).select_related("decided_by") \
            .prefetch_related("attributes").order_by("number")


class SampleExtensionDecideApi(APIView):
    """POST {approve, notes}: the report owner approves or rejects a proposed extension (through the workflow)."""

    authentication_classes = API_AUTHENTICATION_CLASSES

    @extend_schema(request=ExtensionDecisionSerializer, responses={200: OpenApiTypes.OBJECT, 202: OpenApiTypes.OBJECT})
    def post(self, request, pk: int):
        from workflows.services import workflow_decide_extension

        extension = SampleExtension.objects.select_related("cycle_report").filter(pk=pk).first()
        if extension is None:
            raise NotFoundError("No such sample extension.")
        cycle_report = cycle_report_get(user=request.user, pk=extension.cycle_report_id)
        require(can_approve(request.user, cycle_report, "test_execution"),
                "Only the report's owner approves or rejects a sample extension.")
        data = ExtensionDecisionSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return decision_response(workflow_decide_extension(user=request.user, extension=extension,
                                                           **data.validated_data))


class EvidenceLinksApi(APIView):
    """PUT {sample_keys, attribute_ids}: the uploading data owner says what a file covers (empty: all)."""

    authentication_classes = API_AUTHENTICATION_CLASSES

    @extend_schema(request=EvidenceLinksSerializer, responses={200: OpenApiTypes.OBJECT})
    def put(self, request, pk: int):
        evidence = Evidence.objects.select_related("request").filter(
            pk=pk, request__in=information_requests_visible_to(user=request.user)).first()
        if evidence is None:
            raise NotFoundError("No such evidence.")
        data = EvidenceLinksSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        links = evidence_links_set(user=request.user, evidence=evidence, **data.validated_data)
        return Response({"evidence": evidence.pk,
                         "links": [{"sample": l.sample.key if l.sample else None,
                                    "attribute": l.attribute_id} for l in links]})


class InformationRequestCoverageApi(APIView):
    """GET: which of the request's samples × attributes have evidence, and which don't."""

    authentication_classes = API_AUTHENTICATION_CLASSES

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request, pk: int):
        info_request = information_requests_visible_to(user=request.user).filter(pk=pk).first()
        if info_request is None:
            raise NotFoundError("No such request.")
        coverage = request_coverage(request=info_request)
        return Response({
            "total": coverage["total"],
            "missing": coverage["missing"],
            "cells": [
                {"sample": row["key"], "attribute": c["attribute"].name,
                 "evidence": [e.pk for e in c["evidence"]]}
                for row in coverage["rows"] for c in row["cells"]
            ],
        })


