"""The Observations API: the same services and checks as the page (cycles.views.observations).

Someone else's report or observation is a 404; a role refused is a 403 before
the body is read; every write goes through cycles.services.observations.
"""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from cycles.api.common import require
from cycles.exceptions import NotFoundError
from cycles.models import Observation
from cycles.permissions import can_work_on
from cycles.selectors import cycle_report_get, cycle_reports_visible_to
from cycles.serializers.observations import (
    MergeInputSerializer,
    ObservationInputSerializer,
    ObservationSerializer,
    RemediationInputSerializer,
    SplitInputSerializer,
)
from cycles.services.observations import (
    can_move_remediation,
    observation_create,
    observation_merge,
    observation_remediation_move,
    observation_split,
    observation_update,
    observations_visible,
)
from synapse.authentication import API_AUTHENTICATION_CLASSES

ONLY_TESTER = "Only the report's assigned tester shapes its observations."


def observation_get(*, user, pk: int) -> Observation:
    """An observation of a report the user may see (or whose remediation they own); 404 otherwise."""
    from django.db.models import Q

    visible = cycle_reports_visible_to(user=user).values("pk")
    observation = (Observation.objects.filter(Q(cycle_report__in=visible) | Q(remediation_owner=user), pk=pk)
                   .select_related("cycle_report__cycle", "cycle_report__report", "cycle_report__tester").first())
    if observation is None:
        raise NotFoundError("No such observation in a report you can see.")
    return observation


def _one(observation: Observation) -> dict:
    """The observation as the API shows it, read fresh with what it rests on."""
    observation = (Observation.objects.filter(pk=observation.pk)
                   .prefetch_related("cells__sample", "cells__attribute", "remediation_events__actor")
                   .select_related("attribute", "remediation_owner").get())
    return ObservationSerializer(observation).data


class CycleReportObservationsApi(APIView):
    """GET: the report's observations. POST: the tester adds one (title, severity, …, cell_ids)."""

    authentication_classes = API_AUTHENTICATION_CLASSES

    @extend_schema(responses={200: ObservationSerializer(many=True)})
    def get(self, request, pk: int):
        cycle_report = cycle_report_get(user=request.user, pk=pk)
        observations = observations_visible(user=request.user, cycle_report=cycle_report)
        return Response(ObservationSerializer(observations, many=True).data)

    @extend_schema(request=ObservationInputSerializer, responses={201: ObservationSerializer})
    def post(self, request, pk: int):
        cycle_report = cycle_report_get(user=request.user, pk=pk)
        require(can_work_on(request.user, cycle_report), ONLY_TESTER)
        data = ObservationInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        observation = observation_create(user=request.user, cycle_report=cycle_report,
                                         cell_ids=fields.pop("cell_ids", []), **fields)
        return Response(_one(observation), status=status.HTTP_201_CREATED)


class ObservationApi(APIView):
    """GET one observation; PATCH its fields or cells (the tester, while Observations is editable)."""

    authentication_classes = API_AUTHENTICATION_CLASSES

    @extend_schema(responses={200: ObservationSerializer})
    def get(self, request, pk: int):
        return Response(_one(observation_get(user=request.user, pk=pk)))

    @extend_schema(request=ObservationInputSerializer, responses={200: ObservationSerializer})
    def patch(self, request, pk: int):
        observation = observation_get(user=request.user, pk=pk)
        require(can_work_on(request.user, observation.cycle_report), ONLY_TESTER)
        data = ObservationInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        observation = observation_update(user=request.user, observation=observation,
                                         cell_ids=fields.pop("cell_ids", None), **fields)
        return Response(_one(observation))


class ObservationsMergeApi(APIView):
    """POST {observation_ids}: merge into the lowest-numbered one."""

    authentication_classes = API_AUTHENTICATION_CLASSES

    @extend_schema(request=MergeInputSerializer, responses={200: ObservationSerializer})
    def post(self, request, pk: int):
        cycle_report = cycle_report_get(user=request.user, pk=pk)
        require(can_work_on(request.user, cycle_report), ONLY_TESTER)
        data = MergeInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        ids = data.validated_data["observation_ids"]
        observations = list(Observation.objects.filter(cycle_report=cycle_report, pk__in=ids))
        if len(observations) != len(set(ids)):
            raise NotFoundError("Some of those observations are not in this report.")
        return Response(_one(observation_merge(user=request.user, observations=observations)))


class ObservationSplitApi(APIView):
    """POST {cell_ids}: move those cells to a new observation with the same fields."""

    authentication_classes = API_AUTHENTICATION_CLASSES

    @extend_schema(request=SplitInputSerializer, responses={201: ObservationSerializer})
    def post(self, request, pk: int):
        observation = observation_get(user=request.user, pk=pk)
        require(can_work_on(request.user, observation.cycle_report), ONLY_TESTER)
        data = SplitInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        new = observation_split(user=request.user, observation=observation, cell_ids=data.validated_data["cell_ids"])
        return Response(_one(new), status=status.HTTP_201_CREATED)


class ObservationRemediationApi(APIView):
    """POST {to_status, note}: open → in_progress → closed, after approval."""

    authentication_classes = API_AUTHENTICATION_CLASSES

    @extend_schema(request=RemediationInputSerializer, responses={200: ObservationSerializer})
    def post(self, request, pk: int):
        observation = observation_get(user=request.user, pk=pk)
        require(can_move_remediation(request.user, observation),
                "Only the remediation owner, the tester, the test manager or the report owner moves it.")
        data = RemediationInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        observation = observation_remediation_move(user=request.user, observation=observation,
                                                   **data.validated_data)
        return Response(_one(observation))
