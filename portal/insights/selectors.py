"""Dashboard reads of usage analytics. The usage ones read only the rollups (Rollup, ActiveUserDay,
TeamMilestone), never the raw events; governance_flow and catalog_health read their apps' own tables.

Every function takes a date range (`start`, `end`: dates, both included) and `team`: None for the
whole organisation, a team id, or a list of team ids (the API narrows a non-admin to their teams).
They return plain dicts/dataclasses; who may see what is decided by the caller
(permissions.may_see_analytics for per-user rows; `readable_refs` for the entity refs of the top lists,
which a rollup keeps under the team the event was recorded for, not always the entity's owner).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from django.db.models import CharField, Count, Exists, F, Max, OuterRef, Q, Subquery, Sum, Value

from .models import (
    ActiveUserDay,
    AnalyticsOptOut,
    EventType,
    FirstActiveDay,
    Grain,
    Milestone,
    Rollup,
    TeamMilestone,
)

GROUPINGS = ("hourly", "daily", "weekly", "monthly")
ANY_TYPE = "*"  # rollup rows counting distinct users over every event type (rollup.py)
ALL_SUBJECT = "*"  # ... over every team (subject) rather than one team's


def is_opted_out(user) -> bool:
    return bool(user and user.is_authenticated and AnalyticsOptOut.objects.filter(user=user).exists())


# --- helpers ---------------------------------------------------------------------------------

def _team_ids(team) -> list[int] | None:
    if team is None:
        return None
    if isinstance(team, int):
        return [team]
    if isinstance(team, Iterable) and not isinstance(team, str | bytes):
        return [int(t) for t in team]
    return [int(team.pk)]


def _dt(d: date) -> datetime:
    return datetime.combine(d, time.min, tzinfo=UTC)


def _daily(start: date, end: date, types: Iterable[str], team) -> object:
    """Daily rows: the organisation-wide ones (one per type × subject × day, distinct users across
    teams) when no team is asked for, else the teams' own."""
    teams = _team_ids(team)
    grain = Grain.ORG_DAILY if teams is None else Grain.DAILY
    rows = Rollup.objects.filter(grain=grain, type__in=list(types),
                                 bucket__gte=_dt(start), bucket__lt=_dt(end) + timedelta(days=1))
    if teams is not None:
        rows = rows.filter(team_id__in=teams)
    return rows


def weighted_quantile(samples: Iterable[tuple[list[float], int]], q: float) -> float | None:
    """A quantile over several rollup rows: each row's sorted sample stands for its `value_count`
    values, each sample point weighing value_count / len(sample)."""
    points: list[tuple[float, float]] = []
    for values, count in samples:
        if values and count:
            weight = count / len(values)
            points.extend((v, weight) for v in values)
    if not points:
        return None
    points.sort()
    total = sum(w for _, w in points)
    target = q * total
    running = 0.0
    for value, weight in points:
        running += weight
        if running >= target - 1e-9:
            return value
    return points[-1][0]


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, max(0, math.ceil(q * len(values)) - 1))]


def _iso(value) -> str:
    return value.isoformat().replace("+00:00", "Z") if isinstance(value, datetime) else str(value)


# --- active users ----------------------------------------------------------------------------

@dataclass
class ActiveUsers:
    grouping: str
    data: list[dict]  # {date, total_users, new_users, returning_users}
    dau: float  # mean daily active users over the range
    wau: int  # distinct users in the range's last 7 days
    mau: int  # ... last 30 days
    total: int  # distinct users over the range
    previous_total: int  # the same over the period just before
    trend_pct: float | None  # total vs previous_total

    def as_dict(self) -> dict:
        return asdict(self)


def _days(start: date, end: date, team) -> object:
    rows = ActiveUserDay.objects.filter(day__gte=start, day__lte=end)
    teams = _team_ids(team)
    if teams is not None:
        from portal.accounts.models import Membership

        rows = rows.filter(user_id__in=Membership.objects.filter(team_id__in=teams).values("user_id"))
    return rows


def _users(team):
    from django.contrib.auth import get_user_model

    from portal.accounts.models import Membership

    users = get_user_model().objects.all()
    teams = _team_ids(team)
    if teams is not None:
        users = users.filter(pk__in=Membership.objects.filter(team_id__in=teams).values("user_id"))
    return users


def _periods(start: date, end: date, grouping: str) -> list[tuple[date, date, date]]:
    """The weeks (Monday to Sunday) or months touching [start, end]: (first day, and the first and last
    day of it within the range)."""
    out, cursor = [], start
    while cursor <= end:
        if grouping == "weekly":
            first = cursor - timedelta(days=cursor.weekday())
            last = first + timedelta(days=6)
        else:
            first = cursor.replace(day=1)
            last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
        out.append((first, cursor, min(last, end)))
        cursor = last + timedelta(days=1)
    return out


def _per_period(start: date, end: date, grouping: str, team) -> dict[str, int]:
    """Distinct users per week or month ({first day: n}, periods with users only): those active on any
    of the period's days within the range. One query whatever the number of periods (at most 106: the
    API's two years of weeks; SQLite takes 500 parts): a UNION ALL of one count per period, each over
    its own range of the (day, user) index. Measured on SQLite at 10M events a month, CPU for 30 days /
    a year of weeks: a query per period 37 / 454 ms (and 5 / 53 queries), one GROUP BY over each row's
    period 70 / 315 ms (SQLite sorts every active-day row of the range by its period), this 15 / 98 ms."""
    label = CharField()
    parts = [_days(lo, hi, team).order_by().values(period=Value(first.isoformat(), output_field=label))
             .annotate(n=Count("user_id", distinct=True)) for first, lo, hi in _periods(start, end, grouping)]
    rows = parts[0].union(*parts[1:], all=True).values_list("period", "n") if len(parts) > 1 else (
        parts[0].values_list("period", "n"))
    return {period: n for period, n in sorted(rows) if n}


def user_activity(start: date, end: date, team=None) -> dict[int, tuple[int, int, int, int]]:
    """One row per user active in the range or in the period of the same length before it (of the
    teams', when asked): user id → (active in the range, in the period before, in the range's last 7
    days, in its last 30 days), each 0 or 1. A page shares it between `active_users` (totals, WAU, MAU,
    trend) and `active_users_per_team`. Each user's first and last active day in the window are two
    probes of the (user, day) index, from which the four flags follow; grouping every active-day row
    of the window by user sorted them all (65 ms against ~20 ms at 2M events)."""
    span = (end - start).days + 1
    before = start - timedelta(days=span)
    week, month = max(start, end - timedelta(days=6)), max(start, end - timedelta(days=29))
    days = ActiveUserDay.objects.filter(user_id=OuterRef("pk"), day__gte=before, day__lte=end)
    rows = (_users(team).annotate(first=Subquery(days.order_by("day").values("day")[:1]),
                                  last=Subquery(days.order_by("-day").values("day")[:1]))
            .filter(last__isnull=False).order_by().values_list("pk", "first", "last"))
    return {user: (int(last >= start), int(first < start), int(last >= week), int(last >= month))
            for user, first, last in rows}


def active_users(start: date, end: date, grouping: str = "daily", team=None,
                 activity: dict[int, tuple[int, int, int, int]] | None = None) -> ActiveUsers:
    """`activity`: `user_activity(start, end, team)` when the caller already has it (a page shares it)."""
    if grouping not in GROUPINGS:
        raise ValueError(f"grouping: one of {', '.join(GROUPINGS)}")
    if grouping == "hourly":
        data = _hourly_active(start, end, team)
    else:
        if grouping == "daily":  # one ActiveUserDay row per user and day: counting rows is distinct
            per = dict(_days(start, end, team).values("day").annotate(n=Count("id")).order_by()
                       .values_list("day", "n"))
            counts = {d.isoformat(): n for d, n in sorted(per.items())}
        else:  # a period's users are those active on any of its days within the range
            counts = _per_period(start, end, grouping, team)
        # Users whose first active day ever falls in the range (FirstActiveDay: one row per user).
        new: dict[str, int] = defaultdict(int)
        firsts = FirstActiveDay.objects.filter(day__gte=start, day__lte=end)
        if team is not None:
            firsts = firsts.filter(user__in=_users(team))
        for first in firsts.values_list("day", flat=True):
            new[_period_of(first, grouping)] += 1
        data = [{"date": key, "total_users": n, "new_users": new.get(key, 0),
                 "returning_users": n - new.get(key, 0)} for key, n in counts.items()]
    span = (end - start).days + 1
    if activity is None:
        activity = user_activity(start, end, team)
    total, previous, wau, mau = (sum(flags[i] for flags in activity.values()) for i in range(4))
    # One row per user and day: the daily series' counts sum to the user-days.
    user_days = sum(counts.values()) if grouping == "daily" else _days(start, end, team).count()
    return ActiveUsers(
        grouping=grouping, data=data, dau=round(user_days / span, 2), wau=wau, mau=mau,
        total=total, previous_total=previous,
        trend_pct=round(100.0 * (total - previous) / previous, 1) if previous else None,
    )


def _period_of(day: date, grouping: str) -> str:
    if grouping == "weekly":
        return (day - timedelta(days=day.weekday())).isoformat()  # Monday, as TruncWeek
    if grouping == "monthly":
        return day.replace(day=1).isoformat()
    return day.isoformat()


def _period_key(value) -> str:
    if isinstance(value, datetime):
        value = value.date()
    return value.isoformat()


def _hourly_active(start: date, end: date, team) -> list[dict]:
    """Distinct users per hour, counted as the daily series counts them: people, each once, of the
    teams in scope by their memberships. For teams, from their members' ActiveUserDay rows, whose
    `hours` say which hours of the day each was active in (one query: per day, how many rows have each
    hour's bit set). Per-team hourly rollup rows could not say it (and are no longer written): a team's
    row counted the users of the events recorded for the team (someone of another team viewing its
    entity included), and two teams' rows added up counted a member of both twice. For the organisation, the rollup's all-teams
    rows are exactly that count (every user, once) and cost 24 rows a day: the bits of every active day
    cost 115 ms of CPU for 30 days at 10M events a month."""
    teams = _team_ids(team)
    if teams is None:
        rows = Rollup.objects.filter(grain=Grain.HOURLY, type=ANY_TYPE, subject=ALL_SUBJECT, team=None,
                                     bucket__gte=_dt(start), bucket__lt=_dt(end) + timedelta(days=1))
        return [{"date": bucket.astimezone(UTC).strftime("%Y-%m-%d %H:00:00"), "total_users": n, "new_users": None,
                 "returning_users": None} for bucket, n in rows.order_by("bucket").values_list("bucket", "users") if n]
    bits = {f"h{h}": Sum(F("hours").bitrightshift(h).bitand(1)) for h in range(24)}
    out = []
    for row in _days(start, end, teams).filter(hours__gt=0).values("day").annotate(**bits).order_by("day"):
        day = row["day"].isoformat()
        out += [{"date": f"{day} {h:02d}:00:00", "total_users": row[f"h{h}"], "new_users": None,
                 "returning_users": None} for h in range(24) if row[f"h{h}"]]
    return out


def active_users_series(start: date, end: date, grouping: str = "daily", team=None) -> list[dict]:
    """Distinct active users per day/week/month only (`active_users` without its summary): one query,
    for the previous period's line on the Insights pages."""
    if grouping == "daily":  # one row per user and day: no date function per row (Python, on SQLite)
        per = _days(start, end, team).values("day").annotate(n=Count("id")).order_by("day").values("day", "n")
        return [{"date": _period_key(r["day"]), "total_users": r["n"]} for r in per]
    return [{"date": key, "total_users": n} for key, n in _per_period(start, end, grouping, team).items()]


def active_users_per_team(start: date, end: date, team=None,
                          activity: dict[int, tuple[int, int, int, int]] | None = None) -> list[dict]:
    """Distinct active users per team over the range and over the period of the same length before it
    (a user counts for each of their teams), with the trend in per cent. Two queries: which users were
    active in each period (`user_activity`, one row per user; a page passes the one it already read), and
    the memberships of the teams in scope; the per-team counts are summed here. Joining memberships in
    SQL counted distinct users per team over every (day × membership) row: 224 ms at 10M events."""
    from portal.accounts.models import Membership

    flags = activity if activity is not None else user_activity(start, end, team)
    teams = _team_ids(team)
    # Every membership of the teams in scope (one row per member, whatever the range): cheaper than
    # asking for the active users' ones through a subquery over every active-day row of the window.
    memberships = Membership.objects.all() if teams is None else Membership.objects.filter(team_id__in=teams)
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for user, name in memberships.values_list("user_id", "team__name"):
        if user in flags:
            now, was = flags[user][:2]
            counts[name][0] += now
            counts[name][1] += was
    rows = sorted(counts.items(), key=lambda item: (-item[1][0], item[0]))
    return [{"team": name, "users": now, "previous": was,
             "trend_pct": round(100.0 * (now - was) / was, 1) if was else None}
            for name, (now, was) in rows if now or was]


def active_users_per_user(start: date, end: date, team=None, limit: int = 100) -> list[dict]:
    """Per-user rows (platform admins only: the caller checks permissions.may_see_analytics)."""
    rows = (_days(start, end, team).values("user_id", "user__username")
            .annotate(active_days=Count("day"), events=Sum("events")).order_by("-active_days", "-events")[:limit])
    return [{"user": r["user__username"], "active_days": r["active_days"], "events": r["events"]} for r in rows]


# --- tops ------------------------------------------------------------------------------------

def top_templates(start: date, end: date, team=None, limit: int = 10) -> list[dict]:
    """Runs, outcomes and the last day used per template summed in the database, then the median
    duration of the shown templates only: decoding every succeeded row's value sample (and converting
    every row's date) for templates that are not shown cost most of this list. A cancelled run is its
    own outcome: neither a success nor a failure, so it is left out of the success rate."""
    types = [EventType.TEMPLATE_RUN_STARTED, EventType.TEMPLATE_RUN_SUCCEEDED, EventType.TEMPLATE_RUN_FAILED,
             EventType.TEMPLATE_RUN_CANCELLED]
    stats: dict[str, dict] = defaultdict(
        lambda: {"runs": 0, "succeeded": 0, "failed": 0, "cancelled": 0, "last_used": None})
    for subject, type_, count, last in (_daily(start, end, types, team).values("subject", "type")
                                        .annotate(n=Sum("count"), last=Max("bucket")).order_by()
                                        .values_list("subject", "type", "n", "last")):
        s = stats[subject]
        if type_ == EventType.TEMPLATE_RUN_STARTED:
            s["runs"] += count
            s["last_used"] = last
        elif type_ == EventType.TEMPLATE_RUN_SUCCEEDED:
            s["succeeded"] += count
        elif type_ == EventType.TEMPLATE_RUN_CANCELLED:
            s["cancelled"] += count
        else:
            s["failed"] += count
    shown = sorted(stats, key=lambda ref: (-stats[ref]["runs"], ref))[:limit]
    samples: dict[str, list] = defaultdict(list)
    for subject, values, value_count in (_daily(start, end, [EventType.TEMPLATE_RUN_SUCCEEDED], team)
                                         .filter(subject__in=shown).values_list("subject", "values", "value_count")):
        samples[subject].append((values, value_count))
    out = []
    for ref in shown:
        s = stats[ref]
        finished = s["succeeded"] + s["failed"]
        out.append({
            "entityref": ref, "count": s["runs"], "succeeded": s["succeeded"], "failed": s["failed"],
            "cancelled": s["cancelled"],
            "success_rate": round(s["succeeded"] / finished, 4) if finished else None,
            "median_duration_s": weighted_quantile(samples[ref], 0.5),
            "last_used": _iso(s["last_used"]) if s["last_used"] else None,
        })
    return out


def whole_weeks(start: date, end: date) -> tuple[date, date] | None:
    """The Monday-to-Sunday weeks lying wholly inside [start, end], as [first Monday, day after the last
    Sunday); None when there is none."""
    first = start + timedelta(days=(7 - start.weekday()) % 7)
    after = end + timedelta(days=1) - timedelta(days=(end.weekday() + 1) % 7)
    return (first, after) if first < after else None


def _org_rows(start: date, end: date, types: list[str]):
    """Org-wide rows covering [start, end] exactly: weekly rows for its whole weeks, daily rows only at
    the ragged edges. A 30-day top list then reads ~6–15 buckets of rows instead of 30."""
    weeks = whole_weeks(start, end)
    lo, hi = _dt(start), _dt(end) + timedelta(days=1)
    if weeks is None:
        return Rollup.objects.filter(grain=Grain.ORG_DAILY, type__in=types, bucket__gte=lo, bucket__lt=hi)
    w_lo, w_hi = _dt(weeks[0]), _dt(weeks[1])
    return Rollup.objects.filter(
        Q(grain=Grain.ORG_WEEKLY, bucket__gte=w_lo, bucket__lt=w_hi)
        | Q(grain=Grain.ORG_DAILY, bucket__gte=lo, bucket__lt=w_lo)
        | Q(grain=Grain.ORG_DAILY, bucket__gte=w_hi, bucket__lt=hi), type__in=types)


def _top_subjects(type_: str, start: date, end: date, team, limit: int) -> list[dict]:
    if _team_ids(team) is not None:  # a team's own rows are few: daily, with the last day directly
        rows = (_daily(start, end, [type_], team).values("subject")
                .annotate(n=Sum("count"), user_days=Sum("users"), last=Max("bucket"))
                .order_by("-n", "subject")[:limit])
        return [{"subject": r["subject"], "count": r["n"], "user_days": r["user_days"],
                 "last_used": _iso(r["last"])} for r in rows]
    rows = list(_org_rows(start, end, [type_]).values("subject").annotate(n=Sum("count"), user_days=Sum("users"))
                .order_by("-n", "subject")[:limit])
    # A weekly row does not know its last day: ask the daily rows, for the subjects shown only.
    last = dict(_daily(start, end, [type_], None).filter(subject__in=[r["subject"] for r in rows])
                .values("subject").annotate(last=Max("bucket")).order_by().values_list("subject", "last"))
    return [{"subject": r["subject"], "count": r["n"], "user_days": r["user_days"],
             "last_used": _iso(last[r["subject"]])} for r in rows]


def top_entities(start: date, end: date, team=None, limit: int = 10) -> list[dict]:
    return [{"entityref": r.pop("subject"), **r} for r in _top_subjects(EventType.ENTITY_VIEW, start, end, team, limit)]


@dataclass
class Readable:
    """Which of a top list's refs a reader may be shown: `entities` holds the ones they may see (title
    and address fields, for labels and links); a platform admin (`everything`) is also shown refs whose
    entity is gone since. Anyone else is shown only refs of entities they may see: another team's
    private entity answers like a missing one, so a ref no longer in the catalog is not shown either
    (it may have been private)."""

    entities: dict = field(default_factory=dict)
    everything: bool = False

    def __contains__(self, ref: str) -> bool:
        return self.everything or ref in self.entities

    def only(self, rows: list[dict]) -> tuple[list[dict], int]:
        """The rows whose `entityref` the reader may see, and how many were left out."""
        shown = [r for r in rows if r["entityref"] in self]
        return shown, len(rows) - len(shown)


def readable_refs(refs: Iterable[str], user, *, titles: bool = True) -> Readable:
    """What `user` may be shown of `refs` (rollups keep refs: an entity's title can change, its ref
    not). One query through the permission rule (`permissions.filter_visible`), none when there is no
    ref or when a platform admin's page needs no titles. Nobody (`user` None) sees anything."""
    from catalog.models import Entity
    from portal.accounts import permissions

    refs = set(refs)
    everything = permissions.is_platform_admin(user)
    if not refs or user is None or (everything and not titles):
        return Readable(everything=everything)
    rows = permissions.filter_visible(Entity.objects.filter(ref__in=refs), user).only(
        "ref", "kind_key", "namespace", "name", "title")
    return Readable({e.ref: e for e in rows}, everything)


def top_docs(start: date, end: date, team=None, limit: int = 10) -> list[dict]:
    out = []
    for r in _top_subjects(EventType.DOCS_VIEW, start, end, team, limit):
        path = r.pop("subject")
        # subject is "<kind>:<namespace>/<name>/<page path>": the entity ref has one "/".
        parts = path.split("/", 2)
        out.append({"path": path, "entityref": "/".join(parts[:2]), "page": parts[2] if len(parts) > 2 else "",
                    **r})
    return out


def top_searches(start: date, end: date, team=None, limit: int = 10) -> list[dict]:
    clicks = {r["subject"]: r for r in _daily(start, end, [EventType.SEARCH_CLICK], team).values("subject")
              .annotate(n=Sum("count"), rank_sum=Sum("value_sum"), rank_n=Sum("value_count"))}
    rows = (_daily(start, end, [EventType.SEARCH], team).values("subject")
            .annotate(n=Sum("count"), results=Sum("value_sum"), results_n=Sum("value_count"),
                      zero=Sum("count", filter=Q(value_sum=0)), last=Max("bucket"))
            .order_by("-n", "subject")[:limit])
    out = []
    for r in rows:
        c = clicks.get(r["subject"]) or {}
        out.append({
            "query": r["subject"], "count": r["n"], "zero_result_count": r["zero"] or 0,
            "mean_results": round(r["results"] / r["results_n"], 2) if r["results_n"] else None,
            "clicks": c.get("n", 0),
            "mean_clicked_rank": round(c["rank_sum"] / c["rank_n"], 2) if c.get("rank_n") else None,
            "last_used": _iso(r["last"]),
        })
    return out


def zero_result_searches(start: date, end: date, team=None, limit: int = 10) -> list[dict]:
    rows = (_daily(start, end, [EventType.SEARCH], team).filter(value_sum=0, value_count__gt=0).values("subject")
            .annotate(n=Sum("count"), last=Max("bucket")).order_by("-n", "subject")[:limit])
    return [{"query": r["subject"], "count": r["n"], "last_used": _iso(r["last"])} for r in rows]


def search_volume(start: date, end: date, grouping: str = "daily", team=None) -> list[dict]:
    """Searches per period (the Adoption Insights `top_searches` series). Sums per bucket inside the
    database — the organisation's from its org-wide daily rows (one per query and day), a team's from its
    own — and folds the days into weeks or months here: a date function per row (Python, on SQLite) over
    every team's rows cost 0.5 s at 1M events. No hourly grouping: the pages group by day, week or
    month, and hourly rollup rows keep only the organisation's distinct users (rollup.GRAIN_ROWS)."""
    if grouping not in ("daily", "weekly", "monthly"):
        raise ValueError("grouping: one of daily, weekly, monthly")
    teams = _team_ids(team)
    lo, hi = _dt(start), _dt(end) + timedelta(days=1)
    rows = Rollup.objects.filter(grain=Grain.ORG_DAILY if teams is None else Grain.DAILY,
                                 type=EventType.SEARCH, bucket__gte=lo, bucket__lt=hi)
    if teams is not None:
        rows = rows.filter(team_id__in=teams)
    per: dict[str, int] = defaultdict(int)
    for bucket, n in rows.values("bucket").annotate(n=Sum("count")).order_by().values_list("bucket", "n"):
        per[_period_of(bucket.astimezone(UTC).date(), grouping)] += n
    return [{"date": key, "count": per[key]} for key in sorted(per)]


# --- funnel ----------------------------------------------------------------------------------

@dataclass
class Funnel:
    steps: list[dict]  # {milestone, label, teams, share, in_order}
    teams: int  # teams in the cohort
    time_to_first_model: dict = field(default_factory=dict)  # {teams, median_days, p95_days}
    per_team: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


FUNNEL_ORDER = [Milestone.FIRST_SIGN_IN, Milestone.FIRST_SEARCH, Milestone.FIRST_REGISTRATION,
                Milestone.FIRST_TEMPLATE_RUN, Milestone.FIRST_APPROVAL_EXECUTED, Milestone.FIRST_MODEL]


def funnel(team=None, start: date | None = None, end: date | None = None) -> Funnel:
    """The onboarding funnel over teams that existed by `end`: how many reached each step by then
    (`teams`), and how many reached it and every earlier step (`in_order`, never more than the step
    before: a team that registers a model without ever running a template counts in `teams` only).
    Time to first registered model: the team's start (its creation or its first step, whichever is earlier)
    → FIRST_MODEL, for teams that started in the range."""
    from portal.accounts.models import Team

    end = end or datetime.now(UTC).date()
    start = start or end - timedelta(days=29)
    limit = _dt(end) + timedelta(days=1)
    teams = Team.objects.filter(created_at__lt=limit)
    ids = _team_ids(team)
    if ids is not None:
        teams = teams.filter(pk__in=ids)
    cohort = dict(teams.values_list("pk", "created_at"))
    names = dict(teams.values_list("pk", "name"))
    reached: dict[int, dict[str, datetime]] = defaultdict(dict)
    for team_id, milestone, at in TeamMilestone.objects.filter(team_id__in=list(cohort), reached_at__lt=limit
                                                               ).values_list("team_id", "milestone", "reached_at"):
        reached[team_id][milestone] = at
    steps = []
    through = set(cohort)  # teams that reached every step so far
    for milestone in FUNNEL_ORDER:
        got = {t for t in cohort if milestone in reached[t]}
        through &= got
        steps.append({"milestone": milestone, "label": Milestone(milestone).label, "teams": len(got),
                      "share": round(len(got) / len(cohort), 4) if cohort else None, "in_order": len(through)})
    # A team starts when it was created or first reached a step, whichever is earlier: a team made by
    # org sync after its people had been using the portal (or the demo, whose history is backdated)
    # would otherwise have "joined" after its own first sign-in and wait a negative time for its model.
    started = {t: min([created, *reached[t].values()]) for t, created in cohort.items()}
    joined = [t for t, at in started.items() if _dt(start) <= at < limit]
    waits = [(reached[t][Milestone.FIRST_MODEL] - started[t]).total_seconds() / 86400
             for t in joined if Milestone.FIRST_MODEL in reached[t]]
    ttm = {"teams_joined": len(joined), "teams": len(waits),
           "median_days": round(_quantile(waits, 0.5), 3) if waits else None,
           "p95_days": round(_quantile(waits, 0.95), 3) if waits else None}
    per_team = [{"team": names[t], "created_at": _iso(cohort[t]), "started_at": _iso(started[t]),
                 **{m: _iso(reached[t][m]) if m in reached[t] else None for m in FUNNEL_ORDER}}
                for t in sorted(cohort, key=lambda t: names[t])] if ids is not None else []
    return Funnel(steps=steps, teams=len(cohort), time_to_first_model=ttm, per_team=per_team)


# --- governance flow -------------------------------------------------------------------------

def governance_flow(start: date, end: date, team=None) -> dict:
    """Approval lead times per workflow (submitted → closed) and per stage (started → completed), with
    p50/p95 in hours; SLA breaches (escalated or expired requests); blocked-by-gate counts per gate."""
    from portal.governance.models import ApprovalRequest, PolicyResult, Stage, State

    lo, hi = _dt(start), _dt(end) + timedelta(days=1)
    requests = ApprovalRequest.objects.all()
    ids = _team_ids(team)
    if ids is not None:
        requests = requests.filter(owner_team_id__in=ids)
    per_workflow: dict[str, list[float]] = defaultdict(list)
    for name, submitted, closed in requests.filter(closed_at__gte=lo, closed_at__lt=hi, submitted_at__isnull=False
                                                   ).values_list("workflow_name", "submitted_at", "closed_at"):
        per_workflow[name].append((closed - submitted).total_seconds() / 3600)
    per_stage: dict[tuple[str, str], list[float]] = defaultdict(list)
    for name, stage, started, done in (Stage.objects.filter(request__in=requests, completed_at__gte=lo,
                                                            completed_at__lt=hi, started_at__isnull=False)
                                       .values_list("request__workflow_name", "name", "started_at", "completed_at")):
        per_stage[(name, stage)].append((done - started).total_seconds() / 3600)
    in_range = requests.filter(submitted_at__gte=lo, submitted_at__lt=hi)
    breaches = {r["workflow_name"]: r for r in in_range.values("workflow_name").annotate(
        escalated=Count("id", filter=Q(escalated=True)), expired=Count("id", filter=Q(state=State.EXPIRED)),
        submitted=Count("id"))}
    blocked = (PolicyResult.objects.filter(request__in=requests, evaluated_at__gte=lo, evaluated_at__lt=hi,
                                           passed=False, enforcement="block")
               .values("gate").annotate(n=Count("id")).order_by("-n", "gate"))

    def lead(values: list[float]) -> dict:
        return {"count": len(values), "p50_hours": _round(_quantile(values, 0.5)),
                "p95_hours": _round(_quantile(values, 0.95))}

    return {
        "workflows": [{"workflow": w, **lead(v)} for w, v in sorted(per_workflow.items())],
        "stages": [{"workflow": w, "stage": s, **lead(v)} for (w, s), v in sorted(per_stage.items())],
        "sla": [{"workflow": w, "submitted": r["submitted"], "escalated": r["escalated"], "expired": r["expired"]}
                for w, r in sorted(breaches.items())],
        "blocked_by_gate": [{"gate": r["gate"], "count": r["n"]} for r in blocked],
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


# --- catalog health --------------------------------------------------------------------------

def catalog_health(team=None, *, recent_days: int = 30) -> list[dict]:
    """Per owning team (None: no owner): entities, and how many lack docs; for models, how many lack a
    model card or an MLflow version created in the last `recent_days`."""
    from catalog.models import Entity, ModelVersion
    from portal.techdocs.models import DocSite

    entities = Entity.objects.all()
    ids = _team_ids(team)
    if ids is not None:
        entities = entities.filter(owner_team_id__in=ids)
    recent = datetime.now(UTC) - timedelta(days=recent_days)
    has_docs = Exists(DocSite.objects.filter(entity=OuterRef("pk"), page_count__gt=0))
    has_run = Exists(ModelVersion.objects.filter(entity=OuterRef("pk"), created_at_mlflow__gte=recent))
    rows = (entities.annotate(has_docs=has_docs).values("owner_team_id", "owner_team__name")
            .annotate(entities=Count("id"), without_docs=Count("id", filter=Q(has_docs=False)),
                      models=Count("id", filter=Q(kind_key="model")))
            .order_by("owner_team__name"))
    models = (entities.filter(kind_key="model").annotate(has_run=has_run).values("owner_team_id")
              .annotate(without_card=Count("id", filter=~Q(data__spec__has_key="modelCard")),
                        without_recent_run=Count("id", filter=Q(has_run=False))).order_by())
    per_model = {r["owner_team_id"]: r for r in models}
    out = []
    for r in rows:
        m = per_model.get(r["owner_team_id"], {})
        out.append({"team": r["owner_team__name"], "entities": r["entities"],
                    "without_owner": r["entities"] if r["owner_team_id"] is None else 0,
                    "without_docs": r["without_docs"], "models": r["models"],
                    "models_without_card": m.get("without_card", 0),
                    "models_without_recent_run": m.get("without_recent_run", 0)})
    return out
