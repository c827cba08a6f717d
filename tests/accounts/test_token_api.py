"""`/api/v1/tokens`: the API tokens page as an API (the SDK's `client.tokens`, `plinth tokens`): one's own
tokens only, the secret shown once, revocation that takes effect at once, audited like the page."""

import pytest
from django.test import Client

from portal.accounts import services
from portal.accounts.models import APIToken
from portal.core.models import AuditEvent
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def api(raw: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


@pytest.fixture
def tina():
    user = UserFactory(username="tina")
    _, raw = services.token_create(user=user, name="laptop")
    return user, raw


def test_create_shows_the_secret_once_and_it_works(tina):
    user, raw = tina
    response = api(raw).post("/api/v1/tokens", {"name": "ci pipeline", "expiresInDays": 30},
                             content_type="application/json")
    assert response.status_code == 201 and response["Cache-Control"] == "no-store"
    body = response.json()
    assert body["name"] == "ci pipeline" and body["active"] and body["expiresAt"]
    assert api(body["secret"]).get("/api/v1/me").json()["username"] == "tina"
    listed = api(raw).get("/api/v1/tokens").json()["items"]
    assert [t["name"] for t in listed] == ["ci pipeline", "laptop"]  # newest first
    assert not any("secret" in t for t in listed)
    assert AuditEvent.objects.filter(action="token.create", target="user:tina").count() == 2  # laptop, ci


def test_a_revoked_token_stops_working_at_once(tina):
    user, raw = tina
    created = api(raw).post("/api/v1/tokens", {"name": "short-lived"}, content_type="application/json").json()
    assert api(created["secret"]).get("/api/v1/me").status_code == 200
    assert api(raw).delete(f"/api/v1/tokens/{created['id']}").status_code == 204
    assert api(created["secret"]).get("/api/v1/me").status_code == 401
    assert api(raw).delete(f"/api/v1/tokens/{created['id']}").status_code == 204  # again: nothing changes
    assert AuditEvent.objects.filter(action="token.revoke").count() == 1
    listed = {t["id"]: t for t in api(raw).get("/api/v1/tokens").json()["items"]}
    assert listed[created["id"]]["revokedAt"] and not listed[created["id"]]["active"]


def test_a_token_made_with_a_token_expires_no_later_and_is_revoked_with_it():
    """A leaked 30-day CI token must not mint itself lasting access: its children expire with it (asked for
    no expiry or a later one) and go when it is revoked, down to their own children."""
    from datetime import timedelta

    user = UserFactory(username="cici")
    parent, raw = services.token_create(user=user, name="ci", expires_in_days=30)
    child = api(raw).post("/api/v1/tokens", {"name": "child"}, content_type="application/json").json()
    assert child["expiresAt"] and APIToken.objects.get(pk=child["id"]).expires_at == parent.expires_at
    later = api(raw).post("/api/v1/tokens", {"name": "later", "expiresInDays": 90}, content_type="application/json")
    assert APIToken.objects.get(pk=later.json()["id"]).expires_at == parent.expires_at
    sooner = api(raw).post("/api/v1/tokens", {"name": "sooner", "expiresInDays": 7}, content_type="application/json")
    assert APIToken.objects.get(pk=sooner.json()["id"]).expires_at < parent.expires_at - timedelta(days=20)
    grandchild = api(child["secret"]).post("/api/v1/tokens", {"name": "g"}, content_type="application/json").json()
    _, own = services.token_create(user=user, name="laptop")  # made on the tokens page: not a child
    assert api(own).get("/api/v1/me").status_code == 200
    page = Client()
    page.force_login(user)
    html = page.get("/accounts/tokens/").content.decode()
    assert "and the 4 tokens made with it" in html and f"made with ci (<code>{parent.prefix}</code>)" in html
    assert api(own).delete(f"/api/v1/tokens/{parent.pk}").status_code == 204
    for secret in (raw, child["secret"], later.json()["secret"], sooner.json()["secret"], grandchild["secret"]):
        assert api(secret).get("/api/v1/me").status_code == 401
    assert api(own).get("/api/v1/me").status_code == 200
    revoked = AuditEvent.objects.filter(action="token.revoke")
    assert revoked.count() == 5 and revoked.filter(payload__contains=f'"with":"{parent.prefix}"').count() == 4
    made = AuditEvent.objects.filter(action="token.create", payload__contains=f'"parent":"{parent.prefix}"')
    assert made.count() == 3


def test_an_authorization_header_of_blanks_is_401_not_500():
    for value in (" ", "\x0c", "\x0b", "\t \t"):
        response = Client(HTTP_AUTHORIZATION=value).get("/api/v1/me")
        assert response.status_code == 401, repr(value)


def test_another_users_token_answers_like_a_missing_one(tina):
    _user, raw = tina
    other = UserFactory(username="uma")
    theirs, their_raw = services.token_create(user=other, name="uma's")
    missing = api(raw).delete("/api/v1/tokens/987654")
    refused = api(raw).delete(f"/api/v1/tokens/{theirs.pk}")
    assert refused.status_code == missing.status_code == 404
    assert refused.json() == missing.json()
    theirs.refresh_from_db()
    assert theirs.revoked_at is None and api(their_raw).get("/api/v1/me").status_code == 200
    assert "uma" not in api(raw).get("/api/v1/tokens").content.decode()


def test_the_listing_pages_with_a_cursor(tina):
    user, raw = tina
    for n in range(4):
        services.token_create(user=user, name=f"t{n}")
    seen, cursor = [], None
    while True:
        body = api(raw).get("/api/v1/tokens?limit=2" + (f"&cursor={cursor}" if cursor else "")).json()
        seen += [t["name"] for t in body["items"]]
        cursor = body["pageInfo"]["nextCursor"]
        if not cursor:
            break
    assert seen == ["t3", "t2", "t1", "t0", "laptop"]


@pytest.mark.parametrize("body,field", [
    ({}, "name"), ({"name": ""}, "name"), ({"name": "x" * 101}, "name"),
    ({"name": "ok", "expiresInDays": 3}, "expiresInDays"), ({"name": "ok", "expiresInDays": "soon"}, "expiresInDays"),
])
def test_bad_input_is_400_naming_the_field_and_creates_nothing(tina, body, field):
    user, raw = tina
    response = api(raw).post("/api/v1/tokens", body, content_type="application/json")
    assert response.status_code == 400 and response.json()["error"]["message"].startswith(f"{field}:")
    assert APIToken.objects.filter(user=user).count() == 1


@pytest.mark.parametrize("query", ["limit=0", "limit=x", "cursor=!!", "cursor=eyJpZCI6IDN9"])
def test_bad_list_parameters_are_400(tina, query):
    response = api(tina[1]).get(f"/api/v1/tokens?{query}")
    assert response.status_code == 400
