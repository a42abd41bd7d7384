"""API shapes of LOBs, reports, cycles, planning and scoping."""
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from cycles.configuration import CycleConfigurationValuesSerializer
from cycles.models import (
    LOB,
    Attribute,
    CycleReport,
    DataType,
    Frequency,
    Phase,
    Report,
    ScopingDecision,
    TestCycle,
)
from cycles.serializers.common import (
    UserField,
    UserSummarySerializer,
    VisibleLOBField,
    VisibleReportField,
)
from synapse.accounts import can_see_user

# Ids are bigint in the database; a bigger number can't name anything.
MAX_ID = 2**63 - 1

# --- LOBs and reports ---------------------------------------------------------


class LOBSerializer(serializers.ModelSerializer):
    data_executive = serializers.SerializerMethodField(
        help_text="The LOB's data executive; null to those who may not see that user (synapse.accounts)."
    )

    @extend_schema_field(UserSummarySerializer(allow_null=True))
    def get_data_executive(self, lob):
        request = self.context.get("request")
        if request is not None and not can_see_user(request.user, lob.data_executive_id, cache=self.context):
            return None
        return UserSummarySerializer(lob.data_executive).data

    class Meta:
        model = LOB
        fields = ["id", "name", "code", "data_executive"]


class LOBCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=120)
    code = serializers.SlugField(max_length=30)
    data_executive = UserField()

    def validate_name(self, value):
        if LOB.objects.filter(name=value).exists():
            raise serializers.ValidationError("An LOB with this name exists.")
        return value

    def validate_code(self, value):
        if LOB.objects.filter(code=value).exists():
            raise serializers.ValidationError("An LOB with this code exists.")
        return value


class ReportSerializer(serializers.ModelSerializer):
    owner = UserSummarySerializer(read_only=True)
    lob = LOBSerializer(read_only=True)

    class Meta:
        model = Report
        fields = ["id", "name", "regulation", "description", "owner", "lob", "frequency", "fields"]


class ReportFieldSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(allow_blank=True, required=False, default="", max_length=2000)


class ReportCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    regulation = serializers.CharField(max_length=120)
    description = serializers.CharField(allow_blank=True, required=False, default="", max_length=10000)
    owner = UserField()
    lob = VisibleLOBField()
    frequency = serializers.ChoiceField(choices=Frequency.choices, default=Frequency.QUARTERLY)
    fields = ReportFieldSerializer(many=True, required=False, default=list, max_length=2000)

    def validate_name(self, value):
        if Report.objects.filter(name=value).exists():
            raise serializers.ValidationError("A report with this name exists.")
        return value


# --- cycles -------------------------------------------------------------------


class TestCycleSerializer(serializers.ModelSerializer):
    test_manager = UserSummarySerializer(read_only=True)
    report_count = serializers.IntegerField(read_only=True, required=False)

    class Meta:
        model = TestCycle
        fields = [
            "id", "name", "period_start", "period_end", "test_manager", "status", "workflow_id",
            "configuration", "report_count", "created_at", "started_at", "completed_at",
        ]


class CycleCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    period_start = serializers.DateField()
    period_end = serializers.DateField()
    configuration = CycleConfigurationValuesSerializer(required=False)

    def validate(self, attrs):
        if attrs["period_end"] < attrs["period_start"]:
            raise serializers.ValidationError({"period_end": "The period ends before it starts."})
        return attrs


class CycleConfigurationSerializer(serializers.Serializer):
    configuration = CycleConfigurationValuesSerializer()


class CycleReportSerializer(serializers.ModelSerializer):
    cycle = serializers.PrimaryKeyRelatedField(read_only=True)
    cycle_name = serializers.CharField(source="cycle.name", read_only=True)
    report = serializers.PrimaryKeyRelatedField(read_only=True)
    report_name = serializers.CharField(source="report.name", read_only=True)
    tester = UserSummarySerializer(read_only=True)
    report_owner = UserSummarySerializer(source="report.owner", read_only=True)
    phase_display = serializers.CharField(source="get_phase_display", read_only=True)
    status_display = serializers.CharField(source="get_status_display", read_only=True)

    class Meta:
        model = CycleReport
        fields = [
            "id", "cycle", "cycle_name", "report", "report_name", "report_owner", "tester", "phase",
            "phase_display", "status", "status_display", "workflow_id", "skipped_phases", "updated_at",
        ]


class CycleAddReportSerializer(serializers.Serializer):
    report = VisibleReportField()
    tester = UserField(required=False, allow_null=True, default=None)


class CycleReportTesterSerializer(serializers.Serializer):
    tester = UserField()


# --- planning and scoping -------------------------------------------------------


class AttributeSerializer(serializers.ModelSerializer):
    risk_level = serializers.CharField(read_only=True)

    class Meta:
        model = Attribute
        fields = [
            "id", "cycle_report", "name", "description", "data_type", "mandatory", "primary_key", "cde",
            "historical_issues", "risk_score", "risk_level", "source", "created_at", "updated_at",
        ]
        read_only_fields = fields


class AttributeInputSerializer(serializers.Serializer):
    """The editable fields of cycles.services.planning; with partial=True any subset."""

    name = serializers.CharField(max_length=200)
    description = serializers.CharField(allow_blank=True, required=False)
    data_type = serializers.ChoiceField(choices=DataType.choices, required=False)
    mandatory = serializers.BooleanField(required=False)
    primary_key = serializers.BooleanField(required=False)
    cde = serializers.BooleanField(required=False)
    historical_issues = serializers.BooleanField(required=False)
    risk_score = serializers.IntegerField(min_value=1, max_value=10, required=False)


class ScopingDecisionSerializer(serializers.ModelSerializer):
    attribute_name = serializers.CharField(source="attribute.name", read_only=True)
    decided_by = UserSummarySerializer(read_only=True)

    class Meta:
        model = ScopingDecision
        fields = ["id", "attribute", "attribute_name", "in_scope", "rationale", "decided_by", "updated_at"]
        read_only_fields = fields


class ScopingDecideSerializer(serializers.Serializer):
    attribute_id = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    in_scope = serializers.BooleanField()
    rationale = serializers.CharField(allow_blank=True, required=False, default="")


class SubmitVersionSerializer(serializers.Serializer):
    phase = serializers.ChoiceField(choices=Phase.choices)
    notes = serializers.CharField(allow_blank=True, required=False, default="", max_length=4000)
