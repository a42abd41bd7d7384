"""Fields every cycles serializer module shares: users and the objects a user may see."""
from django.contrib.auth import get_user_model
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from cycles.selectors import lobs_visible_to, reports_visible_to


class UserSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    username = serializers.CharField(read_only=True)
    name = serializers.SerializerMethodField()

    def get_name(self, user) -> str:
        return str(user)


@extend_schema_field(OpenApiTypes.INT)
class UserField(serializers.PrimaryKeyRelatedField):
    """A user given by id, shown by the service's role check when it isn't the right kind."""

    def get_queryset(self):
        return get_user_model().objects.filter(is_active=True)


@extend_schema_field(OpenApiTypes.INT)
class VisibleReportField(serializers.PrimaryKeyRelatedField):
    """A report id the requesting user may see; any other id is "does not exist"."""

    def get_queryset(self):
        return reports_visible_to(user=self.context["request"].user)


@extend_schema_field(OpenApiTypes.INT)
class VisibleLOBField(serializers.PrimaryKeyRelatedField):
    def get_queryset(self):
        return lobs_visible_to(user=self.context["request"].user)


