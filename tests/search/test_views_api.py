"""The results page, typeahead fragment, API, click-through and analytics: behaviour and bad input."""

import base64
import re

import pytest
from django.test import Client

from portal.search.models import SearchQuery

BAD_INPUT = [
    "",
    "   ",
    '"',
    '"unterminated phrase',
    "*",
    "fraud*",
    "NEAR(fraud detector, 2)",
    "fraud ^ detector",
    "((fraud))",
    ":",
    "kind:",
    "owner::",
    "fraud:detector",
    "-",
    "-fraud",
    "a AND OR NOT b",
    "' OR 1=1 --",
    "'; DROP TABLE search_searchdocument; --",
    "%_%",
    "\\",
    "données 数据",
    "🚀🔥💥",
    "x" * 5000,
    " ".join(["fraud"] * 400),
    "\u202e\u200b",
    "kind:model -kind:model",
]


@pytest.fixture
def alice_client(users) -> Client:
    client = Client()
    client.force_login(users["alice"])
    return client


def test_results_page_shows_hits_facets_and_pager(alice_client):
    """/search?q= lists ranked hits with kind, owner, lifecycle and a highlighted snippet, plus facets."""
    response = alice_client.get("/search/", {"q": "fraud"})
    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-facet="kind"' in html and 'data-facet="tag"' in html
    assert "<mark>" in html and 'class="kind kind-model"' in html and "lifecycle-production" in html
    assert "<mark>Fraud</mark> detector" in html


def test_facet_links_filter(alice_client):
    """A facet parameter narrows the results and the facet shows as active."""
    html = alice_client.get("/search/", {"q": "fraud", "kind": "model"}).content.decode()
    assert 'aria-current="true" data-facet="kind" data-value="model"' in html
    assert "Fraud scoring API" not in html


def test_pagination(users):
    """Results are paged; page 2 continues where page 1 stopped."""
    client = Client()
    client.force_login(users["grace"])
    from portal.search import views

    first = client.get("/search/", {"q": "kind:user kind:group kind:model kind:dataset"})
    assert first.context["results"].total > views.PAGE_SIZE or first.context["last_page"] == 1
    views_page = first.context["last_page"]
    if views_page > 1:
        second = client.get("/search/", {"q": "kind:user kind:group kind:model kind:dataset", "page": 2})
        assert {h.key for h in second.context["results"].hits}.isdisjoint(
            {h.key for h in first.context["results"].hits}
        )


@pytest.mark.parametrize("text", BAD_INPUT)
def test_bad_input_never_errors(alice_client, text):
    """Any query gives 200 on the page, the typeahead and the API: results or a clear message."""
    for url in ("/search/", "/search/typeahead/", "/api/v1/search"):
        response = alice_client.get(url, {"q": text})
        assert response.status_code == 200, (url, text, response.content[:300])
    body = alice_client.get("/api/v1/search", {"q": text}).json()
    assert isinstance(body["items"], list)
    if len(text) > 300:
        assert body["query"]["notes"]


def test_bad_parameters_get_clear_errors(alice_client):
    """A bad limit or cursor is a 400 in the error envelope; a bad page number is page 1."""
    for params in (
        {"limit": "abc"},
        {"limit": 0},
        {"limit": 1000},
        {"cursor": "nonsense"},
        {"cursor": "eyJvIjogLTF9"},
    ):
        response = alice_client.get("/api/v1/search", {"q": "fraud", **params})
        assert response.status_code == 400
        assert response.json()["error"]["message"]
    assert alice_client.get("/search/", {"q": "fraud", "page": "x"}).status_code == 200
    assert alice_client.get("/search/", {"q": "fraud", "page": "999999"}).status_code == 200


def test_api_cursor_pages_through_results(alice_client):
    """nextCursor gives the next page; pages do not overlap; the cursor is bound to its query."""
    first = alice_client.get("/api/v1/search", {"q": "fraud", "limit": 5}).json()
    assert first["totalItems"] > 5 and len(first["items"]) == 5
    cursor = first["pageInfo"]["nextCursor"]
    second = alice_client.get("/api/v1/search", {"q": "fraud", "limit": 5, "cursor": cursor}).json()
    assert {i["key"] for i in first["items"]}.isdisjoint({i["key"] for i in second["items"]})
    assert alice_client.get("/api/v1/search", {"q": "churn", "cursor": cursor}).status_code == 400
    assert set(first["facets"]) == {"kind", "type", "owner", "lifecycle", "tag"}


def test_a_deeply_nested_cursor_is_a_clear_400(alice_client):
    """The cursor goes through the shared decoder: nesting that would overflow the JSON parser, an
    oversized cursor or a boolean offset are a 400 naming `cursor`, never a 500."""
    fingerprint = alice_client.get("/api/v1/search", {"q": "fraud", "limit": 1}).json()
    assert fingerprint["pageInfo"]["nextCursor"]
    nested = base64.urlsafe_b64encode(b"[" * 1500).decode()
    boolean = base64.urlsafe_b64encode(b'{"o": true, "f": "x"}').decode()
    for cursor in (nested, "A" * 5000, boolean):
        response = alice_client.get("/api/v1/search", {"q": "fraud", "cursor": cursor})
        assert response.status_code == 400, response.content[:200]
        assert "cursor" in response.content.decode()


@pytest.fixture
def many_look_alikes(users):
    """1,100 entities named zork-N: more matches than the ranking reads (FACET_SCAN)."""
    from portal.search import index, selectors
    from tests.factories import EntityFactory

    EntityFactory.create_batch(1100, name=factory_name())
    index.rebuild()
    selectors.clear_cache()
    return users


def factory_name():
    import factory

    return factory.Sequence(lambda n: f"zork-{n}")


def test_every_offered_page_of_a_broad_query_has_hits(many_look_alikes):
    """Beyond 1,000 matches only the candidates are ranked: the API's cursors and the page's pager stop
    at the last ranked hit (never an empty page, never the same cursor again), and the page says
    that a narrower search reaches the others."""
    client = Client()
    client.force_login(many_look_alikes["carol"])
    seen, cursor, pages = [], None, 0
    while True:
        params = {"q": "zork", "limit": 100, **({"cursor": cursor} if cursor else {})}
        body = client.get("/api/v1/search", params).json()
        pages += 1
        assert body["items"], f"page {pages} is empty"
        assert body["totalItems"] == 1000 and body["totalIsLowerBound"]
        seen += [i["key"] for i in body["items"]]
        assert body["pageInfo"]["nextCursor"] != cursor
        cursor = body["pageInfo"]["nextCursor"]
        if not cursor:
            break
        assert pages < 11
    assert len(seen) == len(set(seen)) >= 300
    first = client.get("/search/", {"q": "zork"})
    last_page = first.context["last_page"]
    assert last_page == (len(seen) + 19) // 20
    assert 'data-testid="results-reachable"' in first.content.decode()
    for page in (last_page, 20, 50):
        html = client.get("/search/", {"q": "zork", "page": page}).content.decode()
        assert html.count('class="hit-title"') > 0, page
        assert f"Page {min(page, last_page)} of {last_page}" in html


def test_a_page_past_the_end_shows_the_last_page(alice_client):
    """`?page=50` of a one-page result shows that page, not an empty "Page 50 of 1"."""
    response = alice_client.get("/search/", {"q": "fraud", "page": 50})
    html = response.content.decode()
    assert response.context["page"] == 1
    assert html.count('class="hit-title"') == response.context["results"].total > 0
    assert "Nothing matches" not in html


def test_a_corrected_query_can_be_paged(alice_client, monkeypatch):
    """Page 2 of `fruad` is page 2 of `fraud`, in the API (following nextCursor) and on the page."""
    from portal.search import views

    expected = alice_client.get("/api/v1/search", {"q": "fraud", "limit": 100}).json()
    keys, cursor = [], None
    while True:
        params = {"q": "fruad", "limit": 2, **({"cursor": cursor} if cursor else {})}
        body = alice_client.get("/api/v1/search", params).json()
        assert body["items"] and body["query"]["correctedQuery"] == "fraud"
        keys += [i["key"] for i in body["items"]]
        cursor = body["pageInfo"]["nextCursor"]
        if not cursor:
            break
    assert keys == [i["key"] for i in expected["items"]]
    monkeypatch.setattr(views, "PAGE_SIZE", 5)
    html = alice_client.get("/search/", {"q": "fruad", "page": 2}).content.decode()
    assert html.count('class="hit-title"') == 5
    assert 'data-testid="corrected"' in html and re.search(r"Page 2 of \d", html)


def test_api_filter_parameters(alice_client):
    """kind= (repeatable or comma-separated) adds to the query's own filters."""
    body = alice_client.get("/api/v1/search", {"q": "fraud", "kind": "model,api"}).json()
    assert {i["kind"] for i in body["items"]} == {"Model", "API"}
    assert body["query"]["filters"]["kind"] == ["model", "api"]


def test_a_quote_in_a_filter_parameter_is_dropped_not_a_cut(alice_client):
    """A filter value is cleaned as a typed one is (characters outside values dropped): `mo"del` is
    `model`, as `kind:mo"del` in the query is, not `mo`."""
    body = alice_client.get("/api/v1/search", {"q": "fraud", "kind": 'mo"del'}).json()
    assert body["query"]["filters"]["kind"] == ["model"]
    assert body["items"] and {i["kind"] for i in body["items"]} == {"Model"}
    typed = alice_client.get("/api/v1/search", {"q": 'fraud kind:mo"del'}).json()
    assert typed["query"]["filters"]["kind"] == ["model"]


def test_typeahead_groups_by_kind(alice_client):
    """The fragment groups matches by kind, as ARIA options, with an "all results" option last."""
    html = alice_client.get("/search/typeahead/", {"q": "fraud"}).content.decode()
    assert html.count('role="group"') >= 2
    assert 'role="option"' in html and 'id="ta-opt-all"' in html
    assert "/search/?q=fraud" in html
    assert alice_client.get("/search/typeahead/", {"q": ""}).content.decode().strip() == ""


def test_queries_and_clicks_are_recorded(alice_client, users):
    """Each page search is logged with its count and latency; the click-through stores the click."""
    response = alice_client.get("/search/", {"q": "Fraud  Detector"})
    row = SearchQuery.objects.get(user=users["alice"])
    assert row.normalized == "fraud detector" and row.result_count >= 1 and row.latency_ms > 0
    qid = response.context["query_id"]
    go = alice_client.get("/search/go/", {"key": "model:default/fraud-detector", "qid": qid, "pos": 1})
    assert go.status_code == 302 and go["Location"] == "/catalog/model/default/fraud-detector/"
    row.refresh_from_db()
    assert row.clicked_key == "model:default/fraud-detector" and row.clicked_position == 1
    alice_client.get("/search/", {"q": "zzzqqq"})
    assert SearchQuery.objects.filter(normalized="zzzqqq", result_count=0).exists()
    # a typeahead pick is recorded as its own query with the click
    alice_client.get(
        "/search/go/", {"key": "model:default/fraud-detector", "q": "frau", "via": "typeahead", "pos": 1}
    )
    assert SearchQuery.objects.filter(via="typeahead", clicked_key="model:default/fraud-detector").exists()


def test_click_through_refuses_unknown_keys(alice_client):
    """Only indexed, visible documents can be targets: no open redirect."""
    assert alice_client.get("/search/go/", {"key": "https://evil.example"}).status_code == 404
    assert alice_client.get("/search/go/").status_code == 404


def test_insights_page_is_admin_only(users, alice_client):
    """Top and zero-result queries are for platform admins."""
    alice_client.get("/search/", {"q": "nothing-matches-this"})
    assert alice_client.get("/search/insights/").status_code == 403
    admin = Client()
    admin.force_login(users["grace"])
    html = admin.get("/search/insights/").content.decode()
    assert "nothing-matches-this" in html and 'data-testid="zero-queries"' in html


@pytest.mark.parametrize(
    "params",
    [
        {"q": "fraud"},
        {"q": "fraud", "page": 2},
        {"q": "kind:model tag:pii"},
        {"q": "fruad"},
        {"q": "fraud", "kind": "model"},
    ],
)
def test_constant_query_count_per_page(alice_client, django_assert_max_num_queries, params):
    """A results page costs a bounded number of queries, whatever the results (a spelling retry
    adds a few vocabulary look-ups per unknown word)."""
    alice_client.get("/search/", params)  # warm the session
    with django_assert_max_num_queries(14):
        assert alice_client.get("/search/", params).status_code == 200
    with django_assert_max_num_queries(12):
        assert alice_client.get("/api/v1/search", params).status_code == 200
    with django_assert_max_num_queries(12):
        assert alice_client.get("/search/typeahead/", params).status_code == 200
