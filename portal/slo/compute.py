"""The SLO arithmetic: which PromQL to ask, and what the answers mean (docs/operations.md, "SLOs").

Pure functions over an `openslo.Spec` and numbers; services.py asks Prometheus and stores the outcome.

* SLI over a window: Occurrences with a ratioMetric — good/total events (or 1 − bad/total);
  Timeslices — the fraction of good slices (a slice is good when its good/total ratio reaches
  `timeSliceTarget`, or, for a thresholdMetric, when the metric meets `op value`); RatioTimeslices — the
  mean of the slices' ratios; a thresholdMetric budgeted by Occurrences counts every sample at
  PLINTH_SLO_THRESHOLD_STEP as one event. Slices (and samples) without data are left out.
* Error budget: the bad fraction the objective allows, 1 − target. Remaining fraction = 1 − spent /
  allowed (negative once overspent). In events (Occurrences: allowed = (1 − target) × events so far) or
  in time (Timeslices: allowed = (1 − target) × the whole window's slices × slice length;
  RatioTimeslices: the remaining fraction of (1 − target) × the window's length).
* Burn rate over w: (1 − SLI(w)) / (1 − target); 1 spends the budget exactly over the window.
* Multi-window alerts (the SRE workbook's, as Sloth generates them): a condition holds when the burn
  rate over BOTH its long and its short window reaches its threshold.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from .openslo import OPS, WINDOW, Spec

WINDOW_SECONDS = {"5m": 300, "30m": 1800, "1h": 3600, "2h": 7200, "6h": 21600, "1d": 86400, "3d": 259200}
SHOWN_WINDOWS = ("1h", "6h", "1d", "3d")  # the burn rates the tab and the API show


@dataclass(frozen=True)
class Alert:
    severity: str  # "page" | "ticket"
    threshold: float
    long: str
    short: str


ALERTS = (
    Alert("page", 14.4, "1h", "5m"),  # 2 % of a 30-day budget in one hour
    Alert("page", 6.0, "6h", "30m"),  # 5 % in six hours
    Alert("ticket", 3.0, "1d", "2h"),  # 10 % in a day
    Alert("ticket", 1.0, "3d", "6h"),  # 10 % in three days
)


def events(query: str, window: str) -> str:
    """The events a ratio query counts over `window`: its {{.window}} replaced, or the increase of a counter."""
    if WINDOW in query:
        return query.replace(WINDOW, window)
    return f"sum(increase({query}[{window}]))"


def step(spec: Spec, default_step: str) -> str:
    return spec.slice_text or default_step


def _ratio(spec: Spec, window: str, *, guard: bool) -> str:
    total = events(spec.total, window)
    total = f"(({total}) > 0)" if guard else f"({total})"
    if spec.good:
        return f"({events(spec.good, window)}) / {total}"
    return f"1 - ({events(spec.bad, window)}) / {total}"


def point(spec: Spec, default_step: str) -> str:
    """Per slice (or threshold sample): 1 good, 0 bad — or, for RatioTimeslices, the slice's ratio."""
    s = step(spec, default_step)
    if spec.indicator == "threshold":
        return f"({spec.metric.replace(WINDOW, s)}) {OPS[spec.op]} bool {spec.value!r}"
    ratio = _ratio(spec, s, guard=True)  # a slice without traffic has no point: it is left out
    if spec.budgeting == "Timeslices":
        return f"({ratio}) >= bool {spec.slice_target!r}"
    return ratio


def sli_query(spec: Spec, window: str, default_step: str) -> str:
    """The SLI over `window` as one PromQL expression (the burn rate windows use it)."""
    if spec.indicator == "ratio" and spec.budgeting == "Occurrences":
        return _ratio(spec, window, guard=False)
    return f"avg_over_time(({point(spec, default_step)})[{window}:{step(spec, default_step)}])"


def window_range(spec: Spec, now: datetime) -> tuple[str, float, float]:
    """(PromQL range, seconds covered so far, seconds of the whole window) at `now`."""
    if spec.window.rolling:
        return spec.window.text, spec.window.seconds, spec.window.seconds
    # In UTC: two times in the same zone subtract on the local clock, so a day with a daylight-saving
    # change would last 24 h instead of the 23 or 25 that pass.
    start, end = (t.astimezone(UTC) for t in spec.window.bounds(now))
    elapsed = max(1, int((now.astimezone(UTC) - start).total_seconds()))
    return f"{elapsed}s", elapsed, (end - start).total_seconds()


def queries(spec: Spec, now: datetime, default_step: str) -> dict[str, str]:
    """Named expressions for one evaluation: the window's numbers and each burn window's SLI."""
    rng, _, _ = window_range(spec, now)
    out: dict[str, str] = {}
    if spec.indicator == "ratio" and spec.budgeting == "Occurrences":
        out["total"] = events(spec.total, rng)
        out["good" if spec.good else "bad"] = events(spec.good or spec.bad, rng)
    else:
        s = step(spec, default_step)
        out["sli"] = f"avg_over_time(({point(spec, default_step)})[{rng}:{s}])"
        out["count"] = f"count_over_time(({point(spec, default_step)})[{rng}:{s}])"
    slice_seconds = spec.slice_seconds or 0
    for name, seconds in WINDOW_SECONDS.items():
        if seconds >= slice_seconds:  # a window shorter than a slice has nothing to average
            out[f"burn_{name}"] = sli_query(spec, name, default_step)
    return out


def union(named: dict[str, str]) -> str:
    """One PromQL query answering every named expression, each series labelled plinth_q=<name>."""
    return " or ".join(f'label_replace(({q}), "plinth_q", "{name}", "", "")' for name, q in named.items())


@dataclass
class Outcome:
    sli: float | None
    good: float | None  # events (Occurrences) or good slices/samples
    total: float | None
    budget_remaining: float | None  # fraction of the budget left (negative: overspent)
    budget_amount: float | None  # what is left, in `budget_unit` (negative: overspent)
    budget_unit: str  # "events" | "seconds"
    burn: dict[str, float | None]
    alerts: list[dict]

    @property
    def paging(self) -> list[dict]:
        return [a for a in self.alerts if a["firing"] and a["severity"] == "page"]


def outcome(spec: Spec, values: dict[str, float], now: datetime, default_step: str) -> Outcome:
    """What the answers mean. `values`: name → value (absent: no data for it)."""
    allowed_fraction = 1 - spec.target
    _, _, whole = window_range(spec, now)
    sli = good = total = remaining = amount = None
    unit = "events"
    if spec.indicator == "ratio" and spec.budgeting == "Occurrences":
        total = values.get("total")
        good = values.get("good") if spec.good else (
            total - values["bad"] if total is not None and "bad" in values else None)
        if total and good is not None:
            sli = good / total
            allowed = allowed_fraction * total
            bad = total - good
            remaining, amount = 1 - bad / allowed, allowed - bad
    else:
        sli, total = values.get("sli"), values.get("count")
        if sli is not None and total:
            good = sli * total if spec.budgeting != "RatioTimeslices" else None
            if spec.budgeting == "RatioTimeslices":
                unit = "seconds"
                remaining = 1 - (1 - sli) / allowed_fraction
                amount = remaining * allowed_fraction * whole
            elif spec.budgeting == "Timeslices":
                unit = "seconds"
                slice_seconds = spec.slice_seconds
                allowed = allowed_fraction * whole / slice_seconds
                bad = (1 - sli) * total
                remaining, amount = 1 - bad / allowed, (allowed - bad) * slice_seconds
            else:  # a thresholdMetric budgeted by Occurrences: each sample is an event
                allowed = allowed_fraction * total
                bad = (1 - sli) * total
                remaining, amount = 1 - bad / allowed, allowed - bad
    burn = {}
    for name in WINDOW_SECONDS:
        v = values.get(f"burn_{name}")
        burn[name] = None if v is None else max(0.0, (1 - v) / allowed_fraction)
    alerts = []
    for a in ALERTS:
        long, short = burn.get(a.long), burn.get(a.short)
        firing = long is not None and short is not None and long >= a.threshold and short >= a.threshold
        alerts.append({"severity": a.severity, "threshold": a.threshold, "long": a.long, "short": a.short,
                       "long_burn": long, "short_burn": short, "firing": firing})
    return Outcome(sli=sli, good=good, total=total, budget_remaining=remaining, budget_amount=amount,
                   budget_unit=unit, burn=burn, alerts=alerts)
