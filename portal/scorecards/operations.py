"""A team's operations at a glance: each of its entities' scorecard levels, SLOs (budget left, burn
rate, alerts holding), open incidents and cost of the latest month against its declared value, and the
team's totals — cost against its budget. Shown on the team page (/teams/<name>/) and on the team's Group
entity page.

It lives in the scorecards app because scorecards already join the other three apps' figures (as facts):
the reads go through their models with a constant number of queries (nine, whatever the number of
entities; tests/scorecards/test_operations.py holds it). Everything follows the reader's visibility: the
entities are the catalog's visible ones, incidents are filtered like the incident pages, costs like the
cost pages (another team's private entity is left out and counted by the cost pages, not here).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Sum

from portal.accounts import permissions

from . import definitions
from .models import Result

KINDS = ("model", "component", "api", "pipeline", "featureset", "dataset")
LIMIT = 200  # entities per team listed (by kind and name); the totals say when there are more


@dataclass
class EntityOps:
    """One entity's line of the rollup."""

    entity: object
    levels: list[tuple[str, str, int]] = field(default_factory=list)  # (scorecard title, level or "", rank)
    slos: list[dict] = field(default_factory=list)
    incidents: set = field(default_factory=set)  # ids of the unresolved incidents linking it
    worst: str | None = None
    cost: dict[str, Decimal] = field(default_factory=dict)  # currency → the month's effective cost
    value: object = None  # portal.costs.roi.Value for models declaring one

    @property
    def slo_met(self) -> int:
        return sum(1 for s in self.slos if s["meeting"])

    @property
    def budget_min(self) -> float | None:
        values = [s["budget"] for s in self.slos if s["budget"] is not None]
        return min(values) if values else None

    @property
    def burn_max(self) -> float | None:
        values = [s["burn"] for s in self.slos if s["burn"] is not None]
        return max(values) if values else None

    @property
    def burning(self) -> bool:
        return any(s["alerting"] for s in self.slos)

    @property
    def value_cost(self) -> Decimal | None:
        if self.value is None or not self.value.ok:
            return None
        return self.cost.get(self.value.currency)

    @property
    def ratio(self) -> float | None:
        from portal.costs import roi

        return None if self.value is None else roi.ratio(self.value, self.value_cost)


_LATEST = object()


def entity_operations(user, entities: list, *, month=_LATEST, cards=None) -> list[EntityOps]:
    """The rollup line of each entity (already visible to `user`), in the given order: six queries (five
    when the caller gives the cost `month`, None for no cost). `cards`: the scorecard definitions, when
    the caller has them."""
    from catalog.models import Entity
    from portal.costs import roi
    from portal.costs import selectors as cost_selectors
    from portal.costs.models import Allocation, Bucket
    from portal.incidents.models import ACTIVE, IncidentEntity
    from portal.slo import selectors as slo_selectors
    from portal.slo.models import SLO

    rows = {e.id: EntityOps(entity=e) for e in entities}
    ids = list(rows)
    if not ids:
        return []
    titles = {c.name: c.title for c in (definitions.load_all() if cards is None else cards)}
    for entity_id, card, level, rank in (Result.objects.filter(entity_id__in=ids).order_by("scorecard")
                                         .values_list("entity_id", "scorecard", "level", "rank")):
        rows[entity_id].levels.append((titles.get(card, card), level, rank))
    for entity_id, *values in (SLO.objects.filter(entity_id__in=ids).order_by("id")
                               .values_list("entity_id", *slo_selectors.STATE_COLUMNS)):
        rows[entity_id].slos.append(slo_selectors.objective_state(*values))
    for entity_id, incident_id, severity in (
            IncidentEntity.objects.filter(entity_id__in=ids, incident__status__in=ACTIVE)
            .filter(permissions.visible_q(user, prefix="incident__"))
            .values_list("entity_id", "incident_id", "incident__severity")):
        line = rows[entity_id]
        line.incidents.add(incident_id)
        line.worst = min(line.worst or severity, severity)  # sev1 < sev2 < …
    if month is _LATEST:
        month = next(iter(cost_selectors.months(user)), None)
    if month is not None:
        for r in (Allocation.objects.filter(month=month, bucket=Bucket.ENTITY, entity_id__in=ids)
                  .values("entity_id", "currency").annotate(effective=Sum("effective_cost")).order_by()):
            rows[r["entity_id"]].cost[r["currency"]] = r["effective"]
    # The catalog's list querysets defer the descriptor: the models' annotations in one query.
    for entity_id, declared in (Entity.objects.filter(
            id__in=ids, kind_key="model", data__metadata__annotations__has_key=roi.VALUE_ANNOTATION)
            .values_list("id", "data__metadata__annotations")):
        rows[entity_id].value = roi.declared_value(declared)
    return list(rows.values())


def team_operations(user, team) -> dict:
    """The team's rollup: its visible entities' lines and the totals (nine queries)."""
    from catalog import selectors as catalog_selectors
    from portal.costs import selectors as cost_selectors
    from portal.costs.models import Budget

    entities = list(catalog_selectors.owned_by_team(team, user).filter(kind_key__in=KINDS)[:LIMIT + 1])
    more = len(entities) > LIMIT
    month = next(iter(cost_selectors.months(user)), None)
    all_cards = definitions.load_all()
    lines = entity_operations(user, entities[:LIMIT], month=month, cards=all_cards)
    totals = cost_selectors.month_totals(user, month, owner_team=team) if month else {}
    budgets = {b.currency: b.amount for b in Budget.objects.filter(team=team)}
    levels: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for line in lines:
        for title, level, _rank in line.levels:
            levels[title][level] += 1
    cards = [(c.title, [(name, levels[c.title].get(name, 0)) for name in [*reversed(c.levels), ""]])
             for c in all_cards if not c.error and c.title in levels]
    with_slo = [line for line in lines if line.slos]
    cost = []
    for currency, t in totals.items():
        budget = budgets.get(currency)
        percent = float(t["total"] / budget * 100) if budget else None
        cost.append({"currency": currency, "total": t["total"], "budget": budget, "percent": percent,
                     "meter": min(100.0, percent) if percent is not None else None})
    return {
        "team": team, "lines": lines, "more": more, "month": month, "scorecards": cards,
        "slo": {"entities": len(with_slo), "objectives": sum(len(x.slos) for x in with_slo),
                "met": sum(x.slo_met for x in with_slo), "burning": sum(1 for x in with_slo if x.burning),
                "budget_min": min((x.budget_min for x in with_slo if x.budget_min is not None), default=None)},
        "incidents": {"open": len(set().union(*(x.incidents for x in lines))),
                      "worst": min((x.worst for x in lines if x.worst), default=None)},
        "cost": cost,
    }
