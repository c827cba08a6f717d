"""Token events in the audit trail: created, first used (exactly once, even when several
connections use a new token at once), revoked — and never the token itself."""

import json
import logging
import re
import threading
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test import Client

from portal.accounts import services
from portal.accounts.models import APIToken
from portal.core.models import AuditEvent
from tests.factories import UserFactory


def bearer(raw: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def payloads(action: str) -> list[dict]:
    return [json.loads(p) for p in AuditEvent.objects.filter(action=action).values_list("payload", flat=True)]


@pytest.mark.django_db
def test_token_created_first_used_and_revoked_are_audited_without_the_secret(client, caplog):
    caplog.set_level(logging.DEBUG)
    user = UserFactory(username="tina")
    client.force_login(user)
    page = client.post("/accounts/tokens/", {"name": "ci", "expires_in_days": ""}, REMOTE_ADDR="203.0.113.4")
    raw = re.search(rb"plinth_[A-Za-z0-9]{8}_[A-Za-z0-9_-]+", page.content).group().decode()
    token = APIToken.objects.get(user=user)
    api = Client()
    for _ in range(3):
        assert api.get("/api/v1/me", REMOTE_ADDR="198.51.100.7", **bearer(raw)).status_code == 200
    assert client.post(f"/accounts/tokens/{token.pk}/revoke/").status_code == 302

    [created] = payloads("token.create")
    assert created["actor"] == "tina" and created["after"] == {"token": token.prefix, "name": "ci"}
    assert created["remote_addr"] == "203.0.113.4"
    [first] = payloads("token.first-use")
    assert first["actor"] == "tina" and first["remote_addr"] == "198.51.100.7"
    assert first["after"] == {"token": token.prefix, "name": "ci"}
    [revoked] = payloads("token.revoke")
    assert revoked["after"] == {"token": token.prefix, "name": "ci"}
    token.refresh_from_db()
    assert token.first_used_at is not None and token.last_used_at >= token.first_used_at

    secret = raw.split("_", 2)[2]
    assert secret not in "".join(AuditEvent.objects.values_list("payload", flat=True))
    logged = "\n".join(r.getMessage() + json.dumps(r.__dict__, default=str) for r in caplog.records)
    assert secret not in logged


@pytest.mark.django_db(transaction=True)
def test_first_use_is_recorded_once_when_connections_race():
    _, raw = services.token_create(user=UserFactory(username="tina"), name="race")
    barrier = threading.Barrier(6)
    statuses = []

    def use():
        try:
            barrier.wait()
            statuses.append(Client().get("/api/v1/me", **bearer(raw)).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=use) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200] * 6
    assert len(payloads("token.first-use")) == 1


@pytest.mark.django_db
def test_a_token_used_before_the_upgrade_gets_no_first_use_event():
    """The migration copies last_used_at into first_used_at: old tokens are not 'first used' again."""
    token, raw = services.token_create(user=UserFactory(), name="old")
    APIToken.objects.filter(pk=token.pk).update(first_used_at="2026-01-01T00:00:00Z",
                                                last_used_at="2026-01-01T00:00:00Z")
    assert Client().get("/api/v1/me", **bearer(raw)).status_code == 200
    assert payloads("token.first-use") == []
    token.refresh_from_db()
    assert token.last_used_at > datetime(2026, 1, 1, tzinfo=UTC), "the last use still advances"
