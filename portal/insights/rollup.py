"""From raw events to the tables dashboards read: Rollup (hourly/daily), ActiveUserDay, TeamMilestone.

Each bucket is recomputed whole from the raw events of its time range and replaced in one transaction
(delete the bucket's rows, insert the new ones), so a rollup can run again over the same bucket — late
events, a crashed run, two beats overlapping — and the result is the same. Replacing instead of an
upsert also sidesteps the unique key's nullable `team`: PostgreSQL honours `nulls_distinct=False`, but
SQLite treats NULLs as distinct and would let an ON CONFLICT upsert insert a second "no team" row.
Concurrent rollups of one bucket are serialised: a transaction-level advisory lock on PostgreSQL, the
database-wide write lock on SQLite (transactions there begin IMMEDIATE).
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta

from django.db import connection, transaction
from django.db.models import Count, Min, Q, Sum

from .models import ActiveUserDay, Event, EventType, Grain, Milestone, Rollup, TeamMilestone

ANY_TYPE = "*"  # rows counting distinct users over every type (selectors.ANY_TYPE)
ALL_SUBJECT = "*"
SAMPLE = 101  # values kept per rollup row: 0th..100th percentile of the bucket's values
STEP = {Grain.HOURLY: timedelta(hours=1), Grain.DAILY: timedelta(days=1)}

# Funnel steps: the event that reaches each, and an extra condition.
MILESTONE_EVENTS: dict[str, tuple[str, Q]] = {
    Milestone.FIRST_SIGN_IN: (EventType.SIGN_IN, Q()),
    Milestone.FIRST_SEARCH: (EventType.SEARCH, Q()),
    Milestone.FIRST_REGISTRATION: (EventType.REGISTRATION, Q()),
    Milestone.FIRST_TEMPLATE_RUN: (EventType.TEMPLATE_RUN_STARTED, Q()),
    Milestone.FIRST_APPROVAL_EXECUTED: (EventType.APPROVAL_EXECUTED, Q()),
    Milestone.FIRST_MODEL: (EventType.REGISTRATION, Q(data__kind="model")),
}


def bucket_start(at: datetime, grain: str) -> datetime:
    at = at.astimezone(UTC)
    if grain == Grain.HOURLY:
        return at.replace(minute=0, second=0, microsecond=0)
    return datetime.combine(at.date(), time.min, tzinfo=UTC)


def sample(values: list[float]) -> list[float]:
    """A bounded, sorted sample that keeps the quantiles: every value when there are few, else the
    0th, 1st, ..., 100th percentile."""
    values = sorted(values)
    n = len(values)
    if n <= SAMPLE:
        return values
    return [values[round(i * (n - 1) / (SAMPLE - 1))] for i in range(SAMPLE)]


def _lock(key: str) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", [zlib.crc32(key.encode())])


def rollup_bucket(grain: str, start: datetime) -> int:
    """Recompute one bucket (its rows replace the old ones). Returns the number of rows."""
    start = bucket_start(start, grain)
    end = start + STEP[grain]
    events = Event.objects.filter(occurred_at__gte=start, occurred_at__lt=end)
    groups = (events.values("type", "team_id", "subject")
              .annotate(n=Count("id"), u=Count("user_id", distinct=True), vs=Sum("value"), vc=Count("value"))
              .order_by())
    values: dict[tuple, list[float]] = defaultdict(list)
    for type_, team_id, subject, value in (events.filter(value__isnull=False)
                                           .values_list("type", "team_id", "subject", "value").order_by()):
        values[(type_, team_id, subject)].append(value)
    # Distinct users over every event type, per team and over all teams ("*"): hourly active users.
    anyone = events.filter(user_id__isnull=False)
    per_team = anyone.values("team_id").annotate(n=Count("id"), u=Count("user_id", distinct=True)).order_by()
    overall = anyone.aggregate(n=Count("id"), u=Count("user_id", distinct=True))
    rows = [Rollup(grain=grain, bucket=start, type=ANY_TYPE, team_id=g["team_id"], subject="", count=g["n"],
                   users=g["u"]) for g in per_team]
    if overall["n"]:
        rows.append(Rollup(grain=grain, bucket=start, type=ANY_TYPE, team_id=None, subject=ALL_SUBJECT,
                           count=overall["n"], users=overall["u"]))
    rows += [
        Rollup(grain=grain, bucket=start, type=g["type"], team_id=g["team_id"], subject=g["subject"],
               count=g["n"], users=g["u"], value_sum=g["vs"] or 0.0, value_count=g["vc"],
               values=sample(values.get((g["type"], g["team_id"], g["subject"]), [])))
        for g in groups
    ]
    with transaction.atomic():
        _lock(f"insights-rollup:{grain}:{start.isoformat()}")
        Rollup.objects.filter(grain=grain, bucket=start).delete()
        Rollup.objects.bulk_create(rows, batch_size=1000)
    return len(rows)


def rollup_active_users(day: date) -> int:
    start = datetime.combine(day, time.min, tzinfo=UTC)
    counts = (Event.objects.filter(occurred_at__gte=start, occurred_at__lt=start + timedelta(days=1),
                                   user_id__isnull=False)
              .values("user_id").annotate(n=Count("id")).order_by())
    rows = [ActiveUserDay(day=day, user_id=c["user_id"], events=c["n"]) for c in counts]
    with transaction.atomic():
        _lock(f"insights-active:{day.isoformat()}")
        ActiveUserDay.objects.filter(day=day).delete()
        ActiveUserDay.objects.bulk_create(rows, batch_size=1000)
    return len(rows)


def rollup_milestones(start: datetime, end: datetime) -> int:
    """Record (or move earlier) each team's first event of every funnel step within [start, end)."""
    written = 0
    for milestone, (type_, extra) in MILESTONE_EVENTS.items():
        events = Event.objects.filter(extra, type=type_, team_id__isnull=False,
                                      occurred_at__gte=start, occurred_at__lt=end)
        firsts = dict(events.values("team_id").annotate(first=Min("occurred_at")).order_by()
                      .values_list("team_id", "first"))
        if not firsts:
            continue
        existing = dict(TeamMilestone.objects.filter(milestone=milestone, team_id__in=list(firsts))
                        .values_list("team_id", "reached_at"))
        needed = {t: at for t, at in firsts.items() if t not in existing or at < existing[t]}
        if not needed:
            continue
        users: dict[int, int | None] = {}
        for team_id, user_id, at in (events.filter(team_id__in=list(needed), occurred_at__in=set(needed.values()))
                                     .values_list("team_id", "user_id", "occurred_at")):
            if at == needed[team_id]:
                users.setdefault(team_id, user_id)
        with transaction.atomic():
            for team_id, at in needed.items():
                TeamMilestone.objects.update_or_create(
                    team_id=team_id, milestone=milestone,
                    defaults={"reached_at": at, "user_id": users.get(team_id)})
                written += 1
    return written


def rollup_range(start: datetime, end: datetime) -> dict:
    """Every hourly and daily bucket touching [start, end), the active users of those days, and the
    milestones reached in them."""
    counts = {"hourly": 0, "daily": 0, "active_user_days": 0, "milestones": 0}
    hour = bucket_start(start, Grain.HOURLY)
    while hour < end:
        counts["hourly"] += rollup_bucket(Grain.HOURLY, hour)
        hour += STEP[Grain.HOURLY]
    day = bucket_start(start, Grain.DAILY)
    while day < end:
        counts["daily"] += rollup_bucket(Grain.DAILY, day)
        counts["active_user_days"] += rollup_active_users(day.date())
        day += STEP[Grain.DAILY]
    counts["milestones"] = rollup_milestones(bucket_start(start, Grain.DAILY), end)
    return counts


def rollup_recent(now: datetime | None = None) -> dict:
    """The beat's rollup: the previous and the current hour, yesterday and today."""
    now = now or datetime.now(UTC)
    counts = {"hourly": 0, "daily": 0, "active_user_days": 0}
    for hour in (bucket_start(now, Grain.HOURLY) - STEP[Grain.HOURLY], bucket_start(now, Grain.HOURLY)):
        counts["hourly"] += rollup_bucket(Grain.HOURLY, hour)
    today = bucket_start(now, Grain.DAILY)
    for day in (today - STEP[Grain.DAILY], today):
        counts["daily"] += rollup_bucket(Grain.DAILY, day)
        counts["active_user_days"] += rollup_active_users(day.date())
    counts["milestones"] = rollup_milestones(today - STEP[Grain.DAILY], now + timedelta(seconds=1))
    return counts
