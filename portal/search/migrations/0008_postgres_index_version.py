"""The index version behind the results cache, on PostgreSQL (SQLite has had it since 0004).

SQLite's version is a row that per-row triggers set to a new random value inside the writing
transaction. On PostgreSQL one shared row written by every index write would serialise concurrent
writers (each would wait for the others' row locks until they commit), so the version is a sequence
instead: a statement-level trigger on documents, tags and vocabulary (insert, update, delete, truncate)
takes `nextval`, which never waits and never rolls back.

A sequence moves at once, before the writer commits, so by itself it would let a reader pair the new
version with the old rows and cache them under it. The same trigger therefore first takes a shared
transaction-level advisory lock (`LOCK_KEY`, held until the writer's transaction has ended and its rows
are visible or gone); a reader only caches when, after reading the version, it finds that lock free
(`PostgresBackend.index_version`). Writers share the lock, so they never wait for each other."""

from django.db import migrations

TABLES = ("search_searchdocument", "search_searchdocumenttag", "search_searchterm")
SEQUENCE = "search_index_version"
LOCK_KEY = 7_236_850_337_395_542_318  # portal.search.backends.postgres.LOCK_KEY (a fixed 63-bit number)
FUNCTION = "search_index_written"

FORWARDS = [
    f"CREATE SEQUENCE IF NOT EXISTS {SEQUENCE}",
    f"""CREATE OR REPLACE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared({LOCK_KEY});
    PERFORM nextval('{SEQUENCE}');
    RETURN NULL;
END $$""",
    *(f"CREATE TRIGGER {table}_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
      f"FOR EACH STATEMENT EXECUTE FUNCTION {FUNCTION}()" for table in TABLES),
]
BACKWARDS = [
    *(f"DROP TRIGGER IF EXISTS {table}_version ON {table}" for table in TABLES),
    f"DROP FUNCTION IF EXISTS {FUNCTION}()",
    f"DROP SEQUENCE IF EXISTS {SEQUENCE}",
]


def _run(statements):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for statement in statements:
            schema_editor.execute(statement)
    return apply


class Migration(migrations.Migration):
    dependencies = [("search", "0007_ranking_columns")]

    operations = [migrations.RunPython(_run(FORWARDS), _run(BACKWARDS))]
