"""From raw events to the tables dashboards read: Rollup (hourly/daily), ActiveUserDay, TeamMilestone.

Which rows each grain holds (`GRAIN_ROWS`): hourly buckets keep only the organisation's distinct users
over every type (type "*", team NULL, subject "*"), the one hourly series read from rollups (the
organisation's hourly active users). Per type × team hourly rows were written until 2026-12-08 and read
by nothing (a team's hourly active users come from ActiveUserDay.hours; the pages and the API ask no
other hourly series): migration 0012 deleted them.

Each bucket is recomputed whole from the raw events of its time range and replaced in one transaction
(delete the bucket's rows, insert the new ones), so a rollup can run again over the same bucket — late
events, a crashed run, two beats overlapping — and the result is the same. Replacing instead of an
upsert also sidesteps the unique key's nullable `team`: PostgreSQL honours `nulls_distinct=False`, but
SQLite treats NULLs as distinct and would let an ON CONFLICT upsert insert a second "no team" row.
Concurrent rollups of one bucket are serialised: a transaction-level advisory lock on PostgreSQL, the
database-wide write lock on SQLite (transactions there begin IMMEDIATE).
"""

from __future__ import annotations

import json
import zlib
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta

from django.db import connection, transaction
from django.db.models import Min, Q

from portal.core.db import update_values

from .models import ActiveUserDay, Event, EventType, FirstActiveDay, Grain, Milestone, Rollup, TeamMilestone

ANY_TYPE = "*"  # rows counting distinct users over every type (selectors.ANY_TYPE)
ALL_SUBJECT = "*"
SAMPLE = 101  # values kept per rollup row: 0th..100th percentile of the bucket's values
STEP = {Grain.HOURLY: timedelta(hours=1), Grain.DAILY: timedelta(days=1), Grain.ORG_DAILY: timedelta(days=1),
        Grain.ORG_WEEKLY: timedelta(days=7)}

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
    if grain == Grain.ORG_WEEKLY:  # weeks start on Monday (as TruncWeek and the weekly API grouping)
        return datetime.combine(at.date() - timedelta(days=at.weekday()), time.min, tzinfo=UTC)
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


# What each grain keeps apart (per type rows): org-wide rows do not split by team; hourly buckets have no
# per type rows (GRAIN_ROWS).
_GROUP = {Grain.DAILY: ("type", "team_id", "subject"), Grain.ORG_DAILY: ("type", "subject")}

# The rows each grain is written with: "per type" (type × key, with value samples), "anyone by team"
# (type "*", subject "", per team), "anyone" (type "*", team NULL, subject "*"). Weekly rows are the
# sums of the week's org_day rows (_fill_week). tests/insights/test_rollup_grains.py states the same.
GRAIN_ROWS = {Grain.HOURLY: ("anyone",), Grain.DAILY: ("per type", "anyone by team", "anyone"),
              Grain.ORG_DAILY: ("per type",)}


def _hour_sql(column: str = "occurred_at") -> str:
    """The start of an event's hour, in the database's own storage of a datetime: SQLite keeps UTC text
    ("2026-11-02 09:41:07[.ffffff]"), PostgreSQL a timestamptz (Django's connections run in UTC)."""
    if connection.vendor == "sqlite":
        return f"substr({column}, 1, 13) || ':00:00'"
    return f"date_trunc('hour', {column})"


def _hour_of_day_sql(column: str) -> str:
    """The hour of the day (0–23, UTC) of a column holding an hour's start as _hour_sql gives it."""
    if connection.vendor == "sqlite":
        return f"CAST(substr({column}, 12, 2) AS INTEGER)"
    return f"CAST(EXTRACT(HOUR FROM {column} AT TIME ZONE 'UTC') AS INTEGER)"


def _sql_parts():
    """Table names and the empty JSON sample: the only things formatted into the rollup's SQL (fixed
    fragments, never input); every value is a query parameter, hence the S608 exemptions below."""
    qn = connection.ops.quote_name
    return (qn(Event._meta.db_table), qn(Rollup._meta.db_table),
            "'[]'" if connection.vendor == "sqlite" else "'[]'::jsonb")


_INSERT = ('INSERT INTO {rollup} (grain, bucket, type, team_id, subject, count, users, value_sum, value_count, '
           '"values") ')


_AGG = "insights_rollup_agg"  # a temporary table: the range's events grouped by every key a grain uses


def _events_where(cur, lo: datetime, hi: datetime) -> tuple[str, list]:
    """The WHERE clause that reads the events of [lo, hi), and its parameters. Events are appended
    roughly in time order (the capture buffer writes batches as they come), so on SQLite a day's rows
    lie in a dense range of row ids: reading that range in row order costs a seventh of one table lookup
    per event in `occurred_at` order (0.12 s against 0.9 s of CPU for 480k events). When the range is
    not dense (events backfilled long after their time), the `occurred_at` index is read as before.
    PostgreSQL's bitmap scans already read the table in physical order: the index clause there."""
    ops = connection.ops
    params = [ops.adapt_datetimefield_value(lo), ops.adapt_datetimefield_value(hi)]
    event, _, _ = _sql_parts()
    if connection.vendor == "sqlite":
        cur.execute(f"SELECT MIN(id), MAX(id), COUNT(*) FROM {event} "  # noqa: S608
                    "WHERE occurred_at >= %s AND occurred_at < %s", params)
        first, last, count = cur.fetchone()
        if count and last - first + 1 <= 2 * count:  # "+": keep the planner on the row id range
            return "id >= %s AND id <= %s AND +occurred_at >= %s AND +occurred_at < %s", [first, last, *params]
    return "occurred_at >= %s AND occurred_at < %s", params


def _collect(lo: datetime, hi: datetime) -> tuple[str, list]:
    """Read the events of [lo, hi) once, into a temporary table grouped by (hour, type, team, subject,
    user) with their count and value sums: every grain's rows, the distinct users and the day's active
    users are computed from it, instead of one read of the events (and a table lookup per event) per
    grain. A day at 10M events a month is ~330k events and ~150k such groups. Returns the events' WHERE
    clause (_events_where), for the value samples."""
    event, _, _ = _sql_parts()
    hour = _hour_sql()
    with connection.cursor() as cur:
        where, params = _events_where(cur, lo, hi)
        cur.execute(f"DROP TABLE IF EXISTS {_AGG}")
        cur.execute(f"CREATE TEMPORARY TABLE {_AGG} AS SELECT {hour} AS hour, type, team_id, subject, user_id, "  # noqa: S608
                    "COUNT(*) AS n, SUM(value) AS value_sum, COUNT(value) AS value_count "
                    f"FROM {event} WHERE {where} "
                    f"GROUP BY {hour}, type, team_id, subject, user_id", params)
    return where, params


def _fill(grain: str, lo: datetime) -> None:
    """Insert the per type × key rows of `grain` from the collected events (_collect): one INSERT …
    SELECT … GROUP BY, computed inside the database (moving events through Python cost most of the
    rollup). The value samples are added after (_add_samples). Hourly buckets have none (GRAIN_ROWS)."""
    if "per type" not in GRAIN_ROWS[grain]:
        return
    _, rollup_table, empty = _sql_parts()
    team = "NULL" if grain == Grain.ORG_DAILY else "team_id"
    group = ", ".join(_GROUP[grain])
    insert = _INSERT.format(rollup=rollup_table)
    with connection.cursor() as cur:  # per type × key
        cur.execute(
            f"{insert}SELECT %s, %s, type, {team}, subject, SUM(n), COUNT(DISTINCT user_id), "  # noqa: S608
            f"COALESCE(SUM(value_sum), 0), SUM(value_count), {empty} FROM {_AGG} GROUP BY {group}",
            [grain, connection.ops.adapt_datetimefield_value(lo)])


def _fill_anyone(grains: list[str], lo: datetime) -> None:
    """Distinct users over every event type: per team (daily only) and over all teams ("*", hourly and
    daily), from a temporary table of (hour, team, user) — a few tens of thousands of rows for a day —
    made from the collected events."""
    grains = [g for g in grains if g in (Grain.HOURLY, Grain.DAILY)]
    if not grains:
        return
    _, rollup_table, empty = _sql_parts()
    users = "insights_rollup_users"
    insert = _INSERT.format(rollup=rollup_table)
    day = connection.ops.adapt_datetimefield_value(lo)
    with connection.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {users}")
        cur.execute(f"CREATE TEMPORARY TABLE {users} AS SELECT hour, team_id, user_id, SUM(n) AS n "  # noqa: S608
                    f"FROM {_AGG} WHERE user_id IS NOT NULL GROUP BY hour, team_id, user_id")
        for grain in grains:
            hourly = grain == Grain.HOURLY
            bucket, params = ("hour", [grain]) if hourly else ("%s", [grain, day])
            if "anyone by team" in GRAIN_ROWS[grain]:
                cur.execute(f"{insert}SELECT %s, {bucket}, %s, team_id, '', SUM(n), COUNT(DISTINCT user_id), 0, 0, "  # noqa: S608
                            f"{empty} FROM {users} GROUP BY team_id", [*params, ANY_TYPE])
            cur.execute(f"{insert}SELECT %s, {bucket}, %s, NULL, %s, SUM(n), COUNT(DISTINCT user_id), 0, 0, "  # noqa: S608
                        f"{empty} FROM {users} " + ("GROUP BY hour" if hourly else "HAVING COUNT(*) > 0"),
                        [*params, ANY_TYPE, ALL_SUBJECT])
        cur.execute(f"DROP TABLE {users}")


def _add_samples(grains: list[str], lo: datetime, hi: datetime, where: str, params: list) -> None:
    """Each row's sorted sample of values (medians, p95s), from one read of the events that carry a
    value (searches, clicks, finished runs, decisions: a small share of all events), the range read as
    _collect read it. Each sample is written by the row's id: the rows were inserted just before, in
    this transaction, and one read of their keys beats a lookup by (grain, bucket, type, team, subject)
    per row, which scanned every team's row of a popular subject."""
    grains = [g for g in grains if "per type" in GRAIN_ROWS[g]]  # the rows with value samples
    if not grains:
        return
    event, rollup_table, _ = _sql_parts()
    daily_key = connection.ops.adapt_datetimefield_value(lo)
    per_team = Grain.DAILY in grains
    org = Grain.ORG_DAILY in grains
    samples: dict[tuple, list[float]] = defaultdict(list)
    with connection.cursor() as cur:
        cur.execute(f"SELECT DISTINCT type FROM {_AGG} WHERE value_count > 0")  # noqa: S608
        types = [t for (t,) in cur.fetchall()]
        if not types:
            return
        marks = ", ".join(["%s"] * len(types))
        cur.execute(f"SELECT type, team_id, subject, value FROM {event} "  # noqa: S608
                    f"WHERE {where} AND type IN ({marks}) AND value IS NOT NULL", [*params, *types])
        for type_, team_id, subject, value in cur.fetchall():
            if per_team:
                samples[(Grain.DAILY, daily_key, type_, team_id, subject)].append(value)
            if org:
                samples[(Grain.ORG_DAILY, daily_key, type_, None, subject)].append(value)
        grain_marks = ", ".join(["%s"] * len(grains))
        cur.execute(f"SELECT id, grain, type, team_id, subject FROM {rollup_table} "  # noqa: S608
                    f"WHERE grain IN ({grain_marks}) AND bucket >= %s AND bucket < %s AND type IN ({marks})",
                    [*grains, daily_key, connection.ops.adapt_datetimefield_value(hi), *types])
        ids = {}
        for id_, grain, type_, team_id, subject in cur.fetchall():
            ids[(grain, daily_key, type_, team_id, subject)] = id_
    # Many rows a statement on PostgreSQL (executemany would send one UPDATE per row, each planned).
    update_values(Rollup, ["values"], sorted(((json.dumps(sample(values)), ids[key]) for key, values in samples.items()),
                                             key=lambda row: row[1]))


def _active_users(day: date) -> int:
    """The day's active users (ActiveUserDay) from the collected events — the users' counts over every
    type and team, and the hours they were active in (a bit per hour: the sum of the distinct powers
    of two) — and each user's first active day: no second read of the day's events."""
    qn = connection.ops.quote_name
    table = qn(ActiveUserDay._meta.db_table)
    _lock(f"insights-active:{day.isoformat()}")
    ActiveUserDay.objects.filter(day=day).delete()
    with connection.cursor() as cur:
        cur.execute(f"INSERT INTO {table} (day, user_id, events, hours) SELECT %s, user_id, SUM(n), "  # noqa: S608
                    f"SUM(DISTINCT 1 << {_hour_of_day_sql('hour')}) FROM {_AGG} "
                    "WHERE user_id IS NOT NULL GROUP BY user_id", [connection.ops.adapt_datefield_value(day)])
    users = list(ActiveUserDay.objects.filter(day=day).values_list("user_id", flat=True))
    # Each user's first active day ("new" users): created once, moved earlier by a backfill.
    known = dict(FirstActiveDay.objects.filter(user_id__in=users).values_list("user_id", "day"))
    FirstActiveDay.objects.bulk_create([FirstActiveDay(user_id=u, day=day) for u in users if u not in known],
                                       batch_size=1000, ignore_conflicts=True)
    later = [u for u, first in known.items() if first > day]
    if later:
        FirstActiveDay.objects.filter(user_id__in=later).update(day=day)
    return len(users)


def _rollup(grains: list[str], lo: datetime, hi: datetime) -> dict[str, int]:
    """Replace every bucket of `grains` within [lo, hi) by rows recomputed from the events, in one
    transaction. Locks are taken per grain and day, always in the same order (no deadlock between a
    beat's hourly bucket and a backfill's whole day)."""
    counts = {}
    with transaction.atomic():
        for grain in grains:
            _lock(f"insights-rollup:{grain}:{lo.date().isoformat()}")
        where, params = _collect(lo, hi)
        for grain in grains:
            Rollup.objects.filter(grain=grain, bucket__gte=lo, bucket__lt=hi).delete()
            _fill(grain, lo)
        _fill_anyone(grains, lo)
        _add_samples(grains, lo, hi, where, params)
        for grain in grains:
            counts[grain] = Rollup.objects.filter(grain=grain, bucket__gte=lo, bucket__lt=hi).count()
        if Grain.DAILY in grains and hi - lo == STEP[Grain.DAILY]:  # a whole day: its active users too
            counts["active_user_days"] = _active_users(lo.date())
        with connection.cursor() as cur:
            cur.execute(f"DROP TABLE {_AGG}")
        if Grain.ORG_DAILY in grains:
            _fill_week(bucket_start(lo, Grain.ORG_WEEKLY))
    return counts


def _fill_week(monday: datetime) -> None:
    """Replace the org-wide week containing a re-rolled day by the sums of its org_day rows. `users`
    sums to user-days, as the top lists report; no value sample (quantiles read daily rows). The week's
    lock is taken after the days' (same order everywhere), so two days of one week wait in turn and the
    second sees the first's committed rows."""
    _lock(f"insights-rollup:{Grain.ORG_WEEKLY}:{monday.date().isoformat()}")
    _, rollup_table, empty = _sql_parts()
    ops = connection.ops
    Rollup.objects.filter(grain=Grain.ORG_WEEKLY, bucket=monday).delete()
    with connection.cursor() as cur:
        cur.execute(
            f"{_INSERT.format(rollup=rollup_table)}SELECT %s, %s, type, NULL, subject, SUM(count), SUM(users), "  # noqa: S608
            f"SUM(value_sum), SUM(value_count), {empty} FROM {rollup_table} "
            "WHERE grain = %s AND bucket >= %s AND bucket < %s GROUP BY type, subject",
            [Grain.ORG_WEEKLY, ops.adapt_datetimefield_value(monday), Grain.ORG_DAILY,
             ops.adapt_datetimefield_value(monday), ops.adapt_datetimefield_value(monday + timedelta(days=7))])


def rollup_bucket(grain: str, start: datetime) -> int:
    """Recompute one bucket (its rows replace the old ones); a daily bucket brings its org-wide one and
    the day's active users. Returns the number of rollup rows."""
    if grain == Grain.ORG_WEEKLY:
        raise ValueError("grain: weekly rows are derived from daily ones; roll up the days (rollup_day)")
    start = bucket_start(start, grain)
    grains = [Grain.HOURLY] if grain == Grain.HOURLY else [Grain.DAILY, Grain.ORG_DAILY]
    counts = _rollup(grains, start, start + STEP[grain])
    return sum(n for g, n in counts.items() if g in grains)


def rollup_day(day: date) -> dict:
    """Every hourly bucket of a day, its daily and its org-wide bucket, and its active users."""
    start = datetime.combine(day, time.min, tzinfo=UTC)
    counts = _rollup([Grain.HOURLY, Grain.DAILY, Grain.ORG_DAILY], start, start + timedelta(days=1))
    return {"hourly": counts[Grain.HOURLY], "daily": counts[Grain.DAILY] + counts[Grain.ORG_DAILY],
            "active_user_days": counts["active_user_days"]}


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
        for key, n in rollup_day(day.date()).items():
            counts[key] += n
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
        day_counts = _rollup([Grain.DAILY, Grain.ORG_DAILY], day, day + STEP[Grain.DAILY])
        counts["daily"] += day_counts[Grain.DAILY] + day_counts[Grain.ORG_DAILY]
        counts["active_user_days"] += day_counts["active_user_days"]
    counts["milestones"] = rollup_milestones(today - STEP[Grain.DAILY], now + timedelta(seconds=1))
    return counts
