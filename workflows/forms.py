"""Forms of the workflow pages: making a cycle recur."""
from django import forms

from workflows.models import CycleSchedule


class CycleScheduleForm(forms.Form):
    name = forms.CharField(
        max_length=200, required=False, label="Name of the cycles",
        widget=forms.TextInput(attrs={"placeholder": "e.g. Retail loans quarterly"}),
        help_text="Each cycle is named “<name> <YYYY-MM>”; this cycle's name when left empty.",
    )
    frequency = forms.ChoiceField(choices=CycleSchedule.Frequency.choices, label="Recurs")


class ScheduleActionForm(forms.Form):
    reason = forms.CharField(max_length=1000, required=False, label="Reason")
