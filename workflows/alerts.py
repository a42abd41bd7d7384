"""Alerts an operator must see: failures beyond retries, SLA breaches, stuck workflows, undelivered decisions.

Raised once per key, emailed to the admins when first raised, and resolved
automatically when the cause goes away (alerts_resolve); the monitoring page
and the admin list the open ones.
"""
from __future__ import annotations

import logging
import threading
import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from synapse.roles import Role
from workflows.models import WorkflowAlert

logger = logging.getLogger(__name__)

PHASE_FAILED = "phase_failed"
STUCK = "workflow_stuck"
UNDELIVERED = "decision_undelivered"


def _admin_addresses() -> list[str]:
    admins = get_user_model().objects.filter(
        Q(is_superuser=True) | Q(groups__name=Role.ADMIN), is_active=True
    ).exclude(email="").values_list("email", flat=True)
    return sorted(set(admins))


def _email_admins(alert: WorkflowAlert) -> None:
    to = _admin_addresses()
    if not to:
        logger.warning("alert %s: no admin has an email address", alert.key)
        return
    body = (
        f"{alert.message}\n\nWorkflow: {alert.workflow_id or '-'}\nSeverity: {alert.severity}\n"
        f"See {getattr(settings, 'SITE_URL', '')}/admin/workflows/workflowalert/{alert.pk}/change/\n"
    )
    try:
        EmailMessage(subject=f"[Synapse alert] {alert.kind}: {alert.message}"[:200].replace("\n", " "),
                     body=body, from_email=settings.DEFAULT_FROM_EMAIL, to=to).send(fail_silently=False)
    except Exception:  # the alert itself is stored; the page and the admin show it either way
        logger.exception("alert %s could not be emailed", alert.key)


def alert_open(*, key: str, kind: str, message: str, workflow_id: str = "", cycle_report_id: int | None = None,
               severity: str = WorkflowAlert.Severity.WARNING) -> WorkflowAlert:
    """Raise an alert once per key (reopen it if it was resolved); email the admins when it opens."""
    with transaction.atomic():
        alert, created = WorkflowAlert.objects.select_for_update().get_or_create(
            key=key,
            defaults={"kind": kind, "message": message, "severity": severity, "workflow_id": workflow_id,
                      "cycle_report_id": cycle_report_id},
        )
        reopened = not created and alert.resolved_at is not None
        if reopened:
            alert.resolved_at = None
            alert.message = message
            alert.save(update_fields=["resolved_at", "message"])
    if created or reopened:
        transaction.on_commit(lambda: _email_admins(alert))
        if kind == PHASE_FAILED:
            transaction.on_commit(_forget_open_failed)
    return alert


def alerts_resolve(*, kind: str, workflow_id: str = "", key_prefix: str = "", keep_keys=()) -> int:
    """Resolve the open alerts of `kind` (for a workflow, or keys starting with a prefix) whose cause is gone."""
    alerts = WorkflowAlert.objects.filter(kind=kind, resolved_at__isnull=True)
    if workflow_id:
        alerts = alerts.filter(workflow_id=workflow_id)
    if key_prefix:
        alerts = alerts.filter(key__startswith=key_prefix)
    if keep_keys:
        alerts = alerts.exclude(key__in=list(keep_keys))
    return alerts.update(resolved_at=timezone.now())


def phase_failed_key(workflow_id: str, phase: str) -> str:
    return f"{PHASE_FAILED}:{workflow_id}:{phase}"


# The workflows with a phase-failed alert open, as this process last read them: (when, generation, ids).
# Every step a worker finishes asks whether its phase's alert is resolved now, and nearly always none is
# open; one query a second answers every step of the process, where an UPDATE per step cost a round trip
# each. An alert opened in this process is seen at once; one opened in another process within
# OPEN_FAILED_SECONDS (and a phase's completion always looks: see phase_failed_resolve's `look`).
OPEN_FAILED_SECONDS = 1.0
_open_failed: tuple[float, int, frozenset[str]] | None = None
_open_failed_generation = 0
_open_failed_lock = threading.Lock()


def _forget_open_failed() -> None:
    global _open_failed, _open_failed_generation
    with _open_failed_lock:
        _open_failed = None
        _open_failed_generation += 1


def _open_failed_workflows() -> frozenset[str]:
    global _open_failed
    now = time.monotonic()
    known = _open_failed
    if known is not None and now - known[0] <= OPEN_FAILED_SECONDS:
        return known[2]
    generation = _open_failed_generation
    ids = frozenset(WorkflowAlert.objects.filter(kind=PHASE_FAILED, resolved_at__isnull=True)
                    .values_list("workflow_id", flat=True).distinct().order_by())
    with _open_failed_lock:
        if generation == _open_failed_generation:  # no alert opened here while reading: the read holds
            _open_failed = (now, generation, ids)
    return ids


def phase_failed_resolve(*, workflow_id: str, phase: str, look: bool = False) -> int:
    """A step of `phase` went through: resolve the phase's failed-beyond-retries alert, if one is open.

    Whether one may be open comes from what the process read in the last second, unless `look`.
    """
    if not look and workflow_id not in _open_failed_workflows():
        return 0
    resolved = alerts_resolve(kind=PHASE_FAILED, key_prefix=phase_failed_key(workflow_id, phase))
    if resolved:
        _forget_open_failed()
    return resolved
