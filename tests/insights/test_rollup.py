"""Rollups: daily buckets per type × team × subject, hourly ones of the organisation's distinct users, active user days, team milestones;
idempotent re-rollup on SQLite (NULL team) and PostgreSQL; the beat tasks in a real Celery worker."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from portal.insights import capture, rollup, tasks
from portal.insights.models import (
    ActiveUserDay,
    Event,
    EventType,
    Grain,
    Milestone,
    Rollup,
    TeamMilestone,
)
from tests.factories import MembershipFactory, TeamFactory, UserFactory

DAY = datetime(2026, 11, 3, tzinfo=UTC)


def _events(*specs):
    Event.objects.bulk_create([
        Event(occurred_at=at, type=t, user=u, team=team, subject=s, value=v, data=d or {})
        for at, t, u, team, s, v, d in specs
    ])


@pytest.fixture
def people(db):
    team = TeamFactory(name="ins-a")
    other = TeamFactory(name="ins-b")
    users = [UserFactory(username=f"ins-u{i}") for i in range(3)]
    for u in users:
        MembershipFactory(user=u, team=team)
    return {"team": team, "other": other, "users": users}


@pytest.mark.django_db
def test_hourly_and_daily_buckets_count_users_values_and_a_sorted_sample(people):
    a, b, c = people["users"]
    team = people["team"]
    h = DAY + timedelta(hours=9)
    _events(
        (h, "template_run_succeeded", a, team, "template:default/svc", 30.0, None),
        (h + timedelta(minutes=5), "template_run_succeeded", a, team, "template:default/svc", 10.0, None),
        (h + timedelta(minutes=9), "template_run_succeeded", b, team, "template:default/svc", 20.0, None),
        (h + timedelta(hours=2), "template_run_succeeded", c, team, "template:default/svc", 40.0, None),
        (h, "page_view", a, None, "site:home", None, None),  # no team: the NULL key
        (h + timedelta(minutes=1), "page_view", b, None, "site:home", None, None),
    )
    assert rollup.rollup_bucket(Grain.HOURLY, h) == 1  # the organisation's distinct users only (GRAIN_ROWS)
    row = Rollup.objects.get(grain="hourly", bucket=h)
    assert (row.type, row.team, row.subject, row.count, row.users) == (rollup.ANY_TYPE, None, rollup.ALL_SUBJECT, 5, 2)
    rollup.rollup_bucket(Grain.DAILY, DAY)
    day = Rollup.objects.get(grain="daily", bucket=DAY, type="template_run_succeeded")
    assert (day.count, day.users, day.values) == (4, 3, [10.0, 20.0, 30.0, 40.0])
    home = Rollup.objects.get(grain="daily", bucket=DAY, type="page_view", team=None)
    assert (home.count, home.users) == (2, 2)
    everyone = Rollup.objects.get(grain="daily", bucket=DAY, type=rollup.ANY_TYPE, subject=rollup.ALL_SUBJECT)
    assert everyone.users == 3


@pytest.mark.django_db
def test_re_rollup_replaces_the_bucket_and_never_duplicates_the_null_team_row(people):
    a, b, _ = people["users"]
    h = DAY + timedelta(hours=3)
    _events((h, "page_view", a, None, "site:home", None, None))
    for _ in range(3):
        rollup.rollup_bucket(Grain.HOURLY, h)
        rollup.rollup_bucket(Grain.DAILY, h)
    assert Rollup.objects.filter(grain="hourly", bucket=h, team=None).count() == 1
    assert Rollup.objects.filter(grain="daily", bucket=DAY, type="page_view", team=None).count() == 1
    _events((h + timedelta(minutes=30), "page_view", b, None, "site:home", None, None))  # a late event
    rollup.rollup_bucket(Grain.HOURLY, h)
    rollup.rollup_bucket(Grain.DAILY, h)
    rows = Rollup.objects.filter(grain="hourly", bucket=h, team=None)
    assert [(r.count, r.users) for r in rows] == [(2, 2)]
    rows = Rollup.objects.filter(grain="daily", bucket=DAY, type="page_view", team=None)
    assert [(r.count, r.users) for r in rows] == [(2, 2)]


def test_sample_keeps_quantiles_and_is_bounded():
    values = [float(v) for v in range(1000, 0, -1)]
    s = rollup.sample(values)
    assert len(s) == rollup.SAMPLE and s == sorted(s)
    assert s[0] == 1.0 and s[-1] == 1000.0 and abs(s[50] - 500) <= 1


@pytest.mark.django_db
def test_active_user_days_and_milestones(people):
    a, b, _ = people["users"]
    team = people["team"]
    _events(
        (DAY + timedelta(hours=1), "sign_in", a, team, "", None, None),
        (DAY + timedelta(hours=2), "search", b, team, "fraud", 2.0, None),
        (DAY + timedelta(hours=3), "registration", b, team, "/repo", 3.0, {"kind": "component"}),
        (DAY + timedelta(hours=4), "registration", a, team, "/repo2", 1.0, {"kind": "model"}),
        (DAY + timedelta(hours=5), "search", a, team, "x", 0.0, None),
    )
    rollup.rollup_range(DAY, DAY + timedelta(days=1))
    assert dict(ActiveUserDay.objects.filter(day=DAY.date()).values_list("user__username", "events")) == {
        "ins-u0": 3, "ins-u1": 2}
    # The hours each was active in, a bit per hour (UTC): u0 at 1, 4 and 5 o'clock, u1 at 2 and 3.
    assert dict(ActiveUserDay.objects.filter(day=DAY.date()).values_list("user__username", "hours")) == {
        "ins-u0": 1 << 1 | 1 << 4 | 1 << 5, "ins-u1": 1 << 2 | 1 << 3}
    reached = {m.milestone: (m.reached_at, m.user) for m in TeamMilestone.objects.filter(team=team)}
    assert reached[Milestone.FIRST_SIGN_IN] == (DAY + timedelta(hours=1), a)
    assert reached[Milestone.FIRST_SEARCH] == (DAY + timedelta(hours=2), b)
    assert reached[Milestone.FIRST_REGISTRATION] == (DAY + timedelta(hours=3), b)
    assert reached[Milestone.FIRST_MODEL] == (DAY + timedelta(hours=4), a)
    assert Milestone.FIRST_TEMPLATE_RUN not in reached
    # An earlier event found later (a backfill) moves the milestone back; a later one does not.
    _events((DAY - timedelta(days=1), "search", a, team, "early", 1.0, None),
            (DAY + timedelta(days=1), "search", b, team, "late", 1.0, None))
    rollup.rollup_range(DAY - timedelta(days=1), DAY + timedelta(days=2))
    assert TeamMilestone.objects.get(team=team, milestone=Milestone.FIRST_SEARCH).reached_at == DAY - timedelta(days=1)
    assert TeamMilestone.objects.filter(team=team).count() == 4


def _wait_for(predicate, worker, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError("timed out; worker log:\n" + "\n".join(worker.log.splitlines()[-40:]))


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_redis_buffer_to_rollups_through_a_real_worker(settings, redis_url):
    """Events recorded into Redis by this process are drained and rolled up by the worker's beat tasks."""
    import redis

    from tests.conftest import start_celery_worker

    key = f"plinth-test-insights-{uuid.uuid4().hex[:8]}"
    settings.PLINTH_ANALYTICS = True
    settings.PLINTH_ANALYTICS_REDIS_URL = redis_url
    settings.PLINTH_ANALYTICS_REDIS_KEY = key
    capture._state.pop("buffer", None)
    team = TeamFactory(name="ins-worker")
    user = UserFactory(username="ins-worker-user")
    now = datetime.now(UTC)
    worker = start_celery_worker(redis_url, env={"PLINTH_TEST_ANALYTICS_REDIS": "1", "PLINTH_TEST_ANALYTICS_KEY": key})
    try:
        for _ in range(4):
            capture.record(EventType.TEMPLATE_RUN_STARTED, user=user, team=team, subject="template:default/w", at=now)
        capture.record(EventType.TEMPLATE_RUN_SUCCEEDED, user=user, team=team, subject="template:default/w",
                       value=12.5, at=now)
        assert redis.Redis.from_url(redis_url).llen(key) == 5
        tasks.rollup_recent.delay()  # drains the buffer first, then rolls up this hour and today
        row = _wait_for(lambda: Rollup.objects.filter(grain="daily", type="template_run_started",
                                                      subject="template:default/w").first(), worker)
        assert (row.count, row.users, row.team_id) == (4, 1, team.pk)
        assert Event.objects.filter(subject="template:default/w").count() == 5
        assert redis.Redis.from_url(redis_url).llen(key) == 0
        assert _wait_for(lambda: TeamMilestone.objects.filter(team=team, milestone="first_template_run").exists(),
                         worker)
        # The same task again changes nothing (idempotent).
        before = list(Rollup.objects.order_by("pk").values_list("grain", "type", "subject", "count"))
        tasks.rollup_recent.delay()
        tasks.flush_events.delay()
        time.sleep(3)
        after = _wait_for(lambda: list(Rollup.objects.order_by("grain", "type", "subject")
                                       .values_list("grain", "type", "subject", "count")), worker)
        assert sorted(after) == sorted(before)
    finally:
        worker.stop()
        redis.Redis.from_url(redis_url).delete(key)
        capture._state.pop("buffer", None)


@pytest.mark.django_db
def test_a_day_read_by_row_ids_or_by_time_gives_the_same_rollup(people):
    """SQLite reads a day's events by their dense id range; events backfilled out of order (ids far
    apart) make the range sparse and the rollup reads the time index instead. Both count the same."""
    a, b, c = people["users"]
    team = people["team"]
    _events(*[(DAY + timedelta(hours=h), "search", u, team, "q", float(h), None)
              for h, u in ((1, a), (2, b), (3, a))])
    rollup.rollup_range(DAY, DAY + timedelta(days=1))
    dense = Rollup.objects.get(grain="daily", bucket=DAY, type="search", team=team)
    assert (dense.count, dense.users, dense.values) == (3, 2, [1.0, 2.0, 3.0])
    # Many events of other days between the first and a late one: the day's ids are no longer dense.
    _events(*[(DAY - timedelta(days=2, minutes=i), "page_view", a, team, "x", None, None) for i in range(20)])
    _events((DAY + timedelta(hours=5), "search", c, team, "q", 0.0, None))
    rollup.rollup_range(DAY, DAY + timedelta(days=1))
    sparse = Rollup.objects.get(grain="daily", bucket=DAY, type="search", team=team)
    assert (sparse.count, sparse.users, sparse.values) == (4, 3, [0.0, 1.0, 2.0, 3.0])
    hour = Rollup.objects.get(grain="hourly", bucket=DAY + timedelta(hours=5))
    assert (hour.count, hour.users) == (1, 1)
    assert dict(ActiveUserDay.objects.filter(day=DAY.date()).values_list("user__username", "events")) == {
        "ins-u0": 2, "ins-u1": 1, "ins-u2": 1}
