"""Database triggers that make rows immutable below the ORM (SQLite and PostgreSQL).

Used by migrations. UPDATE is refused on both engines; DELETE only on
PostgreSQL, where the test runner's flush uses TRUNCATE (which row triggers
don't see) while SQLite's flush deletes rows one by one.
"""
from django.db import migrations


def _sqlite(name, table, event, when, message):
    cond = f"WHEN {when} " if when else ""
    return (
        f"CREATE TRIGGER IF NOT EXISTS {name} BEFORE {event} ON {table} FOR EACH ROW {cond}"
        f"BEGIN SELECT RAISE(ABORT, '{message}'); END;",
        f"DROP TRIGGER IF EXISTS {name};",
    )


def _postgres(name, table, event, when, message):
    cond = f"IF {when} THEN " if when else ""
    end = " END IF;" if when else ""
    fn = f"{name}_fn"
    return (
        f"CREATE OR REPLACE FUNCTION {fn}() RETURNS trigger AS $$ BEGIN {cond}"
        f"RAISE EXCEPTION '{message}' USING ERRCODE = 'integrity_constraint_violation';{end} "
        f"RETURN {'OLD' if event == 'DELETE' else 'NEW'}; END; $$ LANGUAGE plpgsql; "
        f"DROP TRIGGER IF EXISTS {name} ON {table}; "
        f"CREATE TRIGGER {name} BEFORE {event} ON {table} FOR EACH ROW EXECUTE FUNCTION {fn}();",
        f"DROP TRIGGER IF EXISTS {name} ON {table}; DROP FUNCTION IF EXISTS {fn}();",
    )


class ImmutableRowTrigger(migrations.operations.base.Operation):
    """Refuse `event` (UPDATE or DELETE) on `table` when `when` holds (SQL over OLD)."""

    reduces_to_sql = True
    reversible = True

    def __init__(self, name, table, event, when, message, sqlite_when=None):
        self.name, self.table, self.event = name, table, event
        self.when, self.sqlite_when, self.message = when, sqlite_when or when, message

    def state_forwards(self, app_label, state):
        pass

    def _sql(self, vendor):
        if vendor == "postgresql":
            return _postgres(self.name, self.table, self.event, self.when, self.message)
        if vendor == "sqlite" and self.event != "DELETE":
            return _sqlite(self.name, self.table, self.event, self.sqlite_when, self.message)
        return None

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        sql = self._sql(schema_editor.connection.vendor)
        if sql:
            schema_editor.execute(sql[0])

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        sql = self._sql(schema_editor.connection.vendor)
        if sql:
            schema_editor.execute(sql[1])

    def describe(self):
        return f"Refuse {self.event} on {self.table}"
