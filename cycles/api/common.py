"""What every cycles API module shares: the schema pass's querysets, role refusals, a decision's response."""
from __future__ import annotations

import functools
from collections.abc import Callable

from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from cycles.exceptions import PermissionDeniedError
from workflows.serializers import DecisionOutcomeSerializer
from workflows.services import DecisionOutcome


def query_int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValueError("Expected a whole number.") from None


def query_choice(choices: list[str]) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if value not in choices:
            raise ValueError(f"Expected one of: {', '.join(choices)}.")
        return value

    return parse


def apply_query_filters(queryset, request, spec: dict[str, tuple[str, Callable[[str], object]]]):
    """Filter by query parameters: spec maps a parameter to (ORM lookup, parser).

    Lists filter with django-filter (cycles.api.filters), which the schema documents; this stays for
    the few views that still filter by hand. A refused value is a 400 naming the parameter.
    """
    errors = {}
    for param, (lookup, parse) in spec.items():
        raw = request.query_params.get(param)
        if raw in (None, ""):
            continue
        try:
            queryset = queryset.filter(**{lookup: parse(raw)})
        except ValueError as err:
            errors[param] = [str(err)]
    if errors:
        raise ValidationError(errors)
    return queryset


def schema_safe(model):
    """get_queryset for drf-spectacular's schema pass, which has no user: an empty queryset of the model."""

    def decorate(get_queryset):
        @functools.wraps(get_queryset)
        def wrapper(self):
            if getattr(self, "swagger_fake_view", False):
                return model.objects.none()
            return get_queryset(self)

        return wrapper

    return decorate


def require(allowed: bool, message: str) -> None:
    """Refuse before reading the body, so a 403 doesn't depend on what was sent (the service checks again)."""
    if not allowed:
        raise PermissionDeniedError(message)


def decision_response(outcome: DecisionOutcome) -> Response:
    """200 when the workflow has the decision; 202 when it is stored for later delivery."""
    http_status = status.HTTP_200_OK if outcome.delivered else status.HTTP_202_ACCEPTED
    return Response(DecisionOutcomeSerializer(outcome).data, status=http_status)


