"""Buffered events of a user or team deleted before the flush: written without the user/team (as
Event's on_delete=SET_NULL does to stored events), in the same batch as everyone else's, nothing lost.

transaction=True: SQLite (and PostgreSQL) check Django's foreign keys at commit (DEFERRABLE INITIALLY
DEFERRED), so inside a test's wrapping transaction the broken insert would never fail."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from portal.accounts.models import Membership, Team
from portal.insights import capture, services
from portal.insights.models import AnalyticsOptOut, Event, EventType

pytestmark = pytest.mark.django_db(transaction=True)


def _people():
    User = get_user_model()
    keep_team, gone_team = Team.objects.create(name="stays"), Team.objects.create(name="goes")
    stays, leaves = User.objects.create_user("stays"), User.objects.create_user("leaves")
    Membership.objects.create(user=stays, team=keep_team)
    Membership.objects.create(user=leaves, team=gone_team)
    return stays, leaves, keep_team, gone_team


def _record_mixed(stays, leaves, keep_team, gone_team) -> None:
    capture.record(EventType.SEARCH, user=stays, subject="a")
    capture.record(EventType.SEARCH, user=leaves, subject="b")  # team: the user's first team (deleted)
    capture.record(EventType.SEARCH, user=stays, team=gone_team, subject="c")
    capture.record(EventType.SEARCH, user=leaves, team=keep_team, subject="d")
    capture.record(EventType.SEARCH, user=None, subject="e")


EXPECTED = [("a", "stays", "stays"), ("b", None, None), ("c", "stays", None), ("d", None, "stays"),
            ("e", None, None)]


def _written():
    return sorted(Event.objects.values_list("subject", "user__username", "team__name"))


def test_memory_buffer_writes_events_of_a_deleted_user_and_team_without_them(capture_buffer):
    stays, leaves, keep_team, gone_team = _people()
    _record_mixed(stays, leaves, keep_team, gone_team)
    leaves.delete()
    gone_team.delete()
    assert capture.flush_now() == 5
    assert len(capture_buffer) == 0, "nothing kept back for another (failing) round"
    assert _written() == EXPECTED


def test_write_batch_checks_users_and_teams_in_a_constant_number_of_queries(capture_buffer):
    stays, leaves, keep_team, gone_team = _people()
    AnalyticsOptOut.objects.create(user=stays)
    now = datetime.now(UTC).isoformat()
    items = [{"t": EventType.SEARCH, "at": now, "u": u, "tm": t, "s": "x", "v": None, "c": "browser", "d": {}}
             for u in (stays.pk, leaves.pk, *range(10_000, 10_050)) for t in (None, keep_team.pk, 20_000)]
    with CaptureQueriesContext(connection) as small:
        capture.write_batch(items[:6])
    with CaptureQueriesContext(connection) as large:
        capture.write_batch(items)
    def reads(ctx):  # the inserts split by the database's parameter limit; the checks must not grow
        return [q["sql"] for q in ctx if q["sql"].lstrip("(").startswith("SELECT")]

    assert len(reads(small)) == len(reads(large)) == 2, reads(large)  # users ∪ teams, first teams
    rows = list(Event.objects.values_list("user_id", "team_id"))
    assert len(rows) == 6 + len(items)
    assert {u for u, _ in rows} == {None, leaves.pk}, "opted out or missing: no user"
    assert {t for _, t in rows} <= {None, keep_team.pk, gone_team.pk}


def test_redis_buffer_drains_events_of_a_deleted_user(settings, redis_url):
    import redis

    key = f"plinth-test-insights-deleted-{datetime.now(UTC).timestamp()}"
    settings.PLINTH_ANALYTICS = True
    settings.PLINTH_ANALYTICS_REDIS_URL = redis_url
    settings.PLINTH_ANALYTICS_REDIS_KEY = key
    settings.PLINTH_ANALYTICS_FLUSH_THREAD = False
    capture._state.pop("buffer", None)
    try:
        stays, leaves, keep_team, gone_team = _people()
        _record_mixed(stays, leaves, keep_team, gone_team)
        leaves.delete()
        gone_team.delete()
        assert services.drain_redis() == 5
        assert redis.Redis.from_url(redis_url).llen(key) == 0
        assert _written() == EXPECTED
    finally:
        redis.Redis.from_url(redis_url).delete(key)
        capture._state.pop("buffer", None)
