"""Formatting of SLO numbers: per cents with enough digits for 99.95 %, burn rates, budget amounts."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def pct(value, digits: int = 2) -> str:
    """0.997 → "99.70 %"; None → "—"."""
    if value is None:
        return "—"
    return f"{100 * float(value):.{int(digits)}f} %"


@register.filter
def burn(value) -> str:
    """2.5 → "2.50×"; None → "no data"."""
    return "no data" if value is None else f"{float(value):.2f}×"


@register.filter
def duration(seconds) -> str:
    """Seconds as days, hours and minutes ("1 d 2 h", "36 min", "-12 min")."""
    if seconds is None:
        return "—"
    sign, left = ("-" if seconds < 0 else ""), abs(int(round(float(seconds))))
    days, rest = divmod(left, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    parts = [f"{days} d"] if days else []
    if hours:
        parts.append(f"{hours} h")
    if minutes and not days:
        parts.append(f"{minutes} min")
    return sign + (" ".join(parts) or f"{left} s")


@register.filter
def budget_amount(slo) -> str:
    if slo.budget_amount is None:
        return "—"
    if slo.budget_unit == "seconds":
        return duration(slo.budget_amount)
    return f"{slo.budget_amount:,.1f} events".replace(".0 events", " events")
