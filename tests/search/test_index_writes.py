"""Index writes: many keys deleted in one statement per table with the full-text rows in step, and
the SQLite schema of migration 0006 (plain rowid ids, 0004's version triggers kept)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from hypothesis import given, settings
from hypothesis import strategies as st

from portal.search import index, selectors
from portal.search.backends import get_backend
from portal.search.models import SearchDocument, SearchDocumentTag
from portal.search.query import words
from portal.search.registry import Document

FRAUD = "model:default/fraud-detector"
# Keys that are not in the index, JSON and SQL metacharacters and non-ASCII included.
MISSING = [f"model:default/missing-{i}" for i in range(1200)] + [
    'x:"quoted"',
    "x:back\\slash",
    "x:'single'",
    "x:ünïcödé/😀",
    "x:[1, 2]",
    "",
]


def _keys(user, text):
    return [h.key for h in selectors.search(user, text).hits]


def _assert_fts_in_step():
    """SQLite: one full-text row per document, same ids, one labels row per document with a title or
    tags, and FTS5's own consistency checks pass."""
    if connection.vendor != "sqlite":
        return
    with connection.cursor() as cur:
        cur.execute("SELECT rowid FROM search_fts ORDER BY rowid")
        fts_ids = [row[0] for row in cur.fetchall()]
        cur.execute("INSERT INTO search_fts (search_fts) VALUES ('integrity-check')")
        cur.execute("SELECT rowid FROM search_labels ORDER BY rowid")
        label_ids = [row[0] for row in cur.fetchall()]
        cur.execute("INSERT INTO search_labels (search_labels) VALUES ('integrity-check')")
    assert fts_ids == sorted(SearchDocument.objects.values_list("id", flat=True))
    labelled = SearchDocument.objects.exclude(title="", tags="")
    assert label_ids == sorted(labelled.values_list("id", flat=True))


def _deletes(queries) -> list[str]:
    return [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith("DELETE")]


def test_removing_many_keys_is_one_statement_per_table(users):
    """Thousands of keys, most not indexed at all, go in one DELETE per table (the full-text table,
    tags, documents); the removed documents no longer match, the others still do."""
    alice = users["alice"]
    assert _keys(alice, "fraud detector")[0] == FRAUD
    keep = "model:default/chargeback-predictor"
    gone = list(SearchDocument.objects.exclude(key=keep).values_list("key", flat=True))
    gone_ids = list(SearchDocument.objects.filter(key__in=gone).values_list("id", flat=True))
    assert len(gone) > 10 and SearchDocumentTag.objects.filter(document_id__in=gone_ids).exists()
    with CaptureQueriesContext(connection) as ctx:
        index.update("catalog", removed=MISSING[:600] + gone + MISSING[600:])
    # SQLite: the full-text and labels tables, tags, documents; PostgreSQL: tags, documents.
    assert len(_deletes(ctx.captured_queries)) == (4 if connection.vendor == "sqlite" else 2)
    assert list(SearchDocument.objects.values_list("key", flat=True)) == [keep]
    assert not SearchDocumentTag.objects.filter(document_id__in=gone_ids).exists()
    # Only the kept document can still be found (a spelling retry may reach it: "detector" is now
    # unknown to the documents alice sees, and the kept one mentions detection).
    assert set(_keys(alice, "fraud detector")) <= {keep}
    assert _keys(alice, "chargeback") == [keep]
    _assert_fts_in_step()


def test_missing_keys_alone_change_nothing(users):
    before = sorted(SearchDocument.objects.values_list("id", "key"))
    index.update("catalog", removed=MISSING)
    assert sorted(SearchDocument.objects.values_list("id", "key")) == before
    _assert_fts_in_step()


def test_a_key_both_changed_and_removed_is_indexed_once(users):
    """The same key twice in the one parameter (changed and removed) is deleted once, then re-read."""
    count = SearchDocument.objects.count()
    assert index.update("catalog", changed=[FRAUD], removed=[FRAUD, *MISSING[:3]]) == 1
    assert SearchDocument.objects.count() == count
    assert _keys(users["alice"], "fraud detector")[0] == FRAUD
    _assert_fts_in_step()


@pytest.mark.parametrize("bulk", [False, True], ids=["small", "bulk"])
def test_changed_keys_are_replaced_not_duplicated(users, monkeypatch, bulk):
    """Changed keys (existing and new, odd characters included) are deleted, then written once,
    through the small path or the bulk one; the full-text table follows."""
    if bulk:
        monkeypatch.setattr(index, "BULK_THRESHOLD", 1)
    odd = 'doc:ünïcödé/"wallaby" \\ 😀'
    existing = list(SearchDocument.objects.values_list("key", flat=True))
    docs = [
        Document(
            key=odd, kind="doc", kind_label="Doc", name="wallaby-notes", url="/docs/wallaby/", tags=["Zoo"]
        ),
        Document(
            key=FRAUD, kind="model", kind_label="Model", name="fraud-detector", url="/m/", title="Kangaroo"
        ),
    ]
    assert index.update("catalog", changed=[odd, FRAUD, *MISSING[:5]], documents=docs) == 2
    assert SearchDocument.objects.count() == len(existing) + 1
    assert list(SearchDocument.objects.get(key=odd).tag_rows.values_list("tag", flat=True)) == ["zoo"]
    grace = users["grace"]
    assert _keys(grace, "wallaby") == [odd]
    assert _keys(grace, "kangaroo") == [FRAUD]
    _assert_fts_in_step()
    index.update("catalog", removed=[odd])
    assert _keys(grace, "wallaby") == []
    assert not SearchDocument.objects.filter(key=odd).exists()
    _assert_fts_in_step()


def test_removal_changes_the_index_version_once(users):
    backend = get_backend()
    if backend.index_version() is None:
        pytest.skip("this backend does not track an index version")
    before = backend.index_version()
    index.update("catalog", removed=[FRAUD, *MISSING])
    assert backend.index_version() not in (None, before)


@settings(max_examples=300, deadline=None, database=None)
@given(st.lists(st.one_of(st.text(st.characters(max_codepoint=127)), st.text(), st.just("ΟΔΟΣ Σ ς σ"))))
def test_texts_tokenized_together_give_the_words_of_each(texts):
    """Joined by newlines (NFKC, lowercasing and final sigma do not reach across one), ASCII texts
    apart from the others, in batches: the same words as one `words` call per text."""
    expected = {w for t in texts for w in words(t)}
    assert index._words(texts) == expected
    assert index._words(texts * 70) == expected  # across batch boundaries


# -- migration 0006 on SQLite -------------------------------------------------------------------

TABLES = ("search_searchdocument", "search_searchdocumenttag", "search_searchterm")


def _master(table: str, kind: str) -> dict[str, str]:
    with connection.cursor() as cur:
        cur.execute("SELECT name, sql FROM sqlite_master WHERE type = %s AND tbl_name = %s", [kind, table])
        return dict(cur.fetchall())


@pytest.fixture
def on_sqlite(db):
    if connection.vendor != "sqlite":
        pytest.skip("the schema checked here is SQLite's")


def test_document_and_tag_ids_are_plain_rowids(on_sqlite):
    """No AUTOINCREMENT (no sqlite_sequence row per insert); `id` stays the first column."""
    for table in TABLES[:2]:
        (sql,) = _master(table, "table").values()
        assert sql.startswith(f'CREATE TABLE "{table}" ("id" integer NOT NULL PRIMARY KEY, '), sql
        assert "AUTOINCREMENT" not in sql
    with connection.cursor() as cur:
        cur.execute("SELECT name FROM sqlite_sequence WHERE name IN (%s, %s)", list(TABLES[:2]))
        assert cur.fetchall() == []


def test_remade_tables_keep_their_indexes_and_version_triggers(on_sqlite):
    assert set(_master(TABLES[0], "index")) == {
        "sqlite_autoindex_search_searchdocument_1",  # the unique key
        "searchdoc_kind",
        "searchdoc_name",
        "searchdoc_owner",
        "searchdoc_source",
        "searchdoc_visibility",
        "searchdoc_popular",  # 0007: the documents with a popularity share (partial)
    }
    assert set(_master(TABLES[1], "index")) == {"searchtag_doc", "searchtag_tag_doc"}  # 0005's drop holds
    for table in TABLES:
        assert set(_master(table, "trigger")) == {
            f"{table}_version_{e}" for e in ("insert", "update", "delete")
        }


def test_raw_writes_to_the_remade_tables_change_the_version(on_sqlite):
    """The recreated triggers fire: an insert, update and delete of a document row and a tag row."""
    backend = get_backend()
    statements = [
        "INSERT INTO search_searchdocument (id, source, key, kind, kind_label, name, title, description, "
        "body, owner, lifecycle, type, tags, visibility, owner_team_id, url) "
        "VALUES (77, 's', 'k', 'model', 'Model', 'n', '', '', '', '', '', '', '', 'internal', NULL, '/')",
        "UPDATE search_searchdocument SET title = 'T' WHERE id = 77",
        "INSERT INTO search_searchdocumenttag (document_id, tag) VALUES (77, 't')",
        "UPDATE search_searchdocumenttag SET tag = 'u' WHERE document_id = 77",
        "DELETE FROM search_searchdocumenttag WHERE document_id = 77",
        "DELETE FROM search_searchdocument WHERE id = 77",
    ]
    for sql in statements:
        before = backend.index_version()
        with connection.cursor() as cur:
            cur.execute(sql)
        assert backend.index_version() not in (None, before), sql
