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
def count(value) -> str:
    """A count of events or slices, whole and with thousands separators: 2009145 → "2,009,145". Prometheus'
    increase() extrapolates to the window's edges, so counts may come fractional: they are rounded and
    marked approximate ("≈ 3,350"); None → "—"."""
    if value is None:
        return "—"
    value = float(value)
    whole = round(value)
    return f"{whole:,}" if abs(value - whole) < 1e-6 else f"≈ {whole:,}"


ESTIMATE_NOTE = ("Prometheus' increase() extrapolates counts to the window's edges: they are estimates, "
                 "rounded to whole events")


@register.filter
def events_line(slo) -> str:
    """ "2,009,145 good of 2,015,875 events"; one "≈" in front when either count is an estimate."""
    good, total = count(slo.good), count(slo.total)
    rough = good.startswith("≈") or total.startswith("≈")
    return f"{'≈ ' if rough else ''}{good.removeprefix('≈ ')} good of {total.removeprefix('≈ ')} events"


@register.filter
def estimated(slo) -> bool:
    """Whether the SLO's event counts or its budget in events are estimates (fractional)."""
    return any(v is not None and abs(v - round(v)) >= 1e-6 for v in (slo.good, slo.total, slo.budget_amount)) \
        and slo.budget_unit == "events"


@register.simple_tag
def estimate_note() -> str:
    return ESTIMATE_NOTE


@register.filter
def budget_amount(slo) -> str:
    if slo.budget_amount is None:
        return "—"
    if slo.budget_unit == "seconds":
        return duration(slo.budget_amount)
    return f"{count(slo.budget_amount)} events"
