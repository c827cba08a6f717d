"""Reads of the SLO app. SLO rows carry their entity's team and visibility, so lists are filtered by the
one permission rule (portal.accounts.permissions) without a join."""

from __future__ import annotations

import math

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
        out.append({
            "slo": slo,
            "burns": [{"window": w, "value": slo.burn.get(w),
                       "alerts": [a for a in slo.alerts if a["long"] == w]} for w in compute.SHOWN_WINDOWS],
            **(_charts(slo, evs) if evs else {"budget_chart": None, "sli_chart": None}),
        })
    return {"file": file, "slos": out, "slo_path": annotation_path(entity.annotations)}


def _charts(slo: SLO, evs: list[Evaluation]) -> dict:
    """The SLI and the budget left over time (x proportional to time, in UTC), the SLI against its
    objective and the budget against 0 % (a dashed line each). An overspent budget goes below 0: the
    axis then runs from -100 % (what lies further down sits on it)."""
    from portal.insights import charts

    sli = [(e.at, round(100 * (e.sli or 0), 3)) for e in evs]
    budget = [(e.at, round(100 * (e.budget_remaining or 0), 2)) for e in evs]
    objective = 100 * slo.target
    return {
        "sli_chart": charts.time_chart(f"slo-{slo.pk}-sli", "SLI (%)", sli, unit="per cent", digits=3,
                                       low=_floor(sli, slo.target),
                                       refs=[(objective, f"objective {objective:.2f} %")]),
        "budget_chart": charts.time_chart(f"slo-{slo.pk}-budget", "Error budget remaining (%)", budget,
                                          unit="per cent", digits=1, high=100,
                                          low=-100 if min(v for _, v in budget) < 0 else 0,
                                          refs=[(0, "0 %: budget spent")]),
    }


def _floor(series: list[tuple], target: float) -> float:
    """The SLI chart's lowest value: a little under the target and the lowest point, in whole per cent."""
    lowest = min([v for _, v in series] + [100 * target])
    return max(0.0, float(int(lowest) - 1))


def _thin(rows: list, points: int) -> list:
    """At most `points` evaluations spread evenly over time, not over their count: the span from the first
    to the last is cut into `points` - 1 equal slots and each slot keeps its latest evaluation (an hour of
    five-minute evaluations, or two in the same minute, become one point; a gap stays a gap). The first
    slot holds the first evaluation (or the latest of those at its very time), the last one the last."""
    if len(rows) <= 2:
        return rows
    first, last = rows[0].at, rows[-1].at
    span = (last - first).total_seconds()
    if span <= 0:
        return [rows[-1]]
    slot = span / (points - 1)
    kept = {0: rows[0]}
    for row in rows[1:]:
        kept[math.ceil((row.at - first).total_seconds() / slot)] = row  # the latest one of its slot
    return list(kept.values())


BADGE_BURN_WINDOW = "1h"


def objective_state(sli, target, budget_remaining, burn, alerts, problem) -> dict:
    """One objective as badges and rollups show it: met, budget left, the burn rate over
    BADGE_BURN_WINDOW, whether an alert holds (and the gravest that does: "page" or "ticket"), whether
    its figures are stale."""
    firing = {a.get("severity") for a in alerts or [] if isinstance(a, dict) and a.get("firing")}
    return {"meeting": sli is not None and sli >= target, "budget": budget_remaining,
            "burn": burn.get(BADGE_BURN_WINDOW) if isinstance(burn, dict) else None,
            "alerting": bool(firing), "severity": "page" if "page" in firing else "ticket" if firing else None,
            "missed": sli is not None and sli < target, "stale": bool(problem)}


STATE_COLUMNS = ("sli", "target", "budget_remaining", "burn", "alerts", "problem")


def badge(entity) -> dict | None:
    """The header badge: how many objectives, how many met (and missed: evaluated below their target),
    the least budget left, the fastest burn over 1h, whether an alert holds and the gravest one that
    does, and `tone`, the badge's colour as the SLOs tab tells it: "err" for a page alert or a missed
    objective, "warn" for a ticket alert or stale figures, else "ok" (one query; an entity has at most
    PLINTH_SLO_MAX_PER_ENTITY objectives)."""
    states = [objective_state(*row) for row in SLO.objects.filter(entity=entity).values_list(*STATE_COLUMNS)]
    if not states:
        return None
    budgets = [s["budget"] for s in states if s["budget"] is not None]
    burns = [s["burn"] for s in states if s["burn"] is not None]
    severities = {s["severity"] for s in states}
    severity = "page" if "page" in severities else "ticket" if "ticket" in severities else None
    missed = sum(s["missed"] for s in states)
    stale = sum(s["stale"] for s in states)
    tone = "err" if severity == "page" or missed else "warn" if severity or stale else "ok"
    return {"n": len(states), "meeting": sum(s["meeting"] for s in states), "missed": missed,
            "budget": min(budgets) if budgets else None, "stale": stale,
            "burn": max(burns) if burns else None, "alerting": severity is not None, "severity": severity,
            "tone": tone}


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
