"""Serializers of reassignments (issue 7): an attribute's data owner, a report's tester."""
from __future__ import annotations

from rest_framework import serializers

from cycles.models import Reassignment
from cycles.serializers.common import UserField, UserSummarySerializer
from cycles.serializers.requests import DataOwnerField

REASON_HELP = "Why the work is reassigned (required; both people see it, the audit trail keeps it)."


class ReassignmentSerializer(serializers.ModelSerializer):
    attribute_id = serializers.IntegerField(source="attribute.id", read_only=True, allow_null=True, default=None)
    attribute_name = serializers.CharField(source="attribute.name", read_only=True, allow_null=True, default=None)
    from_user = UserSummarySerializer(read_only=True)
    to_user = UserSummarySerializer(read_only=True)
    reassigned_by = UserSummarySerializer(read_only=True)
    request_id = serializers.IntegerField(read_only=True, allow_null=True,
                                          help_text="The request the attribute was in when reassigned.")
    new_request_id = serializers.IntegerField(read_only=True, allow_null=True,
                                              help_text="The request split off for the new data owner, if any.")

    class Meta:
        model = Reassignment
        fields = ["id", "kind", "cycle_report", "attribute_id", "attribute_name", "from_user", "to_user", "reason",
                  "reassigned_by", "reassigned_at", "request_id", "new_request_id"]
        read_only_fields = fields


class DataOwnerReassignInputSerializer(serializers.Serializer):
    attribute_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    data_owner_id = DataOwnerField()
    reason = serializers.CharField(max_length=2000, allow_blank=True, help_text=REASON_HELP)


class TesterReassignInputSerializer(serializers.Serializer):
    tester_id = UserField()
    reason = serializers.CharField(max_length=2000, allow_blank=True, help_text=REASON_HELP)
