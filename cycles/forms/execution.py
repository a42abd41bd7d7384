"""Forms of the Test Execution page: a cell's result, bulk actions, an attribute's rule, an extension decision."""
from __future__ import annotations

from django import forms

from cycles.models import ExecutionRule, FailureKind, TestResultValue
from cycles.services.execution import BulkAction
from synapse.widgets import PythonSelect, PythonTextInput

TEXT_MAX = 4000

OUTCOMES = [(v, label) for v, label in TestResultValue.choices if v != TestResultValue.NOT_TESTED]
FAILURE_KINDS = [(v, label) for v, label in FailureKind.choices if v]


class TestResultForm(forms.Form):
    """The tester's result for one cell: test_result_record's keyword arguments."""

    __test__ = False  # not a pytest class

    outcome = forms.ChoiceField(choices=OUTCOMES, label="Result", widget=forms.RadioSelect)
    observed_value = forms.CharField(required=False, max_length=TEXT_MAX, label="Observed value",
                                     help_text="What the evidence shows for this sample and attribute.")
    failure_kind = forms.ChoiceField(choices=[("", "—"), *FAILURE_KINDS], required=False, label="Kind of failure",
                                     help_text="Failures only; observations are grouped by it.")
    comment = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False, max_length=TEXT_MAX,
                              help_text="Required unless the cell passes.")
    evidence = forms.MultipleChoiceField(choices=[], required=False, widget=forms.CheckboxSelectMultiple,
                                         label="Evidence relied on",
                                         help_text="Accepted files of the request that cover this cell.")

    def __init__(self, *args, evidence_choices=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["evidence"].choices = list(evidence_choices)

    def service_fields(self) -> dict:
        data = self.cleaned_data
        return {
            "outcome": data["outcome"],
            "observed_value": data["observed_value"],
            "failure_kind": data["failure_kind"],
            "comment": data["comment"],
            "evidence_ids": [int(i) for i in data["evidence"]],
        }


class BulkResultsForm(forms.Form):
    action = forms.ChoiceField(choices=BulkAction.choices, label="Action on the selected cells", widget=PythonSelect)
    comment = forms.CharField(required=False, max_length=TEXT_MAX, label="Comment",
                              help_text="Required to mark cells not applicable.")
    cells = forms.TypedMultipleChoiceField(coerce=int, choices=[], label="Cells", required=False)

    def __init__(self, *args, cell_ids=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["cells"].choices = [(i, i) for i in cell_ids]


class ExecutionRuleForm(forms.Form):
    # Python-rendered selects: they list every in-scope attribute and every column of the population file.
    attribute = forms.TypedChoiceField(coerce=int, choices=[], label="Attribute", widget=PythonSelect)
    kind = forms.ChoiceField(choices=ExecutionRule.Kind.choices, label="Rule", widget=PythonSelect)
    source_column = forms.ChoiceField(choices=[], required=False, label="Source column", widget=PythonSelect,
                                      help_text="Equality and tolerance: the column with the source system's value.")
    tolerance = forms.DecimalField(required=False, min_value=0, max_digits=20, decimal_places=6,
                                   help_text="Tolerance: the largest absolute difference.")
    pattern = forms.CharField(required=False, max_length=500, label="Format (regular expression)",
                              widget=PythonTextInput)
    min_value = forms.DecimalField(required=False, max_digits=24, decimal_places=6, label="Minimum")
    max_value = forms.DecimalField(required=False, max_digits=24, decimal_places=6, label="Maximum")

    def __init__(self, *args, attributes=(), columns=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["attribute"].choices = [(a.pk, a.name) for a in attributes]
        self.fields["source_column"].choices = [("", "— none —"), *((c, c) for c in columns)]

    def rule_fields(self) -> dict:
        data = dict(self.cleaned_data)
        data.pop("attribute")
        return data


class ExtensionDecisionForm(forms.Form):
    decision = forms.ChoiceField(choices=[("approve", "Approve the extension"), ("reject", "Reject it")],
                                 widget=forms.RadioSelect, label="Decision")
    notes = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False, max_length=TEXT_MAX,
                            label="Notes", help_text="Required to reject: why the failures don't call for more samples.")
