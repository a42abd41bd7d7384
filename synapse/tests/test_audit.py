"""Writing the audit trail: one INSERT per event, holding what save() would have written."""
import datetime

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test.utils import CaptureQueriesContext

from synapse.audit import _insert_statement, audit_record
from synapse.models import AuditEvent


def test_an_event_is_one_insert_and_reads_back_as_recorded(cycle_report, users):
    ContentType.objects.get_for_model(type(cycle_report))  # cached once per process, as a running one has it
    with CaptureQueriesContext(connection) as queries:
        event = audit_record(actor=users["tester"], action="scoping.decide", obj=cycle_report,
                             before={"in_scope": None}, after={"in_scope": True, "at": datetime.date(2026, 12, 7)},
                             context={"cycle_report": cycle_report.pk, "request": "r-1"})
    assert [q["sql"].split()[0] for q in queries.captured_queries] == ["INSERT"]
    assert event.pk is not None and not event._state.adding
    stored = AuditEvent.objects.get(pk=event.pk)
    assert (stored.actor, stored.action, stored.content_type, stored.object_id, stored.object_repr) == (
        users["tester"], "scoping.decide", ContentType.objects.get_for_model(type(cycle_report)),
        str(cycle_report.pk), str(cycle_report)[:255])
    assert stored.before == {"in_scope": None}
    assert stored.after == {"in_scope": True, "at": "2026-12-07"}
    assert stored.context == {"cycle_report": cycle_report.pk, "request": "r-1"}
    assert stored.created_at == event.created_at and stored.created_at is not None
    # The trail's own lookups find it (the JSON columns are JSON, not text).
    assert AuditEvent.objects.filter(context__cycle_report=cycle_report.pk, pk=event.pk).exists()
    assert list(AuditEvent.objects.for_object(cycle_report)) == [stored]


def test_an_event_without_an_actor_or_before_keeps_them_empty(cycle_report):
    event = audit_record(actor=None, action="cycle_report.finish", obj=cycle_report)
    stored = AuditEvent.objects.get(pk=event.pk)
    assert stored.actor is None and stored.before is None and stored.after is None and stored.context == {}


@pytest.mark.django_db
def test_the_insert_names_every_column_of_the_model_but_its_key():
    sql, fields = _insert_statement(connection.alias)
    columns = {f.column for f in AuditEvent._meta.concrete_fields if not f.primary_key}
    assert {f.column for f in fields} == columns
    for column in columns:
        assert connection.ops.quote_name(column) in sql
    assert sql.count("%s") == len(columns)


def test_a_written_event_stays_append_only(cycle_report, users):
    event = audit_record(actor=users["tester"], action="x.y", obj=cycle_report)
    with pytest.raises(TypeError, match="append-only"):
        event.save()


def test_writing_an_event_compiles_no_query(cycle_report, users, monkeypatch):
    """The INSERT is made once per database, not compiled by the ORM for every event."""
    from django.db.models.sql.compiler import SQLInsertCompiler

    audit_record(actor=users["tester"], action="x.first", obj=cycle_report)  # the statement made, types cached
    compiled = []
    real = SQLInsertCompiler.as_sql
    monkeypatch.setattr(SQLInsertCompiler, "as_sql", lambda self, *a, **k: compiled.append(1) or real(self, *a, **k))
    for number in range(3):
        audit_record(actor=users["tester"], action=f"x.{number}", obj=cycle_report, after={"n": number})
    assert compiled == []
    assert list(AuditEvent.objects.filter(action__startswith="x.").order_by("id").values_list("after", flat=True)) \
        == [None, {"n": 0}, {"n": 1}, {"n": 2}]
