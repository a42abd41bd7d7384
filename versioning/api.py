"""The versioning API: versions (with items and diffs), the owner's decisions on versions and items, approvals.

Versions and approvals are visible exactly when their cycle report is
(cycles.selectors.cycle_reports_visible_to), so someone else's version is a 404.
"""
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

import django_filters

from cycles.api.common import decision_response, require, schema_safe
from cycles.api.filters import IdFilter
from cycles.exceptions import NotFoundError
from cycles.models import Phase
from cycles.permissions import can_approve
from cycles.selectors import cycle_reports_visible_to
from synapse.authentication import API_AUTHENTICATION_CLASSES
from versioning.models import Approval, Version, VersionStatus
from versioning.selectors import version_diff, version_previous
from versioning.serializers import (
    ApprovalSerializer,
    VersionDecideSerializer,
    VersionDetailSerializer,
    VersionItemSerializer,
    VersionSerializer,
    version_diff_data,
    VersionDiffSerializer,
)
from versioning.services import version_item_decide
from workflows.serializers import DecisionOutcomeSerializer
from workflows.services import workflow_decide_version


class VersionFilter(django_filters.FilterSet):
    cycle_report = IdFilter(field_name="cycle_report_id")
    phase = django_filters.ChoiceFilter(choices=Phase.choices)
    status = django_filters.ChoiceFilter(choices=VersionStatus.choices)

    class Meta:
        model = Version
        fields = ["cycle_report", "phase", "status"]


class ApprovalFilter(django_filters.FilterSet):
    cycle_report = IdFilter(field_name="version__cycle_report_id")
    phase = django_filters.ChoiceFilter(field_name="version__phase", choices=Phase.choices)
    decision = django_filters.ChoiceFilter(choices=Approval.Decision.choices)

    class Meta:
        model = Approval
        fields = ["cycle_report", "phase", "decision"]


def versions_visible_to(*, user):
    return Version.objects.filter(cycle_report__in=cycle_reports_visible_to(user=user)).select_related(
        "author", "approval", "approval__decided_by"
    )


class VersionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Versions of phase artifacts; retrieve includes the items. Filters: ?cycle_report=, ?phase=, ?status=."""

    filterset_class = VersionFilter
    authentication_classes = API_AUTHENTICATION_CLASSES

    def get_serializer_class(self):
        return VersionSerializer if self.action == "list" else VersionDetailSerializer

    @schema_safe(Version)
    def get_queryset(self):
        qs = versions_visible_to(user=self.request.user).order_by("cycle_report", "phase", "-number")
        if self.action != "list":
            qs = qs.prefetch_related("items", "items__decided_by")
        return qs

    @extend_schema(responses={200: VersionDiffSerializer})
    @action(detail=True, methods=["get"])
    def diff(self, request, pk=None):
        """What changed since the previous version of the same phase (its parent, else number - 1)."""
        version = self.get_object()
        previous = version_previous(version=version)
        return Response(version_diff_data(version_diff(old=previous, new=version)))


class VersionDecideApi(APIView):
    """POST {approve, notes}: the report owner approves a submitted version or sends it back.

    200 when the workflow took the decision, 202 when Temporal is unreachable
    and the decision is stored to be delivered when it is back.
    """

    authentication_classes = API_AUTHENTICATION_CLASSES

    @extend_schema(request=VersionDecideSerializer,
                   responses={200: DecisionOutcomeSerializer, 202: DecisionOutcomeSerializer})
    def post(self, request, pk: int):
        version = versions_visible_to(user=request.user).select_related("cycle_report__report", "cycle_report__cycle")
        version = version.filter(pk=pk).first()
        if version is None:
            raise NotFoundError("No such version among the reports you can see.")
        data = VersionDecideSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        outcome = workflow_decide_version(user=request.user, version=version, **data.validated_data)
        return decision_response(outcome)


class VersionItemDecideSerializer(serializers.Serializer):
    approve = serializers.BooleanField()
    note = serializers.CharField(allow_blank=True, required=False, default="", max_length=4000)


class VersionItemDecideApi(APIView):
    """POST {approve, note}: the report owner approves or rejects one item (a sample) of a submitted version.

    Stored only: the version's own decision (VersionDecideApi) is what the workflow waits for.
    """

    authentication_classes = API_AUTHENTICATION_CLASSES

    @extend_schema(request=VersionItemDecideSerializer, responses={200: VersionItemSerializer})
    def post(self, request, pk: int, item_id: int):
        version = versions_visible_to(user=request.user).select_related("cycle_report__report", "cycle_report__cycle")
        version = version.filter(pk=pk).first()
        if version is None:
            raise NotFoundError("No such version among the reports you can see.")
        item = version.items.filter(pk=item_id).first()
        if item is None:
            raise NotFoundError(f"No such item in {version}.")
        require(
            can_approve(request.user, version.cycle_report, version.phase) and version.author_id != request.user.pk,
            "Only the report's owner or a configured approver decides on its items, and never on their own version.",
        )
        data = VersionItemDecideSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        item = version_item_decide(item=item, user=request.user, **data.validated_data)
        return Response(VersionItemSerializer(item).data)


class ApprovalViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Decisions on versions of the reports the user can see. Filters: ?cycle_report=, ?phase=, ?decision=."""

    filterset_class = ApprovalFilter
    authentication_classes = API_AUTHENTICATION_CLASSES
    serializer_class = ApprovalSerializer

    @schema_safe(Approval)
    def get_queryset(self):
        qs = Approval.objects.filter(
            version__cycle_report__in=cycle_reports_visible_to(user=self.request.user)
        ).select_related("version", "decided_by")
        return qs.order_by("-created_at", "-pk")
