"""API shapes of Data Profiling (population files and their profiles) and a report's phase states."""
from rest_framework import serializers

from cycles.models import PhaseState, PopulationFile, ProfileResult
from cycles.serializers.common import UserSummarySerializer


class PopulationFileSerializer(serializers.ModelSerializer):
    uploaded_by = UserSummarySerializer(read_only=True)

    class Meta:
        model = PopulationFile
        fields = [
            "id", "cycle_report", "original_name", "format", "size_bytes", "sha256", "row_count", "columns",
            "status", "error", "uploaded_by", "uploaded_at", "profiled_at", "profile_seconds",
        ]
        read_only_fields = fields


class PopulationUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="CSV, XLSX or Parquet, up to POPULATION_MAX_BYTES.")
    declared_format = serializers.ChoiceField(
        choices=PopulationFile.Format.choices, required=False, allow_blank=True, default="",
        help_text="Left out: detected from the file name.",
    )


class ProfileResultSerializer(serializers.ModelSerializer):
    class Meta:
        model = ProfileResult
        fields = [
            "id", "population_file", "column_name", "attribute", "dtype", "row_count", "null_count", "distinct_count",
            "min_value", "max_value", "top_values", "format_violations", "rule_failures",
        ]
        read_only_fields = fields


class PhaseStateSerializer(serializers.Serializer):
    """One phase of a report: pending (not reached), active, completed or skipped."""

    phase = serializers.CharField()
    phase_display = serializers.CharField()
    status = serializers.ChoiceField(choices=[("pending", "Pending"), *PhaseState.Status.choices])
    current = serializers.BooleanField(help_text="The report's current phase (parallel phases may be active too).")
    started_at = serializers.DateTimeField(allow_null=True)
    completed_at = serializers.DateTimeField(allow_null=True)
