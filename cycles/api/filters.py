"""Query filters of the API's lists (django-filter): documented in the schema, a bad value is a 400 naming it."""
from __future__ import annotations

import django_filters
from django import forms

from cycles.models import (
    Attribute, CycleReport, DataType, Frequency, InformationRequest, Phase, Report, Sample, SamplingPlan, TestCycle,
)

MAX_ID = 2**63 - 1


class IdFilter(django_filters.NumberFilter):
    """A whole-number id (NumberFilter would take 1.5)."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


class ReportFilter(django_filters.FilterSet):
    lob = IdFilter(field_name="lob_id")
    frequency = django_filters.ChoiceFilter(choices=Frequency.choices)
    name = django_filters.CharFilter(lookup_expr="icontains", max_length=200, help_text="Name contains.")

    class Meta:
        model = Report
        fields = ["lob", "frequency", "name"]


class CycleFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=TestCycle.Status.choices)
    period_from = django_filters.DateFilter(field_name="period_end", lookup_expr="gte",
                                            help_text="Cycles whose period ends on or after this date.")
    period_to = django_filters.DateFilter(field_name="period_start", lookup_expr="lte",
                                          help_text="Cycles whose period starts on or before this date.")

    class Meta:
        model = TestCycle
        fields = ["status", "period_from", "period_to"]


class CycleReportFilter(django_filters.FilterSet):
    cycle = IdFilter(field_name="cycle_id")
    phase = django_filters.ChoiceFilter(choices=Phase.choices)
    status = django_filters.ChoiceFilter(choices=CycleReport.Status.choices)
    tester = IdFilter(field_name="tester_id")

    class Meta:
        model = CycleReport
        fields = ["cycle", "phase", "status", "tester"]


class AttributeFilter(django_filters.FilterSet):
    cycle_report = IdFilter(field_name="cycle_report_id")
    name = django_filters.CharFilter(lookup_expr="icontains", max_length=200)
    data_type = django_filters.ChoiceFilter(choices=DataType.choices)
    cde = django_filters.BooleanFilter()

    class Meta:
        model = Attribute
        fields = ["cycle_report", "name", "data_type", "cde"]


class SampleFilter(django_filters.FilterSet):
    cycle_report = IdFilter(field_name="cycle_report_id")
    method = django_filters.ChoiceFilter(choices=SamplingPlan.Method.choices)
    key = django_filters.CharFilter(max_length=255)

    class Meta:
        model = Sample
        fields = ["cycle_report", "method", "key"]


class InformationRequestFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=InformationRequest.Status.choices)
    cycle_report = IdFilter(field_name="cycle_report_id")
    owner = IdFilter(field_name="data_owner_id", help_text="The data owner's user id.")
    due_before = django_filters.DateFilter(field_name="due_date", lookup_expr="lte")
    due_after = django_filters.DateFilter(field_name="due_date", lookup_expr="gte")

    class Meta:
        model = InformationRequest
        fields = ["status", "cycle_report", "owner", "due_before", "due_after"]
