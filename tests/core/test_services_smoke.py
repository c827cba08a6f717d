"""The real services the suite relies on are up, and the test fixtures drive them."""

from __future__ import annotations

import os
import urllib.request

import pytest


def test_redis_answers_ping(redis_url):
    """A real Redis server answers PING at REDIS_URL."""
    import redis

    client = redis.Redis.from_url(redis_url, socket_timeout=2)
    try:
        assert client.ping() is True
        assert client.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
    finally:
        client.close()


def test_mlflow_health_is_200(mlflow_url):
    """A real MLflow tracking server answers /health with 200."""
    with urllib.request.urlopen(f"{mlflow_url.rstrip('/')}/health", timeout=5) as resp:  # noqa: S310
        assert resp.status == 200


@pytest.mark.prod_smoke
@pytest.mark.django_db
def test_production_profile_uses_postgresql():
    """With DATABASE_URL set (the production profile), Django talks to PostgreSQL, migrations applied."""
    from django.db import connection

    from portal.core.models import WorkerHeartbeat

    if not os.environ.get("DATABASE_URL"):
        pytest.skip("DATABASE_URL is not set; `make test` runs this against PostgreSQL")
    assert connection.vendor == "postgresql"
    assert WorkerHeartbeat.objects.count() == 0


@pytest.mark.browser
def test_chromium_renders_healthz(live_server, page):
    """The Playwright page fixture drives the system Chromium against the live server."""
    response = page.goto(f"{live_server.url}/healthz")
    assert response is not None and response.status == 200
    assert '"ok"' in page.content()
