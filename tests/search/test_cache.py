"""The results cache: keyed by an index version the database changes on every index write, and by
everything that makes results differ between users (permission rule, teams, starred keys)."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from portal.search import index, selectors
from portal.search.backends import get_backend
from portal.search.models import SearchDocument, SearchDocumentTag, SearchTerm

PRIVATE = "model:default/chargeback-predictor"  # private to fraud-ml


def keys(results):
    return [h.key for h in results.hits]


def _fts_statements(queries) -> int:
    return sum(1 for q in queries if "search_fts" in q["sql"] or "tsv @@" in q["sql"])


def test_a_repeated_search_is_answered_from_the_cache(users):
    """The second identical search runs no full-text statement (SQLite here; on PostgreSQL nothing is cached
    inside a test's transaction: tests/search/test_cache_postgres.py runs outside one)."""
    if get_backend().index_version() is None:
        pytest.skip("this backend does not track an index version: no caching")
    selectors.search(users["alice"], "fraud detector")
    with CaptureQueriesContext(connection) as second:
        again = selectors.search(users["alice"], "fraud detector")
    assert _fts_statements(second.captured_queries) == 0
    assert keys(again)[0] == "model:default/fraud-detector"


def test_cached_results_are_not_shared_across_permissions(users):
    """alice (fraud-ml) caches results containing her team's private model; carol never gets them."""
    for _ in range(2):
        assert PRIVATE in keys(selectors.search(users["alice"], "chargeback"))
        assert PRIVATE not in keys(selectors.search(users["carol"], "chargeback"))
        carol = selectors.search(users["carol"], "kind:model")
        assert carol.total == 3 and {f["value"]: f["count"] for f in carol.facets["kind"]} == {"model": 3}
        _, groups = selectors.typeahead(users["carol"], "chargeb")
        assert PRIVATE not in [h.key for _, hits in groups for h in hits]


def test_any_write_to_the_index_tables_changes_the_version(users):
    """Whatever code path writes documents, tags or vocabulary, the version moves (SQLite triggers)."""
    backend = get_backend()
    if backend.index_version() is None:
        pytest.skip("this backend does not track an index version: no caching")
    doc = SearchDocument.objects.get(key="model:default/fraud-detector")
    writes = [
        lambda: SearchDocument.objects.filter(pk=doc.pk).update(title="Changed"),
        lambda: SearchDocumentTag.objects.create(document=doc, tag="brand-new"),
        lambda: SearchDocumentTag.objects.filter(document=doc, tag="brand-new").delete(),
        lambda: SearchTerm.objects.get_or_create(term="zyzzyva"),
        lambda: index.update("catalog", changed=["model:default/fraud-detector"]),
        lambda: index.update("catalog", removed=["model:default/fraud-detector"]),
    ]
    for write in writes:
        before = backend.index_version()
        write()
        assert backend.index_version() != before, write


def test_an_index_change_invalidates_cached_results(users):
    """A document made private to another team disappears from cached results and facet counts."""
    carol = users["carol"]
    first = selectors.search(carol, "fraud detector")
    assert "model:default/fraud-detector" in keys(first)
    model_total = selectors.search(carol, "kind:model").total
    # A write that bypasses index.py entirely: only the database trigger can notice it.
    fraud_ml = SearchDocument.objects.get(key=PRIVATE).owner_team_id
    SearchDocument.objects.filter(key="model:default/fraud-detector").update(
        visibility="private", owner_team_id=fraud_ml
    )
    assert "model:default/fraud-detector" not in keys(selectors.search(carol, "fraud detector"))
    assert selectors.search(carol, "kind:model").total == model_total - 1
    _, groups = selectors.typeahead(carol, "fraud det")
    assert "model:default/fraud-detector" not in [h.key for _, hits in groups for h in hits]


def test_results_cached_inside_a_rolled_back_write_are_never_served(users):
    """Searching inside a transaction that changed the index, then rolling it back, leaves no trace:
    the version is a fresh random value, not a counter that the next write would reach again."""
    alice = users["alice"]
    before = keys(selectors.search(alice, "fraud detector"))
    try:
        with transaction.atomic():
            index.update("catalog", removed=["model:default/fraud-detector"])
            assert "model:default/fraud-detector" not in keys(selectors.search(alice, "fraud detector"))
            raise RuntimeError("roll back")
    except RuntimeError:
        pass
    assert keys(selectors.search(alice, "fraud detector")) == before
    index.update("catalog", changed=["model:default/fraud-detector"])  # a new write after the rollback
    assert keys(selectors.search(alice, "fraud detector"))[0] == "model:default/fraud-detector"


def test_cached_facets_are_copies(users):
    """Callers decorate facet values (links, active flags); the cached ones stay clean."""
    first = selectors.search(users["alice"], "fraud")
    first.facets["kind"][0]["href"] = "?kind=x"
    second = selectors.search(users["alice"], "fraud")
    assert "href" not in second.facets["kind"][0]
