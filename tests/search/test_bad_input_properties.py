"""Property-based bad search input through every search surface: the results page (whole and as its htmx
fragment), the typeahead fragment, `GET /api/v1/search` and the click-through. Queries are built from FTS5
and tsquery syntax (operators, quotes, parentheses, NEAR, column filters), SQL-looking text, emoji and
5,000-character runs. Every example: a 200, or a 400 naming the parameter; the index unchanged; what the
user typed never comes back as markup; never a 5xx. On SQLite here, on PostgreSQL in the prod phase."""

from __future__ import annotations

import base64
import re

import pytest
from django.test import Client
from hypothesis import given
from hypothesis import strategies as st

from catalog.models import Entity
from portal.search.models import SearchDocument, SearchDocumentTag, SearchTerm
from tests import hostile

pytestmark = pytest.mark.django_db

INDEX = (SearchDocument, SearchDocumentTag, SearchTerm, Entity)
FILTER_VALUES = st.one_of(st.sampled_from(["model", "fraud-ml", "pii", "production", "classifier", "", ","]),
                          hostile.HOSTILE_STRINGS.map(lambda s: s[:300]))
FILTERS = st.dictionaries(st.sampled_from(["kind", "type", "owner", "lifecycle", "tag"]), FILTER_VALUES, max_size=3)
NUMBERS = st.one_of(st.integers(-5, 200).map(str), st.sampled_from(["", "abc", "1e3", "0x10", "-0", "9" * 30, "1.5"]))


@pytest.fixture
def alice(users):
    client = Client()
    client.force_login(users["alice"])
    return client


def no_markup_from(text: str, html: str) -> None:
    """A query's markup is echoed escaped, never as markup."""
    for tag in re.findall(r"<(?:script|img|svg|iframe)[^>]*>", text, flags=re.I):
        assert tag not in html, f"the query's {tag!r} came back unescaped"


@hostile.budget(ci=25)
@given(q=hostile.SEARCH_QUERIES, filters=FILTERS, page=NUMBERS)
def test_any_query_gets_results_or_a_clear_message_everywhere(alice, q, filters, page):
    before = hostile.digest(*INDEX)
    nul = [name for name, value in {"q": q, **filters}.items() if "\x00" in value]
    for response in (alice.get("/search/", {"q": q, "page": page, **filters}),
                     alice.get("/search/", {"q": q, **filters}, HTTP_HX_REQUEST="true"),
                     alice.get("/search/typeahead/", {"q": q})):
        hostile.assert_clear(response, names=[f"{name}: Null characters" for name in nul])
        assert response.status_code == (400 if nul and (response.request["PATH_INFO"] != "/search/typeahead/"
                                                        or "\x00" in q) else 200)
        no_markup_from(q, hostile.response_text(response))
    api = alice.get("/api/v1/search", {"q": q, "limit": page, **filters})
    hostile.assert_clear(api, names=["limit", *(f"{name}: Null characters" for name in nul)])
    if api.status_code == 200:
        for item in api.json()["items"]:
            assert "<" not in re.sub(r"</?mark>", "", item["snippet"]), item["snippet"]
    else:
        assert api.status_code == 400
    assert hostile.digest(*INDEX) == before


@hostile.budget(ci=15)
@given(cursor=st.one_of(hostile.HOSTILE_STRINGS.map(lambda s: s[:2000]), st.binary(max_size=60).map(
    lambda b: base64.urlsafe_b64encode(b).decode())), key=hostile.HOSTILE_STRINGS.map(lambda s: s[:500]),
    pos=NUMBERS, qid=NUMBERS, via=st.text(max_size=10))
def test_forged_cursors_and_click_throughs_are_refused_clearly(alice, cursor, key, pos, qid, via):
    before = hostile.digest(*INDEX)
    api = alice.get("/api/v1/search", {"q": "fraud", "cursor": cursor})
    hostile.assert_clear(api, names=["cursor"])
    click = alice.get("/search/go/", {"key": key, "pos": pos, "qid": qid, "via": via})
    hostile.assert_clear(click, names=["key: Null characters", "via: Null characters"])
    assert click.status_code in ((302, 404) if "\x00" not in key + via else (400,))
    assert hostile.digest(*INDEX) == before


def test_a_nul_anywhere_is_refused_naming_where(alice):
    """PostgreSQL cannot store or compare text with NUL: refused up front (portal.core.middleware)."""
    before = hostile.digest(*INDEX)
    for url, where in (("/search/?q=fraud%00detector", "q: Null characters"), ("/search/typeahead/?q=%00", "q: Null characters"),
                       ("/api/v1/search?q=fraud&tag=p%00ii", "tag: Null characters"),
                       ("/catalog/model/default/fraud%00detector/", "path: Null characters")):
        response = alice.get(url)
        hostile.assert_clear(response, names=[where])
        assert response.status_code == 400
    assert hostile.digest(*INDEX) == before
