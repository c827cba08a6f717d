"""The columns the relevance model scores from (portal/search/scoring.py): `ev_n` … `ev_b` (each
field's words), `quality` (the static quality factor) and `popularity` (the share earned by clicked
results).

Added with a plain `ALTER TABLE … ADD COLUMN … NOT NULL DEFAULT`, by vendor: Django's SQLite schema
editor would remake the table for a NOT NULL column, which drops 0004's index-version triggers. Existing
documents are filled from their own columns and, for "has docs", from their catalog entity's descriptor
(the same rule as indexing, `catalog.search.has_docs`), so a trip back and forward gives every document
the score it had. Popularity starts at 0 and returns with the next hourly `refresh_popularity`.

The candidate list of label matches (see `backends.base.Backend.run`) gets an index of its own: on
SQLite the FTS5 table `search_labels` (title and tags of the documents that have any; a column filter
on `search_fts` reads every position of a word's whole doclist), on PostgreSQL `labels`, a generated
tsvector of title and tags with a GIN index (the weights of `tsv` are not in its GIN index: every row
of a word would be rechecked), plus a pattern index on the name for `name LIKE 'fraud-detec%'` under
any collation."""

# Constant table and column names only, no user values: S608 (string-built SQL) does not apply.
# ruff: noqa: S608
from django.db import migrations, models

DOC = "search_searchdocument"
VERSION = "search_searchindexversion"
EVIDENCE = ("ev_n", "ev_t", "ev_g", "ev_o", "ev_d", "ev_b")
COLUMNS = (*((c, "text NOT NULL DEFAULT ' '") for c in EVIDENCE), ("quality", "{real} NOT NULL DEFAULT 1.0"),
           ("popularity", "{real} NOT NULL DEFAULT 0.0"))
CHUNK = 2000
SQLITE = (
    [
        "CREATE VIRTUAL TABLE search_labels USING fts5(title, tags, "
        "tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3 4 5 6 7 8 9 10')",
        f"INSERT INTO search_labels (rowid, title, tags) SELECT id, title, tags FROM {DOC} "
        "WHERE title <> '' OR tags <> ''",
    ],
    ["DROP TABLE IF EXISTS search_labels"],
)
POSTGRES = (
    [
        f"ALTER TABLE {DOC} ADD COLUMN labels tsvector GENERATED ALWAYS AS ("
        "to_tsvector('simple', coalesce(title, '') || ' ' || coalesce(tags, ''))) STORED",
        f"CREATE INDEX searchdoc_labels ON {DOC} USING gin (labels)",
        f"CREATE INDEX searchdoc_name_pattern ON {DOC} (name varchar_pattern_ops)",
    ],
    [
        "DROP INDEX IF EXISTS searchdoc_name_pattern",
        "DROP INDEX IF EXISTS searchdoc_labels",
        f"ALTER TABLE {DOC} DROP COLUMN IF EXISTS labels",
    ],
)


def _fill(schema_editor) -> None:
    from portal.search import scoring
    from portal.search.registry import Document

    sqlite = schema_editor.connection.vendor == "sqlite"
    with schema_editor.connection.cursor() as cur:
        if sqlite:  # one version change at the end instead of a trigger per row
            cur.execute(f"UPDATE {VERSION} SET bulk = 1 WHERE id = 1")
        last = 0
        while True:
            cur.execute(
                f"SELECT id, key, name, title, description, body, owner, lifecycle, tags FROM {DOC} "
                "WHERE id > %s ORDER BY id LIMIT %s",
                [last, CHUNK],
            )
            rows = cur.fetchall()
            if not rows:
                break
            documented = _documented(cur, [r[1] for r in rows])
            updates = []
            for pk, key, name, title, description, body, owner, lifecycle, tags in rows:
                doc = Document(key=key, kind="", kind_label="", name=name, url="", title=title,
                               description=description, body=body, owner=owner, lifecycle=lifecycle,
                               tags=tags.split(), has_docs=key in documented)
                columns = scoring.evidence(doc)
                updates.append((*(columns[c] for c in EVIDENCE), scoring.quality(doc), pk))
            assignments = ", ".join(f"{c} = %s" for c in (*EVIDENCE, "quality"))
            cur.executemany(f"UPDATE {DOC} SET {assignments} WHERE id = %s", updates)
            last = rows[-1][0]
        if sqlite:
            cur.execute(f"UPDATE {VERSION} SET bulk = 0, version = random() WHERE id = 1")


# The rule of `catalog.search.has_docs` when this migration was written, frozen here: a migration must not
# change with the app code it once ran (nor import the catalog, which search sits below).
_DOCS_ANNOTATIONS = ("plinth.dev/techdocs-ref", "backstage.io/techdocs-ref")


def has_docs(annotations: dict, spec: dict) -> bool:
    card = spec.get("modelCard")
    return any(annotations.get(a) for a in _DOCS_ANNOTATIONS) or (isinstance(card, str) and bool(card.strip()))


def _documented(cur, keys: list[str]) -> set[str]:
    """Which of these document keys are catalog entities with docs (a techdocs folder or a model card)."""
    import json

    if not keys:
        return set()
    cur.execute(f"SELECT ref, data FROM catalog_entity WHERE ref IN ({', '.join(['%s'] * len(keys))})", keys)
    found = set()
    for ref, data in cur.fetchall():
        data = json.loads(data) if isinstance(data, str | bytes) else (data or {})
        spec, meta = data.get("spec") or {}, data.get("metadata") or {}
        annotations = meta.get("annotations") if isinstance(meta, dict) else None
        if has_docs(annotations if isinstance(annotations, dict) else {}, spec if isinstance(spec, dict) else {}):
            found.add(ref)
    return found


def forwards(apps, schema_editor):
    real = "real" if schema_editor.connection.vendor == "sqlite" else "double precision"
    for column, definition in COLUMNS:
        schema_editor.execute(f"ALTER TABLE {DOC} ADD COLUMN {column} {definition.format(real=real)}")
    for sql in {"sqlite": SQLITE, "postgresql": POSTGRES}.get(schema_editor.connection.vendor, ([], []))[0]:
        schema_editor.execute(sql)
    _fill(schema_editor)


def backwards(apps, schema_editor):
    for sql in {"sqlite": SQLITE, "postgresql": POSTGRES}.get(schema_editor.connection.vendor, ([], []))[1]:
        schema_editor.execute(sql)
    for column, _ in reversed(COLUMNS):
        schema_editor.execute(f"ALTER TABLE {DOC} DROP COLUMN {column}")


class Migration(migrations.Migration):
    # catalog_entity is read for "has docs" (see _documented).
    dependencies = [("search", "0006_rowid_document_ids"), ("catalog", "0005_rowid_relations_tags")]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunPython(forwards, backwards)],
            state_operations=[
                *(migrations.AddField("searchdocument", c, models.TextField(blank=True, default=" ")) for c in EVIDENCE),
                migrations.AddField("searchdocument", "quality", models.FloatField(default=1.0)),
                migrations.AddField("searchdocument", "popularity", models.FloatField(default=0.0)),
            ],
        ),
        migrations.AddIndex(
            "searchdocument",
            models.Index(fields=["key"], condition=models.Q(popularity__gt=0), name="searchdoc_popular"),
        ),
    ]
