"""Reads of the workflow tracking tables."""
from __future__ import annotations

from django.db.models import QuerySet

from workflows.models import WorkflowAlert


def alerts_open_for_cycle(*, cycle) -> QuerySet[WorkflowAlert]:
    """Unresolved alerts (SLA breaches, overdue requests) of the cycle's reports, newest first.

    The caller has already checked that the user may see the cycle.
    """
    return (
        WorkflowAlert.objects.filter(cycle_report__cycle=cycle, resolved_at__isnull=True)
        .select_related("cycle_report__report")
        .order_by("-created_at")
    )
