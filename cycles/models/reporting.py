"""Finalize Test Report: the generated report, its sign-offs, the sealed evidence package, removals.

A report is sealed once its last sign-off (the data executive's) is recorded:
from then on its evidence, results, observations and approved versions can't
change, which database triggers enforce (migration 0007) whatever code path tries.
"""
from django.conf import settings
from django.db import models
from django.db.models import Q

from cycles.models.core import CycleReport, Phase


class SignOffRole(models.TextChoices):
    """Who signs a final test report, in signing order."""

    TEST_MANAGER = "test_manager", "Test Manager"
    REPORT_OWNER = "report_owner", "Report Owner"
    DATA_EXECUTIVE = "data_executive", "Data Executive"


SIGN_OFF_ORDER: tuple[str, ...] = (SignOffRole.TEST_MANAGER, SignOffRole.REPORT_OWNER, SignOffRole.DATA_EXECUTIVE)

# What each signature means (21 CFR Part 11: the printed name, the time and the meaning of a signature).
SIGN_OFF_MEANING = {
    SignOffRole.TEST_MANAGER: "I confirm the testing was performed as planned and the results are complete.",
    SignOffRole.REPORT_OWNER: "I accept the results and observations of this report as accountable owner.",
    SignOffRole.DATA_EXECUTIVE: "I acknowledge the results and the remediation owed by my line of business.",
}

# What a send-back may reopen: the report itself (regenerate) or a phase before it.
SEND_BACK_TARGETS = {
    Phase.FINALIZE: "The report (regenerate it)",
    Phase.OBSERVATIONS: "Observations",
    Phase.TEST_EXECUTION: "Test Execution",
}


class FinalReport(models.Model):
    """One generation of a report's final test report: its figures, HTML and PDF.

    Generated from the data, never typed. A send-back supersedes it; the next
    generation starts the sign-offs again.
    """

    class Status(models.TextChoices):
        AWAITING_SIGN_OFF = "awaiting_sign_off", "Awaiting sign-off"
        SENT_BACK = "sent_back", "Sent back"
        SIGNED = "signed", "Signed off"

    cycle_report = models.ForeignKey(CycleReport, on_delete=models.PROTECT, related_name="final_reports")
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.AWAITING_SIGN_OFF)
    data = models.JSONField(help_text="The figures the report was generated from (scope, samples, results, ...).")
    html = models.TextField()
    pdf = models.FileField(upload_to="final_reports/%Y/%m/")
    pdf_sha256 = models.CharField(max_length=64)
    request_key = models.CharField(
        max_length=200, unique=True, help_text="Workflow id and generation: makes generation idempotent."
    )
    generated_at = models.DateTimeField(auto_now_add=True)
    signed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["cycle_report_id", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["cycle_report", "number"], name="uniq_final_report_number"),
            models.UniqueConstraint(
                fields=["cycle_report"], condition=Q(status="signed"), name="uniq_signed_final_report"
            ),
        ]

    def __str__(self):
        return f"Final test report {self.number} of {self.cycle_report}"


class SignOff(models.Model):
    """One signature (or send-back) of a final report: who, when, in which role, meaning what."""

    class Decision(models.TextChoices):
        SIGNED = "signed", "Signed"
        SENT_BACK = "sent_back", "Sent back"

    final_report = models.ForeignKey(FinalReport, on_delete=models.PROTECT, related_name="sign_offs")
    role = models.CharField(max_length=20, choices=SignOffRole.choices)
    decision = models.CharField(max_length=10, choices=Decision.choices)
    signer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="sign_offs")
    printed_name = models.CharField(max_length=200, help_text="The signer's name as it was when they signed.")
    meaning = models.TextField(help_text="What the signature means, as shown to the signer.")
    send_back_to = models.CharField(max_length=40, choices=Phase.choices, blank=True)
    notes = models.TextField(blank=True)
    request_id = models.UUIDField(unique=True, help_text="The decision that recorded it (idempotent).")
    signed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["final_report_id", "signed_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["final_report", "role"], condition=Q(decision="signed"), name="uniq_sign_off_per_role"
            ),
            models.CheckConstraint(
                condition=Q(decision="signed", send_back_to="") | (Q(decision="sent_back") & ~Q(send_back_to="")),
                name="sign_off_send_back_names_target",
            ),
        ]

    def __str__(self):
        return f"{self.get_role_display()} {self.get_decision_display().lower()} by {self.printed_name}"


def package_path(instance, filename):
    return f"packages/{instance.final_report.cycle_report_id}/{filename}"


class EvidencePackage(models.Model):
    """The sealed zip of a signed report: PDF, evidence, matrix, samples, observations, trails, manifest."""

    final_report = models.OneToOneField(FinalReport, on_delete=models.PROTECT, related_name="package")
    file = models.FileField(upload_to=package_path)
    file_name = models.CharField(max_length=255)
    sha256 = models.CharField(max_length=64)
    size_bytes = models.BigIntegerField()
    manifest = models.JSONField(help_text='{"path in zip": "sha256", ...}')
    built_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-built_at"]

    def __str__(self):
        return self.file_name


class CycleReportRemoval(models.Model):
    """A report taken out of a running cycle, and why: the cycle completes without it."""

    cycle_report = models.OneToOneField(CycleReport, on_delete=models.PROTECT, related_name="removal")
    reason = models.TextField()
    removed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    removed_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"{self.cycle_report} removed: {self.reason[:60]}"


class PhaseReopening(models.Model):
    """A phase opened again by a send-back of the final report: a new version may follow its approved one."""

    cycle_report = models.ForeignKey(CycleReport, on_delete=models.PROTECT, related_name="reopenings")
    phase = models.CharField(max_length=40, choices=Phase.choices)
    sign_off = models.ForeignKey(SignOff, on_delete=models.PROTECT, related_name="reopenings")
    reopened_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["cycle_report_id", "-reopened_at"]
        constraints = [models.UniqueConstraint(fields=["sign_off", "phase"], name="uniq_reopening_per_sign_off")]

    def __str__(self):
        return f"{self.get_phase_display()} reopened for {self.cycle_report}"
