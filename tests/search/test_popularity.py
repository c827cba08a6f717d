"""Popularity: clicked search results lift a document a little, less as the clicks age."""

from datetime import timedelta

from django.utils import timezone

from portal.search import index, scoring, selectors, services
from portal.search.models import SearchDocument, SearchQuery
from portal.search.tasks import refresh_popularity

SESSION = "featureset:default/session-features"


def keys(results):
    return [h.key for h in results.hits]


def _click(user, key: str, times: int, days_ago: int = 0) -> None:
    for _ in range(times):
        services.query_click(user=user, query_id=None, text="features", key=key, position=3, via="page")
    if days_ago:
        SearchQuery.objects.filter(clicked_key=key).update(created_at=timezone.now() - timedelta(days=days_ago))


def _popularity(key: str) -> float:
    return SearchDocument.objects.get(key=key).popularity


def test_clicked_results_rank_higher_among_equals_and_a_refresh_writes_only_changes(users):
    """Three feature sets describe themselves equally well; the one people click comes first. A second
    refresh with nothing new writes nothing (the results cache stays valid)."""
    before = keys(selectors.search(users["erin"], "kind:featureset"))
    assert before[-1] == SESSION  # equal scores: by name
    _click(users["dan"], SESSION, 5)
    assert refresh_popularity() == 1
    assert 0 < _popularity(SESSION) <= scoring.POPULARITY_MAX
    assert keys(selectors.search(users["erin"], "kind:featureset"))[0] == SESSION
    assert index.refresh_popularity() == 0


def test_popularity_decays_survives_rewrites_and_is_gentle(users):
    """Clicks two half-lives old count a quarter; clicks older than the window not at all; no number of
    clicks lifts a document past the cap. Re-indexing a changed entity keeps its popularity (it comes
    from analytics, not the source); a full rebuild recomputes it."""
    _click(users["dan"], SESSION, 8)
    index.refresh_popularity()
    fresh = _popularity(SESSION)
    index.update("catalog", changed=[SESSION])
    assert _popularity(SESSION) == fresh
    index.rebuild()
    assert _popularity(SESSION) == fresh
    SearchQuery.objects.filter(clicked_key=SESSION).update(
        created_at=timezone.now() - timedelta(days=2 * scoring.HALF_LIFE_DAYS)
    )
    index.refresh_popularity()
    assert _popularity(SESSION) == scoring.popularity(8 * 0.25) < fresh
    SearchQuery.objects.filter(clicked_key=SESSION).update(
        created_at=timezone.now() - timedelta(days=scoring.POPULARITY_WINDOW_DAYS + 1)
    )
    index.refresh_popularity()
    assert _popularity(SESSION) == 0
    assert scoring.popularity(10_000) == scoring.POPULARITY_MAX


def test_a_clicked_key_without_a_document_is_skipped(users):
    """A result clicked and since deleted (or never indexed under that key) has no row to lift: the
    refresh writes the documents that exist, by id, and counts only those."""
    _click(users["dan"], SESSION, 3)
    _click(users["dan"], "dataset:default/deleted-since", 3)
    assert index.refresh_popularity() == 1
    assert _popularity(SESSION) > 0
    assert not SearchDocument.objects.filter(key="dataset:default/deleted-since").exists()
