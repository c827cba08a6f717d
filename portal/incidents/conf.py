"""Incident settings with their defaults (PLINTH_INCIDENTS_<NAME>). Read at call time, never at import."""

from __future__ import annotations

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    # Alerts in one Alertmanager notification: more is refused whole (413, nothing stored). Set
    # `max_alerts` in Alertmanager's webhook_config to this number: it then sends the first ones and
    # counts the rest in `truncatedAlerts` (docs/operations.md, "Incidents").
    "MAX_ALERTS": 1000,
    # The webhook's body cap in bytes (1,000 alerts with long annotations fit comfortably).
    "MAX_BODY_BYTES": 4 * 1024 * 1024,
    # The alert label naming the catalog entity an alert is about, e.g. component:default/fraud-api.
    "ENTITY_LABEL": "plinth_entity",
    # The alert label holding the severity, and its values per incident severity (lower case).
    "SEVERITY_LABEL": "severity",
    "SEVERITY_MAP": {
        "sev1": ["critical", "page", "sev1", "p1", "emergency"],
        "sev2": ["error", "high", "major", "sev2", "p2"],
        "sev3": ["warning", "warn", "minor", "sev3", "p3"],
        "sev4": ["info", "low", "none", "sev4", "p4"],
    },
    # An alert without the label, or with a value not listed above.
    "DEFAULT_SEVERITY": "sev3",
    # Labels and annotations kept per alert, and the longest value kept (longer ones are shortened).
    "MAX_LABELS": 128,
    "MAX_VALUE_CHARS": 2000,
    # The window of the MTTA/MTTR figures on entity pages and in the scorecard fact.
    "METRICS_DAYS": 90,
    # Resolved incidents listed on an entity's Incidents tab.
    "HISTORY": 50,
    "MAX_TITLE_CHARS": 200,
    "MAX_TEXT_CHARS": 10000,
}


def get(name: str) -> Any:
    return getattr(settings, f"PLINTH_INCIDENTS_{name}", DEFAULTS[name])


def severity_for(value: str | None) -> str:
    """The incident severity an alert's severity label means."""
    wanted = (value or "").strip().lower()
    for severity, words in get("SEVERITY_MAP").items():
        if wanted in words:
            return severity
    return get("DEFAULT_SEVERITY")


def body_limit() -> int:
    return int(get("MAX_BODY_BYTES"))
