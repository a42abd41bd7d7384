"""The workflow API: start, status and cancel of a cycle's workflow.

Seed 001's integrations call POST /api/v1/workflow/start/<cycle_id> with
{"report_ids": [...], "skip_phases": [...]}; the paths take an optional
trailing slash so that call works as written.
"""
from __future__ import annotations

import dataclasses

from drf_spectacular.utils import extend_schema
from rest_framework import status
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
    WorkflowCancelledSerializer,
    WorkflowCancelSerializer,
    WorkflowStartedSerializer,
    WorkflowStartSerializer,
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
