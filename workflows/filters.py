"""Query filters of the workflow API's lists (django-filter): documented in the schema, a bad value is a 400."""
from __future__ import annotations

import django_filters

from cycles.api.filters import IdFilter
from cycles.models import Phase
from workflows.models import CompensationEntry, WorkflowExecution, WorkflowRetry, WorkflowVersion

WORKFLOW_ID_MAX = 200  # WorkflowExecution.workflow_id's length


class WorkflowExecutionFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=WorkflowExecution.Status.choices)
    phase = django_filters.ChoiceFilter(field_name="current_phase", choices=Phase.choices,
                                        help_text="The phase the run is in.")
    waiting_on = django_filters.CharFilter(lookup_expr="icontains", max_length=60,
                                           help_text="Who the run waits on contains this.")
    cycle = IdFilter(field_name="cycle_id")

    class Meta:
        model = WorkflowExecution
        fields = ["status", "phase", "waiting_on", "cycle"]


class WorkflowRetryFilter(django_filters.FilterSet):
    workflow_id = django_filters.CharFilter(field_name="execution__workflow_id", max_length=WORKFLOW_ID_MAX)

    class Meta:
        model = WorkflowRetry
        fields = ["workflow_id"]


class CompensationEntryFilter(django_filters.FilterSet):
    cycle_report = IdFilter(field_name="cycle_report_id")
    phase = django_filters.ChoiceFilter(choices=Phase.choices)
    trigger = django_filters.ChoiceFilter(choices=CompensationEntry.Trigger.choices)

    class Meta:
        model = CompensationEntry
        fields = ["cycle_report", "phase", "trigger"]


class WorkflowVersionFilter(django_filters.FilterSet):
    workflow_id = django_filters.CharFilter(field_name="execution__workflow_id", max_length=WORKFLOW_ID_MAX)

    class Meta:
        model = WorkflowVersion
        fields = ["workflow_id"]
