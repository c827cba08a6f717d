"""The results page, typeahead fragment, API, click-through and analytics: behaviour and bad input."""

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


def test_api_filter_parameters(alice_client):
    """kind= (repeatable or comma-separated) adds to the query's own filters."""
    body = alice_client.get("/api/v1/search", {"q": "fraud", "kind": "model,api"}).json()
    assert {i["kind"] for i in body["items"]} == {"Model", "API"}
    assert body["query"]["filters"]["kind"] == ["model", "api"]


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
