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
from django.db.models.functions import TruncHour

from .models import ActiveUserDay, Event, EventType, FirstActiveDay, Grain, Milestone, Rollup, TeamMilestone

ANY_TYPE = "*"  # rows counting distinct users over every type (selectors.ANY_TYPE)
ALL_SUBJECT = "*"
SAMPLE = 101  # values kept per rollup row: 0th..100th percentile of the bucket's values
STEP = {Grain.HOURLY: timedelta(hours=1), Grain.DAILY: timedelta(days=1), Grain.ORG_DAILY: timedelta(days=1)}

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


# What each grain keeps apart: hourly rows do not split by subject, org-wide rows not by team.
KEYS = {Grain.HOURLY: ["h", "type", "team_id"], Grain.DAILY: ["type", "team_id", "subject"],
        Grain.ORG_DAILY: ["type", "subject"]}


def _rows(events, grain: str, bucket_of) -> list[Rollup]:
    """Rollup rows for `events` at `grain`; `bucket_of` maps a group's "h" (hour) or None to its bucket."""
    keys = ["h"] if grain == Grain.HOURLY else []
    if grain == Grain.HOURLY:
        events = events.annotate(h=TruncHour("occurred_at"))
    by_team, by_subject = "team_id" in KEYS[grain], "subject" in KEYS[grain]
    groups = (events.values(*KEYS[grain])
              .annotate(n=Count("id"), u=Count("user_id", distinct=True), vs=Sum("value"), vc=Count("value"))
              .order_by())
    values: dict[tuple, list[float]] = defaultdict(list)
    for at, type_, team_id, subject, value in (events.filter(value__isnull=False)
                                               .values_list("occurred_at", "type", "team_id", "subject", "value")
                                               .order_by()):
        values[(bucket_of(at), type_, team_id if by_team else None, subject if by_subject else "")].append(value)
    rows = []
    for g in groups:
        bucket = bucket_of(g.get("h"))
        team_id, subject = g.get("team_id"), g.get("subject", "")
        rows.append(Rollup(grain=grain, bucket=bucket, type=g["type"], team_id=team_id, subject=subject,
                           count=g["n"], users=g["u"], value_sum=g["vs"] or 0.0, value_count=g["vc"],
                           values=sample(values.get((bucket, g["type"], team_id, subject), []))))
    if grain == Grain.ORG_DAILY:
        return rows
    # Distinct users over every event type, per team and over all teams ("*"): hourly active users.
    anyone = events.filter(user_id__isnull=False)
    for g in anyone.values(*keys, "team_id").annotate(n=Count("id"), u=Count("user_id", distinct=True)).order_by():
        rows.append(Rollup(grain=grain, bucket=bucket_of(g.get("h")), type=ANY_TYPE, team_id=g["team_id"],
                           subject="", count=g["n"], users=g["u"]))
    overall = (anyone.values(*keys).annotate(n=Count("id"), u=Count("user_id", distinct=True)).order_by() if keys
               else [anyone.aggregate(n=Count("id"), u=Count("user_id", distinct=True))])
    for g in overall:
        if g["n"]:
            rows.append(Rollup(grain=grain, bucket=bucket_of(g.get("h")), type=ANY_TYPE, team_id=None,
                               subject=ALL_SUBJECT, count=g["n"], users=g["u"]))
    return rows


def _replace(grain: str, lo: datetime, hi: datetime, rows: list[Rollup]) -> None:
    with transaction.atomic():
        _lock(f"insights-rollup:{grain}:{lo.isoformat()}")
        Rollup.objects.filter(grain=grain, bucket__gte=lo, bucket__lt=hi).delete()
        _insert(rows)


_COLUMNS = ["grain", "bucket", "type", "team_id", "subject", "count", "users", "value_sum", "value_count", "values"]


def _insert(rows: list[Rollup]) -> None:
    """A plain executemany: bulk_create's per-object work is most of a big day's rollup."""
    if not rows:
        return
    fields = [Rollup._meta.get_field(c.removesuffix("_id") if c == "team_id" else c) for c in _COLUMNS]
    table = connection.ops.quote_name(Rollup._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    sql = f"INSERT INTO {table} ({columns}) VALUES ({', '.join(['%s'] * len(fields))})"  # noqa: S608
    bucket_field, values_field = fields[1], fields[9]
    params = [(r.grain, bucket_field.get_db_prep_save(r.bucket, connection), r.type, r.team_id, r.subject, r.count,
               r.users, r.value_sum, r.value_count, values_field.get_db_prep_save(r.values, connection))
              for r in rows]
    with connection.cursor() as cur:
        for i in range(0, len(params), 5000):
            cur.executemany(sql, params[i:i + 5000])


def rollup_bucket(grain: str, start: datetime) -> int:
    """Recompute one bucket (its rows replace the old ones). Returns the number of rows."""
    start = bucket_start(start, grain)
    end = start + STEP[grain]
    events = Event.objects.filter(occurred_at__gte=start, occurred_at__lt=end)
    rows = _rows(events, grain, lambda _: start)
    _replace(grain, start, end, rows)
    if grain == Grain.DAILY:
        org = _rows(events, Grain.ORG_DAILY, lambda _: start)
        _replace(Grain.ORG_DAILY, start, end, org)
        return len(rows) + len(org)
    return len(rows)


def rollup_day(day: date) -> dict:
    """Every hourly bucket of a day and its daily bucket, from two passes over the day's events."""
    start = datetime.combine(day, time.min, tzinfo=UTC)
    end = start + timedelta(days=1)
    events = Event.objects.filter(occurred_at__gte=start, occurred_at__lt=end)

    def hour_of(at):
        return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)

    hourly = _rows(events, Grain.HOURLY, hour_of)
    _replace(Grain.HOURLY, start, end, hourly)
    daily = _rows(events, Grain.DAILY, lambda _: start)
    _replace(Grain.DAILY, start, end, daily)
    org = _rows(events, Grain.ORG_DAILY, lambda _: start)
    _replace(Grain.ORG_DAILY, start, end, org)
    return {"hourly": len(hourly), "daily": len(daily) + len(org)}


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
        # Each user's first active day ("new" users): created once, moved earlier by a backfill.
        users = [r.user_id for r in rows]
        known = dict(FirstActiveDay.objects.filter(user_id__in=users).values_list("user_id", "day"))
        FirstActiveDay.objects.bulk_create([FirstActiveDay(user_id=u, day=day) for u in users if u not in known],
                                           batch_size=1000, ignore_conflicts=True)
        later = [u for u, first in known.items() if first > day]
        if later:
            FirstActiveDay.objects.filter(user_id__in=later).update(day=day)
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
    """Every day touching [start, end), whole (hourly and daily buckets, active users), and the
    milestones reached in them."""
    counts = {"hourly": 0, "daily": 0, "active_user_days": 0, "milestones": 0}
    day = bucket_start(start, Grain.DAILY)
    while day < end:
        for grain, n in rollup_day(day.date()).items():
            counts[grain] += n
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
