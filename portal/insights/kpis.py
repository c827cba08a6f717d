"""The KPI queries a capability canvas may name: a registry of Python functions, never SQL from YAML.

Each query computes one number for one period (`Period`, half-open [start, end) in UTC) from the
rollups (`Rollup`, `ActiveUserDay`, `TeamMilestone`) or, where the number is a state rather than a
flow, from a domain table. `run()` checks the canvas's parameters against the function's keyword
arguments, then asks for the period and the one before it, so every KPI has a trend. Queries over a
domain table without history (`history=False`) have no previous value.

Conventions read from the rollups (the rollup task writes them; portal/insights/models.py):
* a `search` row's value is the result count; a row whose `values` hold every event's value tells
  zero-result searches exactly; a busier row keeps a quantile sample (0th…100th percentile,
  `rollup.sample`), whose share of zeros estimates the row's to within a percent;
* `template_run_succeeded`/`_failed`/`_cancelled` rows: subject is the template ref, value the duration in
  seconds (none for a run cancelled before it started);
* `approval_executed` rows: value is the lead time in seconds from submission to execution.
"""

from __future__ import annotations

import inspect
import json
import re
import statistics
from collections.abc import Callable
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Count, Exists, OuterRef, Q, Sum, TextField
from django.db.models.functions import Cast

from portal.accounts.models import Membership, Team

from .models import ActiveUserDay, EventType, Grain, Milestone, Rollup, TeamMilestone


class KpiError(Exception):
    """A KPI that cannot be computed as written (unknown query, bad parameter): shown as broken."""


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime

    @classmethod
    def ending(cls, end: datetime, days: int) -> Period:
        return cls(end - timedelta(days=days), end)

    @property
    def length(self) -> timedelta:
        return self.end - self.start

    @property
    def previous(self) -> Period:
        return Period(self.start - self.length, self.start)


@dataclass(frozen=True)
class KpiValue:
    current: float | None
    previous: float | None


@dataclass(frozen=True)
class Query:
    name: str
    fn: Callable[..., float | None]
    description: str
    params: dict[str, inspect.Parameter] = field(default_factory=dict)
    history: bool = True


REGISTRY: dict[str, Query] = {}


def kpi(name: str, *, history: bool = True) -> Callable:
    """Register `fn(period, *, param=default, ...)` as the query `name`; its docstring is its
    description on the canvas page and in docs/insights.md."""

    def register(fn: Callable[..., float | None]) -> Callable[..., float | None]:
        params = {p.name: p for p in list(inspect.signature(fn).parameters.values())[1:]}
        REGISTRY[name] = Query(name, fn, inspect.getdoc(fn) or "", params, history)
        return fn

    return register


def run(name: str, params: dict[str, Any] | None, period: Period) -> KpiValue:
    """The query's value for `period` and for the period before it."""
    query = REGISTRY.get(name)
    if query is None:
        raise KpiError(f"unknown query {name!r} (known: {', '.join(sorted(REGISTRY))})")
    kwargs = _checked(query, params or {})
    current = query.fn(period, **kwargs)
    previous = query.fn(period.previous, **kwargs) if query.history else None
    return KpiValue(current, previous)


def _checked(query: Query, params: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(params) - set(query.params))
    if unknown:
        accepted = ", ".join(query.params) or "none"
        raise KpiError(f"query {query.name!r} has no parameter {', '.join(unknown)} (accepts: {accepted})")
    out = {}
    for name, spec in query.params.items():
        if name not in params:
            if spec.default is inspect.Parameter.empty:
                raise KpiError(f"query {query.name!r} needs the parameter {name!r}")
            continue
        value, wanted = params[name], spec.annotation
        if wanted == "int" and (isinstance(value, bool) or not isinstance(value, int)):
            raise KpiError(f"parameter {name!r} of {query.name!r} must be a whole number, not {value!r}")
        if wanted == "str" and not isinstance(value, str):
            raise KpiError(f"parameter {name!r} of {query.name!r} must be text, not {value!r}")
        out[name] = value
    return out


# -- helpers --------------------------------------------------------------------------------------


def _daily(period: Period, *types: str, team: str = "") -> Any:
    """The day rows of the period: one team's (`daily`, per team × subject), or the organisation's
    (`org_day`, summed over every team by the rollup, so a canvas-wide KPI reads one row per subject
    and day instead of one per team)."""
    if team:
        return Rollup.objects.filter(grain=Grain.DAILY, team=_team(team), type__in=types,
                                     bucket__gte=period.start, bucket__lt=period.end)
    return Rollup.objects.filter(grain=Grain.ORG_DAILY, type__in=types, bucket__gte=period.start, bucket__lt=period.end)


def _team(name: str) -> Team:
    team = Team.objects.filter(name=name).first()
    if team is None:
        raise KpiError(f"unknown team {name!r}")
    return team


def _count(rows: Any) -> int:
    return rows.aggregate(n=Sum("count"))["n"] or 0


def _active_users(users: Any, first: date, after: date) -> int:
    """Distinct users with an active day in [first, after): one probe of the (user, day) index per user,
    cheaper than a DISTINCT over every active-day row of the window (which sorts them all)."""
    return users.filter(Exists(ActiveUserDay.objects.filter(user_id=OuterRef("pk"), day__gte=first,
                                                            day__lt=after))).count()


# A JSON number equal to zero (0, 0.0, -0.0, 0e5 …), then the separator after it.
_ZERO = re.compile(r"\s*-?0(?:\.0*)?(?:[eE][+-]?\d+)?\s*[,\]]")


def _zeros_and_length(text: str) -> tuple[int, int]:
    """How many zeros start a JSON array of numbers, and its length, read from its text: a sample is
    sorted and result counts are never negative, so its zeros come first. Decoding every busy search
    row's sample (up to 101 numbers) cost the canvas most of its time."""
    pos = text.index("[") + 1
    if not text[pos:].strip().startswith("]"):
        zeros = 0
        while match := _ZERO.match(text, pos):
            zeros += 1
            pos = match.end()
        return zeros, text.count(",") + 1
    return 0, 0


def _percent(part: float, whole: float) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def _pooled(rows: Any) -> list[float]:
    """Every sampled value of the rows (the rollup keeps a bounded sample per bucket), sorted. Within
    `shared_reads()` (a canvas's evaluation) the same rows are read and decoded once: the median and the
    p95 of approval lead times pool the same thousands of samples."""
    memo = _MEMO.get()
    key = str(rows.query) if memo is not None else None
    if key is not None and key in memo:
        return memo[key]
    texts = rows.values_list(Cast("values", output_field=TextField()), flat=True)
    values = sorted(v for text in texts for v in json.loads(text or "null") or ())
    if key is not None:
        memo[key] = values
    return values


_MEMO: ContextVar[dict | None] = ContextVar("plinth_kpi_memo", default=None)


@contextmanager
def shared_reads():
    """Within the block, queries that pool the same rollup rows read them once (see `_pooled`)."""
    token = _MEMO.set({})
    try:
        yield
    finally:
        _MEMO.reset(token)


def _percentile(values: list[float], pct: int) -> float | None:
    """Nearest-rank percentile of sorted values."""
    if not values:
        return None
    rank = max(1, -(-pct * len(values) // 100))  # ceil(pct/100 * n)
    return values[rank - 1]


def _check_window(name: str, value: int) -> None:
    if not 1 <= value <= 366:
        raise KpiError(f"parameter {name!r} must be between 1 and 366 days, not {value}")


# -- adoption -------------------------------------------------------------------------------------


@kpi("active_users")
def active_users(period: Period, *, window_days: int = 7, team: str = "") -> float | None:
    """Distinct users active in the last `window_days` days of the period (7: weekly active users),
    overall or in one team (through its memberships)."""
    _check_window("window_days", window_days)
    rows = ActiveUserDay.objects.filter(day__gte=(period.end - timedelta(days=window_days)).date(),
                                        day__lt=period.end.date())
    if team:
        rows = rows.filter(user__in=Membership.objects.filter(team=_team(team)).values("user"))
    return rows.values("user").distinct().count()


@kpi("weekly_active_users")
def weekly_active_users(period: Period) -> float | None:
    """Distinct users active in the last 7 days of the period."""
    return active_users(period, window_days=7)


@kpi("docs_views_per_active_user")
def docs_views_per_active_user(period: Period) -> float | None:
    """Docs page views in the period divided by the users active in it."""
    users = _active_users(get_user_model().objects.all(), period.start.date(), period.end.date())
    return round(_count(_daily(period, EventType.DOCS_VIEW)) / users, 1) if users else None


@kpi("event_count")
def event_count(period: Period, *, type: str, team: str = "") -> float | None:  # noqa: A002 (the canvas's word)
    """Events of one type in the period (e.g. registrations), overall or for one team."""
    if type not in EventType.values:
        raise KpiError(f"unknown event type {type!r} (known: {', '.join(EventType.values)})")
    return _count(_daily(period, type, team=team))


# -- onboarding -----------------------------------------------------------------------------------


@kpi("median_time_to_first_model")
def median_time_to_first_model(period: Period, *, cohort_days: int = 90) -> float | None:
    """Median days from a team's first sign-in to its first registered model, over the teams whose
    first sign-in falls in the `cohort_days` before the period's end and that have one."""
    _check_window("cohort_days", cohort_days)
    joined = dict(TeamMilestone.objects.filter(
        milestone=Milestone.FIRST_SIGN_IN, reached_at__gte=period.end - timedelta(days=cohort_days),
        reached_at__lt=period.end).values_list("team_id", "reached_at"))
    firsts = TeamMilestone.objects.filter(milestone=Milestone.FIRST_MODEL, team_id__in=joined,
                                          reached_at__lt=period.end).values_list("team_id", "reached_at")
    days = [(reached - joined[team]).total_seconds() / 86400 for team, reached in firsts]
    return round(statistics.median(days), 2) if days else None


@kpi("teams_reaching")
def teams_reaching(period: Period, *, milestone: str) -> float | None:
    """Teams that had reached an onboarding milestone by the end of the period (cumulative)."""
    if milestone not in Milestone.values:
        raise KpiError(f"unknown milestone {milestone!r} (known: {', '.join(Milestone.values)})")
    return TeamMilestone.objects.filter(milestone=milestone, reached_at__lt=period.end).count()


@kpi("onboarding_completion")
def onboarding_completion(period: Period) -> float | None:
    """Share (%) of the teams signed in by the period's end that have also had an approval executed —
    the last step of the onboarding funnel."""
    reached = TeamMilestone.objects.filter(reached_at__lt=period.end).aggregate(
        joined=Count("pk", filter=Q(milestone=Milestone.FIRST_SIGN_IN)),
        done=Count("pk", filter=Q(milestone=Milestone.FIRST_APPROVAL_EXECUTED)))
    return _percent(reached["done"], reached["joined"])


# -- templates, search, governance ------------------------------------------------------------------


@kpi("template_success_rate")
def template_success_rate(period: Period, *, template: str = "") -> float | None:
    """Share (%) of finished template runs that succeeded, for all templates or one template ref. A
    cancelled run neither succeeded nor failed: it is not counted (top_templates' success rate agrees)."""
    rows = _daily(period, EventType.TEMPLATE_RUN_SUCCEEDED, EventType.TEMPLATE_RUN_FAILED)
    if template:
        rows = rows.filter(subject=template)
    totals = rows.aggregate(ok=Sum("count", filter=Q(type=EventType.TEMPLATE_RUN_SUCCEEDED)), all=Sum("count"))
    return _percent(totals["ok"] or 0, totals["all"] or 0)


@kpi("median_template_duration")
def median_template_duration(period: Period, *, template: str = "") -> float | None:
    """Median duration (seconds) of successful template runs."""
    rows = _daily(period, EventType.TEMPLATE_RUN_SUCCEEDED)
    if template:
        rows = rows.filter(subject=template)
    values = _pooled(rows)
    return round(statistics.median(values), 1) if values else None


@kpi("zero_result_search_share")
def zero_result_search_share(period: Period) -> float | None:
    """Share (%) of searches that found nothing."""
    rows = _daily(period, EventType.SEARCH)
    # Result counts are never negative: a row summing to 0 is all zero-result searches, and a row whose
    # sorted sample does not start with 0 has none. Only the rows in between are decoded here.
    sums = rows.aggregate(total=Sum("count"), zero=Sum("count", filter=Q(value_sum=0)))
    total, zero = sums["total"] or 0, sums["zero"] or 0
    for count, text in (rows.filter(value_sum__gt=0, values__0=0)
                        .values_list("count", Cast("values", output_field=TextField()))):
        zeros, length = _zeros_and_length(text)
        zero += zeros if length == count else round(count * zeros / length)
    return _percent(zero, total)


@kpi("search_click_through_rate")
def search_click_through_rate(period: Period) -> float | None:
    """Clicked results per search (%): did search lead somewhere?"""
    return _percent(_count(_daily(period, EventType.SEARCH_CLICK)), _count(_daily(period, EventType.SEARCH)))


@kpi("approval_lead_time")
def approval_lead_time(period: Period, *, percentile: int = 50) -> float | None:
    """Hours from an approval request's submission to its execution, at a percentile (50: median)."""
    if not 1 <= percentile <= 100:
        raise KpiError(f"parameter 'percentile' must be between 1 and 100, not {percentile}")
    value = _percentile(_pooled(_daily(period, EventType.APPROVAL_EXECUTED)), percentile)
    return None if value is None else round(value / 3600, 1)


# -- catalog state (no history: the catalog keeps no past states) -------------------------------------


@kpi("teams_with_model_in_production", history=False)
def teams_with_model_in_production(period: Period) -> float | None:
    """Teams owning at least one model whose lifecycle is production, now."""
    from catalog.models import Entity

    return Entity.objects.filter(kind_key="model", lifecycle="production", owner_team__isnull=False).values(
        "owner_team").distinct().count()


@kpi("owned_entity_share", history=False)
def owned_entity_share(period: Period) -> float | None:
    """Share (%) of catalog entities (other than groups and users) owned by a portal team, now."""
    from catalog.models import Entity

    counts = Entity.objects.exclude(kind_key__in=("group", "user", "location")).aggregate(
        all=Count("pk"), owned=Count("pk", filter=Q(owner_team__isnull=False)))
    return _percent(counts["owned"], counts["all"])
