"""The tokens page counts every token a Revoke takes along — made with the token, or with those, down the
chain — in one query however long the chains; on both engines (a correlated recursive subquery)."""

import re

import pytest
from django.db import connection, reset_queries
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from portal.accounts import selectors, services
from portal.accounts.models import APIToken
from tests.factories import UserFactory


def _made_with(raw: str, name: str) -> tuple[int, str]:
    body = Client(HTTP_AUTHORIZATION=f"Bearer {raw}").post(
        "/api/v1/tokens", {"name": name}, content_type="application/json").json()
    return body["id"], body["secret"]


def _chain(user, length: int, label: str) -> list[int]:
    """A token, one made with it, one made with that, ...: their ids, oldest first."""
    root, raw = services.token_create(user=user, name=f"{label}0")
    ids = [root.pk]
    for n in range(1, length):
        pk, raw = _made_with(raw, f"{label}{n}")
        ids.append(pk)
    return ids


def _queries(page: Client) -> int:
    reset_queries()  # the request clears the log: a capture begun on a non-empty one would count none
    with CaptureQueriesContext(connection) as queries:
        assert page.get("/accounts/tokens/").status_code == 200
    return len(queries.captured_queries)


def _confirm(html: str, name: str) -> str:
    return re.search(rf'data-confirm="(Revoke the token {name}\b[^"]*)"', html).group(1)


def _check():
    user = UserFactory(username="gina")
    a, b, c = _chain(user, 3, "tok")
    page = Client()
    page.force_login(user)
    html = page.get("/accounts/tokens/").content.decode()
    # A -> B -> C: revoking A takes B and C, revoking B takes C.
    assert "Revoke the token tok0 and the 2 tokens made with it (directly or through a token made with it)?" in html
    assert "the 1 token made with it" in _confirm(html, "tok1")
    assert "made with it" not in _confirm(html, "tok2")
    # A revoked token further down is not counted; the walk goes on past it to the ones below.
    APIToken.objects.filter(pk=b).update(revoked_at=timezone.now())
    made = dict(selectors.tokens_of(user).values_list("pk", "made"))
    assert made == {a: 1, b: 1, c: 0}
    services.token_revoke(token=APIToken.objects.get(pk=a), actor=user)
    assert not APIToken.objects.filter(user=user, revoked_at__isnull=True).exists()

    # The query count does not grow with the chains: three longer ones and a lone token cost the same.
    other = UserFactory(username="hal")
    _chain(other, 2, "short")
    page.force_login(other)
    page.get("/accounts/tokens/")  # sessions, first reads: not what is counted
    few = _queries(page)
    for label in ("x", "y", "z"):
        _chain(other, 5, label)
    assert _queries(page) == few
    html = page.get("/accounts/tokens/").content.decode()
    assert "Revoke the token x0 and the 4 tokens made with it" in html
    assert dict(selectors.tokens_of(other).filter(name__in=["x0", "x3", "short0"]).values_list("name", "made")) == {
        "x0": 4, "x3": 1, "short0": 1}


@pytest.mark.django_db
def test_the_revoke_prompt_counts_the_whole_tree_on_sqlite():
    _check()


@pytest.mark.prod_smoke
@pytest.mark.django_db
@pytest.mark.usefixtures("postgres_only")
def test_the_revoke_prompt_counts_the_whole_tree_on_postgresql():
    _check()
