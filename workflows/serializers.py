"""API shapes of the workflow actions: start, cancel, status, and a decision's outcome."""
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from cycles.models import Phase
from workflows.models import CycleSchedule


class WorkflowStartSerializer(serializers.Serializer):
    """Seed 001's body: {"report_ids": [1, 2, 3], "skip_phases": []}; both optional."""

    report_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1), required=False, max_length=1000, allow_null=True, default=None,
        help_text="Report ids of the cycle to run; all of the cycle's reports when left out.",
    )
    skip_phases = serializers.ListField(
        child=serializers.ChoiceField(choices=Phase.choices), required=False, default=list,
        help_text="Phases to skip, on top of the cycle configuration's skip_phases.",
    )

    def validate_report_ids(self, value):
        if value is not None and not value:
            raise serializers.ValidationError("Give at least one report id, or leave report_ids out for all.")
        return value


class WorkflowCancelSerializer(serializers.Serializer):
    reason = serializers.CharField(allow_blank=True, required=False, default="", max_length=1000)


class DecisionOutcomeSerializer(serializers.Serializer):
    """What became of a decision sent to a workflow (workflows.services.DecisionOutcome)."""

    delivered = serializers.BooleanField()
    message = serializers.CharField()
    reason = serializers.CharField(help_text="Why it is not delivered yet: unreachable, no_worker, busy (or empty).")
    decision_id = serializers.UUIDField(source="decision.id")
    status = serializers.CharField(source="decision.status")
    version_id = serializers.IntegerField(source="result.version_id", allow_null=True, default=None)
    version_number = serializers.IntegerField(source="result.version_number", allow_null=True, default=None)


class WorkflowStartedSerializer(serializers.Serializer):
    workflow_id = serializers.CharField()
    report_workflow_ids = serializers.DictField(child=serializers.CharField(), help_text="cycle report id -> id")


class WorkflowCancelledSerializer(serializers.Serializer):
    workflow_id = serializers.CharField(allow_blank=True)
    message = serializers.CharField()


class WorkflowReportStatusSerializer(serializers.Serializer):
    cycle_report_id = serializers.IntegerField()
    report_id = serializers.IntegerField()
    report_name = serializers.CharField()
    tester = serializers.CharField(allow_null=True)
    phase = serializers.CharField()
    status = serializers.CharField()
    workflow_id = serializers.CharField(allow_blank=True)
    skipped_phases = serializers.ListField(child=serializers.CharField())
    live = serializers.DictField(allow_null=True, help_text="The report workflow's status query, when reachable.")
    live_error = serializers.CharField(allow_null=True)


class WorkflowStatusSerializer(serializers.Serializer):
    cycle_id = serializers.IntegerField()
    cycle_name = serializers.CharField()
    status = serializers.CharField()
    workflow_id = serializers.CharField(allow_blank=True)
    started_at = serializers.DateTimeField(allow_null=True)
    completed_at = serializers.DateTimeField(allow_null=True)
    reports = WorkflowReportStatusSerializer(many=True)


# --- issue 9 ---------------------------------------------------------------------------------


class WorkflowOperationSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=1000, help_text="Why: it goes in the audit trail.")
    phase = serializers.ChoiceField(choices=Phase.choices, required=False,
                                    help_text="reset: the phase to go back to; retry: the failed phase (optional).")


class WorkflowExecutionSerializer(serializers.Serializer):
    workflow_id = serializers.CharField()
    run_id = serializers.CharField()
    workflow_type = serializers.CharField()
    parent_workflow_id = serializers.CharField()
    cycle_id = serializers.IntegerField(allow_null=True)
    cycle_report_id = serializers.IntegerField(allow_null=True)
    status = serializers.CharField()
    current_phase = serializers.CharField()
    state = serializers.CharField()
    waiting_on = serializers.CharField()
    last_error = serializers.CharField()
    started_at = serializers.DateTimeField()
    last_progress_at = serializers.DateTimeField(allow_null=True)
    closed_at = serializers.DateTimeField(allow_null=True)


class WorkflowRetrySerializer(serializers.Serializer):
    workflow_id = serializers.CharField(source="execution.workflow_id")
    activity_type = serializers.CharField()
    activity_id = serializers.CharField()
    attempt = serializers.IntegerField()
    max_attempts = serializers.IntegerField()
    error = serializers.CharField()
    delay_seconds = serializers.FloatField()
    created_at = serializers.DateTimeField()


class CompensationEntrySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    cycle_report_id = serializers.IntegerField(allow_null=True)
    workflow_id = serializers.CharField()
    phase = serializers.CharField()
    strategy = serializers.CharField()
    trigger = serializers.CharField()
    triggered_by = serializers.CharField(source="triggered_by.username", allow_null=True, default=None)
    reason = serializers.CharField()
    undone = serializers.DictField()
    outcome = serializers.CharField()
    error = serializers.CharField()
    created_at = serializers.DateTimeField()


class WorkflowOperationResultSerializer(WorkflowExecutionSerializer):
    message = serializers.CharField(help_text="What the operation did, when it has more to say (retry).")


class WorkflowVersionSerializer(serializers.Serializer):
    workflow_id = serializers.CharField(source="execution.workflow_id")
    run_id = serializers.CharField(source="execution.run_id")
    build_id = serializers.CharField()
    patches = serializers.ListField(child=serializers.CharField())
    first_seen_at = serializers.DateTimeField()


class WorkflowMetricsQuerySerializer(serializers.Serializer):
    cycle = serializers.IntegerField(min_value=1, max_value=2**63 - 1, required=False,
                                     help_text="Only this cycle (one you can see).")


class _PhaseDurationSerializer(serializers.Serializer):
    phase = serializers.CharField()
    count = serializers.IntegerField()
    p50_hours = serializers.FloatField()
    p90_hours = serializers.FloatField()
    p99_hours = serializers.FloatField()


class _WaitingSerializer(serializers.Serializer):
    who = serializers.CharField()
    reports = serializers.IntegerField()
    hours = serializers.FloatField()


class _CycleProgressSerializer(serializers.Serializer):
    cycle_id = serializers.IntegerField()
    name = serializers.CharField()
    status = serializers.CharField()
    reports = serializers.IntegerField()
    phases_done = serializers.IntegerField()
    phases_total = serializers.IntegerField()
    percent = serializers.IntegerField()


class WorkflowMetricsSerializer(serializers.Serializer):
    """workflows.metrics.WorkflowMetrics.as_dict(): what the monitoring page draws."""

    phase_durations = _PhaseDurationSerializer(many=True)
    waiting_by_role = _WaitingSerializer(many=True, help_text="Running reports waiting on each role now, and since when.")
    waited_by_role = _WaitingSerializer(many=True, help_text="Hours each role has kept reports waiting, over their lives.")
    bottleneck_phases = _PhaseDurationSerializer(many=True)
    bottleneck_people = _WaitingSerializer(many=True)
    completion_rate = serializers.FloatField()
    failure_rate = serializers.FloatField()
    retry_rate = serializers.FloatField()
    throughput_by_week = serializers.DictField(child=serializers.IntegerField(), help_text="ISO week → reports done.")
    sla_breaches_by_week = serializers.DictField(child=serializers.IntegerField())
    open_alerts = serializers.IntegerField()
    cycles = _CycleProgressSerializer(many=True)


# --- recurring cycles (issue 9, part 8) ------------------------------------------------------------


class CycleScheduleCreateSerializer(serializers.Serializer):
    frequency = serializers.ChoiceField(choices=CycleSchedule.Frequency.choices)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="",
                                 help_text="Each cycle is named '<name> <YYYY-MM>'; the template's name by default.")


class CycleScheduleSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    template = serializers.IntegerField(source="template_id")
    template_name = serializers.CharField(source="template.name")
    frequency = serializers.ChoiceField(choices=CycleSchedule.Frequency.choices)
    paused = serializers.BooleanField()
    schedule_id = serializers.CharField(help_text="The Temporal Schedule's id.")
    created_by = serializers.CharField(source="created_by.username")
    created_at = serializers.DateTimeField()
    cycles_made = serializers.IntegerField(help_text="Cycles this schedule has created.")
    next_run = serializers.SerializerMethodField(help_text="When the calendar fires next (UTC), paused or not.")

    @extend_schema_field(OpenApiTypes.DATETIME)
    def get_next_run(self, schedule):
        from workflows.schedules import schedule_next_run

        return serializers.DateTimeField().to_representation(schedule_next_run(schedule.frequency))


class CycleScheduleActionSerializer(serializers.Serializer):
    reason = serializers.CharField(allow_blank=True, required=False, default="", max_length=1000)
