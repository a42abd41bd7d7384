"""Compensation: undo (part of) what a phase wrote, by the phase's strategy, and log it.

Called by the compensate activity (a phase failed beyond its retries, a report
was removed from its running cycle) and by workflows.operations (an admin
reset a report to an earlier phase). The undoing itself is cycles'
(cycles.services.compensation); the strategy per phase is the workflow's
(workflows.temporal.compensation.STRATEGIES).
"""
from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction

from cycles.models import CycleReport
from cycles.services.compensation import phase_rollback
from synapse.audit import audit_record
from workflows import alerts
from workflows.models import CompensationEntry
from workflows.temporal.compensation import STRATEGIES
from workflows.temporal.contracts import NOTIFY, PARTIAL_ROLLBACK, ROLLBACK, SKIP, TRIGGER_PHASE_FAILED

logger = logging.getLogger(__name__)

TRIGGER_TEXT = dict(CompensationEntry.Trigger.choices)


def _people(cycle_report: CycleReport, phase: str) -> list:
    people = [cycle_report.tester, cycle_report.report.owner, cycle_report.cycle.test_manager]
    if phase == "data_owner_identification":
        people.append(cycle_report.report.lob.data_executive)
    if phase == "request_for_information":
        people.extend(r.data_owner for r in cycle_report.information_requests.select_related("data_owner"))
    return [p for p in people if p is not None]


def _notify(cycle_report: CycleReport, *, phase: str, trigger: str, reason: str, undone: dict) -> list[str]:
    to = sorted({p.email for p in _people(cycle_report, phase) if p.email})
    if not to:
        return []
    what = ", ".join(f"{n} {name.replace('_', ' ')}" for name, n in undone.items()) or "nothing was removed"
    body = (
        f"{TRIGGER_TEXT.get(trigger, trigger)}: {cycle_report}, phase {phase.replace('_', ' ')}.\n"
        f"Reason: {reason or '-'}\nUndone: {what}.\n"
    )
    EmailMessage(subject=f"Synapse: {phase.replace('_', ' ')} of {cycle_report.report} was compensated"[:200],
                 body=body, from_email=settings.DEFAULT_FROM_EMAIL, to=to).send(fail_silently=False)
    return to


def compensation_run(
    *, cycle_report_id: int, phase: str, trigger: str, key: str, reason: str = "", user=None,
) -> CompensationEntry:
    """Compensate `phase` (the report's current phase when empty) once per key; returns the log entry.

    A failure while undoing is recorded in the entry (outcome failed), not raised: the
    workflow must go on to wait for an admin, and the log says what didn't happen.
    """
    existing = CompensationEntry.objects.filter(key=key).first()
    if existing is not None:
        return existing
    cycle_report = CycleReport.objects.select_related(
        "report__owner", "report__lob__data_executive", "cycle__test_manager", "tester"
    ).get(pk=cycle_report_id)
    phase = phase or cycle_report.phase
    strategy = STRATEGIES.get(phase, NOTIFY)
    entry = CompensationEntry(
        key=key, cycle_report=cycle_report, workflow_id=cycle_report.workflow_id, phase=phase, strategy=strategy,
        trigger=trigger, triggered_by=user, reason=reason[:4000],
    )
    try:
        with transaction.atomic():
            if strategy in (ROLLBACK, PARTIAL_ROLLBACK):
                entry.undone = phase_rollback(cycle_report=cycle_report, phase=phase)
            elif strategy == SKIP:
                entry.outcome = CompensationEntry.Outcome.MANUAL
    except Exception as err:
        logger.exception("compensation of %s (%s) failed", phase, key)
        entry.outcome, entry.error = CompensationEntry.Outcome.FAILED, f"{type(err).__name__}: {err}"[:4000]
    if strategy == NOTIFY or trigger != TRIGGER_PHASE_FAILED:
        # Whoever worked on the phase learns that it was undone, whatever the strategy.
        try:
            entry.undone = {**entry.undone, "notified": len(
                _notify(cycle_report, phase=phase, trigger=trigger, reason=reason, undone=entry.undone))}
        except Exception as err:
            logger.warning("compensation notice of %s (%s) not sent: %s", phase, key, err)
            entry.outcome, entry.error = CompensationEntry.Outcome.FAILED, f"notice not sent: {err}"[:4000]
    with transaction.atomic():
        entry.save()
        audit_record(actor=user, action=f"compensation.{strategy}", obj=cycle_report, after=entry.undone,
                     context={"phase": phase, "trigger": trigger, "key": key, "outcome": entry.outcome,
                              "reason": reason})
    if trigger == TRIGGER_PHASE_FAILED and strategy != SKIP:
        alerts.alert_open(
            key=alerts.phase_failed_key(cycle_report.workflow_id, phase), kind=alerts.PHASE_FAILED,
            severity="critical", workflow_id=cycle_report.workflow_id, cycle_report_id=cycle_report.pk,
            message=f"{cycle_report}: {phase.replace('_', ' ')} failed beyond its retries: {reason}"[:2000],
        )
    return entry
