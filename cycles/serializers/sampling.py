"""API shapes of Sample Selection."""
from rest_framework import serializers

from cycles.models import RiskLevel, Sample, SamplingPlan
from cycles.serializers.common import UserSummarySerializer
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
    override_size = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=1_000_000)
    override_reason = serializers.CharField(required=False, allow_blank=True)
    method = serializers.ChoiceField(choices=SamplingPlan.Method.choices, required=False)
    stratify_by = serializers.CharField(required=False, allow_blank=True)
    min_per_stratum = serializers.IntegerField(required=False, min_value=1, max_value=10_000)
    risk_column = serializers.CharField(required=False, allow_blank=True)
    seed = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=2**63 - 1)

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError({"non_field_errors": ["The body must be an object of plan fields."]})
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
    reason = serializers.CharField(max_length=2000)


