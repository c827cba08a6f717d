"""Two things for search speed at 250k documents, both SQLite-only:

1. The index version behind the search results cache: a one-row table and triggers that give it a
   new random value on every insert, update or delete of the index tables (documents, tags,
   vocabulary), except while the backend's own bulk writes have set `bulk` (they change the version
   once at the end: a trigger per row would add a third to a 250k rebuild). The full-text table changes only together with the documents (it is written from
   them), so it needs no trigger of its own. PostgreSQL gets the table but no triggers: there,
   `index_version()` is None and results are not cached (a per-statement trigger updating one shared
   row would serialise concurrent index writers).
2. Prefix indexes for 2 to 10 characters instead of 2 and 3: FTS5 answers a prefix query without a
   prefix index of that length by merging the doclists of every matching word first, which costs as
   much as scoring the matches (`customer*` at 250k: 5 ms instead of 1 ms, bm25 over its first 1,000
   matches 14 ms instead of 6). The table is recreated and refilled from the documents, which hold
   every column it indexes.
"""

# Constant table and column names only, no user values: S608 (string-built SQL) does not apply.
# ruff: noqa: S608
from django.db import migrations, models

TABLES = ("search_searchdocument", "search_searchdocumenttag", "search_searchterm")
VERSION = "search_searchindexversion"
# UPDATE, not INSERT OR REPLACE: inside a trigger, the outer statement's conflict policy wins, and the
# vocabulary is written with INSERT OR IGNORE. The guarded INSERT restores a row a flush removed.
RESTORE = (
    f"INSERT INTO {VERSION} (id, version, bulk) SELECT 1, random(), 0 "
    f"WHERE NOT EXISTS (SELECT 1 FROM {VERSION} WHERE id = 1);"
)


FTS_COLUMNS = "name, title, tags, owner, description, body"


def _fts(schema_editor, prefixes: str) -> None:
    schema_editor.execute("DROP TABLE IF EXISTS search_fts")
    schema_editor.execute(
        f"CREATE VIRTUAL TABLE search_fts USING fts5({FTS_COLUMNS}, "
        f"tokenize = 'unicode61 remove_diacritics 2', prefix = '{prefixes}')"
    )
    schema_editor.execute(
        f"INSERT INTO search_fts (rowid, {FTS_COLUMNS}) SELECT id, {FTS_COLUMNS} FROM search_searchdocument"
    )


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return
    _fts(schema_editor, "2 3 4 5 6 7 8 9 10")
    for table in TABLES:
        for event in ("INSERT", "UPDATE", "DELETE"):
            schema_editor.execute(
                f"CREATE TRIGGER IF NOT EXISTS {table}_version_{event.lower()} AFTER {event} ON {table} "
                f"WHEN NOT EXISTS (SELECT 1 FROM {VERSION} WHERE id = 1 AND bulk) "
                f"BEGIN UPDATE {VERSION} SET version = random() WHERE id = 1; {RESTORE} END"
            )
    schema_editor.execute(RESTORE.rstrip(";"))


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return
    _fts(schema_editor, "2 3")
    for table in TABLES:
        for event in ("insert", "update", "delete"):
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_version_{event}")


class Migration(migrations.Migration):
    dependencies = [("search", "0003_name_index")]

    operations = [
        migrations.CreateModel(
            name="SearchIndexVersion",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("version", models.BigIntegerField(default=0)),
                ("bulk", models.BooleanField(default=False)),
            ],
        ),
        migrations.RunPython(forwards, backwards),
    ]
