"""Server-rendered SVG charts for the Insights dashboards: a time series (line over an area, with the
previous period dashed), horizontal bars and a funnel.

As on the model page (catalog/charts.py) only geometry is computed here; templates/insights/inc/chart_*.html
draw it, so the pages need no script and no chart library and the CSP stays strict. Bars and the funnel
use percentages of the SVG's own width (no viewBox): they stretch to the card and their text keeps its
size on a phone. Every chart carries a title and a description for screen readers and the rows of the
data table shown under it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

WIDTH, HEIGHT = 720, 220
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 44, 18, 12, 28
MAX_X_LABELS = 8
BAR_ROW = 42  # px per bar: the label line, then the bar with its value
VALUE_INSIDE = 50  # per cent: a bar at least this wide carries its value inside, else just after it
FUNNEL_ROW = 46


@dataclass(frozen=True)
class Table:
    headers: list[str]
    rows: list[list[str]]


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    label: str
    value: float


@dataclass(frozen=True)
class Tick:
    y: float
    label: str


@dataclass(frozen=True)
class LineChart:
    key: str
    title: str
    desc: str
    points: list[Point]
    line: str
    area: str
    previous: str  # the previous period's line, "" when there is none
    ticks: list[Tick]
    x_labels: list[Point]
    table: Table
    width: int = WIDTH
    height: int = HEIGHT
    left: float = PAD_LEFT
    right: float = WIDTH - PAD_RIGHT
    baseline: float = HEIGHT - PAD_BOTTOM


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 × 10^k at or above `value` (at least 1): round axis maxima."""
    if value <= 1:
        return 1
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude  # pragma: no cover - the loop ends at 10 × magnitude


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def line_chart(key: str, title: str, series: list[tuple[str, float]], *, unit: str,
               previous: list[float] | None = None, low: float = 0) -> LineChart:
    """`series`: (bucket label, value) in time order. `previous`: the previous period's values, bucket
    by bucket, drawn dashed for comparison. `low`: the axis' lowest value (0 unless a series lives in a
    narrow band near its top, such as an SLI in per cent); values below it sit on the axis."""
    values = [v for _, v in series]
    top = nice_ceiling(max([*values, *(previous or []), 0]))
    if low:
        top = max(top, low + 1)
    inner_w = WIDTH - PAD_LEFT - PAD_RIGHT
    inner_h = HEIGHT - PAD_TOP - PAD_BOTTOM
    step = inner_w / max(1, len(series) - 1)
    baseline = HEIGHT - PAD_BOTTOM

    def xy(i: int, value: float) -> tuple[float, float]:
        x = PAD_LEFT + (i * step if len(series) > 1 else inner_w / 2)
        shown = min(max(value, low), top)
        return round(x, 1), round(PAD_TOP + (top - shown) / (top - low) * inner_h, 1)

    points = [Point(*xy(i, v), label=label, value=v) for i, (label, v) in enumerate(series)]
    line = "M" + " L".join(f"{p.x},{p.y}" for p in points) if points else ""
    area = f"{line} L{points[-1].x},{baseline} L{points[0].x},{baseline} Z" if points else ""
    before = ""
    if previous:
        coords = [xy(i, v) for i, v in enumerate(previous[: len(series)])]
        before = "M" + " L".join(f"{x},{y}" for x, y in coords)
    ticks = [Tick(round(PAD_TOP + (1 - f) * inner_h, 1), _fmt(low + (top - low) * f)) for f in (0, 0.5, 1)]
    every = max(1, math.ceil(len(points) / MAX_X_LABELS))
    x_labels = [p for i, p in enumerate(points) if i % every == 0]
    desc = (f"{len(points)} points from {series[0][0]} to {series[-1][0]}; highest {_fmt(max(values))} {unit}, "
            f"lowest {_fmt(min(values))} {unit}." if series else "No data in the period.")
    rows = [[label, _fmt(v)] + ([_fmt(previous[i])] if previous and i < len(previous) else [])
            for i, (label, v) in enumerate(series)]
    headers = ["Period", unit.capitalize()] + (["Previous period"] if previous else [])
    return LineChart(key=key, title=title, desc=desc, points=points, line=line, area=area, previous=before,
                     ticks=ticks, x_labels=x_labels, table=Table(headers, rows))


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    shown: str  # the value as printed next to the bar (may add a unit or a rate)
    percent: float  # of the widest bar
    y: int
    url: str = ""  # the label links there (an entity's page), when set

    @property
    def inside(self) -> bool:
        return self.percent >= VALUE_INSIDE


@dataclass(frozen=True)
class BarChart:
    key: str
    title: str
    desc: str
    bars: list[Bar]
    height: int
    table: Table
    row: int = BAR_ROW

    @property
    def linked(self) -> bool:
        """Some labels are links: the chart is then a group the keyboard moves through link by link,
        not one focusable image (an image may not hold controls)."""
        return any(b.url for b in self.bars)


def bar_chart(key: str, title: str, rows: list[tuple], *, unit: str,
              headers: list[str] | None = None) -> BarChart:
    """`rows`: (label, value, value as shown) or (label, link, value, value as shown), largest first.
    Bars are scaled to the largest value."""
    rows = [row if len(row) == 4 else (row[0], "", *row[1:]) for row in rows]
    top = max([row[2] for row in rows] + [0]) or 1
    bars = [Bar(label=label, value=v, shown=shown, percent=round(max(v / top * 100, 0.5 if v else 0), 2),
                y=i * BAR_ROW, url=url) for i, (label, url, v, shown) in enumerate(rows)]
    desc = ("; ".join(f"{b.label}: {b.shown}" for b in bars[:10]) + ".") if bars else "No data in the period."
    table = Table(headers or ["Name", unit.capitalize()], [[b.label, b.shown] for b in bars])
    return BarChart(key=key, title=title, desc=desc, bars=bars, height=max(BAR_ROW, len(bars) * BAR_ROW), table=table)


@dataclass(frozen=True)
class Stage:
    label: str
    value: int
    rate: float | None  # of the first stage, in per cent
    percent: float  # bar width, of the first stage
    x: float  # left edge in per cent (centred bars)
    y: int


@dataclass(frozen=True)
class FunnelChart:
    key: str
    title: str
    desc: str
    stages: list[Stage]
    height: int
    table: Table
    row: int = FUNNEL_ROW
    extra: dict = field(default_factory=dict)


def funnel_chart(key: str, title: str, steps: list[tuple[str, int]], *, unit: str) -> FunnelChart:
    """`steps`: (label, how many reached it), in funnel order; widths relative to the first step."""
    first = steps[0][1] if steps else 0
    stages = []
    for i, (label, value) in enumerate(steps):
        share = value / first * 100 if first else 0
        width = max(share, 1.0)  # an empty step still shows where it is
        stages.append(Stage(label=label, value=value, rate=round(share, 1) if first else None,
                            percent=round(width, 2), x=round((100 - width) / 2, 2), y=i * FUNNEL_ROW))
    desc = "; ".join(f"{s.label}: {s.value} {unit}" + (f" ({s.rate:g}%)" if s.rate is not None else "")
                     for s in stages) + "." if stages else "No data."
    table = Table(["Step", unit.capitalize(), "Of the first step"],
                  [[s.label, str(s.value), "–" if s.rate is None else f"{s.rate:g}%"] for s in stages])
    return FunnelChart(key=key, title=title, desc=desc, stages=stages, height=max(FUNNEL_ROW, len(stages) * FUNNEL_ROW),
                       table=table)
