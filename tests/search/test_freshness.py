"""The index follows the catalog: register, change and unregister are searchable at once."""

import pytest
from django.db import connection

from catalog import services
from catalog.models import Location
from portal.search import selectors

DESCRIPTOR = """apiVersion: plinth.dev/v1alpha1
kind: Dataset
metadata: {{name: quokka-observations, title: {title}, description: {description}}}
spec: {{owner: fraud-ml, classification: internal}}
"""


@pytest.fixture(autouse=True)
def _on_backend(backend_vendor):
    """Run on SQLite in the normal run and on PostgreSQL in the prod_smoke run."""
    if connection.vendor != backend_vendor:
        pytest.skip(f"runs on {backend_vendor}; this run uses {connection.vendor}")


@pytest.fixture
def admin(demo_org):
    return demo_org["users"]["grace"]


def _write(path, title="Quokka observations", description="Sightings of marsupials."):
    path.write_text(DESCRIPTOR.format(title=title, description=description))


def _keys(user, text):
    return [h.key for h in selectors.search(user, text).hits]


def test_register_update_unregister(admin, tmp_path, django_capture_on_commit_callbacks):
    """Each catalog change reaches the index on commit (entities_changed), without a reindex."""
    path = tmp_path / "catalog-info.yaml"
    _write(path)
    with django_capture_on_commit_callbacks(execute=True):
        services.location_register(target=str(path), actor=admin, file_roots=None)
    assert _keys(admin, "quokka") == ["dataset:default/quokka-observations"]
    assert _keys(admin, "marsupials") == ["dataset:default/quokka-observations"]

    _write(path, title="Wombat observations", description="Burrow counts.")
    with django_capture_on_commit_callbacks(execute=True):
        services.location_refresh(location=Location.objects.get(target=str(path)))
    assert _keys(admin, "wombat") == ["dataset:default/quokka-observations"]
    assert _keys(admin, "marsupials") == []

    with django_capture_on_commit_callbacks(execute=True):
        services.location_unregister(location=Location.objects.get(target=str(path)), actor=admin)
    assert _keys(admin, "wombat") == []
    assert _keys(admin, "quokka") == []


@pytest.mark.django_db(transaction=True)
def test_register_is_searchable_after_a_real_commit(tmp_path):
    """With real transactions (no test wrapper), the on_commit signal indexes the new entity."""
    from portal.accounts import demo as org_demo

    org = org_demo.load_org()
    path = tmp_path / "catalog-info.yaml"
    _write(path)
    services.location_register(target=str(path), actor=org["users"]["grace"], file_roots=None)
    assert _keys(org["users"]["alice"], "quokka obs") == ["dataset:default/quokka-observations"]


def test_visibility_change_is_applied(demo_org, tmp_path, django_capture_on_commit_callbacks):
    """Making an entity private hides it from other teams at once."""
    carol = demo_org["users"]["carol"]
    path = tmp_path / "catalog-info.yaml"
    _write(path)
    with django_capture_on_commit_callbacks(execute=True):
        services.location_register(target=str(path), actor=None, file_roots=None)
    assert _keys(carol, "quokka") == ["dataset:default/quokka-observations"]
    path.write_text(
        DESCRIPTOR.format(title="Quokka observations", description="x").replace(
            "description: x}", "description: x, annotations: {plinth.dev/visibility: private}}"
        )
    )
    with django_capture_on_commit_callbacks(execute=True):
        services.location_refresh(location=Location.objects.get(target=str(path)))
    assert _keys(carol, "quokka") == []
    assert _keys(demo_org["users"]["alice"], "quokka") == ["dataset:default/quokka-observations"]


def test_reindex_command_rebuilds(demo_org):
    """`manage.py search reindex` indexes every entity and prints a JSON summary."""
    import json
    from io import StringIO

    from django.core.management import call_command

    from catalog.models import Entity

    def fts_definition():
        with connection.cursor() as cursor:
            cursor.execute("SELECT sql FROM sqlite_master WHERE name = 'search_fts'")
            return cursor.fetchone()

    migrated = fts_definition() if connection.vendor == "sqlite" else None
    out = StringIO()
    call_command("search", "reindex", stdout=out)
    assert json.loads(out.getvalue())["documents"]["catalog"] == Entity.objects.count()
    if connection.vendor == "sqlite":  # the rebuild recreated the full-text table exactly as migrated
        assert fts_definition() == migrated
        user = demo_org["users"]["grace"]
        assert [h.key for h in selectors.search(user, "fraud detector").hits][:1] == ["model:default/fraud-detector"]


def test_large_registrations_take_the_bulk_path(admin, tmp_path, monkeypatch, django_capture_on_commit_callbacks):
    """Above the bulk threshold the index assigns ids itself; results are the same."""
    from portal.search import index

    monkeypatch.setattr(index, "BULK_THRESHOLD", 1)
    path = tmp_path / "catalog-info.yaml"
    path.write_text("".join(
        f"---\napiVersion: plinth.dev/v1alpha1\nkind: Dataset\nmetadata: {{name: numbat-{i}}}\n"
        f"spec: {{owner: fraud-ml}}\n" for i in range(5)))
    with django_capture_on_commit_callbacks(execute=True):
        services.location_register(target=str(path), actor=admin, file_roots=None)
    assert sorted(_keys(admin, "numbat")) == [f"dataset:default/numbat-{i}" for i in range(5)]
    # and a later small change still works beside the bulk-written rows
    path.write_text(path.read_text().replace("numbat-0}", "numbat-0, title: Numbat zero}"))
    with django_capture_on_commit_callbacks(execute=True):
        services.location_refresh(location=Location.objects.get(target=str(path)))
    assert _keys(admin, "numbat zero")[0] == "dataset:default/numbat-0"


TWO = """apiVersion: plinth.dev/v1alpha1
kind: Dataset
metadata: {name: quokka-observations, title: Quokka observations}
spec: {owner: fraud-ml, classification: internal}
---
apiVersion: plinth.dev/v1alpha1
kind: Dataset
metadata: {name: wombat-burrows, title: Wombat burrows}
spec: {owner: fraud-ml, classification: internal}
"""


def test_the_repair_sweep_indexes_what_has_no_document_and_drops_what_is_gone(admin, tmp_path,
                                                                              django_capture_on_commit_callbacks):
    """An entity whose index write never happened (a failure or a process gone after the commit) gets
    its document; a document whose entity is gone is dropped; a change younger than the settle time is
    left to the write on its way; a second sweep finds nothing (idempotent)."""
    from django.core.management import call_command
    from django.utils import timezone

    from catalog.models import Entity
    from portal.search import index
    from portal.search.backends import get_backend
    from portal.search.models import SearchDocument
    from portal.search.registry import get as source

    path = tmp_path / "catalog-info.yaml"
    path.write_text(TWO)
    with django_capture_on_commit_callbacks(execute=True):
        services.location_register(target=str(path), actor=admin, file_roots=None)
    quokka, wombat = "dataset:default/quokka-observations", "dataset:default/wombat-burrows"
    assert _keys(admin, "quokka") == [quokka] and _keys(admin, "wombat") == [wombat]
    backend = get_backend()
    backend.delete(*backend.with_keys([quokka]))  # its document lost
    Entity.objects.filter(ref=wombat).delete()  # gone without telling search (no entities_changed)
    assert _keys(admin, "quokka") == [] and _keys(admin, "wombat") == [wombat]

    assert index.repair(settle_seconds=3600)["catalog"] == {"indexed": 0, "removed": 1}  # quokka is too young
    assert _keys(admin, "wombat") == [] and _keys(admin, "quokka") == []
    out = tmp_path / "out.txt"
    with out.open("w") as stream:
        call_command("search", "repair", "--settle-seconds", "0", stdout=stream)
    assert '"catalog": {"indexed": 1, "removed": 0}' in out.read_text()
    assert _keys(admin, "quokka") == [quokka]
    assert index.repair(settle_seconds=0)["catalog"] == {"indexed": 0, "removed": 0}
    assert source("catalog").unindexed(10, timezone.now()) == ([], [])
    assert SearchDocument.objects.filter(source="catalog").count() == Entity.objects.count()


def test_the_repair_sweep_rewrites_a_document_older_than_its_entitys_last_change(admin, tmp_path,
                                                                              django_capture_on_commit_callbacks):
    """An entity changed after its document was written, and the index write of that change lost:
    the sweep rewrites the document from the entity (once: a second sweep finds nothing), and leaves
    every document that is as new as its entity alone — none of the ways the demo organisation and a
    registration wrote theirs counts as out of date."""
    from django.utils import timezone

    from catalog.models import Entity
    from portal.search import index
    from portal.search.models import SearchDocument

    path = tmp_path / "catalog-info.yaml"
    path.write_text(TWO)
    with django_capture_on_commit_callbacks(execute=True):
        services.location_register(target=str(path), actor=admin, file_roots=None)
    assert index.repair(settle_seconds=0)["catalog"] == {"indexed": 0, "removed": 0}
    quokka = "dataset:default/quokka-observations"
    written = SearchDocument.objects.get(key=quokka).indexed_at
    # Changed without telling search (no entities_changed): a lost index write.
    Entity.objects.filter(ref=quokka).update(title="Quokka census", updated_at=timezone.now())
    assert _keys(admin, "census") == []
    assert index.repair(settle_seconds=3600)["catalog"] == {"indexed": 0, "removed": 0}  # too young
    assert index.repair(settle_seconds=0)["catalog"] == {"indexed": 1, "removed": 0}
    assert _keys(admin, "census") == [quokka]
    assert SearchDocument.objects.get(key=quokka).indexed_at > written
    assert index.repair(settle_seconds=0)["catalog"] == {"indexed": 0, "removed": 0}
    # A change that went through the catalog's own path is indexed with it: nothing for the sweep.
    path.write_text(TWO.replace("Wombat burrows", "Wombat tunnels"))
    with django_capture_on_commit_callbacks(execute=True):
        services.location_refresh(location=Location.objects.get(target=str(path)))
    assert _keys(admin, "tunnels") == ["dataset:default/wombat-burrows"]
    assert index.repair(settle_seconds=0)["catalog"] == {"indexed": 0, "removed": 0}


def test_an_orphan_kept_by_its_location_stays_findable(admin, tmp_path, settings,
                                                      django_capture_on_commit_callbacks):
    """With the `keep` strategy an entity gone from its file stays in the catalog, flagged orphan: it
    stays in search too (its document rewritten, not dropped), so the sweep has nothing to repair."""
    from catalog.models import Entity
    from portal.search import index

    settings.PLINTH_CATALOG_ORPHAN_STRATEGY = "keep"
    path = tmp_path / "catalog-info.yaml"
    path.write_text(TWO)
    with django_capture_on_commit_callbacks(execute=True):
        services.location_register(target=str(path), actor=admin, file_roots=None)
    path.write_text(TWO.split("---")[0])
    with django_capture_on_commit_callbacks(execute=True):
        services.location_refresh(location=Location.objects.get(target=str(path)))
    assert Entity.objects.get(ref="dataset:default/wombat-burrows").orphan
    assert _keys(admin, "wombat") == ["dataset:default/wombat-burrows"]
    assert index.repair(settle_seconds=0)["catalog"] == {"indexed": 0, "removed": 0}
    settings.PLINTH_CATALOG_ORPHAN_STRATEGY = "delete"
    path.write_text("")
    with django_capture_on_commit_callbacks(execute=True):
        services.location_refresh(location=Location.objects.get(target=str(path)))
    assert _keys(admin, "quokka") == []
    assert index.repair(settle_seconds=0)["catalog"] == {"indexed": 0, "removed": 0}


def test_the_repair_sweep_is_on_the_beat():
    from django.conf import settings

    from portal.search import tasks

    entry = settings.CELERY_BEAT_SCHEDULE["search-repair-index"]
    assert entry["task"] == tasks.repair_index.name and entry["schedule"] <= 600
