"""Forms of the Data Profiling page: an attribute's column, the population's key, a validation rule."""
from __future__ import annotations

from django import forms

from cycles.models import ProfilingRule
from cycles.profiling.rules import COMPARISONS
from synapse.widgets import PythonHiddenInput, PythonSelect, PythonTextInput

NOT_IN_FILE = ""


class ColumnMappingForm(forms.Form):
    """One attribute's column, or "not in this file" and why."""

    # Python-rendered widgets: a page has a row of these, each listing every column of the file.
    mapping = forms.IntegerField(widget=PythonHiddenInput)
    column = forms.ChoiceField(label="Column", required=False, widget=PythonSelect)
    reason = forms.CharField(
        label="Why it is not in this file", required=False, max_length=2000, widget=PythonTextInput,
        help_text="Needed only when no column holds it.",
    )

    def __init__(self, *args, columns: list[str], attribute_name: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["column"].choices = [(NOT_IN_FILE, "— not in this file —"), *((c, c) for c in columns)]
        if attribute_name:
            self.fields["column"].label = f"Column of {attribute_name}"

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("column") and not (cleaned.get("reason") or "").strip():
            self.add_error("reason", "Say why this attribute is not in the file, or choose its column.")
        if cleaned.get("column") and (cleaned.get("reason") or "").strip():
            self.add_error("reason", "Leave the reason empty when you choose a column.")
        return cleaned


class KeyResolveForm(forms.Form):
    key_column = forms.ChoiceField(label="Key column", required=False,
                                   help_text="A column whose every value is different and none is blank.")
    reason = forms.CharField(
        label="Why rows are named by row number", required=False, max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Needed when no column is chosen: samples are then named by their row number (1 = first data row).",
    )

    def __init__(self, *args, columns: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["key_column"].choices = [("", "— name rows by row number —"), *((c, c) for c in columns)]

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("key_column") and not (cleaned.get("reason") or "").strip():
            self.add_error("reason", "Choose a key column, or say why rows are named by their row number.")
        return cleaned


class RuleForm(forms.Form):
    """A validation rule; the fields that don't apply to its kind are ignored."""

    # Python-rendered widgets: a page has a row of these, two of whose selects list every attribute.
    attribute = forms.ChoiceField(label="Attribute", widget=PythonSelect)
    kind = forms.ChoiceField(label="Rule", choices=ProfilingRule.Kind.choices, widget=PythonSelect)
    minimum = forms.CharField(label="Lowest allowed", required=False, max_length=50, widget=PythonTextInput)
    maximum = forms.CharField(label="Highest allowed", required=False, max_length=50, widget=PythonTextInput)
    values = forms.CharField(label="Allowed values (comma-separated)", required=False, max_length=4000,
                             widget=PythonTextInput)
    regex = forms.CharField(label="Pattern (regular expression)", required=False, max_length=500,
                            widget=PythonTextInput)
    op = forms.ChoiceField(label="Comparison", choices=[(c, c) for c in COMPARISONS], required=False, initial="<=",
                           widget=PythonSelect)
    other = forms.ChoiceField(label="Compared with", required=False, widget=PythonSelect)

    def __init__(self, *args, attributes: list[str], **kwargs):
        prefix = kwargs.pop("prefix", None)
        super().__init__(*args, prefix=prefix, **kwargs)
        self.fields["attribute"].choices = [(a, a) for a in attributes]
        self.fields["other"].choices = [("", "—"), *((a, a) for a in attributes)]

    def params(self) -> dict:
        data = self.cleaned_data
        kind = data["kind"]
        if kind == ProfilingRule.Kind.RANGE:
            return {"min": data["minimum"].strip() or None, "max": data["maximum"].strip() or None}
        if kind == ProfilingRule.Kind.ALLOWED_VALUES:
            return {"values": data["values"]}
        if kind == ProfilingRule.Kind.PATTERN:
            return {"regex": data["regex"]}
        if kind == ProfilingRule.Kind.COMPARE:
            return {"op": data["op"] or "<=", "other": data["other"]}
        return {}

    @classmethod
    def initial_for(cls, rule: ProfilingRule) -> dict:
        p = rule.params or {}
        return {
            "attribute": rule.attribute.name, "kind": rule.kind,
            "minimum": "" if p.get("min") is None else p["min"], "maximum": "" if p.get("max") is None else p["max"],
            "values": ", ".join(str(v) for v in p.get("values", [])), "regex": p.get("regex", ""),
            "op": p.get("op", "<="), "other": p.get("other", ""),
        }
