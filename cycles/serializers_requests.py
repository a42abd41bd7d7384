"""API shapes of Sample Selection, Data Owner Identification, Requests for Information and evidence.

As in cycles.serializers: output serializers describe rows, input serializers
only parse and type-check. Ranges, phase locks, roles and the rules between
fields are checked by cycles.services.sampling and cycles.services.requests.
"""
from django.urls import reverse
from rest_framework import serializers

from cycles.models import Attribute, DataOwnerAssignment, Evidence, InformationRequest, RiskLevel, Sample, SamplingPlan
from cycles.serializers import UserField, UserSummarySerializer
from cycles.services.requests import evidence_latest
from cycles.services.sampling import PLAN_FIELDS, sampling_plan_explanation

# --- Sample Selection ------------------------------------------------------------------------------


class SamplingPlanSerializer(serializers.ModelSerializer):
    """The plan as the tester set it, the size the rule gives, and the explanation of the size in force."""

    population_file_name = serializers.CharField(source="population_file.original_name", read_only=True,
                                                 default=None)
    sample_size = serializers.IntegerField(read_only=True)
    explanation = serializers.SerializerMethodField()
    updated_by = UserSummarySerializer(read_only=True)

    class Meta:
        model = SamplingPlan
        fields = [
            "id", "cycle_report", "population_file", "population_file_name", *PLAN_FIELDS,
            "computed_size", "allowed_deviations", "size_explanation", "sample_size", "explanation",
            "updated_by", "updated_at",
        ]
        read_only_fields = fields

    def get_explanation(self, plan) -> str:
        return sampling_plan_explanation(plan=plan)


class SamplingPlanInputSerializer(serializers.Serializer):
    """Any subset of the plan's editable fields; a field the plan doesn't have is refused, not ignored."""

    size_rule = serializers.ChoiceField(choices=SamplingPlan.SizeRule.choices, required=False)
    risk = serializers.ChoiceField(choices=RiskLevel.choices, required=False)
    risk_of_overreliance = serializers.DecimalField(max_digits=4, decimal_places=3, required=False)
    tolerable_rate = serializers.DecimalField(max_digits=4, decimal_places=3, required=False)
    expected_rate = serializers.DecimalField(max_digits=4, decimal_places=3, required=False)
    override_size = serializers.IntegerField(required=False, allow_null=True)
    override_reason = serializers.CharField(required=False, allow_blank=True)
    method = serializers.ChoiceField(choices=SamplingPlan.Method.choices, required=False)
    stratify_by = serializers.CharField(required=False, allow_blank=True)
    min_per_stratum = serializers.IntegerField(required=False)
    risk_column = serializers.CharField(required=False, allow_blank=True)
    seed = serializers.IntegerField(required=False, allow_null=True)

    def to_internal_value(self, data):
        # Reported with the fields' own errors: validate() would run only once those pass.
        errors = {name: ["Not a field of the sampling plan."] for name in sorted(set(data) - set(self.fields))}
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            errors.update(exc.detail)
        if errors:
            raise serializers.ValidationError(errors)
        return value


class SampleSerializer(serializers.ModelSerializer):
    method_display = serializers.CharField(source="get_method_display", read_only=True)
    added_by = UserSummarySerializer(read_only=True)

    class Meta:
        model = Sample
        fields = [
            "id", "cycle_report", "key", "row_index", "row_data", "stratum", "method", "method_display", "seed",
            "reason", "added_by", "added_at",
        ]
        read_only_fields = fields


class SampleManualSerializer(serializers.Serializer):
    key = serializers.CharField(max_length=255)
    reason = serializers.CharField()


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

    def get_assigned_at(self, attribute):
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


class DataOwnerAssignInputSerializer(serializers.Serializer):
    attribute_id = serializers.IntegerField()
    data_owner_id = UserField()


class DataOwnerBulkInputSerializer(serializers.Serializer):
    data_owner_id = UserField()
    attribute_ids = serializers.ListField(child=serializers.IntegerField(), allow_empty=False)


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


class InformationRequestSerializer(serializers.ModelSerializer):
    report_name = serializers.CharField(source="cycle_report.report.name", read_only=True)
    cycle_name = serializers.CharField(source="cycle_report.cycle.name", read_only=True)
    data_owner = UserSummarySerializer(read_only=True)
    status_display = serializers.CharField(source="get_status_display", read_only=True)
    attributes = RequestAttributeSerializer(many=True, read_only=True)
    sample_count = serializers.SerializerMethodField()

    class Meta:
        model = InformationRequest
        fields = [
            "id", "cycle_report", "report_name", "cycle_name", "data_owner", "status", "status_display",
            "due_date", "attributes", "sample_count", "created_at", "submitted_at", "accepted_at", "escalated_at",
        ]
        read_only_fields = fields

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
    note = serializers.CharField(allow_blank=True, required=False, default="")
