"""MTTA and MTTR as KPI queries of the capability canvas (portal/insights/canvas.yaml names them).
Registered into insights' query registry when this app is ready, so insights never imports incidents."""

from __future__ import annotations

from portal.insights.kpis import KpiError, Period, kpi

from .models import Severity


def _severity(value: str) -> str:
    if value and value not in Severity.values:
        raise KpiError(f"parameter 'severity' must be one of {', '.join(Severity.values)}, not {value!r}")
    return value


@kpi("incident_mtta")
def incident_mtta(period: Period, *, severity: str = "") -> float | None:
    """Mean time to acknowledge (hours) of the incidents acknowledged in the period: opened → first
    acknowledgement (optionally one severity, e.g. sev1)."""
    from .selectors import figures, period_rows

    return figures(period_rows(period.start, period.end, severity=_severity(severity),
                               field="acknowledged_at")).mtta_hours


@kpi("incident_mttr")
def incident_mttr(period: Period, *, severity: str = "") -> float | None:
    """Mean time to resolve (hours) of the incidents resolved in the period: opened → resolution
    (optionally one severity, e.g. sev1)."""
    from .selectors import figures, period_rows

    return figures(period_rows(period.start, period.end, severity=_severity(severity))).mttr_hours
