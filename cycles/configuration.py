"""The cycle configuration, typed: what the workflow is given at start, so it must always decode.

One serializer, used by the API (nested in the cycle's create and PATCH
bodies, so the schema shows it) and by cycles.services.cycles for every door
(the page form too): a value of the wrong type, out of range, or naming a
phase or person that doesn't exist is refused before it is stored.
"""
from __future__ import annotations

from django.contrib.auth import get_user_model
from rest_framework import serializers

from cycles.exceptions import ApplicationError
from cycles.models import Phase, default_cycle_configuration
from synapse.roles import Role

MAX_DAYS = 365
# Phases whose versions the report owner (and configured approvers) approve.
APPROVED_PHASES = [Phase.PLANNING, Phase.SCOPING, Phase.SAMPLE_SELECTION, Phase.OBSERVATIONS]


def _days(default: int, minimum: int = 0, **kwargs) -> serializers.IntegerField:
    return serializers.IntegerField(min_value=minimum, max_value=MAX_DAYS, default=default, **kwargs)


class PhaseKeyedField(serializers.DictField):
    """A {phase: value} object whose keys must be phases (of `phases`)."""

    def __init__(self, *, phases, **kwargs):
        self.phases = [str(p) for p in phases]
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        unknown = sorted(set(value) - set(self.phases))
        if unknown:
            raise serializers.ValidationError(
                f"Not a phase here: {', '.join(unknown)}. Expected some of: {', '.join(self.phases)}."
            )
        return value


class CycleConfigurationValuesSerializer(serializers.Serializer):
    skip_phases = serializers.ListField(
        child=serializers.ChoiceField(choices=Phase.choices), max_length=len(Phase), default=list,
        help_text="Phases every report of the cycle skips.",
    )
    approvers = PhaseKeyedField(
        phases=APPROVED_PHASES, default=dict,
        child=serializers.ListField(child=serializers.CharField(max_length=150), max_length=20),
        help_text="{phase: [usernames]}: Report Owners who may approve the phase beside the report's owner.",
    )
    slas = PhaseKeyedField(
        phases=Phase.values, default=dict, child=serializers.IntegerField(min_value=1, max_value=MAX_DAYS),
        help_text="{phase: days}: how long a phase may take before it is overdue.",
    )
    rfi_due_days = _days(10, help_text="Days a data owner has to answer a Request for Information.")
    reminder_days_before = serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=MAX_DAYS), max_length=10, default=lambda: [3, 1],
        help_text="Days before the due date on which data owners are reminded.",
    )
    escalation_days_after = _days(2, help_text="Days after the due date before the data executive is told.")
    data_owner_sla_days = _days(5, help_text="Days the data executive has to assign data owners.")

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError({"non_field_errors": ["The configuration must be an object."]})
        errors = {name: ["Not a setting of the cycle configuration."] for name in sorted(set(data) - set(self.fields))}
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            errors.update(exc.detail)
        if errors:
            raise serializers.ValidationError(errors)
        return value

    def validate_approvers(self, value):
        names = {u for usernames in value.values() for u in usernames}
        found = set(
            get_user_model().objects.filter(
                username__in=names, is_active=True, groups__name=Role.REPORT_OWNER
            ).values_list("username", flat=True)
        )
        # Only names the caller gave are echoed back: nobody learns of a user this way.
        missing = sorted(names - found)
        if missing:
            raise serializers.ValidationError(f"Not an active Report Owner: {', '.join(missing)}.")
        return {phase: list(dict.fromkeys(usernames)) for phase, usernames in value.items()}


def cycle_configuration_clean(configuration) -> dict:
    """The configuration with defaults filled in, or ApplicationError naming every bad setting."""
    data = CycleConfigurationValuesSerializer(data=configuration if configuration is not None else {})
    if not data.is_valid():
        from synapse.api import field_errors, summarise

        errors = {f"configuration.{k}": v for k, v in field_errors(data.errors).items()}
        raise ApplicationError(f"The cycle configuration is not valid: {summarise(errors)}", code="invalid",
                               extra=errors)
    return {**default_cycle_configuration(), **data.validated_data}
