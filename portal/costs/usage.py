"""Unit economics from serving metrics: how many predictions a model served each month, read from the
Prometheus the SLOs use (PLINTH_PROMETHEUS_URL), so the Cost tab and the entity costs API can show the
cost per 1,000 predictions beside the cost per training run.

A model names its predictions counter in the `plinth.dev/predictions-metric` annotation: a metric
selector such as `model_predictions_total{model="fraud-detector"}` (a name and optional label matchers,
nothing else: the portal builds the query around it). The months are asked in ONE instant query, each
month's `increase` pinned to the month's end with the `@` modifier, and the answer is cached for a few
minutes per selector and month list. Prometheus down or refusing the query is said on the tab, never a
failed page.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal

from django.core.cache import cache
from django.utils import timezone

ANNOTATION = "plinth.dev/predictions-metric"
MAX_SELECTOR = 500
# A metric name, then optional label matchers: no ranges, functions, operators or nested braces.
SELECTOR = re.compile(r'[a-zA-Z_:][a-zA-Z0-9_:]*(\{(\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(=|!=|=~|!~)\s*"(?:[^"\\\n]|\\.)*"\s*,?)*\})?')
CACHE_SECONDS = 600
TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class Usage:
    """Predictions per month (a month Prometheus has no data for is missing), or why there are none."""

    declared: bool = False
    selector: str = ""
    counts: dict[date, float] = field(default_factory=dict)
    error: str = ""

    def per_thousand(self, month: date, cost: Decimal) -> Decimal | None:
        n = self.counts.get(month)
        return None if not n else cost / Decimal(str(n)) * 1000


def selector_of(annotations: dict | None) -> tuple[str | None, str]:
    """(the declared selector, or None; an error naming the annotation when it is malformed)."""
    raw = (annotations or {}).get(ANNOTATION)
    if raw is None:
        return None, ""
    if not isinstance(raw, str) or not raw.strip():
        return None, f"{ANNOTATION} must be a metric selector such as model_predictions_total{{model=\"x\"}}"
    text = raw.strip()
    if len(text) > MAX_SELECTOR:
        return None, f"{ANNOTATION} is longer than {MAX_SELECTOR} characters"
    if not SELECTOR.fullmatch(text):
        return None, (f"{ANNOTATION} must be a metric name with optional label matchers, e.g. "
                      f"model_predictions_total{{model=\"x\"}}, not {text[:80]!r}")
    return text, ""


def _month_end(month: date, now: datetime) -> datetime:
    nxt = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    return min(datetime(nxt.year, nxt.month, 1, tzinfo=UTC), now)


def query_for(selector: str, months: list[date], now: datetime) -> str:
    """One PromQL query: each month's increase of the counter, labelled plinth_month=YYYY-MM."""
    named = {}
    for month in months:
        start = datetime(month.year, month.month, 1, tzinfo=UTC)
        end = _month_end(month, now)
        seconds = int((end - start).total_seconds())
        if seconds > 0:
            named[f"{month:%Y-%m}"] = f"sum(increase({selector}[{seconds}s] @ {end.timestamp():.0f}))"
    return " or ".join(f'label_replace(({q}), "plinth_month", "{name}", "", "")' for name, q in named.items())


def monthly_predictions(annotations: dict | None, months: list[date], *, now: datetime | None = None) -> Usage:
    """The predictions of each month in `months` (UTC calendar months; the current one up to now)."""
    from portal.slo import conf, prometheus

    selector, error = selector_of(annotations)
    if selector is None:
        return Usage(declared=bool(error), error=error)
    now = now or timezone.now()
    months = sorted(set(months))
    promql = query_for(selector, months, now)
    if not promql:
        return Usage(declared=True, selector=selector)
    base_url = conf.prometheus_url()
    bucket = int(now.timestamp()) // CACHE_SECONDS  # the current month's count may be this much behind
    key = "plinth:costs:predictions:" + hashlib.sha256(
        f"{base_url}|{selector}|{','.join(m.isoformat() for m in months)}|{bucket}".encode()).hexdigest()
    cached = cache.get(key)
    if cached is not None:
        return Usage(declared=True, selector=selector, counts=cached)
    try:
        rows = prometheus.query(base_url, promql, now, TIMEOUT_SECONDS)
    except prometheus.QueryError as exc:
        return Usage(declared=True, selector=selector, error=f"Prometheus refused the predictions query: {exc}")
    except prometheus.Unreachable as exc:
        return Usage(declared=True, selector=selector, error=f"Predictions unavailable: {exc}")
    counts = {}
    for labels, value in rows:
        try:
            month = datetime.strptime(labels.get("plinth_month", ""), "%Y-%m").date()
        except ValueError:
            continue
        counts[month] = value
    cache.set(key, counts, CACHE_SECONDS)
    return Usage(declared=True, selector=selector, counts=counts)
