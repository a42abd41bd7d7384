"""API shapes of Data Owner Identification, Requests for Information and evidence."""
import datetime

from django.db.models import Manager
from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from cycles.models import Attribute, DataOwnerAssignment, Evidence, InformationRequest
from cycles.serializers.common import UserField, UserSummarySerializer
from synapse.roles import Role
from cycles.services.requests import evidence_latest, request_attribute_rows

# --- Data Owner Identification --------------------------------------------------------------------


class DataOwnerRowSerializer(serializers.ModelSerializer):
    """An in-scope attribute and its data owner (null until the data executive assigns one)."""

    attribute_id = serializers.IntegerField(source="id", read_only=True)
    attribute_name = serializers.CharField(source="name", read_only=True)
    risk_level = serializers.CharField(read_only=True)
    data_owner = serializers.SerializerMethodField()
    assigned_by = serializers.SerializerMethodField()
    assigned_at = serializers.SerializerMethodField()

    class Meta:
        model = Attribute
        fields = [
            "attribute_id", "attribute_name", "description", "risk_level", "cde", "data_owner", "assigned_by",
            "assigned_at",
        ]
        read_only_fields = fields

    def _assignment(self, attribute) -> DataOwnerAssignment | None:
        try:
            return attribute.data_owner_assignment
        except DataOwnerAssignment.DoesNotExist:
            return None

    def get_data_owner(self, attribute) -> dict | None:
        assignment = self._assignment(attribute)
        return UserSummarySerializer(assignment.data_owner).data if assignment else None

    def get_assigned_by(self, attribute) -> dict | None:
        assignment = self._assignment(attribute)
        return UserSummarySerializer(assignment.assigned_by).data if assignment else None

    def get_assigned_at(self, attribute) -> datetime.datetime | None:
        assignment = self._assignment(attribute)
        return serializers.DateTimeField().to_representation(assignment.assigned_at) if assignment else None


class DataOwnerAssignmentSerializer(serializers.ModelSerializer):
    attribute_id = serializers.IntegerField(source="attribute.id", read_only=True)
    attribute_name = serializers.CharField(source="attribute.name", read_only=True)
    data_owner = UserSummarySerializer(read_only=True)
    assigned_by = UserSummarySerializer(read_only=True)

    class Meta:
        model = DataOwnerAssignment
        fields = ["attribute_id", "attribute_name", "data_owner", "assigned_by", "assigned_at"]
        read_only_fields = fields


class MissingAttributeSerializer(serializers.ModelSerializer):
    class Meta:
        model = Attribute
        fields = ["id", "name"]
        read_only_fields = fields


class DataOwnerField(UserField):
    """An active Data Owner by id; anyone else is "does not exist", so no other user's name is shown."""

    def get_queryset(self):
        return super().get_queryset().filter(groups__name=Role.DATA_OWNER)


class DataOwnerAssignInputSerializer(serializers.Serializer):
    attribute_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    data_owner_id = DataOwnerField()


class DataOwnerBulkInputSerializer(serializers.Serializer):
    data_owner_id = DataOwnerField()
    attribute_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1), allow_empty=False, max_length=1000
    )


# --- Requests for Information and evidence --------------------------------------------------------


class EvidenceSerializer(serializers.ModelSerializer):
    uploaded_by = UserSummarySerializer(read_only=True)
    reviewed_by = UserSummarySerializer(read_only=True)
    status_display = serializers.CharField(source="get_status_display", read_only=True)
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = Evidence
        fields = [
            "id", "request", "original_name", "version", "content_type", "size_bytes", "sha256", "uploaded_by",
            "uploaded_at", "status", "status_display", "review_note", "reviewed_by", "reviewed_at", "download_url",
        ]
        read_only_fields = fields

    def get_download_url(self, evidence) -> str:
        return reverse("api-evidence-download", kwargs={"pk": evidence.pk})


class RequestAttributeSerializer(serializers.ModelSerializer):
    class Meta:
        model = Attribute
        fields = ["id", "name", "description"]
        read_only_fields = fields


@extend_schema_field(RequestAttributeSerializer(many=True))
class RequestAttributesField(serializers.Field):
    """The request's attributes in RequestAttributeSerializer's shape, built as plain dicts.

    A page of the request list holds up to fifty requests of some twenty attributes each: a nested serializer
    per attribute, and a model instance per attribute, were most of the list's time. A list reads them for
    the whole page at once (InformationRequestListSerializer); one request reads its own.
    """

    def __init__(self, **kwargs):
        super().__init__(read_only=True, source="*", **kwargs)

    def to_representation(self, request):
        rows = getattr(request, "attribute_rows", None)
        if rows is not None:
            return rows
        return [{"id": a.pk, "name": a.name, "description": a.description} for a in request.attributes.all()]


class InformationRequestListSerializer(serializers.ListSerializer):
    """A page of requests: the attributes of all of them in one query, as plain rows."""

    def to_representation(self, data):
        requests = list(data.all() if isinstance(data, Manager) else data)
        rows = request_attribute_rows(r.pk for r in requests)
        for request in requests:
            request.attribute_rows = rows.get(request.pk, [])
        return super().to_representation(requests)


class InformationRequestSerializer(serializers.ModelSerializer):
    report_name = serializers.CharField(source="cycle_report.report.name", read_only=True)
    cycle_name = serializers.CharField(source="cycle_report.cycle.name", read_only=True)
    data_owner = UserSummarySerializer(read_only=True)
    status_display = serializers.CharField(source="get_status_display", read_only=True)
    attributes = RequestAttributesField()
    sample_count = serializers.SerializerMethodField()

    class Meta:
        model = InformationRequest
        fields = [
            "id", "cycle_report", "report_name", "cycle_name", "data_owner", "status", "status_display",
            "due_date", "attributes", "sample_count", "created_at", "submitted_at", "accepted_at", "escalated_at",
        ]
        read_only_fields = fields
        list_serializer_class = InformationRequestListSerializer

    def get_sample_count(self, request) -> int:
        return len(request.sample_keys or [])


class InformationRequestDetailSerializer(InformationRequestSerializer):
    """The request with its sample keys and the newest version of each evidence file."""

    evidence = serializers.SerializerMethodField()

    class Meta(InformationRequestSerializer.Meta):
        fields = [*InformationRequestSerializer.Meta.fields, "sample_keys", "evidence"]
        read_only_fields = fields

    def get_evidence(self, request) -> list[dict]:
        return EvidenceSerializer(evidence_latest(request=request), many=True).data


class EvidenceReviewSerializer(serializers.Serializer):
    accept = serializers.BooleanField()
    note = serializers.CharField(allow_blank=True, required=False, default="", max_length=4000)
