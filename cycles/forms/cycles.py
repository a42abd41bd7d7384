"""Forms of the cycle, Planning, Data Profiling and Scoping pages, and version decisions."""
from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model

from cycles.models import DataType, Phase, PopulationFile, Report
from synapse.roles import Role


class CycleCreateForm(forms.Form):
    name = forms.CharField(max_length=200)
    period_start = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    period_end = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    skip_phases = forms.MultipleChoiceField(
        choices=Phase.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Phases the workflow records as skipped for every report of the cycle.",
    )
    rfi_due_days = forms.IntegerField(
        label="RFI due days", min_value=0, max_value=365, initial=10,
        help_text="Days a data owner has to answer a Request for Information.",
    )

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("period_start"), cleaned.get("period_end")
        if start and end and end < start:
            self.add_error("period_end", "The period ends before it starts.")
        return cleaned

    def configuration(self) -> dict:
        return {"skip_phases": self.cleaned_data["skip_phases"], "rfi_due_days": self.cleaned_data["rfi_due_days"]}


def testers():
    return get_user_model().objects.filter(groups__name=Role.TESTER, is_active=True).order_by("username")


class AddReportForm(forms.Form):
    report = forms.ModelChoiceField(queryset=Report.objects.none())
    tester = forms.ModelChoiceField(queryset=get_user_model().objects.none(), required=False)

    def __init__(self, *args, cycle, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["report"].queryset = Report.objects.exclude(cycle_reports__cycle=cycle).order_by("name")
        self.fields["tester"].queryset = testers()


class AssignTesterForm(forms.Form):
    tester = forms.ModelChoiceField(queryset=get_user_model().objects.none())

    def __init__(self, *args, tester_queryset=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tester"].queryset = tester_queryset if tester_queryset is not None else testers()


class CancelCycleForm(forms.Form):
    reason = forms.CharField(max_length=500, required=False)


class AttributeForm(forms.Form):
    """The fields planning.attribute_create / attribute_update take."""

    name = forms.CharField(max_length=200)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    data_type = forms.ChoiceField(choices=DataType.choices, initial=DataType.STRING)
    mandatory = forms.BooleanField(required=False)
    primary_key = forms.BooleanField(required=False)
    cde = forms.BooleanField(label="Critical data element", required=False)
    historical_issues = forms.BooleanField(required=False)
    risk_score = forms.IntegerField(min_value=1, max_value=10, initial=1, help_text="1 (low) to 10 (high).")

    @classmethod
    def initial_for(cls, attribute) -> dict:
        return {name: getattr(attribute, name) for name in cls.base_fields}


class SubmitVersionForm(forms.Form):
    notes = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), required=False, max_length=2000,
        help_text="Anything the approver should know about this version.",
    )


class PopulationUploadForm(forms.Form):
    file = forms.FileField(help_text="CSV, XLSX or Parquet.")
    declared_format = forms.ChoiceField(
        choices=[("", "Detect from the file name"), *PopulationFile.Format.choices], required=False,
        label="Format",
    )


class ScopingDecisionForm(forms.Form):
    IN, OUT = "in", "out"

    attribute = forms.IntegerField(widget=forms.HiddenInput)
    in_scope = forms.ChoiceField(choices=[(IN, "In scope"), (OUT, "Out of scope")], label="Scope")
    rationale = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False, max_length=4000)

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("in_scope") == self.OUT and not (cleaned.get("rationale") or "").strip():
            self.add_error("rationale", "Say why this attribute is out of scope.")
        return cleaned


class VersionDecisionForm(forms.Form):
    """The approver's answer on the approval screen (versioning.views posts it)."""

    APPROVE, SEND_BACK = "approve", "request_changes"

    decision = forms.ChoiceField(
        choices=[(APPROVE, "Approve"), (SEND_BACK, "Request changes")], widget=forms.RadioSelect
    )
    notes = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False, max_length=4000)

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("decision") == self.SEND_BACK and not (cleaned.get("notes") or "").strip():
            self.add_error("notes", "Say what needs to change: notes are required when sending a version back.")
        return cleaned

    @property
    def approve(self) -> bool:
        return self.cleaned_data["decision"] == self.APPROVE


class TesterReassignForm(forms.Form):
    """On a running cycle: another tester for a report, with a reason (issue 7)."""

    cycle_report = forms.TypedChoiceField(coerce=int, choices=[], label="Report",
                                          error_messages={"required": "Choose the report to reassign."})
    tester = forms.ModelChoiceField(queryset=get_user_model().objects.none(), label="New tester",
                                    empty_label="— choose —", error_messages={"required": "Choose the new tester."})
    reason = forms.CharField(label="Reason", max_length=2000, widget=forms.Textarea(attrs={"rows": 2}),
                             help_text="Both testers see it, and the audit trail keeps it.",
                             error_messages={"required": "Say why the report is reassigned."})

    def __init__(self, *args, cycle_reports=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["cycle_report"].choices = [("", "— choose —")] + [
            (cr.pk, f"{cr.report} (now {cr.tester})") for cr in cycle_reports
        ]
        self.fields["tester"].queryset = (
            get_user_model().objects.filter(groups__name=Role.TESTER, is_active=True).order_by("username"))
