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
