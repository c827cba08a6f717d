"""The backend-specific full-text structures beside SearchDocument: an FTS5 table on SQLite;
pg_trgm, a generated weighted tsvector column and GIN indexes on PostgreSQL. The SQL is written out
here (not imported from the backends) so that this migration stays what it was when applied."""

from django.db import migrations

DOC = "search_searchdocument"
SQL = {
    "sqlite": (
        [
            "CREATE VIRTUAL TABLE IF NOT EXISTS search_fts USING fts5(name, title, tags, owner, description, body, "
            "tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3')",
        ],
        ["DROP TABLE IF EXISTS search_fts"],
    ),
    "postgresql": (
        [
            "CREATE EXTENSION IF NOT EXISTS pg_trgm",
            f"ALTER TABLE {DOC} ADD COLUMN tsv tsvector GENERATED ALWAYS AS ("
            "setweight(to_tsvector('simple', coalesce(name, '')), 'A') || "
            "setweight(to_tsvector('simple', coalesce(title, '')), 'B') || "
            "setweight(to_tsvector('simple', coalesce(tags, '') || ' ' || coalesce(owner, '')), 'C') || "
            "setweight(to_tsvector('simple', coalesce(description, '') || ' ' || left(coalesce(body, ''), 100000)), 'D')"
            ") STORED",
            f"CREATE INDEX searchdoc_tsv ON {DOC} USING gin (tsv)",
            f"CREATE INDEX searchdoc_name_trgm ON {DOC} USING gin (name gin_trgm_ops)",
            "CREATE INDEX searchterm_trgm ON search_searchterm USING gin (term gin_trgm_ops)",
            "CREATE INDEX searchterm_pattern ON search_searchterm (term text_pattern_ops)",
        ],
        [
            "DROP INDEX IF EXISTS searchterm_pattern",
            "DROP INDEX IF EXISTS searchterm_trgm",
            "DROP INDEX IF EXISTS searchdoc_name_trgm",
            "DROP INDEX IF EXISTS searchdoc_tsv",
            f"ALTER TABLE {DOC} DROP COLUMN IF EXISTS tsv",
        ],
    ),
}


def forwards(apps, schema_editor):
    for sql in SQL.get(schema_editor.connection.vendor, ([], []))[0]:
        schema_editor.execute(sql)


def backwards(apps, schema_editor):
    for sql in SQL.get(schema_editor.connection.vendor, ([], []))[1]:
        schema_editor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [("search", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards)]
