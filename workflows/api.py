"""The workflow API: start, status and cancel of a cycle's workflow.

Seed 001's integrations call POST /api/v1/workflow/start/<cycle_id> with
{"report_ids": [...], "skip_phases": [...]}; the paths take an optional
trailing slash so that call works as written.
"""
from __future__ import annotations

import dataclasses

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from cycles.api.common import require
from cycles.exceptions import NotFoundError
from cycles.permissions import can_manage_cycle
from cycles.models import TestCycle
from cycles.selectors import cycle_reports_visible_to, cycles_visible_to
from synapse.authentication import API_AUTHENTICATION_CLASSES
from synapse.exceptions import ApplicationError, ServiceUnavailableError
from workflows.serializers import (
    CompensationEntrySerializer,
    WorkflowCancelSerializer,
    WorkflowCancelledSerializer,
    WorkflowExecutionSerializer,
    WorkflowOperationSerializer,
    WorkflowRetrySerializer,
    WorkflowStartSerializer,
    WorkflowStartedSerializer,
    WorkflowStatusSerializer,
)
from workflows.services import workflow_cancel, workflow_start, workflow_status


def _cycle_visible(request, cycle_id: int) -> TestCycle:
    cycle = cycles_visible_to(user=request.user).filter(pk=cycle_id).first()
    if cycle is None:
        raise NotFoundError("No such cycle among those you can see.")
    return cycle


class WorkflowStartApi(APIView):
    """POST {report_ids?, skip_phases?}: start the cycle's workflow, one child per report.

    201 {workflow_id, report_workflow_ids}; 409 when it is already running;
    503 when Temporal can't be reached (nothing is started then).
    """

    authentication_classes = API_AUTHENTICATION_CLASSES

    @extend_schema(request=WorkflowStartSerializer, responses={201: WorkflowStartedSerializer})
    def post(self, request, cycle_id: int):
        cycle = _cycle_visible(request, cycle_id)
        require(can_manage_cycle(request.user, cycle), "Only the cycle's Test Manager can start its workflow.")
        data = WorkflowStartSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = workflow_start(user=request.user, cycle=cycle, **data.validated_data)
        return Response(
            {"workflow_id": result.workflow_id, "report_workflow_ids": result.report_workflow_ids},
            status=status.HTTP_201_CREATED,
        )


class WorkflowCancelApi(APIView):
    """POST {reason?}: ask Temporal to cancel the cycle's workflow (202: the workflow winds down on its own)."""

    authentication_classes = API_AUTHENTICATION_CLASSES

    @extend_schema(request=WorkflowCancelSerializer, responses={202: WorkflowCancelledSerializer})
    def post(self, request, cycle_id: int):
        cycle = _cycle_visible(request, cycle_id)
        require(can_manage_cycle(request.user, cycle), "Only the cycle's Test Manager can cancel its workflow.")
        data = WorkflowCancelSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        workflow_cancel(user=request.user, cycle=cycle, **data.validated_data)
        return Response(
            {"workflow_id": cycle.workflow_id, "message": "Cancellation requested; the cycle's status follows."},
            status=status.HTTP_202_ACCEPTED,
        )


class WorkflowStatusApi(APIView):
    """GET: the cycle's status and, for each of its reports the user can see, phase and status.

    "live" is the report workflow's own answer (state, waiting_on, ...) when
    Temporal can be asked; otherwise "live" is null and "live_error" says why,
    so the stored phase and status still come back while Temporal is down.
    """

    authentication_classes = API_AUTHENTICATION_CLASSES

    @extend_schema(responses={200: WorkflowStatusSerializer})
    def get(self, request, cycle_id: int):
        cycle = _cycle_visible(request, cycle_id)
        unreachable: str | None = None
        reports = []
        for cycle_report in cycle_reports_visible_to(user=request.user).filter(cycle=cycle):
            live, live_error = None, None
            if cycle_report.workflow_id and unreachable:
                # One timeout is enough to know; don't wait it out again for every report.
                live_error = unreachable
            elif cycle_report.workflow_id:
                try:
                    answer = workflow_status(user=request.user, cycle_report=cycle_report)
                    live = dataclasses.asdict(answer) if answer else None
                    if answer and answer.unavailable:  # the last stored answer (see live.as_of)
                        live_error = answer.unavailable
                except ServiceUnavailableError as err:
                    unreachable = live_error = err.message
                except ApplicationError as err:
                    live_error = err.message
            reports.append(
                {
                    "cycle_report_id": cycle_report.pk,
                    "report_id": cycle_report.report_id,
                    "report_name": cycle_report.report.name,
                    "tester": cycle_report.tester.username if cycle_report.tester else None,
                    "phase": cycle_report.phase,
                    "status": cycle_report.status,
                    "workflow_id": cycle_report.workflow_id,
                    "skipped_phases": cycle_report.skipped_phases,
                    "live": live,
                    "live_error": live_error,
                }
            )
        return Response(
            {
                "cycle_id": cycle.pk,
                "cycle_name": cycle.name,
                "status": cycle.status,
                "workflow_id": cycle.workflow_id,
                "started_at": cycle.started_at,
                "completed_at": cycle.completed_at,
                "reports": reports,
            }
        )


# --- issue 9: operations, retries, compensation, metrics, versions -------------------------------
# The same functions as the workflow admin (workflows.operations, workflows.metrics); the same role checks.


class _ExecutionsMixin:
    def _executions(self, request):
        from workflows.selectors import executions_visible_to

        return executions_visible_to(user=request.user)

    def _execution(self, request, workflow_id: str):
        execution = self._executions(request).filter(workflow_id=workflow_id).order_by("-started_at").first()
        if execution is None:
            raise NotFoundError("No such workflow among those you can see.")
        return execution


class WorkflowExecutionListApi(_ExecutionsMixin, APIView):
    """GET ?status=&phase=&waiting_on=&cycle=: the workflow runs of the cycles you can see, newest first."""

    authentication_classes = API_AUTHENTICATION_CLASSES

    def get(self, request):
        executions = self._executions(request)
        for param, lookup in (("status", "status"), ("phase", "current_phase"), ("waiting_on", "waiting_on__contains"),
                              ("cycle", "cycle_id")):
            if request.query_params.get(param):
                executions = executions.filter(**{lookup: request.query_params[param]})
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(executions, request, view=self)
        return paginator.get_paginated_response(WorkflowExecutionSerializer(page, many=True).data)


class WorkflowOperationApi(_ExecutionsMixin, APIView):
    """POST {reason, phase?} to /workflow/<terminate|reset|retry|cancel-run>/<workflow id>.

    terminate: stop the run at once; reset: compensate and go back to the start of `phase`;
    retry: run the phase that failed beyond its retries again. Admin only (cancel-run: also the
    cycle's test manager). 200 with the run's row; 409 when its state doesn't allow it; 503 when
    Temporal can't be reached (nothing done then).
    """

    authentication_classes = API_AUTHENTICATION_CLASSES

    def post(self, request, operation: str, workflow_id: str):
        from workflows import operations

        execution = self._execution(request, workflow_id)
        data = WorkflowOperationSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        reason = data.validated_data["reason"]
        message = ""
        if operation == "terminate":
            operations.execution_terminate(user=request.user, execution=execution, reason=reason)
        elif operation == "cancel-run":
            operations.execution_cancel(user=request.user, execution=execution, reason=reason)
        elif operation == "retry":
            message = operations.execution_retry_phase(user=request.user, execution=execution, reason=reason,
                                                       phase=data.validated_data.get("phase", "")).message
        else:
            execution = operations.execution_reset(user=request.user, execution=execution, reason=reason,
                                                   phase=data.validated_data.get("phase", ""))
        return Response({**WorkflowExecutionSerializer(execution).data, "message": message})


class WorkflowRetryListApi(_ExecutionsMixin, APIView):
    """GET ?workflow_id=: the retry log (activity, attempt, error, delay) of the runs you can see."""

    authentication_classes = API_AUTHENTICATION_CLASSES

    def get(self, request):
        from workflows.models import WorkflowRetry

        retries = WorkflowRetry.objects.filter(execution__in=self._executions(request)).select_related("execution")
        if request.query_params.get("workflow_id"):
            retries = retries.filter(execution__workflow_id=request.query_params["workflow_id"])
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(retries, request, view=self)
        return paginator.get_paginated_response(WorkflowRetrySerializer(page, many=True).data)


class WorkflowCompensationListApi(APIView):
    """GET ?cycle_report=&phase=: the compensation log of the reports you can see."""

    authentication_classes = API_AUTHENTICATION_CLASSES

    def get(self, request):
        from workflows.models import CompensationEntry

        entries = CompensationEntry.objects.filter(
            cycle_report__in=cycle_reports_visible_to(user=request.user)
        ).select_related("triggered_by")
        for param, lookup in (("cycle_report", "cycle_report_id"), ("phase", "phase")):
            if request.query_params.get(param):
                entries = entries.filter(**{lookup: request.query_params[param]})
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(entries, request, view=self)
        return paginator.get_paginated_response(CompensationEntrySerializer(page, many=True).data)


class WorkflowMetricsApi(APIView):
    """GET ?cycle=: the monitoring page's metrics as JSON (test managers and admins)."""

    authentication_classes = API_AUTHENTICATION_CLASSES

    def get(self, request):
        from synapse.exceptions import PermissionDeniedError
        from workflows.metrics import metrics_for
        from workflows.views import can_monitor

        if not can_monitor(request.user):
            raise PermissionDeniedError("Workflow metrics are for test managers and admins.")
        cycle = None
        if request.query_params.get("cycle"):
            cycle = _cycle_visible(request, _int_param(request, "cycle"))
        return Response(metrics_for(user=request.user, cycle=cycle).as_dict())


class WorkflowVersionListApi(_ExecutionsMixin, APIView):
    """GET ?workflow_id=: the migration history (which workflow build ran each run you can see, from when)."""

    authentication_classes = API_AUTHENTICATION_CLASSES

    def get(self, request):
        from workflows.models import WorkflowVersion
        from workflows.temporal.worker import KNOWN_PATCHES, build_id

        versions = WorkflowVersion.objects.filter(execution__in=self._executions(request)).select_related("execution")
        if request.query_params.get("workflow_id"):
            versions = versions.filter(execution__workflow_id=request.query_params["workflow_id"])
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(versions.order_by("-first_seen_at", "-id"), request, view=self)
        response = paginator.get_paginated_response([
            {"workflow_id": v.execution.workflow_id, "run_id": v.execution.run_id, "build_id": v.build_id,
             "patches": v.patches, "first_seen_at": v.first_seen_at} for v in page
        ])
        response.data["current_build_id"] = build_id()
        response.data["current_patches"] = list(KNOWN_PATCHES)
        return response


def _int_param(request, name: str) -> int:
    try:
        return int(request.query_params[name])
    except ValueError:
        raise ApplicationError(f"{name} must be a number.") from None
