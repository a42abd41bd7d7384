"""The worker's watch: its heartbeat, the live state of running workflows, and the alerts that follow
(stuck workflows, undelivered decisions), raised and resolved as their causes come and go.

The worker command runs monitor_sweep every few seconds beside the decision outbox;
/healthz reads the heartbeats. A running workflow's live state is asked for once every
WORKFLOW_LIVE_REFRESH_SECONDS, by one worker's monitor (_refresh_live).
"""
from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from cycles.models import InformationRequest, PhaseState
from synapse.exceptions import ApplicationError
from workflows import alerts
from workflows.models import WorkerHeartbeat, WorkflowAlert, WorkflowDecision, WorkflowExecution
from workflows.temporal.contracts import REPORT_WORKFLOW_TYPE, STATE_FAILED, WaitingOn

logger = logging.getLogger(__name__)


def worker_heartbeat(*, identity: str, task_queue: str, started_at, build_id: str = "", stopped: bool = False):
    now = timezone.now()
    WorkerHeartbeat.objects.update_or_create(
        identity=identity,
        defaults={"task_queue": task_queue, "build_id": build_id, "started_at": started_at, "last_seen_at": now,
                  "stopped_at": now if stopped else None},
    )


def workers_alive(*, within: timedelta | None = None):
    within = within or timedelta(seconds=3 * settings.WORKER_HEARTBEAT_SECONDS)
    return WorkerHeartbeat.objects.filter(stopped_at__isnull=True, last_seen_at__gte=timezone.now() - within)


def _claim_live_check(execution: WorkflowExecution, now) -> bool:
    """Take the execution's next live check: True for the one monitor (of several workers') whose conditional
    write found it due, once every WORKFLOW_LIVE_REFRESH_SECONDS."""
    since = now - timedelta(seconds=settings.WORKFLOW_LIVE_REFRESH_SECONDS)
    if execution.live_checked_at is not None and execution.live_checked_at > since:
        return False  # checked lately, as read at the sweep's start: no write to find that out
    due = Q(live_checked_at__isnull=True) | Q(live_checked_at__lte=since)
    if not WorkflowExecution.objects.filter(due, pk=execution.pk).update(live_checked_at=now):
        return False
    execution.live_checked_at = now
    return True


def _refresh_live(executions, now=None) -> bool:
    """Ask the running workflows that are due where they stand (a status query and a describe each).

    Every worker's monitor sweeps; each workflow is asked by one of them once a refresh interval. Asking
    every workflow at every heartbeat, by every worker, put two calls per workflow and worker on Temporal
    every ten seconds, and a query task on the workers (one call in twenty of a bench round): the waits they
    measure are hours long, and the stuck alert takes an hour without progress.
    """
    from workflows.operations import execution_live_status

    now = now or timezone.now()
    for execution in executions:
        if not _claim_live_check(execution, now):
            continue
        try:
            execution_live_status(execution=execution)
        except ApplicationError as err:
            logger.info("live state of %s not refreshed: %s", execution.workflow_id, err.message)
            # Not asked after all: due again at the next sweep.
            WorkflowExecution.objects.filter(pk=execution.pk, live_checked_at=now).update(live_checked_at=None)
            return False
    return True


def monitor_sweep(*, stuck_after: timedelta | None = None, undelivered_after: timedelta | None = None,
                  refresh: bool = True) -> dict[str, int]:
    """Raise the alerts whose cause is there, resolve those whose cause went away; returns the open counts."""
    now = timezone.now()
    stuck_after = stuck_after or timedelta(minutes=settings.WORKFLOW_STUCK_AFTER_MINUTES)
    undelivered_after = undelivered_after or timedelta(minutes=settings.WORKFLOW_UNDELIVERED_AFTER_MINUTES)
    running = list(WorkflowExecution.objects.filter(status=WorkflowExecution.Status.RUNNING,
                                                    workflow_type=REPORT_WORKFLOW_TYPE))
    if refresh:
        _refresh_live(running, now)
        running = [e for e in running if e.status == WorkflowExecution.Status.RUNNING]

    # Stuck: no progress for a while although it waits on nobody but the system.
    stuck_keys = []
    for execution in running:
        since = execution.last_progress_at or execution.started_at
        if (execution.waiting_on in (WaitingOn.SYSTEM, WaitingOn.NOBODY) and execution.state != STATE_FAILED
                and since < now - stuck_after):
            key = f"{alerts.STUCK}:{execution.workflow_id}"
            stuck_keys.append(key)
            alerts.alert_open(key=key, kind=alerts.STUCK, workflow_id=execution.workflow_id,
                              cycle_report_id=execution.cycle_report_id,
                              message=f"{execution.workflow_id} has made no progress since {since:%Y-%m-%d %H:%M} "
                                      f"in {execution.current_phase or 'its start'} ({execution.state or 'unknown'}).")
    alerts.alerts_resolve(kind=alerts.STUCK, keep_keys=stuck_keys)

    # Decisions stored but not delivered for a while (Temporal away, or a workflow refusing).
    late = WorkflowDecision.objects.filter(status=WorkflowDecision.Status.PENDING,
                                           created_at__lt=now - undelivered_after)
    late_keys = []
    for decision in late:
        key = f"{alerts.UNDELIVERED}:{decision.pk}"
        late_keys.append(key)
        alerts.alert_open(key=key, kind=alerts.UNDELIVERED, workflow_id=decision.workflow_id,
                          cycle_report_id=decision.cycle_report_id,
                          message=f"{decision.update_name} for {decision.workflow_id} has waited since "
                                  f"{decision.created_at:%Y-%m-%d %H:%M} ({decision.attempts} attempts): "
                                  f"{decision.error or 'not delivered yet'}")
    alerts.alerts_resolve(kind=alerts.UNDELIVERED, keep_keys=late_keys)

    _resolve_answered()
    return {kind: WorkflowAlert.objects.filter(kind=kind, resolved_at__isnull=True).count()
            for kind in (alerts.STUCK, alerts.UNDELIVERED, alerts.PHASE_FAILED, "data_owner_sla", "request_overdue")}


def _resolve_answered() -> None:
    """SLA alerts the activities raised go away when the people did what was asked."""
    open_alerts = WorkflowAlert.objects.filter(resolved_at__isnull=True)
    owners_done = PhaseState.objects.filter(phase="data_owner_identification", status=PhaseState.Status.COMPLETED)
    done_keys = [f"data-owner-sla-{cr}" for cr in owners_done.values_list("cycle_report_id", flat=True)]
    answered = InformationRequest.objects.filter(
        Q(status=InformationRequest.Status.SUBMITTED) | Q(status=InformationRequest.Status.ACCEPTED)
    ).values_list("pk", flat=True)
    open_keys = set(open_alerts.filter(kind__in=("data_owner_sla", "request_overdue")).values_list("key", flat=True))
    resolved = [k for k in open_keys if k in set(done_keys) or k in {f"request-overdue-{pk}" for pk in answered}]
    if resolved:
        open_alerts.filter(key__in=resolved).update(resolved_at=timezone.now())
