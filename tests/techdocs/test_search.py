"""Docs pages are searchable through the portal's search service, with the entity's visibility."""

from pathlib import Path

import pytest

from catalog import services as catalog_services
from catalog.models import Entity
from portal.search import selectors as search
from portal.techdocs import services

pytestmark = pytest.mark.django_db


def test_docs_pages_are_found_and_hidden_like_their_entity(make_docs, demo_org, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        make_docs({"docs/index.md": "# Home\n", "docs/runbook.md": "# Runbook\n\nRestart the quokkatron gently.\n"},
                  name="open-svc")
        make_docs({"docs/index.md": "# Secret\n\nThe zebraphone protocol.\n"}, name="hidden-svc", private=True)
    alice, carol = demo_org["users"]["alice"], demo_org["users"]["carol"]
    hits = search.search(alice, "quokkatron").hits
    assert [(h.kind, h.title, h.url) for h in hits] == [("doc", "Runbook", "/docs/component/default/open-svc/runbook/")]
    assert [h.url for h in search.search(alice, "zebraphone").hits] == ["/docs/component/default/hidden-svc/"]
    assert search.search(carol, "zebraphone").hits == []
    assert search.search(carol, "quokkatron").hits


def test_rebuilds_and_unregistering_update_the_index(make_docs, demo_org, django_capture_on_commit_callbacks):
    alice = demo_org["users"]["alice"]
    with django_capture_on_commit_callbacks(execute=True):
        entity = make_docs({"docs/index.md": "# Home\n\nAbout the wombatizer.\n"}, name="moving")
    assert search.search(alice, "wombatizer").hits
    Path(entity.source).with_name("docs").joinpath("index.md").write_text("# Home\n\nNow otters.\n")
    with django_capture_on_commit_callbacks(execute=True):
        services.docs_build(entity=entity)
    assert not search.search(alice, "wombatizer").hits and search.search(alice, "otters").hits
    with django_capture_on_commit_callbacks(execute=True):
        catalog_services.location_unregister(location=entity.location, actor=None)
    assert not Entity.objects.filter(ref="component:default/moving").exists()
    assert not search.search(alice, "otters").hits


def test_a_removed_annotation_takes_the_pages_out_of_search(make_docs, demo_org, django_capture_on_commit_callbacks):
    alice = demo_org["users"]["alice"]
    with django_capture_on_commit_callbacks(execute=True):
        entity = make_docs({"docs/index.md": "# Home\n\nThe capybarometer.\n"}, name="dropping")
    assert search.search(alice, "capybarometer").hits
    data = entity.data
    del data["metadata"]["annotations"]["plinth.dev/techdocs-ref"]
    Entity.objects.filter(pk=entity.pk).update(data=data)
    entity.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        services.entity_docs_build(entity=entity)
    assert not search.search(alice, "capybarometer").hits


def test_removed_entities_pages_leave_search_in_a_constant_number_of_queries(
        make_docs, demo_org, django_capture_on_commit_callbacks):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from portal.techdocs import search as docs_search

    alice = demo_org["users"]["alice"]
    refs = []
    with django_capture_on_commit_callbacks(execute=True):
        for n in range(4):
            refs.append(make_docs({"docs/index.md": f"# Home\n\nPlatypod number{n}.\n",
                                   "docs/more.md": "# More\n\nPlatypod extras.\n"}, name=f"gone-{n}").ref)
    assert len(search.search(alice, "platypod").hits) == 8
    counts = []
    for chosen in (refs[:1], refs[1:]):
        with CaptureQueriesContext(connection) as queries:
            docs_search.drop(chosen)
        counts.append(len(queries))
    assert counts[0] == counts[1], counts  # one entity or three: the same statements
    assert search.search(alice, "platypod").hits == []


def test_a_kept_orphans_pages_stay_in_search(make_docs, demo_org, settings, django_capture_on_commit_callbacks):
    """Gone from its file under the `keep` strategy, an entity stays in the catalog (flagged orphan) with
    its docs site: its pages stay findable."""
    from catalog.models import Location

    settings.PLINTH_CATALOG_ORPHAN_STRATEGY = "keep"
    alice = demo_org["users"]["alice"]
    with django_capture_on_commit_callbacks(execute=True):
        entity = make_docs({"docs/index.md": "# Home\n\nThe narwhalometer.\n"}, name="left-behind")
    assert search.search(alice, "narwhalometer").hits
    path = Path(entity.location.target)
    path.write_text("apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: newcomer}\n"
                    "spec: {type: service, lifecycle: production, owner: fraud-ml}\n")
    with django_capture_on_commit_callbacks(execute=True):
        catalog_services.location_refresh(location=Location.objects.get(pk=entity.location_id))
    assert Entity.objects.get(pk=entity.pk).orphan
    assert [h.url for h in search.search(alice, "narwhalometer").hits] == ["/docs/component/default/left-behind/"]


def test_a_page_is_hidden_as_soon_as_its_entity_becomes_private(make_docs, demo_org,
                                                                  django_capture_on_commit_callbacks):
    """The docs pages' search documents carry their entity's visibility: a refresh that makes the entity
    private hides its pages at the commit, not when a worker gets round to the rebuild it queues."""
    from catalog.models import Location

    alice, carol = demo_org["users"]["alice"], demo_org["users"]["carol"]
    with django_capture_on_commit_callbacks(execute=True):
        entity = make_docs({"docs/index.md": "# Home\n\nThe okapiscope.\n"}, name="going-private")
    assert search.search(carol, "okapiscope").hits
    path = Path(entity.location.target)
    path.write_text(path.read_text().replace("  annotations:\n", "  annotations:\n    plinth.dev/visibility: private\n"))
    with django_capture_on_commit_callbacks(execute=True):
        catalog_services.location_refresh(location=Location.objects.get(pk=entity.location_id))
    assert Entity.objects.get(pk=entity.pk).visibility == "private"
    assert search.search(carol, "okapiscope").hits == []
    assert [h.url for h in search.search(alice, "okapiscope").hits] == ["/docs/component/default/going-private/"]


@pytest.mark.parametrize("engine", [pytest.param("sqlite", id="sqlite"),
                                    pytest.param("postgresql", id="postgresql", marks=pytest.mark.prod_smoke)])
def test_the_repair_sweep_mends_docs_pages_whose_index_write_was_lost(engine, make_docs, demo_org,
                                                                      django_capture_on_commit_callbacks):
    """The docs' half of the search repair sweep (`index.repair`): a page whose document was lost is
    indexed, a page whose entity changed after its document was written (made private, say, and that
    index write lost) is rewritten, a document whose page is gone is dropped; changes younger than the
    settle time are left to the write on its way, and a second sweep finds nothing."""
    from django.db import connection
    from django.utils import timezone

    from portal.search import index
    from portal.search.backends import get_backend
    from portal.search.models import SearchDocument
    from portal.search.registry import get as source
    from portal.techdocs.models import DocPage
    from portal.techdocs.search import page_key

    if connection.vendor != engine:
        pytest.skip(f"runs on {engine}; this run uses {connection.vendor}")
    alice, carol = demo_org["users"]["alice"], demo_org["users"]["carol"]
    with django_capture_on_commit_callbacks(execute=True):
        entity = make_docs({"docs/index.md": "# Home\n\nThe axolotlmeter.\n", "docs/guide.md": "# Guide\n\nThe tapirgraph.\n",
                            "docs/old.md": "# Old\n\nThe dodoscope.\n"}, name="mended")
    assert index.repair(settle_seconds=0)["techdocs"] == {"indexed": 0, "removed": 0}, "a build leaves nothing to mend"
    backend = get_backend()
    backend.delete(*backend.with_keys([page_key(entity.ref, "")]))  # its document lost
    DocPage.objects.filter(site__entity=entity, path="old/").delete()  # gone without telling search
    Entity.objects.filter(pk=entity.pk).update(visibility="private", updated_at=timezone.now())  # no signal
    assert search.search(alice, "axolotlmeter").hits == []
    assert search.search(carol, "tapirgraph").hits and search.search(carol, "dodoscope").hits

    assert index.repair(settle_seconds=3600)["techdocs"] == {"indexed": 0, "removed": 1}  # the others are too young
    assert search.search(alice, "dodoscope").hits == []
    assert index.repair(settle_seconds=0)["techdocs"] == {"indexed": 2, "removed": 0}
    assert [h.url for h in search.search(alice, "axolotlmeter").hits] == ["/docs/component/default/mended/"]
    assert search.search(carol, "tapirgraph").hits == [], "the page follows its entity into private"
    assert [h.url for h in search.search(alice, "tapirgraph").hits] == ["/docs/component/default/mended/guide/"]
    assert index.repair(settle_seconds=0)["techdocs"] == {"indexed": 0, "removed": 0}
    assert source("techdocs").unindexed(10, timezone.now()) == ([], [])
    assert SearchDocument.objects.filter(source="techdocs").count() == DocPage.objects.count() == 2
