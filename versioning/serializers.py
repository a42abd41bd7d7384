"""API shapes of versions, their items, diffs and approvals."""
from rest_framework import serializers

from cycles.serializers.common import UserSummarySerializer
from versioning.models import Approval, Version, VersionItem
from versioning.selectors import VersionDiff


class VersionItemSerializer(serializers.ModelSerializer):
    decided_by = UserSummarySerializer(read_only=True)

    class Meta:
        model = VersionItem
        fields = ["id", "key", "data", "decision", "decision_note", "decided_by", "decided_at"]
        read_only_fields = fields


class ApprovalSummarySerializer(serializers.ModelSerializer):
    decided_by = UserSummarySerializer(read_only=True)

    class Meta:
        model = Approval
        fields = ["id", "decision", "notes", "decided_by", "created_at"]
        read_only_fields = fields


class VersionSerializer(serializers.ModelSerializer):
    author = UserSummarySerializer(read_only=True)
    phase_display = serializers.CharField(source="get_phase_display", read_only=True)
    approval = serializers.SerializerMethodField()

    class Meta:
        model = Version
        fields = [
            "id", "cycle_report", "phase", "phase_display", "number", "status", "parent", "author", "notes",
            "approval", "workflow_id", "workflow_step", "created_at", "submitted_at", "decided_at",
        ]
        read_only_fields = fields

    def get_approval(self, version) -> dict | None:
        try:
            approval = version.approval
        except Approval.DoesNotExist:
            return None
        return ApprovalSummarySerializer(approval).data


class VersionDetailSerializer(VersionSerializer):
    items = VersionItemSerializer(many=True, read_only=True)

    class Meta(VersionSerializer.Meta):
        fields = [*VersionSerializer.Meta.fields, "items"]
        read_only_fields = fields


class ApprovalSerializer(serializers.ModelSerializer):
    decided_by = UserSummarySerializer(read_only=True)
    cycle_report = serializers.IntegerField(source="version.cycle_report_id", read_only=True)
    phase = serializers.CharField(source="version.phase", read_only=True)
    version_number = serializers.IntegerField(source="version.number", read_only=True)

    class Meta:
        model = Approval
        fields = [
            "id", "version", "version_number", "cycle_report", "phase", "decision", "notes", "decided_by",
            "workflow_id", "created_at",
        ]
        read_only_fields = fields


class VersionDecideSerializer(serializers.Serializer):
    approve = serializers.BooleanField()
    notes = serializers.CharField(allow_blank=True, required=False, default="", max_length=4000)


class _ChangedItemSerializer(serializers.Serializer):
    key = serializers.CharField()
    fields = serializers.DictField(help_text="Each changed field as {old, new}.")


class VersionDiffSerializer(serializers.Serializer):
    """The shape version_diff_data gives (for the schema)."""

    old = serializers.IntegerField(allow_null=True)
    old_number = serializers.IntegerField(allow_null=True)
    new = serializers.IntegerField()
    new_number = serializers.IntegerField()
    added = VersionItemSerializer(many=True)
    removed = VersionItemSerializer(many=True)
    changed = _ChangedItemSerializer(many=True)
    unchanged = serializers.IntegerField()
    is_empty = serializers.BooleanField()


def version_diff_data(diff: VersionDiff) -> dict:
    """The diff as JSON: items added and removed, and each changed item's fields as {old, new}."""
    return {
        "old": diff.old.pk if diff.old else None,
        "old_number": diff.old.number if diff.old else None,
        "new": diff.new.pk,
        "new_number": diff.new.number,
        "added": VersionItemSerializer(diff.added, many=True).data,
        "removed": VersionItemSerializer(diff.removed, many=True).data,
        "changed": [
            {"key": change.key, "fields": {name: {"old": old, "new": new} for name, (old, new) in change.fields.items()}}
            for change in diff.changed
        ],
        "unchanged": diff.unchanged,
        "is_empty": diff.is_empty,
    }
