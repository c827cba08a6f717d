"""Hit snippets: the best window of the description or of the matched body text, escaped, with <mark>
around matched words, cut at word boundaries. Units first, then the demo catalog on both backends (the
docs pages' snippets: tests/techdocs/test_search.py)."""

import re

import pytest

from portal.search import selectors
from portal.search.backends.base import EXCERPT_CHARS
from portal.search.snippets import SNIPPET_CHARS, highlight, matcher, snippet

FILLER = " ".join(f"lorem{i}" for i in range(80))  # 600+ characters without a query word


def pattern(*words):
    return matcher(list(words))


def visible(html: str) -> str:
    """The text a reader sees: marks dropped, entities as characters."""
    return re.sub(r"</?mark>", "", html).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def test_a_long_text_shows_the_window_with_most_query_words_cut_at_word_boundaries():
    text = f"{FILLER} drift alone here. {FILLER} the drift threshold is crossed. {FILLER}"
    html = str(highlight(text, pattern("drift", "threshold"), SNIPPET_CHARS))
    assert "<mark>drift</mark> <mark>threshold</mark>" in html
    assert html.startswith("…") and html.endswith("…")
    inner = visible(html)[1:-1]
    assert len(inner) <= SNIPPET_CHARS
    words = set(text.split())
    assert all(word in words or word.rstrip(".") + "." in words for word in inner.split()), inner


def test_a_short_text_is_shown_whole_without_ellipsis():
    assert str(highlight("Fraud <b> & co", pattern("fraud"), SNIPPET_CHARS)) == "<mark>Fraud</mark> &lt;b&gt; &amp; co"


def test_the_body_excerpt_wins_when_it_holds_more_query_words_and_the_description_becomes_context():
    excerpt = "ld tail " + FILLER[:150] + " when the drift threshold is crossed <script>alert(1)</script> " + FILLER
    text, context = snippet("Scoring service docs", excerpt, 400, pattern("drift", "threshold"))
    assert "<mark>drift</mark> <mark>threshold</mark>" in str(text)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in str(text) and "<script" not in str(text)
    assert str(text).startswith("…") and str(text).endswith("…")  # an excerpt from the body's middle
    assert "ld tail" not in str(text)
    assert str(context) == "Scoring service docs"


def test_an_excerpt_at_the_start_of_a_short_body_has_no_ellipsis():
    text, _ = snippet("Features.", "txn_amount_avg_24h merchant_risk_score", 1, pattern("amount"))
    assert str(text) == "txn_<mark>amount</mark>_avg_24h merchant_risk_score"


def test_an_excerpt_cut_mid_word_loses_its_partial_words():
    excerpt = ("hreshold " + FILLER)[: EXCERPT_CHARS - 40] + " drift " + "x" * 33  # full length: cut at its end
    text, _ = snippet("", excerpt, 50, pattern("drift"))
    shown = visible(str(text))
    assert shown.startswith("…") and shown.endswith("drift…")
    assert "hreshold" not in shown and "xxx" not in shown
    text, _ = snippet("", "hreshold drift rest of it", 50, pattern("drift"))  # the match near its start
    assert str(text) == "…<mark>drift</mark> rest of it"


@pytest.mark.parametrize(
    ("description", "expected"),
    [
        ("Monitors fraud drift for the scoring service.", "Monitors fraud <mark>drift</mark>"),  # a tie
        ("", "<mark>drift</mark> threshold"),
        ("Monitors the scoring service.", "<mark>drift</mark> threshold"),
    ],
)
def test_the_description_wins_unless_the_body_holds_more_query_words(description, expected):
    text, context = snippet(description, "the drift threshold", 1, pattern("drift"))
    assert expected in str(text)
    assert str(context) == ("" if "Monitors fraud" in expected else description)


def test_without_a_match_anywhere_the_description_shows():
    text, context = snippet("A plain description.", None, None, pattern("zebra"))
    assert (str(text), str(context)) == ("A plain description.", "")
    long = "word " * 100
    text, _ = snippet(long, "a body without it", 1, pattern("zebra"))
    assert str(text).startswith("word word") and str(text).endswith("…") and len(str(text)) <= SNIPPET_CHARS + 1


@pytest.mark.django_db
def test_an_entity_matched_in_its_body_shows_the_matched_words(users):
    """A feature name matches the feature set's body (its features): the snippet shows them, marked, and
    the description moves to the context line."""
    hit = next(h for h in selectors.search(users["alice"], "merchant risk score").hits
               if h.key == "featureset:default/card-transactions-features")
    assert "<mark>merchant</mark>_<mark>risk</mark>_<mark>score</mark>" in str(hit.snippet)
    assert str(hit.context).startswith("Rolling aggregates")
    # A word the description holds: the description stays, with no context line.
    hit = next(h for h in selectors.search(users["alice"], "merchant").hits
               if h.key == "featureset:default/card-transactions-features")
    assert str(hit.snippet).startswith("Rolling aggregates") and str(hit.context) == ""


@pytest.mark.django_db
def test_search_page_and_typeahead_name_kinds_in_words():
    """The index keeps the descriptor's spelling (the API's `kind`); the pages say "Feature set"."""
    from django.template.loader import render_to_string

    from portal.search.selectors import Hit

    hit = Hit(key="featureset:default/x", kind="featureset", kind_label="FeatureSet", name="x", title="X",
              owner="", lifecycle="", type="", tags=[], visibility="internal", url="/x/", position=1,
              title_html="X", snippet="")
    html = render_to_string("search/typeahead.html", {"q": "x", "groups": [("FeatureSet", [hit])]})
    assert ">Feature set</div>" in html and "FeatureSet<" not in html
