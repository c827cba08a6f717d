"""`{{ seconds|duration }}`: MTTA/MTTR and other spans, read at a glance ("2 h 05 min", "3 d 4 h")."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def duration(seconds) -> str:
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
