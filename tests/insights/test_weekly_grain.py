"""Org-wide weekly rollups: a top list composed of weekly rows for a range's whole weeks and daily rows at
its ragged edges gives exactly the numbers counted from the raw events, for any range."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portal.insights import rollup, selectors
from portal.insights.models import Event, Grain, Rollup
from tests.factories import TeamFactory, UserFactory

FIRST = date(2026, 10, 1)  # a Thursday: the window starts and ends mid-week
DAYS = 40


@pytest.fixture
def raw(db):
    """Six weeks of entity and docs views by a few users of two teams, rolled up once (the examples of
    the property test share it: they only read)."""
    rng = random.Random(7)
    teams = [TeamFactory(name=f"wk-{i}") for i in range(2)]
    users = [UserFactory(username=f"wk-u{i}") for i in range(5)]
    events = []
    for day in range(DAYS):
        for _ in range(rng.randrange(0, 25)):
            at = datetime.combine(FIRST + timedelta(days=day), datetime.min.time(), tzinfo=UTC)
            events.append(Event(occurred_at=at + timedelta(minutes=rng.randrange(1440)),
                                type=rng.choice(["entity_view", "docs_view"]), user=rng.choice(users),
                                team=rng.choice(teams), subject=f"component:default/s{rng.randrange(6)}/p"))
    Event.objects.bulk_create(events)
    start = datetime.combine(FIRST, datetime.min.time(), tzinfo=UTC)
    rollup.rollup_range(start, start + timedelta(days=DAYS))
    return events


def _expected(events, type_: str, start: date, end: date) -> list[dict]:
    count, users, last = defaultdict(int), defaultdict(set), {}
    for e in events:
        day = e.occurred_at.date()
        if e.type == type_ and start <= day <= end:
            count[e.subject] += 1
            users[e.subject].add((day, e.user_id))
            last[e.subject] = max(last.get(e.subject, day), day)
    rows = [{"subject": s, "count": n, "user_days": len(users[s]), "last_used": f"{last[s].isoformat()}T00:00:00Z"}
            for s, n in count.items()]
    return sorted(rows, key=lambda r: (-r["count"], r["subject"]))


@pytest.mark.django_db
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=st.integers(0, DAYS + 3), length=st.integers(0, DAYS))
def test_weekly_and_ragged_daily_rows_give_the_raw_events_numbers(raw, first, length):
    start = FIRST - timedelta(days=2) + timedelta(days=first)
    end = start + timedelta(days=length)
    for type_, fn, key in (("entity_view", selectors.top_entities, "entityref"),
                           ("docs_view", selectors.top_docs, "path")):
        got = [{"subject": r[key], "count": r["count"], "user_days": r["user_days"], "last_used": r["last_used"]}
               for r in fn(start, end, limit=100)]
        assert got == _expected(raw, type_, start, end)


@pytest.mark.django_db
def test_a_week_row_sums_its_days_and_follows_a_re_rollup():
    team, user = TeamFactory(name="wk-x"), UserFactory(username="wk-x")
    monday = datetime(2026, 11, 2, tzinfo=UTC)
    Event.objects.bulk_create([Event(occurred_at=monday + timedelta(days=d, hours=9), type="entity_view", user=user,
                                     team=team, subject="component:default/a") for d in (0, 3, 6)])
    for d in range(7):
        rollup.rollup_day((monday + timedelta(days=d)).date())
    week = Rollup.objects.get(grain=Grain.ORG_WEEKLY, bucket=monday, type="entity_view")
    assert (week.count, week.users) == (3, 3)
    Event.objects.create(occurred_at=monday + timedelta(days=3, hours=10), type="entity_view", user=user, team=team,
                         subject="component:default/a")  # a late event: the day is rolled up again
    rollup.rollup_day((monday + timedelta(days=3)).date())
    week = Rollup.objects.get(grain=Grain.ORG_WEEKLY, bucket=monday, type="entity_view")
    assert (week.count, week.users) == (4, 3)


def test_whole_weeks():
    assert selectors.whole_weeks(date(2026, 11, 2), date(2026, 11, 8)) == (date(2026, 11, 2), date(2026, 11, 9))
    assert selectors.whole_weeks(date(2026, 11, 3), date(2026, 11, 15)) == (date(2026, 11, 9), date(2026, 11, 16))
    assert selectors.whole_weeks(date(2026, 11, 3), date(2026, 11, 14)) is None
