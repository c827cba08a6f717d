"""A web request that waits for a lock gives up after `PLINTH_WEB_LOCK_TIMEOUT_SECONDS` and answers 503
with a Retry-After (PostgreSQL, run by `make test`'s production-profile pass). A first large import into
a small catalog holds the catalog's tables until it commits (`portal.core.db.DeferredIndexes`): without
the limit a page waited for that commit, past gunicorn's worker timeout."""

from __future__ import annotations

import contextlib
import time

import psycopg
import pytest
from django.db import connection
from django.test import Client

from portal.accounts import services as account_services
from portal.core import db

pytestmark = [pytest.mark.prod_smoke, pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("postgres_only")]


def _session() -> psycopg.Connection:
    params = connection.settings_dict
    return psycopg.connect(dbname=params["NAME"], user=params["USER"], password=params["PASSWORD"] or None,
                           host=params["HOST"], port=params["PORT"] or None)


@pytest.fixture
def web_process(settings):
    """This process as `portal.wsgi` sets it up, with a short limit; its sessions opened afresh."""
    from django.db.backends.signals import connection_created

    settings.PLINTH_WEB_LOCK_TIMEOUT_SECONDS = 0.5
    connection.close()
    db.serve_web_requests()
    yield
    connection_created.disconnect(dispatch_uid="plinth.web_lock_timeout")
    connection.close()  # the next session starts without the limit


def _lock_value() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW lock_timeout")
        return cursor.fetchone()[0]


def test_only_a_web_process_sessions_stop_waiting(settings):
    connection.close()
    assert _lock_value() == "0", "workers and commands wait as long as they must"


def test_a_request_held_up_by_a_bulk_load_answers_503_quickly_and_changes_nothing(demo_org, web_process):
    alice = demo_org["users"]["alice"]
    page = Client(raise_request_exception=False)
    page.force_login(alice)
    _, raw = account_services.token_create(user=alice, name="lock test")
    api = Client(HTTP_AUTHORIZATION=f"Bearer {raw}", raise_request_exception=False)
    assert page.get("/catalog/").status_code == 200
    assert _lock_value() == "500ms"

    load = _session()  # as DeferredIndexes does: the catalog's tables locked until the load commits
    # Should the requests wait after all (the limit broken), the server ends this session after 10 s
    # and the test fails on the time taken instead of hanging.
    load.execute("SET idle_in_transaction_session_timeout = '10s'")
    try:
        load.execute("LOCK TABLE catalog_entity IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        busy_page = page.get("/catalog/")
        busy_api = api.get("/api/v1/entities/by-name/model/default/fraud-detector")
        waited = time.monotonic() - started
    finally:
        with contextlib.suppress(psycopg.Error):  # already ended by the server if the requests waited
            load.rollback()
        load.close()

    assert waited < 5, f"two requests took {waited:.1f} s: they waited for the lock"
    assert busy_page.status_code == 503 and busy_page["Retry-After"] == "30"
    assert b"Busy for a moment" in busy_page.content and b"large catalog import" in busy_page.content
    assert busy_api.status_code == 503 and busy_api["Retry-After"] == "30"
    assert busy_api.json()["error"]["status"] == 503
    assert "large catalog import" in busy_api.json()["error"]["message"]
    # The lock released, the same requests are served.
    assert page.get("/catalog/").status_code == 200
    assert api.get("/api/v1/entities/by-name/model/default/fraud-detector").status_code == 200


def test_a_lost_database_is_still_told_apart_from_a_busy_one():
    from django.db import OperationalError

    from portal.core.views import server_error

    class Request:
        path = "/api/v1/entities"
        META: dict = {}

    try:
        raise OperationalError("server closed the connection unexpectedly")
    except OperationalError:
        response = server_error(Request())
    assert response.status_code == 503 and response["Retry-After"] == "5"
    assert b"cannot be reached" in response.content
