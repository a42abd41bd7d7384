"""The Python-rendered widgets (synapse/widgets.py) write the HTML Django's template widgets write."""
import datetime
import re

import pytest
from django import forms

from synapse.widgets import (
    PythonCheckboxSelectMultiple,
    PythonDateInput,
    PythonHiddenInput,
    PythonSelect,
    PythonSelectMultiple,
    PythonTextarea,
    PythonTextInput,
)

CHOICES = [("", "— choose —"), (1, "A & b"), (2, 'x"y'), (None, "none")]
GROUPS = [("Group <1>", [(1, "a"), (2, "b")]), (3, "c")]
ATTRS = {"id": "id_field", "required": True, "aria-describedby": "id_field_helptext"}


def same(html: str) -> str:
    # Only whitespace differs (runs of it, between tags), which HTML doesn't tell apart.
    return re.sub(r">\s+<", "><", re.sub(r"\s+", " ", html)).strip()


@pytest.mark.parametrize("django_widget,python_widget,choices,values", [
    (forms.Select, PythonSelect, CHOICES, [None, 2, "2", "", "9"]),
    (forms.Select, PythonSelect, GROUPS, [None, 2]),
    (forms.SelectMultiple, PythonSelectMultiple, CHOICES, [None, ["1", "2"], []]),
    (forms.CheckboxSelectMultiple, PythonCheckboxSelectMultiple, CHOICES[1:3], [None, ["2"], ["1", "2"]]),
    (forms.CheckboxSelectMultiple, PythonCheckboxSelectMultiple, GROUPS, [["3"]]),
])
def test_choice_widgets(django_widget, python_widget, choices, values):
    for value in values:
        expected = django_widget(choices=choices, attrs={"size": 4}).render("f", value, dict(ATTRS))
        assert same(python_widget(choices=choices, attrs={"size": 4}).render("f", value, dict(ATTRS))) == same(expected)
        # Twice: the second comes from the cache of options.
        assert same(python_widget(choices=choices, attrs={"size": 4}).render("f", value, dict(ATTRS))) == same(expected)


@pytest.mark.parametrize("django_widget,python_widget,values", [
    (forms.HiddenInput, PythonHiddenInput, [None, 5, "a<b"]),
    (forms.TextInput, PythonTextInput, [None, "", 'x"y & z']),
    (forms.DateInput, PythonDateInput, [None, datetime.date(2026, 1, 2), "2026-01-02"]),
    (forms.Textarea, PythonTextarea, [None, "", "a<b\nc"]),
])
def test_value_widgets(django_widget, python_widget, values):
    for value in values:
        expected = django_widget(attrs={"maxlength": 10}).render("f", value, dict(ATTRS))
        assert same(python_widget(attrs={"maxlength": 10}).render("f", value, dict(ATTRS))) == same(expected)


def test_a_single_select_marks_only_the_first_match():
    html = PythonSelect(choices=[("1", "a"), ("1", "again")]).render("f", "1")
    assert html.count("selected") == 1
