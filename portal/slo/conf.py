"""SLO settings with their defaults (PLINTH_SLO_<NAME>; PLINTH_PROMETHEUS_URL). Read at call time."""

from __future__ import annotations

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    # Seconds between two evaluations of every SLO (the beat schedule reads it once at start).
    "INTERVAL_SECONDS": 300,
    # One Prometheus query may take this long (seconds) before the evaluation counts Prometheus as down.
    "QUERY_TIMEOUT": 10,
    # Largest OpenSLO file read (bytes).
    "MAX_FILE_BYTES": 256 * 1024,
    # SLOs (objectives) one entity may declare.
    "MAX_PER_ENTITY": 20,
    # Resolution of thresholdMetric SLOs budgeted by Occurrences: every step is one event.
    "THRESHOLD_STEP": "1m",
    # Evaluations kept per SLO (the chart's history); older ones are deleted as new ones arrive.
    "HISTORY_DAYS": 90,
    # Points drawn on the tab's chart (evaluations are thinned to this many, evenly).
    "CHART_POINTS": 60,
}


def get(name: str) -> Any:
    return getattr(settings, f"PLINTH_SLO_{name}", DEFAULTS[name])


def prometheus_url() -> str:
    return (getattr(settings, "PLINTH_PROMETHEUS_URL", "") or "").rstrip("/")
