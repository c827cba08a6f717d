"""The database refuses UPDATE and DELETE on audit events (and moving the chain head backwards).

SQLite: DELETE is allowed only when `plinth_audit_unlocked()` (registered by portal.core.audit on
Django connections) answers 1, i.e. inside `audit.maintenance()` as used by `manage.py flush`.
PostgreSQL: row triggers; TRUNCATE (flush) is not a row change and passes.

Note: on SQLite a migration that rebuilds core_auditevent drops these triggers with the old table;
`manage.py audit verify` reports missing triggers, and such a migration must recreate them.
"""

from django.db import migrations

SQLITE_UP = [
    """CREATE TRIGGER IF NOT EXISTS core_auditevent_no_update BEFORE UPDATE ON core_auditevent
       BEGIN SELECT RAISE(ABORT, 'audit events are append-only: UPDATE refused'); END""",
    """CREATE TRIGGER IF NOT EXISTS core_auditevent_no_delete BEFORE DELETE ON core_auditevent
       WHEN plinth_audit_unlocked() IS NOT 1
       BEGIN SELECT RAISE(ABORT, 'audit events are append-only: DELETE refused'); END""",
    """CREATE TRIGGER IF NOT EXISTS core_auditchainhead_forward_only BEFORE UPDATE ON core_auditchainhead
       WHEN NEW.seq < OLD.seq
       BEGIN SELECT RAISE(ABORT, 'the audit chain head only moves forward'); END""",
    """CREATE TRIGGER IF NOT EXISTS core_auditchainhead_no_delete BEFORE DELETE ON core_auditchainhead
       WHEN plinth_audit_unlocked() IS NOT 1
       BEGIN SELECT RAISE(ABORT, 'the audit chain head cannot be deleted'); END""",
]
SQLITE_DOWN = [f"DROP TRIGGER IF EXISTS {name}" for name in (
    "core_auditevent_no_update", "core_auditevent_no_delete", "core_auditchainhead_forward_only",
    "core_auditchainhead_no_delete")]

PG_UP = [
    """CREATE OR REPLACE FUNCTION plinth_audit_append_only() RETURNS trigger AS $$
       BEGIN RAISE EXCEPTION 'audit events are append-only: % refused', TG_OP; END; $$ LANGUAGE plpgsql""",
    """CREATE OR REPLACE FUNCTION plinth_audit_head_forward_only() RETURNS trigger AS $$
       BEGIN
         IF TG_OP = 'DELETE' OR NEW.seq < OLD.seq THEN
           RAISE EXCEPTION 'the audit chain head only moves forward';
         END IF;
         RETURN NEW;
       END; $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER core_auditevent_append_only BEFORE UPDATE OR DELETE ON core_auditevent
       FOR EACH ROW EXECUTE FUNCTION plinth_audit_append_only()""",
    """CREATE TRIGGER core_auditchainhead_forward_only BEFORE UPDATE OR DELETE ON core_auditchainhead
       FOR EACH ROW EXECUTE FUNCTION plinth_audit_head_forward_only()""",
]
PG_DOWN = [
    "DROP TRIGGER IF EXISTS core_auditevent_append_only ON core_auditevent",
    "DROP TRIGGER IF EXISTS core_auditchainhead_forward_only ON core_auditchainhead",
    "DROP FUNCTION IF EXISTS plinth_audit_append_only()",
    "DROP FUNCTION IF EXISTS plinth_audit_head_forward_only()",
]


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        for sql in statements_by_vendor.get(schema_editor.connection.vendor, []):
            # params=None: no placeholder interpolation (the PL/pgSQL bodies contain a literal %).
            schema_editor.execute(sql, params=None)
    return run


class Migration(migrations.Migration):
    dependencies = [("core", "0001_initial")]

    operations = [
        migrations.RunPython(_run({"sqlite": SQLITE_UP, "postgresql": PG_UP}),
                             _run({"sqlite": SQLITE_DOWN, "postgresql": PG_DOWN})),
    ]
