"""Forms of the Observations page: an observation's fields, merge, split, remediation."""
from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model

from cycles.models import Observation, ObservationType, Severity
from synapse.widgets import (
    PythonCheckboxSelectMultiple,
    PythonDateInput,
    PythonSelect,
    PythonSelectMultiple,
    PythonTextarea,
    PythonTextInput,
    ReadyChoices,
)

TEXT_MAX = 4000


def remediation_owner_choices() -> list[tuple[int, str]]:
    return [(u.pk, str(u)) for u in get_user_model().objects.filter(is_active=True).order_by("username")]


def cell_choices(cells) -> ReadyChoices:
    """Failed cells as choices: cells, or (pk, sample key, attribute name) rows."""
    return ReadyChoices((str(c[0]), f"{c[1]} × {c[2]}") if isinstance(c, tuple)
                        else (str(c.pk), f"{c.sample.key} × {c.attribute.name}") for c in cells)


def owner_choices(owners) -> ReadyChoices:
    return ReadyChoices([("", "—"), *owners])


class ObservationForm(forms.Form):
    """observation_create / observation_update's keyword arguments; cells are the failed cells it rests on."""

    # Python-rendered widgets: the page has one of these per observation, each listing every failed cell.
    title = forms.CharField(max_length=200, widget=PythonTextInput)
    severity = forms.ChoiceField(choices=Severity.choices, widget=PythonSelect)
    type = forms.ChoiceField(choices=ObservationType.choices, widget=PythonSelect)
    description = forms.CharField(widget=PythonTextarea(attrs={"rows": 3}), max_length=TEXT_MAX, required=False)
    impact = forms.CharField(widget=PythonTextarea(attrs={"rows": 2}), max_length=TEXT_MAX, required=False)
    root_cause = forms.CharField(widget=PythonTextarea(attrs={"rows": 2}), max_length=TEXT_MAX, required=False,
                                 label="Root cause")
    remediation_owner = forms.TypedChoiceField(choices=[], coerce=int, empty_value=None, required=False,
                                               label="Remediation owner", widget=PythonSelect)
    remediation_target_date = forms.DateField(required=False, label="Remediation target date",
                                              widget=PythonDateInput(attrs={"type": "date"}),
                                              help_text="YYYY-MM-DD")
    cells = forms.MultipleChoiceField(choices=[], required=False, label="Failed cells it rests on",
                                      widget=PythonSelectMultiple(attrs={"size": 4}))

    def __init__(self, *args, cells=(), owners=None, prefix=None, **kwargs):
        """``cells`` and ``owners``: lists, or ReadyChoices from cell_choices / owner_choices made once for a
        page's forms."""
        super().__init__(*args, prefix=prefix, **kwargs)
        # One list for every form of the page: a queryset would be read once per form.
        owners = remediation_owner_choices() if owners is None else owners
        self.fields["remediation_owner"].choices = owners if isinstance(owners, ReadyChoices) \
            else owner_choices(owners)
        self.fields["cells"].choices = cells if isinstance(cells, ReadyChoices) else cell_choices(cells)

    @classmethod
    def for_observation(cls, observation: Observation, *, cells, owners=None):
        return cls(
            prefix=f"o{observation.pk}", cells=cells, owners=owners,
            initial={
                "title": observation.title, "severity": observation.severity, "type": observation.type,
                "description": observation.description, "impact": observation.impact,
                "root_cause": observation.root_cause, "remediation_owner": observation.remediation_owner_id,
                "remediation_target_date": observation.remediation_target_date,
                "cells": [str(c.pk) for c in observation.cells.all()],
            },
        )


class MergeForm(forms.Form):
    observations = forms.MultipleChoiceField(choices=[], label="Observations to merge",
                                             widget=PythonCheckboxSelectMultiple)

    def __init__(self, *args, observations=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["observations"].choices = [(str(o.pk), f"{o.code}: {o.title}") for o in observations]


class SplitForm(forms.Form):
    cells = forms.MultipleChoiceField(choices=[], label="Cells to move to a new observation",
                                      widget=PythonCheckboxSelectMultiple)

    def __init__(self, *args, observation: Observation | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        if observation is not None:
            self.fields["cells"].choices = [(str(c.pk), f"{c.sample.key} × {c.attribute.name}")
                                            for c in observation.cells.all()]


class RemediationForm(forms.Form):
    to_status = forms.ChoiceField(choices=[(s, label) for s, label in Observation.Status.choices if s != "draft"],
                                  label="Move to", widget=PythonSelect)
    note = forms.CharField(widget=PythonTextarea(attrs={"rows": 2}), max_length=TEXT_MAX, required=False,
                           help_text="Required to close: how was it remediated?")
