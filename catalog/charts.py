"""Server-rendered line charts for model pages: one small SVG per metric across versions.

Only geometry is computed here (numbers in a fixed viewBox); the template draws it, so the page needs
no script and no chart library, and the CSP stays as strict as everywhere else.
"""

from __future__ import annotations

from dataclasses import dataclass

WIDTH, HEIGHT = 320, 120
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 44, 12, 12, 24
INSET = 12  # the first and last points keep clear of the value labels and the edge


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    version: str
    value: float
    label: str  # the version with its aliases, e.g. "v3 @champion"
    aliased: bool


@dataclass(frozen=True)
class Chart:
    metric: str
    points: list[Point]
    path: str
    y_min: float
    y_max: float
    width: int = WIDTH
    height: int = HEIGHT
    baseline: float = HEIGHT - PAD_BOTTOM
    left: float = PAD_LEFT
    right: float = WIDTH - PAD_RIGHT
    top: float = PAD_TOP

    @property
    def summary(self) -> str:
        """What the chart shows, for screen readers (the SVG is an image with this label)."""
        values = ", ".join(f"{p.label}: {p.value:.4g}" for p in self.points)
        return f"{self.metric} by version — {values}"


def metric_chart(metric: str, versions) -> Chart | None:
    """`versions`: ModelVersion rows in any order. None when fewer than one version logged the metric."""
    rows = sorted((v for v in versions if _number(v.metrics.get(metric)) is not None),
                  key=lambda v: (v.version_number, v.version))
    if not rows:
        return None
    values = [float(v.metrics[metric]) for v in rows]
    low, high = min(values), max(values)
    if high == low:  # a flat line in the middle rather than a division by zero
        low, high = low - 0.5 * (abs(low) or 1) * 0.1, high + 0.5 * (abs(high) or 1) * 0.1
    inner = WIDTH - PAD_LEFT - PAD_RIGHT - 2 * INSET
    span_x = inner / max(1, len(rows) - 1)
    span_y = HEIGHT - PAD_TOP - PAD_BOTTOM
    points = []
    for i, (row, value) in enumerate(zip(rows, values, strict=True)):
        x = PAD_LEFT + INSET + (i * span_x if len(rows) > 1 else inner / 2)
        y = PAD_TOP + (high - value) / (high - low) * span_y
        aliases = " ".join(f"@{a}" for a in row.aliases or [])
        points.append(Point(round(x, 1), round(y, 1), row.version, value,
                            f"v{row.version}" + (f" {aliases}" if aliases else ""), bool(row.aliases)))
    path = "M" + " L".join(f"{p.x},{p.y}" for p in points)
    return Chart(metric=metric, points=points, path=path, y_min=low, y_max=high)


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


# -- the compare view: one chart per metric over the compared versions ------------------------------
CMP_WIDTH, CMP_HEIGHT = 360, 150
CMP_LEFT, CMP_RIGHT, CMP_TOP, CMP_BOTTOM = 48, 12, 12, 28


@dataclass(frozen=True)
class Series:
    index: int  # the version's column: its colour and dash pattern (series-0 is the baseline)
    label: str
    path: str
    points: list[tuple[float, float]]
    last: float


@dataclass(frozen=True)
class Bar:
    index: int
    label: str
    x: float
    y: float
    width: float
    height: float
    value: float


@dataclass(frozen=True)
class CompareChart:
    metric: str
    kind: str  # "series" (metric history over steps) or "dots" (final values)
    series: list[Series]
    bars: list[Bar]
    y_min: float
    y_max: float
    x_max: int
    summary: str
    width: int = CMP_WIDTH
    height: int = CMP_HEIGHT
    left: float = CMP_LEFT
    right: float = CMP_WIDTH - CMP_RIGHT
    top: float = CMP_TOP
    baseline: float = CMP_HEIGHT - CMP_BOTTOM


def _span(values: list[float]) -> tuple[float, float]:
    low, high = min(values), max(values)
    if high == low:
        pad = (abs(low) or 1) * 0.05
        return low - pad, high + pad
    return low, high


def compare_chart(metric: str, versions) -> CompareChart | None:
    """The metric for each compared version: its logged series over steps when any version has one
    (MLflow's metric history), else a dot per version's final value. None when no version logged it."""
    finals = [(i, v, _number((v.metrics or {}).get(metric))) for i, v in enumerate(versions)]
    finals = [f for f in finals if f[2] is not None]
    if not finals:
        return None
    histories = {i: (v.experiment_run.history or {}).get(metric) if v.experiment_run else None for i, v, _ in finals}
    inner_w = CMP_WIDTH - CMP_LEFT - CMP_RIGHT
    inner_h = CMP_HEIGHT - CMP_TOP - CMP_BOTTOM
    if any(h and len(h) > 1 for h in histories.values()):
        series_points = {i: (histories[i] if histories[i] else [[0, value]]) for i, _, value in finals}
        low, high = _span([p[1] for pts in series_points.values() for p in pts])
        x_max = max(1, max(p[0] for pts in series_points.values() for p in pts))
        series = []
        for i, v, value in finals:
            pts = [(round(CMP_LEFT + s / x_max * inner_w, 1), round(CMP_TOP + (high - val) / (high - low) * inner_h, 1))
                   for s, val in series_points[i]]
            series.append(Series(i, f"v{v.version}", "M" + " L".join(f"{x},{y}" for x, y in pts), pts, value))
        summary = f"{metric} over steps — " + ", ".join(f"{s.label}: last {s.last:.4g}" for s in series)
        return CompareChart(metric, "series", series, [], low, high, x_max, summary)
    # Final values as dots on a zoomed axis (bars from zero would hide a 0.91 vs 0.93 difference),
    # padded so that no dot sits on the axis.
    low, high = _span([value for _, _, value in finals])
    pad = (high - low) * 0.15
    low, high = low - pad, high + pad
    slot = inner_w / len(versions)
    bars = [Bar(i, f"v{v.version}", round(CMP_LEFT + (i + 0.5) * slot, 1),
                round(CMP_TOP + (high - value) / (high - low) * inner_h, 1), round(slot, 1), 0, value)
            for i, v, value in finals]
    summary = f"{metric} by version — " + ", ".join(f"{b.label}: {b.value:.4g}" for b in bars)
    return CompareChart(metric, "dots", [], bars, low, high, 0, summary)
