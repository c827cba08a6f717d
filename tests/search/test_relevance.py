"""Relevance over the demo catalog, on both backends: query → expected top results."""

import pytest

from portal.search import selectors, snippets

# (query, user, the expected first results in order; "…" style sets are in SETS below)
TOP = [
    ("fraud detector", "alice", ["model:default/fraud-detector"]),
    ("fraud-detector", "carol", ["model:default/fraud-detector"]),
    ("fraud detec", "alice", ["model:default/fraud-detector"]),
    ("Fraud Detector", "carol", ["model:default/fraud-detector"]),
    ("product ranker", "carol", ["model:default/product-ranker"]),
    ("ranker", "carol", ["model:default/product-ranker"]),
    ("churn", "alice", ["model:default/churn-predictor"]),
    ("chargeback", "alice", ["model:default/chargeback-predictor", "dataset:default/chargebacks-2025"]),
    ("session features", "dan", ["featureset:default/session-features"]),
    ("mlflow", "carol", ["component:default/mlflow-tracking"]),
    ("clickstream", "carol", ["dataset:default/clickstream-2025"]),
    ("merchant risk score", "alice", ["featureset:default/card-transactions-features"]),  # a feature name
    ("basket_value", "carol", ["featureset:default/session-features"]),
    ("plinth developer portal", "alice", ["component:default/plinth"]),  # exact title
    ("customer lifetime", "alice", ["domain:default/personalisation"]),
]
SETS = [
    (
        "kind:model lifecycle:production",
        "carol",
        {"model:default/fraud-detector", "model:default/product-ranker"},
    ),
    ("tag:pii kind:dataset", "alice", {"dataset:default/card-transactions-2025"}),
    ('"card transactions" kind:featureset', "carol", {"featureset:default/card-transactions-features"}),
    ("predictor -churn", "alice", {"model:default/chargeback-predictor"}),
    (
        "type:classifier -kind:dataset",
        "carol",
        {"model:default/fraud-detector", "model:default/churn-predictor"},
    ),
    (
        "owner:recsys kind:pipeline",
        "alice",
        {"pipeline:default/session-features-materialisation", "pipeline:default/nightly-ranking-batch"},
    ),
]


def keys(results):
    return [h.key for h in results.hits]


@pytest.mark.parametrize(("text", "username", "expected"), TOP, ids=[t[0] for t in TOP])
def test_top_results(users, text, username, expected):
    """The best matches come first: the combined evidence of name, title, tags, description and body,
    with the exact name as a strong signal."""
    results = selectors.search(users[username], text)
    assert keys(results)[: len(expected)] == expected, keys(results)[:5]


def test_name_matches_outrank_description_matches(users):
    """Both card-transactions assets (names) come before the system that mentions card transactions."""
    found = keys(selectors.search(users["alice"], "card transactions"))
    assert set(found[:2]) == {
        "dataset:default/card-transactions-2025",
        "featureset:default/card-transactions-features",
    }
    assert "system:default/fraud-detection" in found[2:]


@pytest.mark.parametrize(("text", "username", "expected"), SETS, ids=[t[0] for t in SETS])
def test_exact_result_sets(users, text, username, expected):
    """Filters, phrases and exclusions give exactly the matching set."""
    results = selectors.search(users[username], text)
    assert set(keys(results)) == expected
    assert results.total == len(expected)


@pytest.mark.parametrize(
    ("text", "expected", "corrected"),
    [
        ("fruad detector", "model:default/fraud-detector", "fraud detector"),
        ("fraud detcetor", "model:default/fraud-detector", "fraud detector"),
        ("prodcut ranker", "model:default/product-ranker", "product ranker"),
        ("clickstrem", "dataset:default/clickstream-2025", "clickstream"),
    ],
)
def test_small_typos_are_corrected(users, text, expected, corrected):
    """A query that finds nothing is retried with the nearest vocabulary words, and says so."""
    results = selectors.search(users["carol"], text)
    assert keys(results)[0] == expected
    assert results.corrected == corrected


def test_partial_words_match_as_prefixes(users):
    """Every word is a prefix: "card trans" finds card transactions, "mlfl" finds MLflow."""
    assert "dataset:default/card-transactions-2025" in keys(selectors.search(users["alice"], "card trans"))
    assert keys(selectors.search(users["alice"], "mlfl"))[0] == "component:default/mlflow-tracking"


def test_production_and_ownership_break_ties(users):
    """Among the same kind of match, the searcher's own team's assets rank higher."""
    alice = keys(selectors.search(users["alice"], "kind:model"))
    carol = keys(selectors.search(users["carol"], "kind:model"))
    assert alice[0].startswith("model:default/fraud") or alice[0] == "model:default/chargeback-predictor"
    assert carol[0] == "model:default/product-ranker"


def test_starred_assets_rank_higher(users):
    """A starred asset wins a tie against an otherwise equal one."""
    from catalog.models import Entity, Star

    before = keys(selectors.search(users["carol"], "kind:dataset"))
    last = before[-1]
    Star.objects.create(user=users["carol"], entity=Entity.objects.get(ref=last))
    after = keys(selectors.search(users["carol"], "kind:dataset"))
    assert after.index(last) < before.index(last)


def test_snippets_highlight_and_escape(users):
    """Matched words are wrapped in <mark>; everything else is escaped."""
    hit = selectors.search(users["alice"], "scoring card")
    snippet = str(hit.hits[0].snippet)
    assert "<mark>" in snippet
    assert "<script" not in snippet
    html = str(snippets.highlight('<b>fraud</b> & "x"', snippets.matcher(["fraud"])))
    assert html == "&lt;b&gt;<mark>fraud</mark>&lt;/b&gt; &amp; &quot;x&quot;"


def test_typeahead_keeps_the_name_prefix_feel_with_the_best_described_first(users):
    """Suggestions whose name starts with what was typed come first (what people type is the start of
    a name); among them the best-described (production, titled, tagged, documented) leads, not the
    alphabetically first or the shortest name."""
    results, _ = selectors.typeahead(users["alice"], "fraud")
    names = [h.name for h in results.hits]
    starting = [n for n in names if n.startswith("fraud-")]
    assert names[: len(starting)] == starting and len(starting) >= 6
    assert results.hits[0].key == "model:default/fraud-detector"
    partial, _ = selectors.typeahead(users["carol"], "recomm")
    assert partial.hits[0].key in {"system:default/storefront-recommendations", "dataset:default/email-recommendations"}
