"""Forms of the Final Test Report page: a sign-off or a send-back, and removing a report from its cycle."""
from __future__ import annotations

from django import forms

from cycles.models.reporting import SEND_BACK_TARGETS

NOTE_MAX = 4000


class SignOffForm(forms.Form):
    """workflow_sign_off's arguments; the role is the signer's turn, shown with what the signature means."""

    decision = forms.ChoiceField(choices=[("sign", "Sign the report"), ("send_back", "Send it back")],
                                 widget=forms.RadioSelect, initial="sign")
    send_back_to = forms.ChoiceField(choices=[("", "—"), *SEND_BACK_TARGETS.items()], required=False,
                                     label="What it reopens", help_text="Only for a send-back.")
    notes = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=NOTE_MAX, required=False,
                            help_text="Required for a send-back: what needs to change.")

    def clean(self):
        data = super().clean()
        if data.get("decision") == "send_back":
            if not data.get("send_back_to"):
                self.add_error("send_back_to", "Choose what the send-back reopens.")
            if not (data.get("notes") or "").strip():
                self.add_error("notes", "Say what needs to change.")
        return data


class RemoveReportForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=NOTE_MAX,
                             label="Why is the report removed from the cycle?")
