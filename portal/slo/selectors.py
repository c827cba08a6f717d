"""Reads of the SLO app. SLO rows carry their entity's team and visibility, so lists are filtered by the
one permission rule (portal.accounts.permissions) without a join."""

from __future__ import annotations

from django.db.models import QuerySet

from portal.accounts import permissions
from portal.core.db import values_in

from . import compute, conf
from .models import SLO, Evaluation, SLOFile
from .openslo import annotation_path


def visible_slos(user, *, entity=None, team: str = "") -> QuerySet:
    qs = permissions.filter_visible(SLO.objects.all(), user)
    if entity is not None:
        qs = qs.filter(entity=entity)
    if team:
        qs = qs.filter(owner_team__name=team)
    return qs.select_related("entity", "owner_team").order_by("id")


def entity_slos(entity) -> dict:
    """The tab: the file's state, each SLO objective with its burn rates against the alert thresholds,
    and its history thinned for the chart (three queries)."""
    from portal.insights import charts

    file = SLOFile.objects.filter(entity=entity).first()
    slos = list(SLO.objects.filter(entity=entity).order_by("name", "objective"))
    history: dict[int, list[Evaluation]] = {s.pk: [] for s in slos}
    if slos:
        for ev in Evaluation.objects.filter(slo__in=slos).order_by("slo_id", "at").only(
                "slo_id", "at", "sli", "budget_remaining"):
            history[ev.slo_id].append(ev)
    points = max(2, int(conf.get("CHART_POINTS")))
    out = []
    for slo in slos:
        evs = _thin(history[slo.pk], points)
        series_budget = [(f"{e.at:%m-%d %H:%M}", round(100 * max(e.budget_remaining or 0, 0), 2)) for e in evs]
        series_sli = [(f"{e.at:%m-%d %H:%M}", round(100 * (e.sli or 0), 3)) for e in evs]
        out.append({
            "slo": slo,
            "burns": [{"window": w, "value": slo.burn.get(w),
                       "alerts": [a for a in slo.alerts if a["long"] == w]} for w in compute.SHOWN_WINDOWS],
            "budget_chart": charts.line_chart(f"slo-{slo.pk}-budget", "Error budget remaining (%)", series_budget,
                                              unit="per cent") if evs else None,
            "sli_chart": charts.line_chart(f"slo-{slo.pk}-sli", "SLI (%)", series_sli, unit="per cent",
                                           low=_floor(series_sli, slo.target)) if evs else None,
        })
    return {"file": file, "slos": out, "slo_path": annotation_path(entity.annotations)}


def _floor(series: list[tuple[str, float]], target: float) -> float:
    """The SLI chart's lowest value: a little under the target and the lowest point, in whole per cent."""
    lowest = min([v for _, v in series] + [100 * target])
    return max(0.0, float(int(lowest) - 1))


def _thin(rows: list, points: int) -> list:
    if len(rows) <= points:
        return rows
    step = (len(rows) - 1) / (points - 1)
    return [rows[round(i * step)] for i in range(points)]


BADGE_BURN_WINDOW = "1h"


def objective_state(sli, target, budget_remaining, burn, alerts, problem) -> dict:
    """One objective as badges and rollups show it: met, budget left, the burn rate over
    BADGE_BURN_WINDOW, whether an alert holds, whether its figures are stale."""
    return {"meeting": sli is not None and sli >= target, "budget": budget_remaining,
            "burn": burn.get(BADGE_BURN_WINDOW) if isinstance(burn, dict) else None,
            "alerting": any(a.get("firing") for a in alerts or [] if isinstance(a, dict)),
            "stale": bool(problem)}


STATE_COLUMNS = ("sli", "target", "budget_remaining", "burn", "alerts", "problem")


def badge(entity) -> dict | None:
    """The header badge: how many objectives, how many met, the least budget left, the fastest burn over
    1h and whether an alert holds (one query; an entity has at most PLINTH_SLO_MAX_PER_ENTITY objectives)."""
    states = [objective_state(*row) for row in SLO.objects.filter(entity=entity).values_list(*STATE_COLUMNS)]
    if not states:
        return None
    budgets = [s["budget"] for s in states if s["budget"] is not None]
    burns = [s["burn"] for s in states if s["burn"] is not None]
    return {"n": len(states), "meeting": sum(s["meeting"] for s in states),
            "budget": min(budgets) if budgets else None, "stale": sum(s["stale"] for s in states),
            "burn": max(burns) if burns else None, "alerting": any(s["alerting"] for s in states)}


def scorecard_facts(entity_ids: list[int]) -> dict[int, dict]:
    """The `slo` scorecard fact per entity that has SLOs (one query whatever the batch's size):
    {"defined": n, "meeting": n, "budget_remaining_min": fraction or None, "stale": bool}."""
    out: dict[int, dict] = {}
    for entity_id, sli, target, remaining, problem in (
            SLO.objects.filter(entity_id__in=values_in(entity_ids)).values_list("entity_id", "sli", "target",
                                                                    "budget_remaining", "problem")):
        fact = out.setdefault(entity_id, {"defined": 0, "meeting": 0, "budget_remaining_min": None, "stale": False})
        fact["defined"] += 1
        if sli is not None and sli >= target:
            fact["meeting"] += 1
        if remaining is not None:
            low = fact["budget_remaining_min"]
            fact["budget_remaining_min"] = round(remaining if low is None else min(low, remaining), 6)
        if problem or sli is None:
            fact["stale"] = True
    return out
