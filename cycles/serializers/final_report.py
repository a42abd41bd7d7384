"""Serializers of the Final Test Report API: generations, sign-offs, packages, removal."""
from __future__ import annotations

from rest_framework import serializers

from cycles.models import EvidencePackage, FinalReport, SignOff
from cycles.models.reporting import SEND_BACK_TARGETS, SIGN_OFF_ORDER


class SignOffSerializer(serializers.ModelSerializer):
    signer = serializers.CharField(source="signer.username", read_only=True)

    class Meta:
        model = SignOff
        fields = ["id", "role", "decision", "signer", "printed_name", "meaning", "send_back_to", "notes", "signed_at"]


class EvidencePackageSerializer(serializers.ModelSerializer):
    files = serializers.SerializerMethodField()

    class Meta:
        model = EvidencePackage
        fields = ["id", "file_name", "sha256", "size_bytes", "built_at", "files"]

    def get_files(self, obj) -> int:
        return len(obj.manifest)


class FinalReportSerializer(serializers.ModelSerializer):
    sign_offs = SignOffSerializer(many=True, read_only=True)
    next_role = serializers.SerializerMethodField()

    class Meta:
        model = FinalReport
        fields = ["id", "number", "status", "generated_at", "signed_at", "pdf_sha256", "next_role", "sign_offs",
                  "data"]

    def get_next_role(self, obj) -> str | None:
        from cycles.services.final_report import sign_off_next_role

        return sign_off_next_role(obj)


class SignOffInputSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=list(SIGN_OFF_ORDER))
    sign = serializers.BooleanField(default=True)
    send_back_to = serializers.ChoiceField(choices=list(SEND_BACK_TARGETS), required=False, default="",
                                           allow_blank=True)
    notes = serializers.CharField(allow_blank=True, required=False, default="", max_length=4000)


class RemoveReportInputSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=4000)
