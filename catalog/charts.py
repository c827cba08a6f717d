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
