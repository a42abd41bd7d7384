"""Forms of the Data Owner Identification and Request for Information pages."""
from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.template.defaultfilters import filesizeformat

from synapse.roles import Role

NOTE_MAX = 4000


def data_owners():
    return get_user_model().objects.filter(groups__name=Role.DATA_OWNER, is_active=True).order_by("username")


class DataOwnerAssignForm(forms.Form):
    """One attribute's data owner (a row of the Data Owner Identification table)."""

    attribute = forms.IntegerField(widget=forms.HiddenInput)
    data_owner = forms.ModelChoiceField(queryset=get_user_model().objects.none(), label="Data owner",
                                        empty_label="— choose —")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["data_owner"].queryset = data_owners()


class BulkDataOwnerForm(forms.Form):
    """One data owner for every ticked attribute."""

    attributes = forms.TypedMultipleChoiceField(
        coerce=int, choices=[], widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Tick at least one attribute."},
    )
    data_owner = forms.ModelChoiceField(queryset=get_user_model().objects.none(), label="Data owner",
                                        empty_label="— choose —")

    def __init__(self, *args, attribute_ids: list[int] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["attributes"].choices = [(pk, pk) for pk in attribute_ids]
        self.fields["data_owner"].queryset = data_owners()


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files from one <input type=file multiple>; each is checked by evidence_upload."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        files = data if isinstance(data, (list, tuple)) else [data] if data else []
        if not files:
            if self.required:
                raise forms.ValidationError("Choose at least one file to upload.", code="required")
            return []
        return [super(MultipleFileField, self).clean(f, initial) for f in files]


class EvidenceUploadForm(forms.Form):
    files = MultipleFileField(label="Evidence files")
    samples = forms.MultipleChoiceField(
        choices=[], required=False, label="Samples these files cover", widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every sample of the request.",
    )
    attributes = forms.TypedMultipleChoiceField(
        coerce=int, choices=[], required=False, label="Attributes these files cover",
        widget=forms.CheckboxSelectMultiple, help_text="None ticked: every attribute of the request.",
    )

    def __init__(self, *args, info_request=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["files"].help_text = evidence_limits()
        if info_request is not None:
            self.fields["samples"].choices = [(k, k) for k in info_request.sample_keys or []]
            self.fields["attributes"].choices = [(a.pk, a.name) for a in info_request.attributes.all()]


def evidence_limits() -> str:
    """The upload limits evidence_upload applies, as the page tells them."""
    from cycles.services.requests import (
        DEFAULT_EXTENSIONS,
        DEFAULT_MAX_BYTES,
        DEFAULT_MAX_FILES,
    )

    extensions = getattr(settings, "EVIDENCE_ALLOWED_EXTENSIONS", DEFAULT_EXTENSIONS)
    if isinstance(extensions, str):
        extensions = extensions.split(",")
    max_bytes = getattr(settings, "EVIDENCE_MAX_BYTES", DEFAULT_MAX_BYTES)
    max_files = getattr(settings, "EVIDENCE_MAX_FILES_PER_UPLOAD", DEFAULT_MAX_FILES)
    return (
        f"Up to {max_files} files at a time, each at most {filesizeformat(max_bytes)}; "
        f"accepted types: {', '.join(sorted(e.strip().lower().lstrip('.') for e in extensions if e.strip()))}."
    )


class EvidenceReviewForm(forms.Form):
    ACCEPT, RETURN = "accept", "return"

    decision = forms.ChoiceField(choices=[(ACCEPT, "Accept"), (RETURN, "Return")], widget=forms.RadioSelect)
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False, max_length=NOTE_MAX)

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("decision") == self.RETURN and not (cleaned.get("note") or "").strip():
            self.add_error("note", "Say what is wrong: a note is required to return a file.")
        return cleaned

    @property
    def accept(self) -> bool:
        return self.cleaned_data["decision"] == self.ACCEPT




class DataOwnerReassignForm(forms.Form):
    """After "Assignments complete": another data owner for one attribute, with a reason (issue 7)."""

    attribute = forms.TypedChoiceField(coerce=int, choices=[], label="Attribute",
                                       error_messages={"required": "Choose the attribute to reassign."})
    data_owner = forms.ModelChoiceField(queryset=get_user_model().objects.none(), label="New data owner",
                                        empty_label="— choose —",
                                        error_messages={"required": "Choose the new data owner."})
    reason = forms.CharField(label="Reason", max_length=2000, widget=forms.Textarea(attrs={"rows": 2}),
                             help_text="Both data owners see it, and the audit trail keeps it.",
                             error_messages={"required": "Say why the attribute is reassigned."})

    def __init__(self, *args, attributes=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["attribute"].choices = [("", "— choose —")] + [
            (a.pk, f"{a.name} (now {a.data_owner_assignment.data_owner})") for a in attributes
        ]
        self.fields["data_owner"].queryset = data_owners()
