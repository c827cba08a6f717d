"""Alertmanager's webhook payload (version "4"), checked and turned into plain values before anything
is written. Pure: no database. Each refusal names the field (`alerts[3].labels`) and says what was
expected; a notification with more alerts than `MAX_ALERTS` is refused whole (413) before any alert is
looked at, so the work per request is bounded.

What is read (https://prometheus.io/docs/alerting/latest/configuration/#webhook_config):
`version`, `groupKey`, `status`, `receiver`, `groupLabels`, `commonLabels`, `commonAnnotations`,
`externalURL`, `truncatedAlerts`, and per alert `status`, `labels`, `annotations`, `startsAt`,
`endsAt`, `generatorURL`, `fingerprint`. Other fields are ignored, as are labels Plinth does not map.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from . import conf
from .models import AlertStatus

STATUSES = (AlertStatus.FIRING, AlertStatus.RESOLVED)
_FRACTION = re.compile(r"(\.\d{6})\d+")  # Go writes nanoseconds; Python reads up to microseconds
ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's zero time: "not set"


class PayloadError(Exception):
    """A refusal naming the field; `status` 400 (malformed) or 413 (too many alerts)."""

    def __init__(self, field: str, message: str, *, status: int = 400) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.message, self.status = field, message, status


@dataclass(frozen=True)
class Alert:
    status: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime
    ends_at: datetime | None
    generator_url: str
    fingerprint: str

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "")[:200]

    @property
    def severity(self) -> str:
        return conf.severity_for(self.labels.get(conf.get("SEVERITY_LABEL")))

    @property
    def entity_ref(self) -> str:
        return self.labels.get(conf.get("ENTITY_LABEL"), "").strip()[:200]


@dataclass(frozen=True)
class Notification:
    receiver: str
    status: str
    group_key: str
    group_labels: dict[str, str]
    common_labels: dict[str, str]
    common_annotations: dict[str, str]
    external_url: str
    truncated: int
    alerts: list[Alert] = field(default_factory=list)

    @property
    def dedup_key(self) -> str:
        """One incident per Alertmanager group at a time (groupKey names the route and group labels)."""
        return "alertmanager:" + hashlib.sha256(self.group_key.encode()).hexdigest()[:40]

    @property
    def title(self) -> str:
        name = self.common_labels.get("alertname") or self.group_labels.get("alertname") or ""
        summary = self.common_annotations.get("summary") or self.common_annotations.get("title") or ""
        if not name:
            names = sorted({a.name for a in self.alerts if a.name})
            name = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        text = f"{name}: {summary}" if name and summary else (name or summary or "Alertmanager alert")
        return text[: conf.get("MAX_TITLE_CHARS")]

    @property
    def summary(self) -> str:
        return self.common_annotations.get("description", "")[: conf.get("MAX_TEXT_CHARS")]


def _text(value: Any, where: str, *, required: bool = False, limit: int = 1000) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise PayloadError(where, f"must be a string, not {_type(value)}")
    if required and not value.strip():
        raise PayloadError(where, "must not be empty")
    if len(value) > limit:
        raise PayloadError(where, f"is {len(value):,} characters long; at most {limit:,} are accepted")
    return value


def _type(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__)


def _string_map(value: Any, where: str) -> dict[str, str]:
    """Labels or annotations: an object of strings. Long values are shortened, not refused (an alert's
    description may be long; Alertmanager would not resend a refused notification)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PayloadError(where, f"must be an object of strings, not {_type(value)}")
    if len(value) > conf.get("MAX_LABELS"):
        raise PayloadError(where, f"has {len(value):,} entries; at most {conf.get('MAX_LABELS'):,} are accepted")
    limit = int(conf.get("MAX_VALUE_CHARS"))
    out = {}
    for key, item in value.items():
        if not isinstance(item, str):
            raise PayloadError(f"{where}.{str(key)[:60]}", f"must be a string, not {_type(item)}")
        out[str(key)[:200]] = item if len(item) <= limit else item[: limit - 1] + "…"
    return out


def _time(value: Any, where: str, *, required: bool) -> datetime | None:
    if value in (None, "", ZERO_TIME) and not required:
        return None
    if not isinstance(value, str):
        raise PayloadError(where, f"must be an RFC 3339 time (a string), not {_type(value)}")
    if value == ZERO_TIME:
        raise PayloadError(where, "is Go's zero time; a start time is required")
    text = _FRACTION.sub(r"\1", value.strip()[:64])
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise PayloadError(where, f"{value[:40]!r} is not an RFC 3339 time (e.g. 2026-12-03T10:00:00Z)") from None
    if parsed.tzinfo is None:
        raise PayloadError(where, f"{value[:40]!r} has no time zone offset")
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:30:00+01:00, 9999-12-31T23:59:59-01:00: no such UTC time
        raise PayloadError(where, f"{value[:40]!r} is outside the years 1–9999 in UTC") from None


def _status(value: Any, where: str) -> str:
    if value not in STATUSES:
        shown = repr(value)[:40] if isinstance(value, str) else _type(value)
        raise PayloadError(where, f"must be 'firing' or 'resolved', not {shown}")
    return str(value)


def _fingerprint(value: Any, where: str, labels: dict[str, str]) -> str:
    if value in (None, ""):
        # Alertmanager always sends one; other senders get one from the labels (stable across calls).
        canonical = "\x00".join(f"{k}\x01{v}" for k, v in sorted(labels.items()))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]
    text = _text(value, where, limit=64)
    if not re.fullmatch(r"[A-Za-z0-9_.:-]+", text):
        raise PayloadError(where, "must be letters, digits, '.', '_', ':' or '-' (Alertmanager sends hex)")
    return text


def _http_url(value: str) -> str:
    """Only http(s) addresses are kept: the incident page links them."""
    return value if re.match(r"https?://[^\s]+$", value, re.IGNORECASE) else ""


def _alert(raw: Any, where: str) -> Alert:
    if not isinstance(raw, dict):
        raise PayloadError(where, f"must be an object, not {_type(raw)}")
    labels = _string_map(raw.get("labels"), f"{where}.labels")
    status = _status(raw.get("status"), f"{where}.status")
    return Alert(
        status=status, labels=labels, annotations=_string_map(raw.get("annotations"), f"{where}.annotations"),
        starts_at=_time(raw.get("startsAt"), f"{where}.startsAt", required=True),
        ends_at=_time(raw.get("endsAt"), f"{where}.endsAt", required=False) if status == AlertStatus.RESOLVED else None,
        generator_url=_text(raw.get("generatorURL"), f"{where}.generatorURL")[:1000],
        fingerprint=_fingerprint(raw.get("fingerprint"), f"{where}.fingerprint", labels),
    )


def parse(body: Any) -> Notification:
    """The notification, or PayloadError naming the first bad field."""
    if not isinstance(body, dict):
        raise PayloadError("body", f"must be a JSON object (Alertmanager's webhook payload), not {_type(body)}")
    version = body.get("version")
    if version != "4":
        raise PayloadError("version", f"must be \"4\" (Alertmanager's webhook payload version), not {str(version)[:20]!r}")
    alerts = body.get("alerts")
    if not isinstance(alerts, list):
        raise PayloadError("alerts", f"must be an array of alerts, not {_type(alerts)}")
    most = int(conf.get("MAX_ALERTS"))
    if len(alerts) > most:
        raise PayloadError("alerts", f"{len(alerts):,} alerts in one notification; at most {most:,} are "
                           f"accepted. Set max_alerts: {most} in Alertmanager's webhook_config (the rest are "
                           "then counted in truncatedAlerts)", status=413)
    if not alerts:
        raise PayloadError("alerts", "must hold at least one alert")
    truncated = body.get("truncatedAlerts", 0)
    if truncated is None:
        truncated = 0
    if isinstance(truncated, bool) or not isinstance(truncated, int) or truncated < 0:
        raise PayloadError("truncatedAlerts", f"must be a whole number ≥ 0, not {_type(truncated)}")
    return Notification(
        receiver=_text(body.get("receiver"), "receiver", limit=200),
        status=_status(body.get("status"), "status"),
        group_key=_text(body.get("groupKey"), "groupKey", required=True, limit=4000),
        group_labels=_string_map(body.get("groupLabels"), "groupLabels"),
        common_labels=_string_map(body.get("commonLabels"), "commonLabels"),
        common_annotations=_string_map(body.get("commonAnnotations"), "commonAnnotations"),
        external_url=_http_url(_text(body.get("externalURL"), "externalURL", limit=500)),
        truncated=truncated,
        alerts=[_alert(raw, f"alerts[{i}]") for i, raw in enumerate(alerts)],
    )
