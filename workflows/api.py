"""The workflow API: start, status and cancel of a cycle's workflow.

Seed 001's integrations call POST /api/v1/workflow/start/<cycle_id> with
{"report_ids": [...], "skip_phases": [...]}; the paths take an optional
trailing slash so that call works as written.
"""
from __future__ import annotations

import dataclasses

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from cycles.api.common import require, schema_safe
from cycles.exceptions import NotFoundError
from cycles.permissions import can_manage_cycle, is_admin
from cycles.models import TestCycle
from cycles.selectors import cycle_reports_visible_to, cycles_visible_to
from synapse.authentication import API_AUTHENTICATION_CLASSES
from synapse.exceptions import ApplicationError, PermissionDeniedError, ServiceUnavailableError
from synapse.pagination import PageNumberPagination
from workflows.filters import (
    CompensationEntryFilter, WorkflowExecutionFilter, WorkflowRetryFilter, WorkflowVersionFilter,
)
from workflows.models import CompensationEntry, CycleSchedule, WorkflowExecution, WorkflowRetry, WorkflowVersion
from workflows.serializers import (
    CompensationEntrySerializer,
    CycleScheduleActionSerializer,
    CycleScheduleCreateSerializer,
    CycleScheduleSerializer,
    WorkflowCancelSerializer,
    WorkflowCancelledSerializer,
    WorkflowExecutionSerializer,
    WorkflowMetricsQuerySerializer,
    WorkflowMetricsSerializer,
    WorkflowOperationResultSerializer,
    WorkflowOperationSerializer,
    WorkflowRetrySerializer,
    WorkflowVersionSerializer,
    WorkflowStartSerializer,
    WorkflowStartedSerializer,
    WorkflowStatusSerializer,
)
from workflows.schedules import schedule_create, schedule_pause, schedule_resume, schedule_trigger
from workflows.selectors import schedules_visible_to
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


class WorkflowExecutionListApi(_ExecutionsMixin, ListAPIView):
    """GET ?status=&phase=&waiting_on=&cycle=: the workflow runs of the cycles you can see, newest first."""

    authentication_classes = API_AUTHENTICATION_CLASSES
    serializer_class = WorkflowExecutionSerializer
    filterset_class = WorkflowExecutionFilter

    @schema_safe(WorkflowExecution)
    def get_queryset(self):
        return self._executions(self.request)


OPERATION_PARAMETERS = [
    OpenApiParameter("operation", str, OpenApiParameter.PATH, enum=["terminate", "reset", "retry", "cancel-run"],
                     description="terminate, reset (to `phase`, with compensation), retry (the failed phase), "
                                 "cancel-run."),
    OpenApiParameter("workflow_id", str, OpenApiParameter.PATH, pattern=r"^[\w-]+$",
                     description="The run's workflow id (cycle-<id> or cycle-<id>-report-<id>)."),
]


class WorkflowOperationApi(_ExecutionsMixin, APIView):
    """POST {reason, phase?} to /workflow/<terminate|reset|retry|cancel-run>/<workflow id>.

    terminate: stop the run at once; reset: compensate and go back to the start of `phase`;
    retry: run the phase that failed beyond its retries again. Admin only (cancel-run: also the
    cycle's test manager). 200 with the run's row; 409 when its state doesn't allow it; 503 when
    Temporal can't be reached (nothing done then).
    """

    authentication_classes = API_AUTHENTICATION_CLASSES

    @extend_schema(parameters=OPERATION_PARAMETERS, request=WorkflowOperationSerializer,
                   responses={200: WorkflowOperationResultSerializer})
    def post(self, request, operation: str, workflow_id: str):
        from workflows import operations

        execution = self._execution(request, workflow_id)
        # Refuse before reading the body (the operation checks again), as every API action does.
        if operation == "cancel-run":
            require(is_admin(request.user) or (execution.cycle is not None
                                               and can_manage_cycle(request.user, execution.cycle)),
                    "Only an admin or the cycle's Test Manager can cancel its workflows.")
        else:
            require(is_admin(request.user), f"Only an admin can {operation} a workflow.")
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


class WorkflowRetryListApi(_ExecutionsMixin, ListAPIView):
    """GET ?workflow_id=: the retry log (activity, attempt, error, delay) of the runs you can see."""

    authentication_classes = API_AUTHENTICATION_CLASSES
    serializer_class = WorkflowRetrySerializer
    filterset_class = WorkflowRetryFilter

    @schema_safe(WorkflowRetry)
    def get_queryset(self):
        return WorkflowRetry.objects.filter(execution__in=self._executions(self.request)).select_related("execution")


class WorkflowCompensationListApi(ListAPIView):
    """GET ?cycle_report=&phase=&trigger=: the compensation log of the reports you can see, newest first."""

    authentication_classes = API_AUTHENTICATION_CLASSES
    serializer_class = CompensationEntrySerializer
    filterset_class = CompensationEntryFilter

    @schema_safe(CompensationEntry)
    def get_queryset(self):
        return (
            CompensationEntry.objects.filter(cycle_report__in=cycle_reports_visible_to(user=self.request.user))
            .select_related("triggered_by")
            .order_by("-created_at", "-id")
        )


class WorkflowMetricsApi(APIView):
    """GET ?cycle=: the monitoring page's metrics as JSON (test managers and admins)."""

    authentication_classes = API_AUTHENTICATION_CLASSES

    @extend_schema(parameters=[WorkflowMetricsQuerySerializer], responses={200: WorkflowMetricsSerializer})
    def get(self, request):
        from workflows.metrics import metrics_for
        from workflows.views import can_monitor

        if not can_monitor(request.user):
            raise PermissionDeniedError("Workflow metrics are for test managers and admins.")
        query = WorkflowMetricsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        cycle = None
        if query.validated_data.get("cycle"):
            cycle = _cycle_visible(request, query.validated_data["cycle"])
        return Response(metrics_for(user=request.user, cycle=cycle).as_dict())


class WorkflowVersionPagination(PageNumberPagination):
    """The page of migration history, and what today's worker build knows (its id and patch ids)."""

    def get_paginated_response(self, data):
        from workflows.temporal.worker import KNOWN_PATCHES, build_id

        response = super().get_paginated_response(data)
        response.data["current_build_id"] = build_id()
        response.data["current_patches"] = list(KNOWN_PATCHES)
        return response

    def get_paginated_response_schema(self, schema):
        paginated = super().get_paginated_response_schema(schema)
        paginated["properties"]["current_build_id"] = {"type": "string", "description": "Today's worker build."}
        paginated["properties"]["current_patches"] = {
            "type": "array", "items": {"type": "string"}, "description": "workflow.patched ids today's build knows."}
        paginated["required"] = [*paginated.get("required", []), "current_build_id", "current_patches"]
        return paginated


class WorkflowVersionListApi(_ExecutionsMixin, ListAPIView):
    """GET ?workflow_id=: the migration history (which workflow build ran each run you can see, from when)."""

    authentication_classes = API_AUTHENTICATION_CLASSES
    serializer_class = WorkflowVersionSerializer
    filterset_class = WorkflowVersionFilter
    pagination_class = WorkflowVersionPagination

    @schema_safe(WorkflowVersion)
    def get_queryset(self):
        return (
            WorkflowVersion.objects.filter(execution__in=self._executions(self.request))
            .select_related("execution")
            .order_by("-first_seen_at", "-id")
        )


# --- recurring cycles (issue 9, part 8): the same services as the cycle page and the admin ---------


class CycleScheduleListApi(ListAPIView):
    """GET: the recurring cycles you manage (all for an admin), with when each runs next."""

    authentication_classes = API_AUTHENTICATION_CLASSES
    serializer_class = CycleScheduleSerializer

    @schema_safe(CycleSchedule)
    def get_queryset(self):
        return schedules_visible_to(user=self.request.user)


class CycleScheduleCreateApi(APIView):
    """POST {frequency, name?}: make the cycle recur (monthly or quarterly) from it as the template.

    The Temporal Schedule is created in the same step: 503 (and nothing kept) when Temporal can't be
    reached; 400 when the cycle has no reports.
    """

    authentication_classes = API_AUTHENTICATION_CLASSES

    @extend_schema(request=CycleScheduleCreateSerializer, responses={201: CycleScheduleSerializer})
    def post(self, request, cycle_id: int):
        template = _cycle_visible(request, cycle_id)
        require(can_manage_cycle(request.user, template), "Only the cycle's Test Manager can make it recur.")
        data = CycleScheduleCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        schedule = schedule_create(user=request.user, template=template, **data.validated_data)
        schedule = schedules_visible_to(user=request.user).get(pk=schedule.pk)
        return Response(CycleScheduleSerializer(schedule).data, status=status.HTTP_201_CREATED)


class CycleScheduleActionApi(APIView):
    """POST {reason?} to pause, resume or trigger (run now: a cycle is created and started) a schedule."""

    authentication_classes = API_AUTHENTICATION_CLASSES
    OPERATIONS = {"pause": schedule_pause, "resume": schedule_resume, "trigger": schedule_trigger}

    @extend_schema(request=CycleScheduleActionSerializer, responses={200: CycleScheduleSerializer})
    def post(self, request, pk: int, operation: str):
        schedule = schedules_visible_to(user=request.user).filter(pk=pk).first()
        if schedule is None:
            raise NotFoundError("No such schedule among those you manage.")
        data = CycleScheduleActionSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        self.OPERATIONS[operation](user=request.user, schedule=schedule, reason=data.validated_data["reason"])
        return Response(CycleScheduleSerializer(schedules_visible_to(user=request.user).get(pk=pk)).data)
