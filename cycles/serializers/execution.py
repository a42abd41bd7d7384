"""API shapes of Test Execution: cells, their history, rules, bulk actions, extensions, evidence links."""
from rest_framework import serializers

from cycles.models import ExecutionRule, FailureKind, SampleExtension, TestResult, TestResultHistory, TestResultValue
from cycles.serializers.common import UserSummarySerializer
from cycles.services.execution import BulkAction


class EvidenceSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    request = serializers.IntegerField(source="request_id", read_only=True)
    original_name = serializers.CharField(read_only=True)
    version = serializers.IntegerField(read_only=True)
    sha256 = serializers.CharField(read_only=True)


class TestResultHistorySerializer(serializers.ModelSerializer):
    __test__ = False

    tested_by = UserSummarySerializer(read_only=True)
    replaced_by = UserSummarySerializer(read_only=True)

    class Meta:
        model = TestResultHistory
        fields = ["attempt", "expected_value", "observed_value", "result", "failure_kind", "comment", "method",
                  "rule_detail", "evidence_ids", "tested_by", "tested_at", "replaced_by", "replaced_at"]
        read_only_fields = fields


class TestResultSerializer(serializers.ModelSerializer):
    """A cell of the matrix: sample × attribute, its result and the evidence it relies on."""

    __test__ = False

    sample_key = serializers.CharField(source="sample.key", read_only=True)
    attribute_name = serializers.CharField(source="attribute.name", read_only=True)
    evidence = EvidenceSummarySerializer(many=True, read_only=True)
    tested_by = UserSummarySerializer(read_only=True)

    class Meta:
        model = TestResult
        fields = ["id", "cycle_report", "sample", "sample_key", "attribute", "attribute_name", "expected_value",
                  "observed_value", "result", "failure_kind", "comment", "method", "rule_detail", "evidence",
                  "attempt", "tested_by", "tested_at", "extension"]
        read_only_fields = fields


class TestResultDetailSerializer(TestResultSerializer):
    history = TestResultHistorySerializer(many=True, read_only=True)

    class Meta(TestResultSerializer.Meta):
        fields = [*TestResultSerializer.Meta.fields, "history"]
        read_only_fields = fields


class TestResultInputSerializer(serializers.Serializer):
    """test_result_record's arguments; the service refuses what the matrix doesn't allow."""

    __test__ = False

    outcome = serializers.ChoiceField(choices=[c for c in TestResultValue.choices if c[0] != "not_tested"])
    observed_value = serializers.CharField(allow_blank=True, required=False, default="", max_length=4000)
    comment = serializers.CharField(allow_blank=True, required=False, default="", max_length=4000)
    failure_kind = serializers.ChoiceField(choices=FailureKind.choices, required=False, default="")
    evidence_ids = serializers.ListField(child=serializers.IntegerField(), required=False, default=list)


class BulkResultsSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=BulkAction.choices)
    result_ids = serializers.ListField(child=serializers.IntegerField(), allow_empty=False)
    comment = serializers.CharField(allow_blank=True, required=False, default="", max_length=4000)


class ExecutionRuleSerializer(serializers.ModelSerializer):
    class Meta:
        model = ExecutionRule
        fields = ["attribute", "kind", "source_column", "tolerance", "pattern", "min_value", "max_value",
                  "updated_at"]
        read_only_fields = ["attribute", "updated_at"]
        extra_kwargs = {"tolerance": {"required": False}, "min_value": {"required": False},
                        "max_value": {"required": False}}


class SampleExtensionSerializer(serializers.ModelSerializer):
    attributes = serializers.SlugRelatedField(slug_field="name", many=True, read_only=True)
    decided_by = UserSummarySerializer(read_only=True)

    class Meta:
        model = SampleExtension
        fields = ["id", "cycle_report", "number", "attributes", "failures", "allowed_deviations", "current_size",
                  "new_size", "seed", "rule", "sample_keys", "status", "proposed_at", "decided_by", "decided_at",
                  "decision_note"]
        read_only_fields = fields


class ExtensionDecisionSerializer(serializers.Serializer):
    approve = serializers.BooleanField()
    notes = serializers.CharField(allow_blank=True, required=False, default="", max_length=4000)


class EvidenceLinksSerializer(serializers.Serializer):
    """Empty lists (or none) mean every sample / every attribute of the request."""

    sample_keys = serializers.ListField(child=serializers.CharField(max_length=255), required=False, default=list)
    attribute_ids = serializers.ListField(child=serializers.IntegerField(), required=False, default=list)
