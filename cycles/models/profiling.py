"""Data Profiling's own records: which column holds each attribute, and the rules its values must keep."""
from __future__ import annotations

from django.conf import settings
from django.db import models

from cycles.models.core import Attribute, PopulationFile


class ColumnMapping(models.Model):
    """Which column of a population file holds an attribute (or that none does, and why).

    Matched by name when the file is profiled (decided_by empty: the system's
    match); the tester confirms it, picks another column, or marks the
    attribute "not in this file" with a reason. Each file keeps its own
    mappings, so a replaced file's history stays as it was.
    """

    class Status(models.TextChoices):
        MATCHED = "matched", "Matched by name, to confirm"
        UNMATCHED = "unmatched", "No column found"
        CONFIRMED = "confirmed", "Confirmed"
        NOT_IN_FILE = "not_in_file", "Not in this file"

    population_file = models.ForeignKey(PopulationFile, on_delete=models.CASCADE, related_name="mappings")
    attribute = models.ForeignKey(Attribute, on_delete=models.CASCADE, related_name="mappings")
    column_name = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices)
    reason = models.TextField(blank=True, help_text="Why the attribute is not in this file.")
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text="Empty while the mapping is the system's match by name.",
    )
    decided_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["attribute__name"]
        constraints = [
            models.UniqueConstraint(fields=["population_file", "attribute"], name="uniq_mapping_attribute")
        ]

    def __str__(self):
        return f"{self.attribute.name} → {self.column_name or '—'}"

    @property
    def is_settled(self) -> bool:
        return self.status in (self.Status.CONFIRMED, self.Status.NOT_IN_FILE)


class ProfilingRule(models.Model):
    """A validation rule an attribute's values must keep; profiling counts the rows that break it."""

    class Kind(models.TextChoices):
        RANGE = "range", "Allowed range"
        ALLOWED_VALUES = "allowed_values", "Allowed values"
        PATTERN = "pattern", "Pattern"
        NOT_NULL = "not_null", "Not empty"
        UNIQUE = "unique", "Unique"
        COMPARE = "compare", "Compared with another attribute"

    class Source(models.TextChoices):
        SYSTEM = "system", "Derived by the system"
        LLM = "llm", "Drafted by the language model"
        PERSON = "person", "Written by a person"

    COMPARISONS = ("<", "<=", "=", ">=", ">")

    attribute = models.ForeignKey(Attribute, on_delete=models.CASCADE, related_name="rules")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    params = models.JSONField(
        default=dict,
        blank=True,
        help_text='range {"min": 300, "max": 850}; allowed_values {"values": [...]}; pattern {"regex": "..."}; '
        'compare {"op": "<=", "other": "attribute name"}.',
    )
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.PERSON)
    source_detail = models.CharField(max_length=200, blank=True, help_text="The rule or model that drafted it.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["attribute__name", "id"]

    def __str__(self):
        return f"{self.attribute.name}: {self.label}"

    @property
    def label(self) -> str:
        p = self.params or {}
        if self.kind == self.Kind.RANGE:
            low, high = p.get("min"), p.get("max")
            if low is not None and high is not None:
                return f"between {low} and {high}"
            return f"at least {low}" if low is not None else f"at most {high}"
        if self.kind == self.Kind.ALLOWED_VALUES:
            values = p.get("values") or []
            shown = ", ".join(str(v) for v in values[:6]) + (f" … ({len(values)} values)" if len(values) > 6 else "")
            return f"one of {shown}"
        if self.kind == self.Kind.PATTERN:
            return f"matches {p.get('regex', '')}"
        if self.kind == self.Kind.NOT_NULL:
            return "not empty"
        if self.kind == self.Kind.UNIQUE:
            return "unique"
        return f"{p.get('op', '<=')} {p.get('other', '')}"
