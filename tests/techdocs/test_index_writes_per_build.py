"""One docs build writes its pages to the search index once: the build's own hand-off (search.sync, on
commit). Nothing else (no post_save receiver) indexes the same pages again."""

from __future__ import annotations

import pytest

from portal.search import index
from portal.search.models import SearchDocument
from portal.techdocs import search as docs_search
from portal.techdocs import services

pytestmark = pytest.mark.django_db


@pytest.fixture
def index_writes(monkeypatch):
    """The real index.update, recording each call (source, changed keys)."""
    calls, real = [], index.update

    def recording(source, *args, **kwargs):
        calls.append((source, sorted(kwargs.get("changed") or [])))
        return real(source, *args, **kwargs)

    monkeypatch.setattr(docs_search.index, "update", recording)
    return calls


def test_one_build_indexes_its_pages_once(make_docs, index_writes, django_capture_on_commit_callbacks):
    entity = make_docs({"docs/index.md": "# Home\n\nScoring.\n", "docs/guide.md": "# Guide\n"}, build=False)
    index_writes.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.entity_docs_build(entity=entity)
    docs = [c for c in index_writes if c[0] == docs_search.SOURCE]
    assert len(docs) == 1, docs
    assert len(docs[0][1]) == 2
    assert SearchDocument.objects.filter(source=docs_search.SOURCE, key__in=docs[0][1]).count() == 2
