"""Writing and reading the audit trail."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from django.contrib.contenttypes.models import ContentType
from django.db import models

from synapse.models import AuditEvent


def _jsonable(value):
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, models.Model):
        return value.pk
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in value]
    return value


def snapshot(obj: models.Model, fields: list[str] | None = None) -> dict:
    """Return the concrete field values of obj, JSON-ready, for before/after."""
    names = fields or [f.attname for f in obj._meta.concrete_fields]
    return {name: _jsonable(getattr(obj, name)) for name in names}


def _event(*, actor, action: str, obj: models.Model, before: dict | None = None, after: dict | None = None,
           context: dict | None = None) -> AuditEvent:
    return AuditEvent(
        actor=actor if getattr(actor, "pk", None) else None,
        action=action,
        content_type=ContentType.objects.get_for_model(type(obj)),
        object_id=str(obj.pk),
        object_repr=str(obj)[:255],
        before=_jsonable(before) if before is not None else None,
        after=_jsonable(after) if after is not None else None,
        context=_jsonable(context or {}),
    )


def audit_record(
    *,
    actor,
    action: str,
    obj: models.Model,
    before: dict | None = None,
    after: dict | None = None,
    context: dict | None = None,
) -> AuditEvent:
    """Append one event to the audit trail; call inside the service's transaction."""
    event = _event(actor=actor, action=action, obj=obj, before=before, after=after, context=context)
    event.save()
    return event


def audit_record_many(events: list[dict]) -> list[AuditEvent]:
    """Append several events (each the keyword arguments of audit_record) in one INSERT, in their order."""
    return AuditEvent.objects.bulk_create([_event(**event) for event in events])


def audit_events_for(obj: models.Model):
    return AuditEvent.objects.for_object(obj).select_related("actor")
