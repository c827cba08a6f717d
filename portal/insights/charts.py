"""Server-rendered SVG charts for the Insights dashboards: a time series (line over an area, with the
previous period dashed), horizontal bars and a funnel. `time_chart` draws a series over a real time axis
(x proportional to time, labels at round UTC times) with dashed reference lines (an SLO's objective).

As on the model page (catalog/charts.py) only geometry is computed here; templates/insights/inc/chart_*.html
draw it, so the pages need no script and no chart library and the CSP stays strict. Bars and the funnel
use percentages of the SVG's own width (no viewBox): they stretch to the card and their text keeps its
size on a phone. Every chart carries a title and a description for screen readers and the rows of the
data table shown under it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

WIDTH, HEIGHT = 720, 220
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 44, 18, 12, 28
MAX_X_LABELS = 8
X_LABEL_CHAR, X_LABEL_GAP = 7.5, 14  # a tick label's width per character at 12 px, and the space between two
BAR_ROW = 42  # px per bar: the label line, then the bar with its value
VALUE_INSIDE = 50  # per cent: a bar at least this wide carries its value inside, else just after it
FUNNEL_ROW = 46
NARROWEST_PX = 290  # the bars' width on a 360 px phone: a value must fit there to go inside or after its bar
VALUE_CHAR_PX, VALUE_PAD_PX = 7.5, 12  # a 12 px value's width per character (bold inside), and its margin


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
class XLabel:
    x: float
    label: str
    anchor: str  # text-anchor: the last label ends at its point, so it stays inside the chart
    minor: bool  # every other label: hidden where the chart is narrow (a phone), see insights.css


@dataclass(frozen=True)
class RefLine:
    """A dashed horizontal reference line (an objective, 0 %) with its label printed beside it: `above`
    or below the line, on the side the series' last point is not (the label sits at the right end)."""
    y: float
    label: str
    value: float
    label_y: float


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
    x_labels: list[XLabel]
    table: Table
    width: int = WIDTH
    height: int = HEIGHT
    left: float = PAD_LEFT
    right: float = WIDTH - PAD_RIGHT
    baseline: float = HEIGHT - PAD_BOTTOM
    refs: list[RefLine] = field(default_factory=list)  # time_chart only: dashed reference lines
    x_caption: str = ""  # time_chart only: what the x axis counts in ("Times in UTC"), under the chart


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


def _x_labels(points: list[Point], inner_w: float) -> list[XLabel]:
    """At most MAX_X_LABELS evenly spaced, fewer for long labels ("11-30 12:30") so they never overlap.
    A label at the last point ends there (and one that would cross an edge starts or ends at its point):
    centred on the chart's edge it stuck out of the SVG and was cut ("11-30 12" for "11-30 12:30"). Its
    neighbour gives way when the two would touch."""
    if not points:
        return []
    longest = max(len(p.label) for p in points)
    fits = max(2, int(inner_w // (longest * X_LABEL_CHAR + X_LABEL_GAP)))
    every = max(1, math.ceil(len(points) / min(MAX_X_LABELS, fits)))
    shown = [p for i, p in enumerate(points) if i % every == 0]
    room = longest * X_LABEL_CHAR * 1.5 + X_LABEL_GAP  # between a label at an edge and its centred neighbour
    anchors = []
    for p in shown:
        half = len(p.label) * X_LABEL_CHAR / 2
        anchors.append("end" if len(shown) > 1 and (p is points[-1] or p.x + half > WIDTH)
                       else "start" if len(shown) > 1 and p.x - half < 0 else "middle")
    keep = list(range(len(shown)))
    if len(keep) > 2 and anchors[-1] == "end" and shown[-1].x - shown[-2].x < room:
        keep.remove(len(shown) - 2)
    if len(keep) > 2 and anchors[0] == "start" and shown[keep[1]].x - shown[0].x < room:
        keep.remove(keep[1])
    # Every other label gives way on a phone; the one at the last point (the period's end) stays.
    flip = len(keep) - 1 if shown[keep[-1]] is points[-1] else 0
    return [XLabel(shown[k].x, shown[k].label, anchors[k], minor=(flip - i) % 2 == 1) for i, k in enumerate(keep)]


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
    x_labels = _x_labels(points, inner_w)
    desc = (f"{len(points)} points from {series[0][0]} to {series[-1][0]}; highest {_fmt(max(values))} {unit}, "
            f"lowest {_fmt(min(values))} {unit}." if series else "No data in the period.")
    rows = [[label, _fmt(v)] + ([_fmt(previous[i])] if previous and i < len(previous) else [])
            for i, (label, v) in enumerate(series)]
    headers = ["Period", unit.capitalize()] + (["Previous period"] if previous else [])
    return LineChart(key=key, title=title, desc=desc, points=points, line=line, area=area, previous=before,
                     ticks=ticks, x_labels=x_labels, table=Table(headers, rows))


# Time axis steps (seconds) a time chart's labels may fall on: round UTC times.
TIME_STEPS = (300, 900, 1800, 3600, 2 * 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 2 * 86400, 7 * 86400,
              14 * 86400, 28 * 86400)
TIME_LABEL_CHARS = 6  # "05 Dec", "12:00"
REF_LABEL_GAP = 14  # a reference line's label sits this far above or below it (its baseline)


def _time_ticks(t0: datetime, t1: datetime, x_of, inner_w: float) -> list[XLabel]:
    """Labels at round UTC times between t0 and t1: the largest number that fits (at most MAX_X_LABELS,
    at least two when the span allows), at multiples of a step from UTC midnight. A label at midnight
    is the date ("05 Dec"), others the time ("12:00"); when no label falls on a midnight the first one
    carries its date ("04 Dec 10:45"). Of two labels that would touch, the later gives way (unless it is
    a date and the earlier a time). Where the chart is narrow (a phone) the labels that are not at
    midnight give way too, or every other one when all or none are."""
    span = (t1 - t0).total_seconds()
    if span <= 0:
        return [XLabel(x_of(t0), f"{t0:%d %b %H:%M}", "middle", minor=False)]
    fits = max(2, int(inner_w // (TIME_LABEL_CHARS * X_LABEL_CHAR + 3 * X_LABEL_GAP)))
    most = min(MAX_X_LABELS, fits)
    step = next((s for s in TIME_STEPS if span / s <= most), TIME_STEPS[-1])
    midnight = t0.replace(hour=0, minute=0, second=0, microsecond=0)
    if step >= 86400:  # whole days from the first midnight at or after t0
        first = midnight if midnight >= t0 else midnight + timedelta(days=1)
    else:
        offset = math.ceil((t0 - midnight).total_seconds() / step) * step
        first = midnight + timedelta(seconds=offset)
    times = []
    t = first
    while t <= t1 and len(times) <= 2 * MAX_X_LABELS:
        times.append(t)
        t += timedelta(seconds=step)
    at_midnight = [t.hour == 0 and t.minute == 0 for t in times]
    dated = any(at_midnight)  # else the first label carries the date
    labels: list[XLabel] = []
    extents: list[tuple[float, float]] = []
    for i, t in enumerate(times):
        text = f"{t:%d %b}" if at_midnight[i] else (f"{t:%H:%M}" if dated or i else f"{t:%d %b %H:%M}")
        x = x_of(t)
        half = len(text) * X_LABEL_CHAR  # half its width at twice the 12 px size (the phone's larger text)
        anchor = "start" if x - half < 0 else "end" if x + half > WIDTH else "middle"
        width = len(text) * X_LABEL_CHAR
        left = {"start": x, "middle": x - width / 2, "end": x - width}[anchor]
        minor = (not at_midnight[i]) if dated and not all(at_midnight) else len(labels) % 2 == 1
        if extents and left < extents[-1][1] + X_LABEL_GAP:  # it would touch the one before: one gives way,
            if not (at_midnight[i] and ":" in labels[-1].label):
                continue  # this one, unless it is a date and the one before a time
            labels.pop()
            extents.pop()
        labels.append(XLabel(x, text, anchor, minor))
        extents.append((left, left + width))
    return labels


def time_chart(key: str, title: str, series: list[tuple[datetime, float]], *, unit: str, low: float = 0,
               high: float | None = None, refs: list[tuple[float, str]] | None = None, digits: int | None = None) -> LineChart:
    """`series`: (aware datetime, value) in time order; x is proportional to time (two points an hour
    apart are twice as far apart as two half an hour apart), shown in UTC. Points closer than a pixel
    are kept as they are: the caller thins its history (an hour's evaluations collapse to the latest).
    `refs`: (value, label) dashed reference lines, such as an objective. `low` as for `line_chart`; `high`:
    the axis' highest value (default: a round value at or above the highest point; above it values sit at the top).
    `digits`: decimals of the values in the description and the data table (default: as `line_chart`)."""
    fmt = _fmt if digits is None else (lambda v: f"{v:,.{digits}f}")
    series = [(t.astimezone(UTC), v) for t, v in series]
    refs = refs or []
    values = [v for _, v in series]
    top = nice_ceiling(max([*values, *(r for r, _ in refs), 0])) if high is None else high
    if low or high is not None:
        top = max(top, low + 1)
    inner_w = WIDTH - PAD_LEFT - PAD_RIGHT
    inner_h = HEIGHT - PAD_TOP - PAD_BOTTOM
    baseline = HEIGHT - PAD_BOTTOM
    t0, t1 = (series[0][0], series[-1][0]) if series else (None, None)
    span = (t1 - t0).total_seconds() if series else 0

    def x_of(t: datetime) -> float:
        return round(PAD_LEFT + ((t - t0).total_seconds() / span * inner_w if span > 0 else inner_w / 2), 1)

    def y_of(value: float) -> float:
        shown = min(max(value, low), top)
        return round(PAD_TOP + (top - shown) / (top - low) * inner_h, 1)

    def stamp(t: datetime) -> str:
        return f"{t:%Y-%m-%d %H:%M}"

    points = [Point(x_of(t), y_of(v), label=f"{stamp(t)} UTC", value=v) for t, v in series]
    line = "M" + " L".join(f"{p.x},{p.y}" for p in points) if points else ""
    area = f"{line} L{points[-1].x},{baseline} L{points[0].x},{baseline} Z" if points else ""
    ticks = [Tick(round(PAD_TOP + (1 - f) * inner_h, 1), _fmt(low + (top - low) * f)) for f in (0, 0.5, 1)]
    lines = []
    for value, label in refs:
        y = y_of(value)
        above = bool(values) and values[-1] < value or y + REF_LABEL_GAP > baseline - 4
        lines.append(RefLine(y=y, label=label, value=value,
                             label_y=round(y - 5 if above else y + REF_LABEL_GAP, 1)))
    x_labels = _time_ticks(t0, t1, x_of, inner_w) if series else []
    refs_text = "".join(f" {label}." for _, label in refs)
    desc = (f"{len(points)} points from {stamp(t0)} to {stamp(t1)} UTC; highest {fmt(max(values))} {unit}, "
            f"lowest {fmt(min(values))} {unit}, latest {fmt(values[-1])} {unit}.{refs_text}"
            if series else "No data in the period.")
    rows = [[stamp(t), fmt(v)] for t, v in series]
    return LineChart(key=key, title=title, desc=desc, points=points, line=line, area=area, previous="",
                     ticks=ticks, x_labels=x_labels, table=Table(["Time (UTC)", unit.capitalize()], rows),
                     refs=lines, x_caption="Times in UTC")


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    shown: str  # the value as printed next to the bar (may add a unit or a rate)
    percent: float  # of the widest bar
    y: int
    url: str = ""  # the label links there (an entity's page), when set

    @property
    def place(self) -> str:
        """Where the value is printed so that it shows whole on a phone as well: "inside" a wide bar
        (ending at its end), "after" a short one, or, when it fits neither (a long value such as
        "9 no docs · 0 no card · 0 stale" on a middling bar), "label": on the label's line, ending at
        the track's end. Anchored at the bar's end, a value longer than its bar ran out of the SVG on
        the left and lost its first characters."""
        need = len(self.shown) * VALUE_CHAR_PX + VALUE_PAD_PX
        if self.percent >= VALUE_INSIDE and self.percent / 100 * NARROWEST_PX >= need:
            return "inside"
        if (100 - self.percent) / 100 * NARROWEST_PX >= need:
            return "after"
        return "label"

    @property
    def inside(self) -> bool:
        return self.place == "inside"


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
    skipped: int = 0  # reached this stage without every earlier one (not in `value`)


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


def funnel_chart(key: str, title: str, steps: list[tuple], *, unit: str) -> FunnelChart:
    """`steps`: (label, how many reached it through every earlier step[, how many reached it skipping
    one]), in funnel order; widths relative to the first step, so they never grow down the funnel."""
    first = steps[0][1] if steps else 0
    stages = []
    for i, (label, value, *rest) in enumerate(steps):
        share = value / first * 100 if first else 0
        width = max(share, 1.0)  # an empty step still shows where it is
        stages.append(Stage(label=label, value=value, rate=round(share, 1) if first else None,
                            percent=round(width, 2), x=round((100 - width) / 2, 2), y=i * FUNNEL_ROW,
                            skipped=rest[0] if rest else 0))
    desc = "; ".join(f"{s.label}: {s.value} {unit}" + (f" ({s.rate:g}%)" if s.rate is not None else "")
                     + (f", and {s.skipped} more that skipped an earlier step" if s.skipped else "")
                     for s in stages) + "." if stages else "No data."
    table = Table(["Step", unit.capitalize(), "Of the first step", "Skipped an earlier step"],
                  [[s.label, str(s.value), "–" if s.rate is None else f"{s.rate:g}%", str(s.skipped)] for s in stages])
    return FunnelChart(key=key, title=title, desc=desc, stages=stages, height=max(FUNNEL_ROW, len(stages) * FUNNEL_ROW),
                       table=table)
