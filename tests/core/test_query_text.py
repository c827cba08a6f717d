"""A query parameter whose bytes are not UTF-8 text is a 400 naming it, on pages (the error page) and in
the API (its error envelope), as a form field is (tests/core/test_form_text.py): raw or %-escaped, in a
name or a value, a lone surrogate's bytes too. Django would have read it as U+FFFD ("?q=%C3" searched for
"\\ufffd"). UTF-8 text passes as sent, U+FFFD itself too (EF BF BD); a NUL is still refused as a NUL."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from html import escape

import pytest
from django.test import AsyncClient, Client

from portal.accounts import services
from portal.core.middleware import query_string_not_text
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

NOT_TEXT = 'Not "utf-8" text: some bytes (raw or %-escaped) are not a valid character; send UTF-8.'

# (query string as the server hands it over: one character per byte, PEP 3333; the parameter named)
REFUSED = [
    ("q=%C3", "q"),  # a lead byte with nothing after it
    ("q=%FF%FE", "q"),  # bytes that are never UTF-8
    ("q=caf%C3%28", "q"),  # a lead byte followed by one that cannot continue it
    ("q=%ED%A0%80", "q"),  # a lone surrogate (U+D800) encoded as UTF-8
    ("q=%C0%AF", "q"),  # an overlong "/"
    ("q=caf\xc3", "q"),  # a raw byte, not escaped
    ("kind=component&q=fine&na%FFme=x", "na\ufffdme"),  # in a parameter's name, after good ones
    ("q=ok&q=%C3", "q"),  # in the second value of a parameter
]
# Valid UTF-8 that is not ASCII: escaped, raw (its bytes as the server hands them over), and U+FFFD sent as
# its own bytes; (query string, the text the view reads).
ACCEPTED = [
    ("q=caf%C3%A9", "café"),
    ("q=%E2%82%AC", "€"),
    ("q=" + "déploiement 🚀".encode().decode("iso-8859-1"), "déploiement 🚀"),
    ("q=%F0%9F%9A%80+%E6%A8%A1%E5%9E%8B", "🚀 模型"),
    ("q=a+%EF%BF%BD+b", "a \ufffd b"),
    ("q=100%25", "100%"),
]


@pytest.fixture
def grace(demo_org):
    return demo_org["users"]["grace"]


@pytest.fixture
def page(grace) -> Client:
    client = Client()
    client.force_login(grace)
    return client


@pytest.fixture
def token(grace) -> str:
    return services.token_create(user=grace, name="tests")[1]


@pytest.fixture
def api(token) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {token}")


@pytest.mark.parametrize(("query", "name"), REFUSED)
def test_a_query_parameter_that_is_not_utf8_is_a_400_page_naming_it(page, query, name):
    response = page.get("/search/", QUERY_STRING=query)
    assert response.status_code == 400, response.content[:300]
    assert "text/html" in response["Content-Type"]
    assert escape(f"{name}: {NOT_TEXT}") in response.content.decode()


@pytest.mark.parametrize(("query", "name"), REFUSED)
def test_a_query_parameter_that_is_not_utf8_is_a_400_in_the_api_naming_it(api, query, name):
    response = api.get("/api/v1/search", QUERY_STRING=query)
    assert response.status_code == 400, response.content[:300]
    assert response.json() == {"error": {"status": 400, "message": f"{name}: {NOT_TEXT}",
                                         "details": {name: [NOT_TEXT]}}}


def test_a_signed_out_visitor_gets_the_same_400_before_being_sent_to_sign_in():
    """The query is refused before anything reads it, the sign-in redirect's `next` included."""
    response = Client().get("/search/", QUERY_STRING="q=%C3")
    assert response.status_code == 400 and escape(f"q: {NOT_TEXT}") in response.content.decode()


@pytest.mark.parametrize(("query", "text"), ACCEPTED)
def test_utf8_in_a_query_string_is_read_as_sent(page, api, query, text):
    response = page.get("/search/", QUERY_STRING=query)
    assert response.status_code == 200
    assert response.wsgi_request.GET["q"] == text
    answer = api.get("/api/v1/search", QUERY_STRING=query)
    assert answer.status_code == 200, answer.content[:300]
    assert answer.json()["query"]["text"] == text


def test_a_nul_in_a_query_parameter_is_still_refused_as_one(page, api):
    assert "q: Null characters are not allowed." in page.get("/search/?q=a%00b").content.decode()
    assert api.get("/api/v1/search?q=a%00b").json()["error"]["message"] == "q: Null characters are not allowed."


def _in_own_loop(coroutine):
    """Awaited in a thread of its own: an earlier test in the process (a browser test's driver) may have
    left an event loop running in this one, where async_to_sync refuses to work."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result(timeout=60)


@pytest.mark.django_db(transaction=True)  # the token must be seen from the thread ASGI serves it in
def test_under_asgi_too():
    """Django's ASGI handler decodes the query string itself (as UTF-8) and reads %-escapes as UTF-8."""
    token = services.token_create(user=UserFactory(username="ada"), name="tests")[1]
    client, auth = AsyncClient(), {"Authorization": f"Bearer {token}"}
    refused = _in_own_loop(client.get("/api/v1/search?q=%FF%FE", headers=auth))
    assert refused.status_code == 400 and refused.json()["error"]["details"] == {"q": [NOT_TEXT]}
    accepted = _in_own_loop(client.get("/api/v1/search?q=caf%C3%A9", headers=auth))
    assert accepted.status_code == 200, accepted.content
    assert accepted.json()["query"]["text"] == "café"


def test_the_check_costs_one_pass_over_a_valid_query_and_nothing_for_an_empty_one():
    """An empty query is not looked at; a valid one is one strict decode (and one of its %-escapes);
    only a refused one is split into parameters to name the culprit — a long query either way is linear."""
    assert query_string_not_text(b"", "hex") is None  # not even the charset is looked up
    valid = b"&".join(b"p%d=caf%%C3%%A9+%%E2%%82%%AC" % n for n in range(20_000))
    refused = valid + b"&last=%C3"
    started = time.perf_counter()
    assert query_string_not_text(valid, "utf-8") is None
    assert query_string_not_text(refused, "utf-8") == "last"
    assert query_string_not_text(b"q=%C3&" + valid, "utf-8") == "q"
    assert time.perf_counter() - started < 2.0
