"""The write path's PostgreSQL part (catalog.ingest.engines.PostgresRows, the search backend's COPY):
a streamed registration stores by COPY exactly what the model reads back, and a database error in a
later batch leaves nothing written. A large load into a small catalog defers the tables' secondary
indexes and the foreign keys between them to the end of its transaction (portal.core.db.DeferredIndexes),
unless another session is reading them."""

import logging
import uuid

import psycopg
import pytest
from django.db import IntegrityError, connection
from django.test.utils import CaptureQueriesContext

from catalog import services
from catalog.ingest import engines
from catalog.models import Entity, EntityTag, Location, Relation
from portal.core import db
from portal.search.models import SearchDocument, SearchDocumentTag

from .test_bulk_ingestion import _tree

pytestmark = [pytest.mark.prod_smoke, pytest.mark.usefixtures("postgres_only"), pytest.mark.django_db]

LOADED = ["catalog_entity", "catalog_relation", "catalog_entitytag", "search_searchdocument", "search_searchdocumenttag"]


def _schema() -> tuple[dict, list]:
    """The loaded tables' indexes and constraints, as PostgreSQL would create them."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index "
                       "WHERE indrelid = ANY(%s::text[]::regclass[])", [LOADED])
        indexes = dict(cursor.fetchall())
        cursor.execute("SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
                       "WHERE conrelid = ANY(%s::text[]::regclass[])", [LOADED])
        return indexes, sorted(cursor.fetchall())


def test_a_streamed_registration_copies_entities_relations_tags_and_search_documents(
        write_tree, settings, monkeypatch, django_capture_on_commit_callbacks):
    monkeypatch.setattr(services, "STREAM_BATCH", 4)
    settings.PLINTH_CATALOG_READ_PROCESSES = 2
    with django_capture_on_commit_callbacks(execute=True):
        plan = services.location_register(target=str(_tree(write_tree)), actor=None, file_roots=None)
    assert len(plan.added) == 26
    assert {e.source.split("/")[-2] for e in plan.errors} == {"r03", "r07"}, "the bad name and the duplicate"
    features = Entity.objects.get(ref="featureset:default/features-4")
    assert isinstance(features.uid, uuid.UUID) and features.uid.version == 7, "a uuid, sent as its hex digits"
    assert features.data["spec"]["features"] == [{"name": "basket_value_4", "type": "FLOAT"}], "JSON text into jsonb"
    assert features.tags == ["pii"] and list(features.tag_rows.values_list("tag", flat=True)) == ["pii"]
    assert Relation.objects.filter(origin=Entity.objects.get(ref="component:default/service-4"),
                                   type="dependsOn", target_ref="component:default/service-5").exists()
    assert Relation.objects.filter(source_ref="component:default/service-5", type="dependencyOf").exists()
    ids = list(Entity.objects.values_list("id", flat=True))
    assert SearchDocument.objects.filter(key__startswith="featureset:").count() == 12
    assert SearchDocumentTag.objects.filter(tag="pii").count() == 12
    with connection.cursor() as cursor:  # the generated full-text column was computed for copied rows
        cursor.execute("SELECT key FROM search_searchdocument WHERE tsv @@ to_tsquery('simple', 'basket_value_4')")
        assert cursor.fetchall() == [("featureset:default/features-4",)]
    # The sequences moved past what was drawn: an ORM insert afterwards takes a fresh id.
    assert Entity.objects.create(ref="component:default/after", kind="Component", kind_key="component",
                                 namespace="default", name="after", name_key="after", data={}).pk > max(ids)


def test_a_database_error_in_a_later_batch_leaves_nothing_written(write_tree, settings, monkeypatch):
    """A COPY that fails (here: the third batch reuses the first batch's ids) raises Django's
    IntegrityError and rolls the whole registration back, catalog and search index alike."""
    monkeypatch.setattr(services, "STREAM_BATCH", 3)
    settings.PLINTH_CATALOG_READ_PROCESSES = 2
    drawn: list[list[int]] = []
    original = engines.PostgresRows.sequence_ids

    def reused(model, count):
        ids = original(model, count) if len(drawn) < 2 else drawn[0][:count]
        drawn.append(ids)
        return ids

    monkeypatch.setattr(engines.PostgresRows, "sequence_ids", staticmethod(reused))
    schema = _schema()
    with pytest.raises(IntegrityError):
        services.location_register(target=str(_tree(write_tree)), actor=None, file_roots=None)
    assert len(drawn) == 3
    assert not Location.objects.exists() and not Entity.objects.exists()
    assert not Relation.objects.exists() and not EntityTag.objects.exists()
    assert not SearchDocument.objects.exists() and not SearchDocumentTag.objects.exists()
    assert _schema() == schema, "the indexes and keys the load dropped are back with the rollback"


def test_a_large_write_refreshes_the_planner_statistics_before_it_commits(
        write_tree, settings, monkeypatch, django_capture_on_commit_callbacks):
    """The receivers after the commit (the lineage graph's refresh) and the next requests plan on the
    tables as the write left them, not as autovacuum last saw them: a write that adds many rows next to
    what a table held ANALYZEs the catalog's and the search index's tables inside its transaction."""
    monkeypatch.setattr(services, "STREAM_BATCH", 4)
    monkeypatch.setattr(db, "ANALYZE_MIN_ROWS", 20)
    settings.PLINTH_CATALOG_READ_PROCESSES = 2
    with CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks(execute=True):
        plan = services.location_register(target=str(_tree(write_tree)), actor=None, file_roots=None)
    assert len(plan.added) == 26
    analyzed = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("ANALYZE")]
    assert analyzed == ['ANALYZE "catalog_entity", "catalog_relation", "catalog_entitytag"',
                        'ANALYZE "search_searchdocument", "search_searchdocumenttag"'] or analyzed == [
        'ANALYZE "search_searchdocument", "search_searchdocumenttag"',
        'ANALYZE "catalog_entity", "catalog_relation", "catalog_entitytag"'], analyzed
    with connection.cursor() as cursor:
        cursor.execute("SELECT relname, reltuples FROM pg_class WHERE relname IN ('catalog_entity', 'search_searchdocument')")
        assert dict(cursor.fetchall()) == {"catalog_entity": Entity.objects.count(),
                                           "search_searchdocument": SearchDocument.objects.count()}
    # A write small next to what the table now holds (26 rows) leaves the statistics alone.
    monkeypatch.setattr(db, "ANALYZE_MIN_ROWS", 1)
    assert not db.analyze_grown(["catalog_entity"], 5)
    assert db.analyze_grown(["catalog_entity"], 6), "more than a fifth"
    monkeypatch.setattr(db, "ANALYZE_MIN_ROWS", 1000)
    assert not db.analyze_grown(["catalog_entity"], 999), "below the minimum"


def test_a_bulk_load_into_a_small_catalog_builds_its_indexes_and_keys_again_before_it_commits(
        write_tree, settings, monkeypatch, django_capture_on_commit_callbacks):
    """From its first full batch, a load into a small catalog writes the catalog's and the search index's
    tables without their secondary indexes and without the foreign keys between them (a child row's key
    is otherwise checked at the commit by a locked lookup of its parent, one row at a time); it creates
    them again, sorted once and checked in one join, inside its transaction. The indexes the load itself
    queries stay; so do primary keys, unique constraints and keys to other tables."""
    monkeypatch.setattr(services, "STREAM_BATCH", 4)
    settings.PLINTH_CATALOG_READ_PROCESSES = 2
    before = _schema()
    with CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks(execute=True):
        plan = services.location_register(target=str(_tree(write_tree)), actor=None, file_roots=None)
    assert len(plan.added) == 26
    sql = [q["sql"] for q in queries.captured_queries]
    dropped = {s.removeprefix("DROP INDEX ").strip('"') for s in sql if s.startswith("DROP INDEX")}
    assert {"relation_origin", "relation_source", "tag_entity", "entity_kind_name", "searchdoc_tsv",
            "searchdoc_name_trgm"} <= dropped, dropped
    assert not dropped & {"entity_owner_name", "searchtag_doc", "searchdoc_popular"}, "queried by the load"
    assert not dropped & {"catalog_entity_pkey", "catalog_entity_ref_key", "one_tag_per_entity"}, "constraints stay"
    keys = sorted(s.split()[2] for s in sql if " DROP CONSTRAINT " in s)
    assert keys == ["catalog_entitytag", "catalog_relation", "search_searchdocumenttag"], "only keys between loaded tables"
    assert sum(s.startswith("CREATE INDEX") for s in sql) == len(dropped)
    assert sum(" ADD CONSTRAINT " in s for s in sql) == 3
    assert _schema() == before
    # Rows and what reads them are as on the slow path: the index of relations by origin finds them.
    service = Entity.objects.get(ref="component:default/service-4")
    assert Relation.objects.filter(origin=service, type="dependsOn", target_ref="component:default/service-5").exists()
    assert SearchDocument.objects.count() == Entity.objects.count() == 26


def test_a_bulk_load_waits_briefly_for_tables_being_read_then_keeps_their_indexes(
        write_tree, settings, monkeypatch, caplog, django_capture_on_commit_callbacks):
    """Dropping an index locks its table against readers until the commit. A session already reading
    the relations (a long export, a report) holds them: the load waits PG_LOCK_WAIT for the lock, then
    writes those tables with their indexes in place, and says so. The search index's tables, free,
    still take the fast path."""
    monkeypatch.setattr(services, "STREAM_BATCH", 4)
    monkeypatch.setattr(db, "PG_LOCK_WAIT", 0.2)
    settings.PLINTH_CATALOG_READ_PROCESSES = 2
    before = _schema()
    params = connection.settings_dict
    reader = psycopg.connect(dbname=params["NAME"], user=params["USER"], password=params["PASSWORD"] or None,
                             host=params["HOST"], port=params["PORT"] or None)
    try:
        reader.execute("SELECT count(*) FROM catalog_relation")  # its transaction stays open: the lock is held
        with caplog.at_level(logging.WARNING, logger="plinth.db"), CaptureQueriesContext(connection) as queries, \
                django_capture_on_commit_callbacks(execute=True):
            plan = services.location_register(target=str(_tree(write_tree)), actor=None, file_roots=None)
    finally:
        reader.close()
    assert len(plan.added) == 26
    sql = [q["sql"] for q in queries.captured_queries]
    assert not any("catalog_" in s for s in sql if s.startswith("DROP ") or " DROP CONSTRAINT " in s)
    assert any(s == 'DROP INDEX "searchdoc_tsv"' for s in sql), "the search index's tables were free"
    assert "lock was not free within 0.2 s" in caplog.text and "indexes kept" in caplog.text
    assert _schema() == before
    assert Relation.objects.filter(origin__ref="component:default/service-4", type="dependsOn").exists()
