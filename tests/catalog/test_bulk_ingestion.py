"""Large registrations: files read in parallel processes, candidates that travel between processes,
the search index fed from what was just written, and the SQLite bulk-write settings."""

import os
import pickle
import textwrap
import uuid

import pytest
from django.db import connection

from catalog import services
from catalog.ingest import engines, writer
from catalog.ingest import reader as ingestion
from catalog.models import Entity, ProcessingError, Relation
from catalog.search import CatalogSource
from portal.core.db import (
    DeferredIndexes,
    bulk_write_cache,
    time_ordered_hexes,
    time_ordered_uuid,
    wait_for_checkpoints,
)
from portal.search import selectors as search_selectors
from portal.search.backends import get_backend
from portal.search.models import SearchDocument

pytestmark = pytest.mark.django_db

FEATURES = textwrap.dedent("""\
    apiVersion: plinth.dev/v1alpha1
    kind: FeatureSet
    metadata:
      name: features-{i}
      tags: [pii]
      annotations:
        backstage.io/techdocs-ref: dir:.
    spec:
      owner: team-{i}
      system: shop
      entities: [{{name: customer, joinKeys: [customer_id]}}]
      features: [{{name: basket_value_{i}, type: FLOAT}}]
    """)
COMPONENT = textwrap.dedent("""\
    apiVersion: backstage.io/v1alpha1
    kind: Component
    metadata:
      name: service-{i}
    spec:
      type: service
      lifecycle: production
      owner: team-{i}
      dependsOn: [component:service-{j}]
    """)


def _tree(write_tree, files: int = 12, folder: str = "repo"):
    contents = {}
    for i in range(files):
        docs = [FEATURES.format(i=i), COMPONENT.format(i=i, j=(i + 1) % files)]
        if i == 3:
            docs.append("apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: bad name\nspec: {}\n")
        if i == 7:  # defined a second time: the first file (in reading order) wins
            docs.append(COMPONENT.format(i=0, j=1))
        contents[f"r{i:02d}/catalog-info.yaml"] = "---\n".join(docs)
    contents["sub/catalog-info.yaml"] = (
        "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata:\n  name: more\n"
        "spec:\n  targets: [./extra.yaml]\n"
    )
    contents["sub/extra.yaml"] = COMPONENT.format(i=99, j=0)
    return write_tree(contents, folder=folder)


def _read(root, processes, settings):
    settings.PLINTH_CATALOG_READ_PROCESSES = processes
    return ingestion.Reader(str(root), file_roots=None).read()


def test_parallel_read_gives_exactly_what_a_serial_read_gives(write_tree, settings, monkeypatch):
    root = _tree(write_tree)
    forked = []
    original = ingestion._read_in_processes
    monkeypatch.setattr(ingestion, "_read_in_processes", lambda *a: forked.append(a[2]) or original(*a))
    serial = _read(root, 1, settings)
    assert forked == []
    parallel = _read(root, 2, settings)
    assert forked == [2], "13 files with 2 processes allowed: the first level is read in 2 processes"

    assert list(parallel.candidates) == list(serial.candidates)  # same refs, same order
    for ref, cand in serial.candidates.items():
        other = parallel.candidates[ref]
        assert (other.data, other.data_json, other.content_hash, other.relations, other.source, other.line) == (
            cand.data, cand.data_json, cand.content_hash, cand.relations, cand.source, cand.line)
        assert other.columns() == cand.columns() and other.words == cand.words
    assert [e.as_dict() for e in parallel.errors] == [e.as_dict() for e in serial.errors]
    messages = " | ".join(e.message for e in parallel.errors)
    assert "defined twice" in messages and "r00/catalog-info.yaml" in messages
    assert any(e.field == "metadata.name" and e.source.endswith("r03/catalog-info.yaml") and e.line for e in parallel.errors)
    assert "component:default/service-99" in parallel.candidates, "Location targets are followed"
    assert parallel.sources == serial.sources and parallel.children == serial.children


def test_a_candidate_crosses_processes_as_its_json_text(write_tree, settings):
    cand = next(iter(_read(_tree(write_tree, files=1), 1, settings).candidates.values()))
    state = pickle.dumps(cand)
    assert b"basket_value_0" in state  # inside data_json and the derived search words
    copy = pickle.loads(state)  # noqa: S301 (our own bytes, as a pool worker would send them)
    assert copy._data is None, "the decoded dict is not pickled"
    assert copy.row == cand.row and copy.annotations == cand.annotations
    assert copy.data == cand.data and copy.columns() == cand.columns()


def test_registering_in_parallel_stores_entities_relations_errors_and_index(
        write_tree, settings, django_user_model, django_capture_on_commit_callbacks):
    settings.PLINTH_CATALOG_READ_PROCESSES = 2
    root = _tree(write_tree)
    with django_capture_on_commit_callbacks(execute=True):
        plan = services.location_register(target=str(root), actor=None, file_roots=None)
    assert len(plan.added) == 26 and Entity.objects.count() == 26  # 12 + 12 + service-99 + the Location
    assert Relation.objects.filter(source_ref="component:default/service-0", type="dependsOn").exists()
    assert Relation.objects.filter(source_ref="component:default/service-1", type="dependencyOf").exists()
    assert ProcessingError.objects.filter(location=plan.location).count() == len(plan.errors) == 5  # 4 + 1 twice
    # The search index was fed from the snapshot, and agrees with documents read back from the table.
    user = django_user_model.objects.create_user("searcher")
    hits = search_selectors.search(user, "basket_value_4").hits
    assert [h.key for h in hits] == ["featureset:default/features-4"]
    refs = sorted(Entity.objects.values_list("ref", flat=True))
    from_table = {d.key: d for d in CatalogSource().documents(refs)}
    snapshot = {c.ref: (Entity.objects.get(ref=c.ref).pk, Entity.objects.get(ref=c.ref).owner_team_id, c)
                for c in plan.added}
    from_snapshot = {d.key: d for d in CatalogSource().documents_from_snapshot(snapshot)}
    assert from_snapshot == from_table


def test_docs_builds_are_queued_only_for_entities_with_docs(
        write_tree, monkeypatch, django_capture_on_commit_callbacks):
    from portal.techdocs import receivers

    queued = []
    monkeypatch.setattr(receivers, "enqueue", lambda refs: queued.extend(refs))
    root = _tree(write_tree, files=4)
    with django_capture_on_commit_callbacks(execute=True):
        services.location_register(target=str(root), actor=None, file_roots=None)
    # The feature sets carry a techdocs-ref; the plain components have nothing to build.
    assert sorted(queued) == [f"featureset:default/features-{i}" for i in range(4)]


def test_time_ordered_uuids_are_v7_unique_and_ordered_by_time():
    import time

    first = [time_ordered_uuid() for _ in range(1000)]
    time.sleep(0.002)
    later = time_ordered_uuid()
    assert all(u.version == 7 for u in first) and len(set(first)) == 1000
    assert later.hex > max(u.hex for u in first)
    time.sleep(0.002)
    hexes = time_ordered_hexes(1000)
    assert len(set(hexes)) == 1000 and all(len(h) == 32 and uuid.UUID(h).version == 7 for h in hexes)
    assert min(hexes) > later.hex


def test_bulk_write_cache_restores_the_page_cache_size():
    if connection.vendor != "sqlite":
        pytest.skip("SQLite only")

    def cache_size():
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA cache_size")
            return cursor.fetchone()[0]

    before = cache_size()
    with bulk_write_cache(rows=10):
        assert cache_size() == before, "small writes keep the usual cache"
    with bulk_write_cache(rows=100_000):
        assert cache_size() == -1024 * 1024
    assert cache_size() == before


def test_models_are_queued_for_a_build_only_with_a_model_card(write_tree, monkeypatch, django_capture_on_commit_callbacks):
    from portal.techdocs import receivers

    queued = []
    monkeypatch.setattr(receivers, "enqueue", lambda refs: queued.extend(refs))
    model = ("apiVersion: plinth.dev/v1alpha1\nkind: Model\nmetadata:\n  name: {name}\n"
             "spec:\n  type: classifier\n  lifecycle: production\n  owner: team-a\n{extra}")
    root = write_tree({"catalog-info.yaml": "---\n".join([
        model.format(name="with-card", extra="  modelCard: docs/card.md\n"),
        model.format(name="without-card", extra=""),
    ])})
    with django_capture_on_commit_callbacks(execute=True):
        services.location_register(target=str(root), actor=None, file_roots=None)
    assert queued == ["model:default/with-card"]


@pytest.mark.django_db(transaction=True)
def test_a_large_write_leaves_the_write_ahead_log_empty(tmp_path):
    if connection.vendor != "sqlite":
        pytest.skip("SQLite only")
    from catalog.models import Location

    wal = f"{connection.settings_dict['NAME']}-wal"
    with bulk_write_cache(rows=100_000):
        Location.objects.bulk_create(
            [Location(type="file", target=str(tmp_path / f"{i}.yaml")) for i in range(20_000)])
    # Committed without copying the log back (the caller's answer does not wait for it) ...
    assert os.path.getsize(wal) > 1_000_000
    assert Location.objects.count() == 20_000
    # ... which a thread does meanwhile.
    wait_for_checkpoints()
    assert not os.path.exists(wal) or os.path.getsize(wal) == 0


def _stored(location):
    """What a location stored, by ref (ids differ between two registrations)."""
    from catalog.models import EntityTag

    refs = dict(Entity.objects.filter(location=location).values_list("id", "ref"))
    entities = {(e.ref, e.owner_team_id, e.content_hash, e.error_count, tuple(e.tags))
                for e in Entity.objects.filter(location=location)}
    relations = {(refs[o], s, t, g) for o, s, t, g in Relation.objects.filter(origin_id__in=refs).values_list(
        "origin_id", "source_ref", "type", "target_ref")}
    tags = {(refs[e], t) for e, t in EntityTag.objects.filter(entity_id__in=refs).values_list("entity_id", "tag")}
    errors = sorted(ProcessingError.objects.filter(location=location).values_list("source", "line", "message"))
    return entities, relations, tags, errors


def _index_sql():
    """The secondary indexes and triggers of the tables a bulk load defers, as SQLite holds them."""
    with connection.cursor() as cur:
        cur.execute("SELECT name, sql FROM sqlite_master WHERE type IN ('index', 'trigger') AND sql IS NOT NULL AND tbl_name IN "
                    "('catalog_entity', 'catalog_relation', 'catalog_entitytag', 'search_searchdocument', "
                    "'search_searchdocumenttag') ORDER BY name")
        return cur.fetchall()


def _fts_config():
    with connection.cursor() as cur:
        cur.execute("SELECT k, v FROM search_fts_config WHERE k IN ('automerge', 'crisismerge')")
        return dict(cur.fetchall())


def _indexed(refs):
    """The search documents of these refs, as stored, and the refs a full-text match on their names finds."""
    docs = {d.key: (d.name, d.owner, d.owner_team_id, d.tags, d.body, d.visibility)
            for d in SearchDocument.objects.filter(key__in=refs)}
    with connection.cursor() as cur:
        cur.execute("SELECT d.key FROM search_fts f JOIN search_searchdocument d ON d.id = f.rowid "
                    "WHERE search_fts MATCH 'basket*'")
        matched = {row[0] for row in cur.fetchall()}
    return docs, matched


def test_a_streamed_registration_stores_exactly_what_a_read_then_write_stores(
        write_tree, settings, monkeypatch, django_capture_on_commit_callbacks):
    from portal.accounts.models import Team

    batches = []
    monkeypatch.setattr(services, "STREAM_BATCH", 3)
    original = writer.Writer.write
    monkeypatch.setattr(writer.Writer, "write", lambda self, a, c: batches.append(len(a) + len(c)) or original(self, a, c))
    root = _tree(write_tree)
    # The owning team is defined in the last file read: entities before it must still get its id.
    (root / "r11" / "catalog-info.yaml").write_text(
        (root / "r11" / "catalog-info.yaml").read_text()
        + "---\napiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata:\n  name: team-0\nspec:\n  type: team\n  children: []\n")

    settings.PLINTH_CATALOG_READ_PROCESSES = 2
    indexes = _index_sql()
    assert len(indexes) >= 21
    dropped = []
    original_drop = DeferredIndexes.drop
    monkeypatch.setattr(DeferredIndexes, "drop", lambda self: original_drop(self) or dropped.append(len(self.dropped)))
    version = get_backend().index_version()
    with django_capture_on_commit_callbacks(execute=True):
        streamed = services.location_register(target=str(root), actor=None, file_roots=None)
    assert get_backend().index_version() not in (None, version), "cached search results are stale now"
    assert len(batches) > 5 and sum(batches) == len(streamed.added) == 27, "written batch by batch while read"
    # A large load into a small catalog: the catalog's indexes (all but the owner index) and then the
    # search index's (all but the tag-by-document index) and its six index-version triggers were deferred.
    assert dropped[:2] == [10, 12]
    assert _index_sql() == indexes, "and created again, exactly as they were"
    assert _fts_config() == {"automerge": 4, "crisismerge": 16}, "FTS5 merges as usual again"
    stored = _stored(streamed.location)
    refs = [c.ref for c in streamed.added]
    indexed = _indexed(refs)
    assert set(indexed[0]) == set(refs), "every entity is in the search index when the write commits"
    assert len(indexed[1]) == 12, "and its words are in the full-text index"
    team = Team.objects.get(name="team-0")
    assert indexed[0]["featureset:default/features-0"][2] == team.pk, "the index learnt the team defined last"
    # Index order: production first over the whole load, not per batch (team-0's two entities are
    # indexed again after the commit, with the team the last file defined: they come last).
    doc_ids = dict(SearchDocument.objects.filter(key__in=refs).exclude(key__endswith="-0").values_list("key", "id"))
    production = [i for key, i in doc_ids.items() if key.startswith("component:")]
    others = [i for key, i in doc_ids.items() if key.startswith("featureset:")]
    assert len(production) == 12 and len(others) == 11 and max(production) < min(others)  # service-99 too
    team = Team.objects.get(name="team-0")
    assert Entity.objects.get(ref="featureset:default/features-0").owner_team_id == team.pk
    assert Entity.objects.get(ref="component:default/service-0").owner_team_id == team.pk

    services.location_unregister(location=streamed.location, actor=None)
    settings.PLINTH_CATALOG_READ_PROCESSES = 1
    batches.clear()
    with django_capture_on_commit_callbacks(execute=True):
        serial = services.location_register(target=str(root), actor=None, file_roots=None)
    assert batches == [27], "one process: read everything, then write once"
    assert _stored(serial.location) == stored
    assert _indexed(refs) == indexed
    assert [e.as_dict() for e in serial.errors] == [e.as_dict() for e in streamed.errors]


def test_a_streamed_refresh_changes_removes_and_rejects_like_a_plan(
        write_tree, settings, monkeypatch, django_capture_on_commit_callbacks):
    monkeypatch.setattr(services, "STREAM_BATCH", 4)
    settings.PLINTH_CATALOG_READ_PROCESSES = 2
    root = _tree(write_tree)
    other = write_tree({"catalog-info.yaml": COMPONENT.format(i=50, j=0)}, folder="other")
    with django_capture_on_commit_callbacks(execute=True):
        first = services.location_register(target=str(root), actor=None, file_roots=None)
        services.location_register(target=str(other), actor=None, file_roots=None)
    (root / "r05" / "catalog-info.yaml").write_text(
        FEATURES.format(i=5).replace("tags: [pii]", "tags: [gpu]") + "---\n" + COMPONENT.format(i=5, j=6)
        + "---\n" + COMPONENT.format(i=50, j=0))
    (root / "r06" / "catalog-info.yaml").unlink()
    with django_capture_on_commit_callbacks(execute=True):
        plan = services.location_refresh(location=first.location)
    assert [c.ref for _, c in plan.changed] == ["featureset:default/features-5"]
    assert sorted(ref for _, ref in plan.removed) == ["component:default/service-6", "featureset:default/features-6"]
    assert any("service-50 is already registered by location" in e.message for e in plan.errors)
    assert Entity.objects.get(ref="featureset:default/features-5").tags == ["gpu"]
    gone = Entity.objects.get(ref="featureset:default/features-6")
    assert gone.orphan and gone.location is None, "kept as an orphan (the default strategy)"
    assert Entity.objects.get(ref="component:default/service-50").location.target == str(other.resolve())
    assert len(plan.unchanged) == 26 - 1 - 2  # all but the changed and the removed


def test_a_failure_while_streaming_stores_nothing_and_stops_the_readers(write_tree, settings, monkeypatch):
    from catalog.models import EntityTag, Location

    monkeypatch.setattr(services, "STREAM_BATCH", 3)
    settings.PLINTH_CATALOG_READ_PROCESSES = 2
    calls = []
    original = writer.Writer.write

    def failing(self, added, changed):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("disk full")
        original(self, added, changed)

    monkeypatch.setattr(writer.Writer, "write", failing)
    import multiprocessing

    indexes = _index_sql()
    with pytest.raises(RuntimeError, match="disk full"):
        services.location_register(target=str(_tree(write_tree)), actor=None, file_roots=None)
    assert len(calls) == 3
    assert not Location.objects.exists() and not Entity.objects.exists()
    assert not Relation.objects.exists() and not EntityTag.objects.exists()
    assert not SearchDocument.objects.exists(), "two batches were indexed, and rolled back with the catalog"
    assert _index_sql() == indexes, "the deferred indexes came back with the rollback"
    assert multiprocessing.active_children() == [], "the reading processes were stopped"
    assert ingestion._FORK_READER is None


def test_a_failing_index_write_fails_the_registration_and_stores_nothing(write_tree, settings, monkeypatch):
    """The search index is written inside the registration's transaction: an entity is never visible
    in the catalog without being findable, and a failed index write leaves both as they were."""
    from catalog.models import EntityTag, Location
    from portal.search import index

    monkeypatch.setattr(services, "STREAM_BATCH", 3)
    settings.PLINTH_CATALOG_READ_PROCESSES = 2
    calls = []
    original = index.Staged.write

    def failing(self, documents, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("index broken")
        return original(self, documents, **kwargs)

    monkeypatch.setattr(index.Staged, "write", failing)
    with pytest.raises(RuntimeError, match="index broken"):
        services.location_register(target=str(_tree(write_tree)), actor=None, file_roots=None)
    assert not Location.objects.exists() and not Entity.objects.exists() and not EntityTag.objects.exists()
    assert not SearchDocument.objects.exists()
    assert _fts_config().get("automerge", 4) == 4


def test_deferred_indexes_come_back_as_they_were():
    from django.db import transaction

    before = _index_sql()
    deferred = DeferredIndexes(["catalog_relation", "catalog_entity"], keep=("entity_owner_name",))
    with transaction.atomic():
        deferred.drop()
        names = {name for name, _ in _index_sql()}
        assert "entity_owner_name" in names and "relation_source" not in names and "entity_kind_name" not in names
        assert "sqlite_autoindex_catalog_entity_1" not in names  # constraints are not in sqlite_master's sql
        assert Entity.objects.filter(ref="component:default/x").count() == 0, "unique ref lookups still work"
        deferred.restore()
    assert _index_sql() == before
    with pytest.raises(RuntimeError), transaction.atomic():
        deferred.drop()
        raise RuntimeError("rolled back")
    assert _index_sql() == before, "a rollback brings them back"


def test_new_entity_ids_are_known_without_reading_them_back(write_tree):
    from catalog.models import Location

    root = _tree(write_tree, files=4)
    plan = services.location_register(target=str(root), actor=None, file_roots=None)
    by_ref = dict(Entity.objects.values_list("ref", "id"))
    ordered = sorted(plan.added, key=lambda c: c.row["name_key"])
    assert [by_ref[c.ref] for c in ordered] == sorted(by_ref.values()), "inserted in name order, ids ascending"
    if connection.vendor != "sqlite":
        return  # PostgreSQL takes the ids from the sequence before inserting
    # Later inserts moved the last rowid on: the check of the first and last refs notices, and the
    # ids are read back instead of guessed.
    Location.objects.create(type="file", target="/elsewhere.yaml")
    assert engines.SqliteRows().inserted_ids([c.ref for c in ordered]) == [by_ref[c.ref] for c in ordered]


def test_where_no_process_can_start_the_location_is_read_once_in_this_process(write_tree, settings, monkeypatch):
    """A Celery prefork child is daemonic and may not have children: one try, then a serial read."""
    settings.PLINTH_CATALOG_READ_PROCESSES = 2
    tries, walks = [], []
    monkeypatch.setattr(ingestion, "_start_pool", lambda reader, processes: tries.append(processes))
    original = ingestion.Reader._find_sources
    monkeypatch.setattr(ingestion.Reader, "_find_sources", lambda self: walks.append(1) or original(self))
    plan = services.location_register(target=str(_tree(write_tree)), actor=None, file_roots=None)
    assert len(plan.added) == 26 and Entity.objects.count() == 26
    assert tries == [2], "not tried again for the level once it failed"
    assert walks == [1], "the folder is walked once"
