"""Forms of the Sample Selection page."""
from __future__ import annotations

from decimal import Decimal

from django import forms

from cycles.models import RiskLevel, SamplingPlan
from cycles.sampling.selection import MAX_SEED
from synapse.widgets import PythonHiddenInput

NOTE_MAX = 4000


def _column_choices(columns: list[str], empty: str) -> list[tuple[str, str]]:
    return [("", empty), *((c, c) for c in columns)]


class SamplingPlanForm(forms.Form):
    """The tester's sampling settings: sampling_plan_update's keyword arguments."""

    RATE = {"max_digits": 4, "decimal_places": 3, "min_value": Decimal("0"), "max_value": Decimal("0.999")}

    size_rule = forms.ChoiceField(choices=SamplingPlan.SizeRule.choices, label="Size rule")
    risk = forms.ChoiceField(choices=RiskLevel.choices, help_text="The row of the frequency table to use.")
    risk_of_overreliance = forms.DecimalField(
        **RATE, label="Risk of overreliance", help_text="Statistical rule only: e.g. 0.05 for 95% confidence."
    )
    tolerable_rate = forms.DecimalField(**RATE, help_text="Statistical rule only: e.g. 0.05 for 5%.")
    expected_rate = forms.DecimalField(**RATE, help_text="Statistical rule only: deviations you expect.")
    override_size = forms.IntegerField(
        min_value=1, required=False, label="Override the size",
        help_text="Leave empty to use the rule's size.",
    )
    override_reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), required=False, max_length=NOTE_MAX,
        label="Reason for the override",
    )
    method = forms.ChoiceField(choices=SamplingPlan.Method.choices)
    stratify_by = forms.ChoiceField(choices=[], required=False, label="Stratify by",
                                    help_text="Stratified draws: the column whose values form the strata.")
    min_per_stratum = forms.IntegerField(min_value=0, initial=1, label="Minimum per stratum")
    risk_column = forms.ChoiceField(choices=[], required=False, label="Risk column",
                                    help_text="Risk-based draws: the numeric column to rank rows by.")
    seed = forms.IntegerField(min_value=0, max_value=MAX_SEED, required=False,
                              help_text="Empty: a new seed is drawn and recorded.")

    def __init__(self, *args, columns: list[str] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["stratify_by"].choices = _column_choices(list(columns), "— none —")
        self.fields["risk_column"].choices = _column_choices(list(columns), "— rows with empty mandatory values —")

    @classmethod
    def initial_for(cls, plan: SamplingPlan) -> dict:
        return {name: getattr(plan, name) for name in cls.base_fields}

    def clean(self):
        cleaned = super().clean()
        override, reason = cleaned.get("override_size"), (cleaned.get("override_reason") or "").strip()
        if override is not None and not reason:
            self.add_error("override_reason", "Say why the sample size is overridden.")
        if override is None and reason and "override_size" not in self.errors:
            self.add_error("override_size", "Give the sample size that overrides the rule, not only the reason.")
        if cleaned.get("method") == SamplingPlan.Method.STRATIFIED and not cleaned.get("stratify_by"):
            self.add_error("stratify_by", "Choose the column whose values form the strata.")
        return cleaned

    def plan_fields(self) -> dict:
        return {name: self.cleaned_data[name] for name in self.base_fields}


class ManualSampleForm(forms.Form):
    key = forms.CharField(max_length=255, help_text="The row's primary-key value, or its row number.")
    reason = forms.CharField(max_length=NOTE_MAX, help_text="Why this row is picked by hand.")


class SampleDecisionForm(forms.Form):
    """The report owner's decision on one sample of a submitted Sample Selection version."""

    APPROVE, REJECT = "approve", "reject"

    item = forms.IntegerField(widget=PythonHiddenInput)  # one per row of the version page
    item_decision = forms.ChoiceField(choices=[(APPROVE, "Approve"), (REJECT, "Reject")])
    note = forms.CharField(required=False, max_length=NOTE_MAX)

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("item_decision") == self.REJECT and not (cleaned.get("note") or "").strip():
            self.add_error("note", "Say why the sample is rejected: a note is required.")
        return cleaned

    @property
    def approve(self) -> bool:
        return self.cleaned_data["item_decision"] == self.APPROVE
