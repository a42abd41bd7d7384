"""Planning services: a report's attributes, drafted by an LLM provider and edited by the tester."""
from __future__ import annotations

from django.db import transaction

from cycles.exceptions import ApplicationError, ConflictError, NotFoundError, PermissionDeniedError, PhaseLockedError
from cycles.llm import LLMProvider, get_provider
from cycles.models import Attribute, CycleReport, DataType, Phase
from cycles.permissions import can_work_on
from cycles.services.artifacts import phase_lock_reason
from synapse.audit import audit_record, snapshot

EDITABLE_FIELDS = ("name", "description", "data_type", "mandatory", "primary_key", "cde", "historical_issues",
                   "risk_score")
BOOLEAN_FIELDS = ("mandatory", "primary_key", "cde", "historical_issues")
AUDITED_FIELDS = [*EDITABLE_FIELDS, "source"]


def _planning_lock_reason(cycle_report: CycleReport) -> str | None:
    """Why the attributes can't change now, or None when they can."""
    return phase_lock_reason(cycle_report, Phase.PLANNING)


def planning_is_editable(cycle_report: CycleReport) -> bool:
    """True in the Planning phase while the latest planning version is neither submitted nor approved."""
    return _planning_lock_reason(cycle_report) is None


def _lock_for_edit(*, user, cycle_report: CycleReport) -> CycleReport:
    """Check permission, then lock the report row and check the phase under the lock.

    The lock serialises attribute writes of one report (drafts, edits), so the
    phase check can't race a submission and names can't race each other.
    """
    if not can_work_on(user, cycle_report):
        raise PermissionDeniedError("Only the tester assigned to this report can change its attributes.")
    locked = CycleReport.objects.select_for_update(no_key=True).get(pk=cycle_report.pk)
    reason = _planning_lock_reason(locked)
    if reason:
        raise PhaseLockedError(reason)
    return locked


def _clean(fields: dict, *, partial: bool) -> dict:
    unknown = sorted(set(fields) - set(EDITABLE_FIELDS))
    if unknown:
        raise ApplicationError(f"Unknown attribute fields: {', '.join(unknown)}.")
    cleaned = dict(fields)
    if "name" in cleaned or not partial:
        name = cleaned.get("name")
        name = name.strip() if isinstance(name, str) else ""
        if not name:
            raise ApplicationError("An attribute needs a name.")
        if len(name) > 200:
            raise ApplicationError("An attribute name can be at most 200 characters.")
        cleaned["name"] = name
    if "description" in cleaned:
        if cleaned["description"] is None:
            cleaned["description"] = ""
        if not isinstance(cleaned["description"], str):
            raise ApplicationError("The description must be text.")
        cleaned["description"] = cleaned["description"].strip()
    if "data_type" in cleaned and cleaned["data_type"] not in DataType.values:
        raise ApplicationError(
            f"Data type {cleaned['data_type']!r} is not one of {', '.join(DataType.values)}."
        )
    for key in BOOLEAN_FIELDS:
        if key in cleaned and not isinstance(cleaned[key], bool):
            raise ApplicationError(f"{Attribute._meta.get_field(key).verbose_name.capitalize()} must be yes or no.")
    if "risk_score" in cleaned:
        score = cleaned["risk_score"]
        if isinstance(score, str) and score.strip().isdigit():
            score = int(score)
        if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 10:
            raise ApplicationError("The risk score must be a whole number from 1 to 10.")
        cleaned["risk_score"] = score
    return cleaned


def _check_name_free(*, cycle_report: CycleReport, name: str, exclude_pk: int | None = None) -> None:
    taken = Attribute.objects.filter(cycle_report=cycle_report, name=name)
    if exclude_pk is not None:
        taken = taken.exclude(pk=exclude_pk)
    if taken.exists():
        raise ConflictError(f"This report already has an attribute named {name!r}.")


def attributes_draft(*, cycle_report_id: int, provider: LLMProvider | None = None) -> tuple[str, int, int]:
    """Draft the report's attributes with the provider; return (provider name, created, updated).

    Idempotent: rows are keyed by (cycle report, name), so a retry or a re-run
    after a crash creates nothing twice, and an attribute the tester edited by
    hand (source=manual) is never overwritten. LLM errors propagate for the
    caller (the Temporal activity) to classify.
    """
    cycle_report = CycleReport.objects.select_related("report", "cycle").get(pk=cycle_report_id)
    reason = _planning_lock_reason(cycle_report)
    if reason:
        raise PhaseLockedError(reason)
    provider = provider or get_provider()
    report = cycle_report.report
    # The provider call stays outside the transaction: holding a row lock across a network call of
    # up to LLM_TIMEOUT seconds would block the tester's edits for that long.
    drafts = provider.draft_attributes(report_name=report.name, regulation=report.regulation, fields=report.fields)

    with transaction.atomic():
        # With its report and cycle, which the audit entry names (only the report's row is locked).
        cycle_report = (CycleReport.objects.select_for_update(no_key=True, of=("self",))
                        .select_related("report", "cycle")
                        .get(pk=cycle_report_id))
        reason = _planning_lock_reason(cycle_report)
        if reason:
            raise PhaseLockedError(reason)
        names = [d.name for d in drafts]
        existing = {a.name: a for a in Attribute.objects.filter(cycle_report=cycle_report, name__in=names)}
        created, updated, kept_manual = [], [], []
        for draft in drafts:
            values = draft.as_fields()
            attribute = existing.get(draft.name)
            if attribute is None:
                Attribute.objects.create(
                    cycle_report=cycle_report, name=draft.name, source=Attribute.Source.LLM, **values
                )
                created.append(draft.name)
            elif attribute.source == Attribute.Source.MANUAL:
                kept_manual.append(draft.name)
            else:
                before = {k: getattr(attribute, k) for k in values}
                if before != values:
                    for key, value in values.items():
                        setattr(attribute, key, value)
                    attribute.save(update_fields=[*values, "updated_at"])
                    updated.append({"name": draft.name, "before": before, "after": values})
        if created or updated:
            audit_record(
                actor=None,
                action="attributes.draft",
                obj=cycle_report,
                context={
                    "provider": provider.name,
                    "model": getattr(provider, "model", ""),
                    "created": created,
                    "updated": updated,
                    "kept_manual": kept_manual,
                },
            )
    return provider.name, len(created), len(updated)


def attribute_create(*, user, cycle_report: CycleReport, **fields) -> Attribute:
    """Add an attribute by hand (source=manual)."""
    cleaned = _clean(fields, partial=False)
    with transaction.atomic():
        cycle_report = _lock_for_edit(user=user, cycle_report=cycle_report)
        _check_name_free(cycle_report=cycle_report, name=cleaned["name"])
        attribute = Attribute.objects.create(cycle_report=cycle_report, source=Attribute.Source.MANUAL, **cleaned)
        audit_record(actor=user, action="attribute.create", obj=attribute,
                     after=snapshot(attribute, AUDITED_FIELDS))
    return attribute


def _lock_attribute(attribute: Attribute) -> Attribute:
    locked = Attribute.objects.select_for_update().filter(pk=attribute.pk).first()
    if locked is None:
        raise NotFoundError(f"The attribute {attribute.name!r} no longer exists.")
    return locked


def attribute_update(*, user, attribute: Attribute, **fields) -> Attribute:
    """Change an attribute by hand; it becomes source=manual, so a later draft leaves it alone."""
    cleaned = _clean(fields, partial=True)
    with transaction.atomic():
        _lock_for_edit(user=user, cycle_report=attribute.cycle_report)
        attribute = _lock_attribute(attribute)
        if "name" in cleaned and cleaned["name"] != attribute.name:
            _check_name_free(cycle_report=attribute.cycle_report, name=cleaned["name"], exclude_pk=attribute.pk)
        before = snapshot(attribute, AUDITED_FIELDS)
        cleaned["source"] = Attribute.Source.MANUAL
        changed = [key for key, value in cleaned.items() if getattr(attribute, key) != value]
        if not changed:
            return attribute
        for key in changed:
            setattr(attribute, key, cleaned[key])
        attribute.save(update_fields=[*changed, "updated_at"])
        audit_record(actor=user, action="attribute.update", obj=attribute, before=before,
                     after=snapshot(attribute, AUDITED_FIELDS))
    return attribute


def attribute_delete(*, user, attribute: Attribute) -> None:
    """Remove an attribute from the report's planning draft."""
    with transaction.atomic():
        _lock_for_edit(user=user, cycle_report=attribute.cycle_report)
        attribute = _lock_attribute(attribute)
        audit_record(actor=user, action="attribute.delete", obj=attribute,
                     before=snapshot(attribute, AUDITED_FIELDS))
        attribute.delete()
