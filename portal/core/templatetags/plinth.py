"""Template filters every page uses, installed as a builtin (settings TEMPLATES): one date format, one
way to show a span of time (`|duration`).

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

from portal.core import markdown_text

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
    """'just now', '5 minutes ago', 'in 2 days' — the largest unit only, counted from the span rounded
    to the nearest minute: a 7-day token shown the second after it was made expires "in 1 week", not
    "in 6 days" (Django's timesince truncates every unit)."""
    now = now or timezone.now()
    if abs(now - moment) < JUST_NOW:
        return "just now"
    span = moment - now
    now = moment - dt.timedelta(minutes=round(span / dt.timedelta(minutes=1)))
    if moment <= now:
        return f"{timesince(moment, now, depth=1)} ago"
    return f"in {timeuntil(moment, now, depth=1)}"


@register.filter(is_safe=True)
def exact(value, seconds: bool = True) -> str:
    """A moment as its exact UTC time, said so ('2026-12-07 08:05:48 UTC'), for records people compare
    (audit events, incident timelines); '' for no value. `|exact:False` leaves out the seconds."""
    moment = _moment(value)
    if moment is None:
        return ""
    moment = moment.astimezone(dt.UTC)
    return format_html('<time datetime="{}">{} UTC</time>', moment.isoformat(timespec="seconds").replace("+00:00", "Z"),
                       moment.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M"))


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
    """A span read at a glance, in its two largest units: "52 s", "14 min", "2 h 05 min", "3 d 4 h";
    "—" for no value (MTTA/MTTR, run durations)."""
    if seconds is None or seconds == "":
        return "—"
    total = max(0, int(round(float(seconds))))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min"
    return f"{secs} s"


@register.filter
def markdown_plain(value, limit: int = 1000) -> str:
    """Markdown as the one line of text a reader of it rendered would see (`portal.core.markdown_text`),
    from its first `limit` characters: for lists that show an excerpt (`|truncatechars` after it)."""
    return markdown_text.plain(value[:limit]) if isinstance(value, str) else ""
