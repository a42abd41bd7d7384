"""Widgets rendered in Python rather than through Django's widget templates.

A page of rows, each with its own form, renders a select per row: Django's
template widgets include a template per option and per attribute list, which
at 25 rows × a dozen options is most of the page's time. These write the same
HTML (django/forms/templates/django/forms/widgets/{select,select_option,input,attrs}.html)
from the same widget context.
"""
from __future__ import annotations

import functools

from django import forms
from django.utils.choices import BaseChoiceIterator
from django.utils.html import escape, format_html
from django.utils.safestring import mark_safe


def _attrs(attrs: dict) -> str:
    # As attrs.html: False leaves the attribute out, True writes its name alone.
    return "".join(
        f" {escape(name)}" if value is True else f' {escape(name)}="{escape(str(value))}"'
        for name, value in attrs.items() if value is not False
    )


@functools.lru_cache(maxsize=8192)
def _option(value: str, label: str, selected: bool) -> str:
    return f'\n  <option value="{escape(value)}"{" selected" if selected else ""}>{escape(label)}</option>'


class PythonSelect(forms.Select):
    """A select whose options are written from a cache: the same few hundred columns or people on every row."""

    def render(self, name, value, attrs=None, renderer=None):
        choices = list(self.choices)
        if any(isinstance(label, (list, tuple)) for _, label in choices):  # option groups: Django's way
            return self._render_groups(name, value, attrs)
        values = self.format_value(value)
        final_attrs = self.build_attrs(self.attrs, attrs)
        if self.allow_multiple_selected:
            final_attrs["multiple"] = True
        parts = [f'<select name="{escape(name)}"{_attrs(final_attrs)}>']
        has_selected = False
        for option_value, label in choices:
            option_value = "" if option_value is None else str(option_value)
            # As Select.optgroups: a single select marks only the first match.
            selected = (not has_selected or self.allow_multiple_selected) and option_value in values
            has_selected |= selected
            parts.append(_option(option_value, str(label), selected))
        parts.append("\n</select>")
        return mark_safe("".join(parts))

    def _render_groups(self, name, value, attrs):
        widget = self.get_context(name, value, attrs)["widget"]
        parts = [f'<select name="{escape(widget["name"])}"{_attrs(widget["attrs"])}>']
        for group_name, options, _ in widget["optgroups"]:
            if group_name:
                parts.append(format_html('\n  <optgroup label="{}">', group_name))
            parts.extend(
                f'\n  <option value="{escape(str(option["value"]))}"{_attrs(option["attrs"])}>'
                f'{escape(option["label"])}</option>'
                for option in options
            )
            if group_name:
                parts.append("\n  </optgroup>")
        parts.append("\n</select>")
        return mark_safe("".join(parts))


class _PythonInput:
    def render(self, name, value, attrs=None, renderer=None):
        widget = self.get_context(name, value, attrs)["widget"]
        value_attr = f' value="{escape(str(widget["value"]))}"' if widget["value"] is not None else ""
        return mark_safe(
            f'<input type="{escape(widget["type"])}" name="{escape(widget["name"])}"{value_attr}{_attrs(widget["attrs"])}>'
        )


class PythonHiddenInput(_PythonInput, forms.HiddenInput):
    pass


class PythonTextInput(_PythonInput, forms.TextInput):
    pass


class PythonSelectMultiple(PythonSelect, forms.SelectMultiple):
    pass


class PythonDateInput(_PythonInput, forms.DateInput):
    pass


class PythonTextarea(forms.Textarea):
    def render(self, name, value, attrs=None, renderer=None):
        widget = self.get_context(name, value, attrs)["widget"]
        text = escape(str(widget["value"])) if widget["value"] else ""
        return mark_safe(f'<textarea name="{escape(widget["name"])}"{_attrs(widget["attrs"])}>\n{text}</textarea>')


class PythonCheckboxSelectMultiple(forms.CheckboxSelectMultiple):
    """As multiple_input.html and input_option.html, for flat choices (option groups: Django's way)."""

    def render(self, name, value, attrs=None, renderer=None):
        if any(isinstance(label, (list, tuple)) for _, label in self.choices):
            return super().render(name, value, attrs, renderer)
        final_attrs = self.build_attrs(self.attrs, attrs)
        element_id = final_attrs.get("id")
        id_attr = f' id="{escape(element_id)}"' if element_id else ""
        class_attr = f' class="{escape(final_attrs["class"])}"' if final_attrs.get("class") else ""
        parts = [f"<div{id_attr}{class_attr}>"]
        for _, options, _ in self.optgroups(name, self.format_value(value), final_attrs):
            for option in options:
                option_id = option["attrs"].get("id")
                for_attr = f' for="{escape(option_id)}"' if option_id else ""
                parts.append(
                    f'<div>\n    <label{for_attr}><input type="{escape(option["type"])}" name="{escape(option["name"])}"'
                    f' value="{escape(str(option["value"]))}"{_attrs(option["attrs"])}> {escape(option["label"])}'
                    f"</label></div>"
                )
        parts.append("\n</div>")
        return mark_safe("".join(parts))


class ReadyChoices(BaseChoiceIterator):
    """Choices built once for a page's many forms: a field takes them as they are (Django normalizes a plain
    list again on every assignment, which at hundreds of choices × dozens of forms is most of a page's time)."""

    def __init__(self, choices):
        self.choices = list(choices)

    def __iter__(self):
        return iter(self.choices)

    def __len__(self):
        return len(self.choices)
