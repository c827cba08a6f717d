"""Capture: events buffered off the request path, written in batches, opt-out, switch-off, Redis down."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from portal.accounts.demo import DEMO_PASSWORD
from portal.insights import capture, services
from portal.insights.models import ActiveUserDay, AnalyticsOptOut, CaptureCounter, Event, EventType
from portal.insights.models import Client as EventClient

pytestmark = pytest.mark.django_db

ENTITY_PAGE = "/catalog/model/default/fraud-detector/"


def _signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_record_is_buffered_and_written_with_the_users_first_team(demo_org, capture_buffer):
    alice = demo_org["users"]["alice"]
    with CaptureQueriesContext(connection) as queries:
        capture.record(EventType.SEARCH, user=alice, subject="fraud", value=3)
    assert len(queries) == 0, "record() must not touch the database"
    assert len(capture_buffer) == 1 and not Event.objects.exists()
    assert capture.flush_now() == 1
    event = Event.objects.get()
    assert (event.type, event.user, event.subject, event.value) == ("search", alice, "fraud", 3.0)
    assert event.team == demo_org["teams"]["fraud-ml"], "no team given: the user's first team"


def test_unknown_type_is_a_programming_error(capture_buffer):
    with pytest.raises(ValueError, match="unknown analytics event type"):
        capture.record("nonsense", user=None)


def test_client_from_user_agent():
    from plinth_sdk import _http

    assert capture.client_from_user_agent(_http.USER_AGENT, api=True) == EventClient.SDK
    assert capture.client_from_user_agent(_http.CLI_USER_AGENT, api=True) == EventClient.CLI
    assert capture.client_from_user_agent("Mozilla/5.0 (X11; Linux) Chrome/120", api=False) == EventClient.BROWSER
    assert capture.client_from_user_agent("curl/8.5.0", api=True) == EventClient.API


def test_pages_and_api_calls_are_captured_by_client(demo_org, capture_buffer):
    alice = demo_org["users"]["alice"]
    browser = _signed_in(alice)
    assert browser.get(ENTITY_PAGE).status_code == 200
    sdk = _signed_in(alice)
    assert sdk.get("/api/v1/entities?limit=1", HTTP_USER_AGENT="plinth-sdk/0.1.0").status_code == 200
    cli = _signed_in(alice)
    assert cli.get("/api/v1/entities?limit=1", HTTP_USER_AGENT="plinth-cli/0.1.0 plinth-sdk/0.1.0").status_code == 200
    capture.flush_now()
    seen = {(e.type, e.client, e.subject) for e in Event.objects.all()}
    assert ("entity_view", "browser", "model:default/fraud-detector") in seen
    assert ("page_view", "browser", "catalog:entity-detail") in seen
    api = {(c, s) for t, c, s in seen if t == "api_call"}
    assert {c for c, _ in api} == {"sdk", "cli"}
    assert all(s and "?" not in s and "/" not in s for _, s in api), "the URL pattern's name, never the URL"
    view = Event.objects.get(type="entity_view")
    assert view.team.name == "fraud-ml", "an entity view counts for the entity's owner"


def test_no_extra_query_on_a_page_with_analytics_on(demo_org, capture_buffer, settings, django_assert_num_queries):
    """The same page costs the same queries with analytics on as off: capture writes nothing inline."""
    client = _signed_in(demo_org["users"]["bob"])
    client.get(ENTITY_PAGE)  # warm caches (facets, templates) so both measured requests are alike
    settings.PLINTH_ANALYTICS = False
    with CaptureQueriesContext(connection) as off:
        assert client.get(ENTITY_PAGE).status_code == 200
    settings.PLINTH_ANALYTICS = True
    capture_buffer.items.clear()
    with django_assert_num_queries(len(off)):
        assert client.get(ENTITY_PAGE).status_code == 200
    assert {i["t"] for i in capture_buffer.items} == {"entity_view", "page_view"}


def test_analytics_off_captures_nothing(demo_org, capture_buffer, settings):
    settings.PLINTH_ANALYTICS = False
    client = _signed_in(demo_org["users"]["bob"])
    assert client.get(ENTITY_PAGE).status_code == 200
    capture.record(EventType.SIGN_IN, user=demo_org["users"]["bob"])
    assert len(capture_buffer) == 0
    capture.flush_now()
    assert not Event.objects.exists()


def test_sign_in_is_an_event(demo_org, capture_buffer):
    client = Client()
    response = client.post("/accounts/sign-in/", {"username": "dan", "password": DEMO_PASSWORD})
    assert response.status_code == 302
    capture.flush_now()
    assert Event.objects.filter(type="sign_in", user__username="dan", team__name="recsys").count() == 1


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_broker_down_drops_and_counts_events_and_the_page_still_answers(demo_org, settings):
    settings.PLINTH_ANALYTICS = True
    settings.PLINTH_ANALYTICS_REDIS_URL = f"redis://127.0.0.1:{_closed_port()}/0"
    capture._state.pop("buffer", None)
    before = capture.dropped_total()
    try:
        client = _signed_in(demo_org["users"]["bob"])
        assert client.get(ENTITY_PAGE).status_code == 200
        assert capture.dropped_total() - before == 3  # sign-in (force_login), entity view, page view
        capture.flush_now()
        assert CaptureCounter.objects.get(name="dropped").value >= 2
        assert not Event.objects.exists()
        body = Client().get("/metrics").content.decode()
        assert "plinth_analytics_events_dropped_total" in body
    finally:
        capture._state.pop("buffer", None)


def test_redis_buffer_is_drained_into_events(demo_org, settings, redis_url):
    import redis

    key = f"plinth-test-insights-drain-{datetime.now(UTC).timestamp()}"
    settings.PLINTH_ANALYTICS = True
    settings.PLINTH_ANALYTICS_REDIS_URL = redis_url
    settings.PLINTH_ANALYTICS_REDIS_KEY = key
    capture._state.pop("buffer", None)
    try:
        for n in range(5):
            capture.record(EventType.SEARCH, user=demo_org["users"]["carol"], subject=f"q{n}", value=n)
        assert redis.Redis.from_url(redis_url).llen(key) == 5
        assert services.drain_redis() == 5
        assert redis.Redis.from_url(redis_url).llen(key) == 0
        assert sorted(Event.objects.values_list("subject", flat=True)) == [f"q{n}" for n in range(5)]
        assert services.drain_redis() == 0, "drained once: nothing is written twice"
    finally:
        redis.Redis.from_url(redis_url).delete(key)
        capture._state.pop("buffer", None)


def test_opt_out_page_removes_the_user_from_per_user_rows(demo_org, capture_buffer):
    dan = demo_org["users"]["dan"]
    capture.record(EventType.SEARCH, user=dan, subject="before")
    capture.flush_now()
    ActiveUserDay.objects.create(day=datetime.now(UTC).date(), user=dan, events=1)
    client = _signed_in(dan)
    page = client.get("/accounts/analytics/")
    assert page.status_code == 200 and b"counted individually" in page.content
    assert client.post("/accounts/analytics/", {"choice": "sideways"}).status_code == 400
    assert not AnalyticsOptOut.objects.exists()
    assert client.post("/accounts/analytics/", {"choice": "out"}).status_code == 302
    assert AnalyticsOptOut.objects.filter(user=dan).exists()
    assert not Event.objects.filter(user=dan).exists() and Event.objects.filter(subject="before").exists()
    assert not ActiveUserDay.objects.filter(user=dan).exists()
    capture.record(EventType.SEARCH, user=dan, subject="after")
    capture.flush_now()
    after = Event.objects.get(subject="after")
    assert after.user is None and after.team.name == "recsys", "team totals still count it"
    assert client.post("/accounts/analytics/", {"choice": "in"}).status_code == 302
    assert not AnalyticsOptOut.objects.exists()


def test_opt_out_needs_csrf(demo_org):
    client = Client(enforce_csrf_checks=True)
    client.force_login(demo_org["users"]["dan"])
    assert client.post("/accounts/analytics/", {"choice": "out"}).status_code == 403
    assert not AnalyticsOptOut.objects.exists()


def test_retention_deletes_old_raw_events_only(demo_org, settings):
    settings.PLINTH_ANALYTICS_RETENTION_DAYS = 30
    now = datetime.now(UTC)
    Event.objects.bulk_create([
        Event(occurred_at=now - timedelta(days=31), type="search", subject="old"),
        Event(occurred_at=now - timedelta(days=29), type="search", subject="kept"),
    ])
    result = services.events_expire(now=now)
    assert result["deleted"] == 1
    assert list(Event.objects.values_list("subject", flat=True)) == ["kept"]
