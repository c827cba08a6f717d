"""Document and tag ids become SQLite's plain rowid (`RowIdAutoField`): no AUTOINCREMENT, whose
`sqlite_sequence` read-and-rewrite per inserted row cost a third to a half of a bulk tag insert and a
tenth to a fifth of a document insert (250k documents, 500k tags). Nothing refers to these ids from
outside the index (the FTS rowid follows the document id), so reusing a deleted last row's id is
harmless.

SQLite cannot drop AUTOINCREMENT in place: the tables are remade (create, copy, drop, rename). Not
by AlterField: Django's remake moves the altered `id` column to the end of the table, and dropping
a table drops its triggers (0004's index-version triggers). The remake is written out here instead,
both ways, leaving `sqlite_master` as it was apart from the AUTOINCREMENT keyword: the same column
order, the indexes of 0001/0003 (not the FK index 0005 dropped) and 0004's triggers, word for word.
On PostgreSQL the column stays a bigint identity; AlterField would issue no SQL (sqlmigrate:
"no-op"), so only the migration state changes there."""

# Constant table and column names only, no user values: S608 (string-built SQL) does not apply.
# ruff: noqa: S608
from django.db import migrations

import portal.core.fields

DOC, TAG = "search_searchdocument", "search_searchdocumenttag"
VERSION = "search_searchindexversion"
# Each table's columns after `id` and its indexes, as 0001-0005 left them in sqlite_master.
COLUMNS = {
    DOC: (
        '"source" varchar(40) NOT NULL, "key" varchar(250) NOT NULL UNIQUE, "kind" varchar(40) NOT NULL, '
        '"kind_label" varchar(40) NOT NULL, "name" varchar(200) NOT NULL, "title" varchar(300) NOT NULL, '
        '"description" text NOT NULL, "body" text NOT NULL, "owner" varchar(200) NOT NULL, '
        '"lifecycle" varchar(100) NOT NULL, "type" varchar(100) NOT NULL, "tags" varchar(1000) NOT NULL, '
        '"visibility" varchar(10) NOT NULL, "owner_team_id" integer NULL, "url" varchar(500) NOT NULL'
    ),
    TAG: (
        '"tag" varchar(63) NOT NULL, "document_id" bigint NOT NULL REFERENCES "search_searchdocument" ("id") '
        "DEFERRABLE INITIALLY DEFERRED"
    ),
}
INDEXES = {
    DOC: [
        f'CREATE INDEX "searchdoc_kind" ON "{DOC}" ("kind")',
        f'CREATE INDEX "searchdoc_owner" ON "{DOC}" ("owner")',
        f'CREATE INDEX "searchdoc_visibility" ON "{DOC}" ("visibility", "owner_team_id")',
        f'CREATE INDEX "searchdoc_source" ON "{DOC}" ("source")',
        f'CREATE INDEX "searchdoc_name" ON "{DOC}" ("name")',
    ],
    TAG: [
        f'CREATE INDEX "searchtag_tag_doc" ON "{TAG}" ("tag", "document_id")',
        f'CREATE INDEX "searchtag_doc" ON "{TAG}" ("document_id")',
    ],
}
# 0004's triggers (UPDATE, then the guarded INSERT that restores a row a flush removed).
RESTORE = (
    f"INSERT INTO {VERSION} (id, version, bulk) SELECT 1, random(), 0 "
    f"WHERE NOT EXISTS (SELECT 1 FROM {VERSION} WHERE id = 1);"
)


def _remake(schema_editor, autoincrement: bool) -> None:
    if schema_editor.connection.vendor != "sqlite":
        return
    suffix = " AUTOINCREMENT" if autoincrement else ""
    for table in (DOC, TAG):
        schema_editor.execute(
            f'CREATE TABLE "new__{table}" ("id" integer NOT NULL PRIMARY KEY{suffix}, {COLUMNS[table]})'
        )
        schema_editor.execute(f'INSERT INTO "new__{table}" SELECT * FROM "{table}"')  # same columns, same order
        schema_editor.execute(f'DROP TABLE "{table}"')  # and with it its indexes and triggers
        schema_editor.execute(f'ALTER TABLE "new__{table}" RENAME TO "{table}"')
        for sql in INDEXES[table]:
            schema_editor.execute(sql)
        for event in ("INSERT", "UPDATE", "DELETE"):
            schema_editor.execute(
                f"CREATE TRIGGER IF NOT EXISTS {table}_version_{event.lower()} AFTER {event} ON {table} "
                f"WHEN NOT EXISTS (SELECT 1 FROM {VERSION} WHERE id = 1 AND bulk) "
                f"BEGIN UPDATE {VERSION} SET version = random() WHERE id = 1; {RESTORE} END"
            )


def forwards(apps, schema_editor):
    _remake(schema_editor, autoincrement=False)


def backwards(apps, schema_editor):
    _remake(schema_editor, autoincrement=True)


class Migration(migrations.Migration):
    dependencies = [("search", "0005_drop_duplicate_tag_index")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="searchdocument",
                    name="id",
                    field=portal.core.fields.RowIdAutoField(primary_key=True, serialize=False),
                ),
                migrations.AlterField(
                    model_name="searchdocumenttag",
                    name="id",
                    field=portal.core.fields.RowIdAutoField(primary_key=True, serialize=False),
                ),
            ],
            database_operations=[migrations.RunPython(forwards, backwards)],
        ),
    ]
