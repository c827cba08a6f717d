"""Scorecard settings with their defaults (PLINTH_SCORECARDS_<NAME>). Read at call time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings

APP_DIR = Path(__file__).resolve().parent

DEFAULTS: dict[str, Any] = {
    # Where scorecard definitions (YAML) and their check rules (Rego, under checks/) live.
    "DIR": APP_DIR / "definitions",
    # Entities evaluated per batch: one fact read (a constant number of queries) per batch.
    "BATCH": 2000,
    # Distinct fact projections sent to regopy per query (its evaluation grows faster than linearly with
    # the input's length, so many small queries beat one large one).
    "REGO_CHUNK": 64,
    # Changed entities are evaluated at most this often (seconds): a burst of changes is one task.
    "DEBOUNCE_SECONDS": 5,
    # Today's counts (the pages' rollups) are refreshed this long after an evaluation of changed entities
    # (seconds): the evaluations of a burst share one refresh.
    "ROLLUP_DELAY_SECONDS": 10,
    # Longest manual-check justification (characters) and longest expiry (days).
    "MAX_JUSTIFICATION_CHARS": 2000,
    "MAX_MANUAL_DAYS": 365,
}


def get(name: str) -> Any:
    return getattr(settings, f"PLINTH_SCORECARDS_{name}", DEFAULTS[name])
