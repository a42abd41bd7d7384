"""Serializers of the Observations API."""
from __future__ import annotations

from rest_framework import serializers

from cycles.models import Observation, ObservationType, RemediationEvent, Severity


class RemediationEventSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor.username", default="", read_only=True)

    class Meta:
        model = RemediationEvent
        fields = ["from_status", "to_status", "actor", "note", "at"]


class ObservationSerializer(serializers.ModelSerializer):
    code = serializers.CharField(read_only=True)
    attribute = serializers.CharField(source="attribute.name", default="", read_only=True)
    remediation_owner = serializers.CharField(source="remediation_owner.username", default="", read_only=True)
    cells = serializers.SerializerMethodField()
    remediation_events = RemediationEventSerializer(many=True, read_only=True)

    class Meta:
        model = Observation
        fields = ["id", "code", "number", "title", "severity", "type", "description", "impact", "root_cause",
                  "remediation_owner", "remediation_target_date", "attribute", "failure_kind", "status", "drafted",
                  "cells", "remediation_events", "updated_at"]

    def get_cells(self, obj) -> list[dict]:
        return [{"id": c.pk, "sample": c.sample.key, "attribute": c.attribute.name} for c in obj.cells.all()]


class ObservationInputSerializer(serializers.Serializer):
    """observation_create / observation_update's arguments (every field optional on update)."""

    title = serializers.CharField(max_length=200, required=False)
    severity = serializers.ChoiceField(choices=Severity.choices, required=False)
    type = serializers.ChoiceField(choices=ObservationType.choices, required=False)
    description = serializers.CharField(allow_blank=True, required=False, max_length=4000)
    impact = serializers.CharField(allow_blank=True, required=False, max_length=4000)
    root_cause = serializers.CharField(allow_blank=True, required=False, max_length=4000)
    remediation_owner = serializers.IntegerField(required=False, allow_null=True, help_text="A user id.")
    remediation_target_date = serializers.DateField(required=False, allow_null=True)
    cell_ids = serializers.ListField(child=serializers.IntegerField(), required=False)


class MergeInputSerializer(serializers.Serializer):
    observation_ids = serializers.ListField(child=serializers.IntegerField(), min_length=2)


class SplitInputSerializer(serializers.Serializer):
    cell_ids = serializers.ListField(child=serializers.IntegerField(), min_length=1)


class RemediationInputSerializer(serializers.Serializer):
    to_status = serializers.ChoiceField(choices=["open", "in_progress", "closed"])
    note = serializers.CharField(allow_blank=True, required=False, default="", max_length=4000)
