"""The demo usage history: generated for the demo organisation, seeded (the same every time),
idempotent (loading twice changes nothing), marked (every event says demo), consistent (its rollups
add up to its events), kept away from real usage, and removed exactly by the purge."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from portal.insights import demo
from portal.insights.models import (
    ActiveUserDay,
    DemoHistory,
    Event,
    EventType,
    FirstActiveDay,
    Grain,
    Rollup,
    TeamMilestone,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("on_each_backend")]
TODAY = date(2026, 12, 2)


@pytest.fixture
def short(monkeypatch):
    """Two weeks instead of six: the behaviour is the same, the rollups three times quicker."""
    monkeypatch.setattr(demo, "DAYS", 14)


@pytest.fixture
def org(db):
    from portal.accounts import demo as org_demo

    return org_demo.load_org()


def counts() -> dict[str, int]:
    return {"events": Event.objects.count(), "rollups": Rollup.objects.count(),
            "active_days": ActiveUserDay.objects.count(), "milestones": TeamMilestone.objects.count()}


def test_the_history_is_marked_consistent_and_loading_twice_changes_nothing(org):
    summary = demo.load(today=TODAY)
    assert summary.created and (summary.start, summary.end) == (date(2026, 10, 21), date(2026, 12, 1))
    first = counts()
    assert first["events"] > 1000 and first == {k: getattr(summary, k) for k in first}
    assert not Event.objects.exclude(data__demo=True).exists()
    window = (datetime(2026, 10, 21, tzinfo=UTC), datetime(2026, 12, 2, tzinfo=UTC))
    assert not Event.objects.exclude(occurred_at__range=window).exists()
    # Every shared event type the story needs appears; zero-result searches and failed runs too.
    seen = Counter(Event.objects.values_list("type", flat=True))
    assert set(seen) == set(EventType.values)
    assert Event.objects.filter(type=EventType.SEARCH, value=0).exists()
    # Rollups add up to the events, at every grain with per type rows (hourly has none: GRAIN_ROWS);
    # active days are the distinct (user, day) pairs.
    for grain in [g for g in Grain.values if g != Grain.HOURLY]:
        by_type = Counter()
        for type_, n in Rollup.objects.filter(grain=grain).exclude(type="*").values_list("type", "count"):
            by_type[type_] += n
        assert by_type == seen
    pairs = {(e.occurred_at.date(), e.user_id) for e in Event.objects.all()}
    assert set(ActiveUserDay.objects.values_list("day", "user_id")) == pairs
    assert set(TeamMilestone.objects.values_list("team__name", flat=True)) == set(demo.TEAM_JOINS)

    again = demo.load(today=TODAY)
    assert not again.created and counts() == first and DemoHistory.objects.count() == 1


def test_the_history_is_the_same_every_time(org):
    users = {u.username: u for u in org["users"].values()}
    key = [(e.occurred_at, e.type, e.user_id, e.subject, e.value) for e in
           demo.generate(date(2026, 10, 1), date(2026, 10, 28), users, org["teams"])]
    assert key == [(e.occurred_at, e.type, e.user_id, e.subject, e.value) for e in
                   demo.generate(date(2026, 10, 1), date(2026, 10, 28), users, org["teams"])]


def test_a_new_day_replaces_the_history_and_the_purge_removes_exactly_it(org, short):
    demo.load(today=TODAY)
    moved = demo.load(today=TODAY + timedelta(days=1))
    assert moved.created and moved.end == TODAY and DemoHistory.objects.get().end == TODAY
    assert Event.objects.count() == moved.events  # the old history is gone, not doubled
    out = StringIO()
    call_command("demo", "purge-insights", stdout=out)
    assert "Removed the demo usage history" in out.getvalue()
    assert counts() == {"events": 0, "rollups": 0, "active_days": 0, "milestones": 0}
    assert not FirstActiveDay.objects.exists()
    assert not DemoHistory.objects.exists()


def test_the_history_never_mixes_with_real_usage(org, short):
    alice = org["users"]["alice"]
    real_at = datetime(2026, 11, 20, 9, tzinfo=UTC)
    Event.objects.create(occurred_at=real_at, type=EventType.SIGN_IN, user=alice)
    ActiveUserDay.objects.create(day=real_at.date(), user=alice, events=1)  # what the real rollup wrote
    FirstActiveDay.objects.create(day=real_at.date(), user=alice)
    summary = demo.load(today=TODAY)
    assert FirstActiveDay.objects.get(user=alice).day == real_at.date()  # not moved into the demo's days
    assert summary.end == date(2026, 11, 19)  # the day before the first real usage
    assert not Event.objects.filter(data__demo=True, occurred_at__gte=datetime(2026, 11, 20, tzinfo=UTC)).exists()
    demo.purge()
    assert list(Event.objects.values_list("occurred_at", flat=True)) == [real_at]
    assert list(FirstActiveDay.objects.values_list("user__username", "day")) == [("alice", real_at.date())]
    assert list(ActiveUserDay.objects.values_list("day", flat=True)) == [real_at.date()]
    # Real usage for longer than two weeks: no demo history at all.
    Event.objects.create(occurred_at=datetime(2026, 11, 10, tzinfo=UTC), type=EventType.SIGN_IN, user=alice)
    skipped = demo.load(today=TODAY)
    assert skipped.start is None and "real usage exists from 2026-11-10" in str(skipped)
    assert Event.objects.count() == 2


def test_the_command_needs_the_demo_organisation(db):
    with pytest.raises(CommandError, match="the demo organisation is not loaded .*run `manage.py demo load` first"):
        call_command("demo", "insights")

