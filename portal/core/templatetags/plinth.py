"""Template filters every page uses, installed as a builtin (settings TEMPLATES): one date format.

`{{ value|when }}` renders a moment as relative text ("3 hours ago", "in 2 days") inside
`<time datetime="…" title="2026-12-02 17:19 UTC">`, so the exact time is one hover away and the
machine-readable value is there for assistive technology and tests. Pages never format dates otherwise.
"""

from __future__ import annotations

import datetime as dt

from django import template
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.html import format_html
from django.utils.timesince import timesince, timeuntil

register = template.Library()
JUST_NOW = dt.timedelta(seconds=60)


def _moment(value) -> dt.datetime | None:
    if isinstance(value, str):  # the audit trail keeps ISO text
        value = parse_datetime(value.strip())
    if isinstance(value, dt.datetime):
        return value if timezone.is_aware(value) else timezone.make_aware(value, dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    return None


def relative(moment: dt.datetime, now: dt.datetime | None = None) -> str:
    """'just now', '5 minutes ago', 'in 2 days' — the largest unit only."""
    now = now or timezone.now()
    if abs(now - moment) < JUST_NOW:
        return "just now"
    if moment <= now:
        return f"{timesince(moment, now, depth=1)} ago"
    return f"in {timeuntil(moment, now, depth=1)}"


@register.filter(is_safe=True)
def when(value) -> str:
    """A moment as relative text with the exact UTC time on hover; '' for no value (use |default)."""
    moment = _moment(value)
    if moment is None:
        return ""
    exact = moment.astimezone(dt.UTC)
    return format_html(
        '<time datetime="{}" title="{}">{}</time>',
        exact.isoformat(timespec="seconds").replace("+00:00", "Z"),
        exact.strftime("%Y-%m-%d %H:%M UTC"),
        relative(exact),
    )


@register.filter
def duration(seconds) -> str:
    """A length of time in its two largest units: '52 s', '14 min', '14 min 5 s', '1 h 2 min', '2 d 3 h';
    '' for no value (use |default)."""
    if seconds is None or seconds == "":
        return ""
    try:
        total = max(0, round(float(seconds)))
    except (TypeError, ValueError):
        return ""
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if total >= size or (unit == "s" and not parts):
            parts.append(f"{total // size} {unit}")
            total %= size
        elif parts:
            parts.append("")  # a zero unit after a larger one still counts as one of the two
        if len(parts) == 2:
            break
    return " ".join(p for p in parts if p)
