"""API tokens: created once, stored hashed, used as Bearer, listed and revoked in the browser."""

import hashlib
import logging
import re

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from portal.accounts.models import APIToken
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def bearer(token: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def test_token_lifecycle_in_the_browser_and_api(client):
    """Create in the browser → use as Bearer → see last use → revoke → 401."""
    user = UserFactory(username="tina")
    client.force_login(user)
    response = client.post("/accounts/tokens/", {"name": "ci pipeline", "expires_in_days": ""})
    assert response.status_code == 200
    raw = re.search(rb"plinth_[A-Za-z0-9]{8}_[A-Za-z0-9_-]+", response.content).group().decode()
    row = APIToken.objects.get(user=user)
    assert row.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in str(APIToken.objects.values_list()), "the secret itself is never stored"
    assert response["Cache-Control"] == "no-store"

    api = client_class_anonymous()
    assert api.get("/api/v1/me", **bearer(raw)).json()["username"] == "tina"
    row.refresh_from_db()
    assert row.last_used_at is not None
    listing = client.get("/accounts/tokens/").content.decode()
    assert "ci pipeline" in listing and raw not in listing, "the token is shown only once"

    assert client.post(f"/accounts/tokens/{row.pk}/revoke/").status_code == 302
    row.refresh_from_db()
    assert row.revoked_at is not None
    denied = api.get("/api/v1/me", **bearer(raw))
    assert denied.status_code == 401
    assert denied.json()["error"]["message"] == "Invalid, expired or revoked token."


def client_class_anonymous():
    from django.test import Client

    return Client()


@pytest.mark.parametrize("header", [
    "Bearer", "Bearer a b", "Bearer not-a-plinth-token", "Bearer plinth_short_x",
    "Bearer plinth_abcdefgh_" + "x" * 40,  # well-formed but unknown
])
def test_malformed_or_unknown_tokens_get_401(client, header):
    response = client.get("/api/v1/me", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert "error" in response.json()


def test_no_credentials_get_401_not_a_redirect(client):
    response = client.get("/api/v1/entities")
    assert response.status_code in (401, 403)
    assert response.json()["error"]["status"] == response.status_code


def test_cannot_revoke_someone_elses_token(client):
    owner, other = UserFactory(), UserFactory()
    from portal.accounts import services

    token, _ = services.token_create(user=owner, name="mine")
    client.force_login(other)
    assert client.post(f"/accounts/tokens/{token.pk}/revoke/").status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


def test_expired_token_is_refused(client):
    from datetime import timedelta

    from django.utils import timezone

    from portal.accounts import services

    user = UserFactory()
    token, raw = services.token_create(user=user, name="short", expires_in_days=1)
    APIToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert client.get("/api/v1/me", **bearer(raw)).status_code == 401


def test_create_token_command_prints_a_working_token(client, capsys):
    UserFactory(username="robot")
    call_command("create_token", "robot", "--name", "deploy")
    raw = capsys.readouterr().out.strip()
    assert client.get("/api/v1/me", **bearer(raw)).json()["username"] == "robot"
    with pytest.raises(CommandError, match="Unknown user 'ghost'"):
        call_command("create_token", "ghost")


def test_tokens_never_reach_the_logs(client, caplog):
    from portal.accounts import services

    user = UserFactory()
    _, raw = services.token_create(user=user, name="secret")
    with caplog.at_level(logging.DEBUG):
        client.get("/api/v1/me", **bearer(raw))
        client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {raw}x")
        logging.getLogger("plinth.test").warning("leaked %s", raw)
    from portal.core.logging import JsonFormatter

    formatted = "\n".join(JsonFormatter().format(r) for r in caplog.records)
    assert raw not in formatted
    assert "[redacted" in formatted


def test_ping_is_the_authenticated_no_op(client, django_assert_max_num_queries):
    """`GET /api/v1/ping`: `{"ok": true}` with a token or a session, 401 signed out or revoked; one
    query with a token (the token and its user), none of the catalog's."""
    from portal.accounts import services

    user = UserFactory()
    token, raw = services.token_create(user=user, name="floor")
    assert client.get("/api/v1/ping").status_code == 401
    client.get("/api/v1/ping", **bearer(raw))  # the first use is audited: not what is counted
    with django_assert_max_num_queries(1):
        response = client.get("/api/v1/ping", **bearer(raw))
    assert response.status_code == 200 and response.json() == {"ok": True}
    client.force_login(user)
    assert client.get("/api/v1/ping").json() == {"ok": True}
    client.logout()
    services.token_revoke(token=token, actor=user)
    assert client.get("/api/v1/ping", **bearer(raw)).status_code == 401
