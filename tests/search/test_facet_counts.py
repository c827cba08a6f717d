"""Facet counts say what clicking them returns: for every value shown, its count is the number of
results of that filter (docs pages included, which carry their entity's owner, lifecycle and tags)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog.models import Entity
from portal.search import index, selectors
from portal.techdocs.models import DocPage, DocSite

pytestmark = pytest.mark.django_db


@pytest.fixture
def with_docs(indexed):
    """Docs pages on two demo components, indexed."""
    for entity in Entity.objects.filter(kind_key="component").order_by("id")[:2]:
        site = DocSite.objects.create(entity=entity, status="ok", page_count=2)
        DocPage.objects.create(site=site, path="", source_path="index.md", title=f"{entity.name} home",
                               text="How the fraud scoring service is run.")
        DocPage.objects.create(site=site, path="ops/", source_path="ops.md", title="Operations",
                               text="Fraud runbook: restart the scoring service.")
    index.rebuild()
    selectors.clear_cache()
    yield indexed
    selectors.clear_cache()


@pytest.mark.parametrize("text", ["fraud", "scoring service", "kind:doc fraud"])
def test_every_facet_count_is_what_its_filter_returns(with_docs, text):
    user = with_docs["users"]["alice"]
    results = selectors.search(user, text, limit=100)
    assert any(h.kind == "doc" for h in results.hits) or "kind:doc" not in text
    assert results.total and not results.total_capped
    shown = [(name, item["value"], item["count"]) for name, values in results.facets.items() for item in values]
    assert ("kind", "doc", 4) in shown or "scoring" not in text
    for name, value, count in shown:
        filtered = selectors.search(user, text, filters={name: value}, limit=100)
        assert filtered.total == count, (name, value, count, filtered.total)
        assert len(filtered.hits) == count, (name, value)


def test_docs_pages_are_not_counted_under_their_entitys_kind_as_a_type(with_docs):
    user = with_docs["users"]["alice"]
    results = selectors.search(user, "fraud", limit=100)
    types = {item["value"] for item in results.facets["type"]}
    assert "component" not in types, types
    docs = [h for h in results.hits if h.kind == "doc"]
    assert docs and all(h.type == "" for h in docs)
    assert not [h for h in selectors.search(user, "fraud type:component", limit=100).hits if h.kind == "doc"]
    assert {h.key for h in selectors.search(user, "fraud kind:doc", limit=100).hits} == {h.key for h in docs}


def test_facets_add_no_statement(with_docs):
    """The facet counts come in the hits' own statement, however many values they have."""
    user = with_docs["users"]["alice"]
    selectors.search(user, "warm", limit=20)  # per-process look-ups (compiled permission rule) first
    counted = []
    for with_facets in (False, True):
        selectors.clear_cache()
        with CaptureQueriesContext(connection) as queries:
            results = selectors.search(user, "fraud", limit=20, with_facets=with_facets)
        counted.append(len(queries))
    assert sum(len(v) for v in results.facets.values()) > 5
    assert counted[0] == counted[1], [q["sql"][:150] for q in queries.captured_queries]
