"""`manage.py check`: the shipped capability canvas loads and validates (insights.E001, one error per
problem with its line and path); a KPI naming a query the registry lacks is a warning (insights.W001):
the page would show it as broken."""

from __future__ import annotations

from django.core import checks

from . import canvas


@checks.register("insights")
def canvas_is_valid(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    try:
        data = canvas.load()
    except canvas.CanvasInvalid as exc:
        return [checks.Error(str(problem), hint="Fix the capability canvas (docs/insights.md#capability-canvas).",
                             id="insights.E001") for problem in exc.problems]
    return [checks.Warning(f"{canvas.canvas_path().name}: {problem}", id="insights.W001")
            for problem in canvas.unknown_queries(data)]
