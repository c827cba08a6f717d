"""Reads of the costs app. Allocation rows carry their entity's team and visibility, so every figure
goes through the one permission rule (permissions.visible_q) without a join; what a reader may not
see is left out of the sums and counted ("n private entities not shown"). Sums are per currency."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal

from django.db.models import QuerySet, Sum

from portal.accounts import permissions
from portal.core.db import values_in

from . import roi
from .models import Allocation, Bucket, CostImport

KIND_GROUPS = ("model", "pipeline", "featureset")
ZERO = Decimal(0)


def visible(user) -> QuerySet:
    return permissions.filter_visible(Allocation.objects.all(), user)


def hidden_entities(user, **filters) -> int:
    """How many entities with cost the user may not see (their cost is left out of what they see)."""
    if permissions.is_platform_admin(user):
        return 0
    return (Allocation.objects.filter(bucket=Bucket.ENTITY, **filters).exclude(permissions.visible_q(user))
            .values("entity_id").distinct().count())


def months(user) -> list[date]:
    return list(visible(user).order_by("-month").values_list("month", flat=True).distinct()[:36])


@dataclass
class Money:
    currency: str
    amount: Decimal

    def __str__(self) -> str:
        return f"{self.amount:,.2f} {self.currency}"


def _sums(qs: QuerySet, *fields: str) -> list[dict]:
    return list(qs.values(*fields).annotate(effective=Sum("effective_cost"), billed=Sum("billed_cost"),
                                            lines=Sum("lines")).order_by("-effective", *fields))


def month_totals(user, month: date, **filters) -> dict[str, dict]:
    """{currency: {bucket: effective cost, "total": …}} of a month (one query)."""
    totals: dict[str, dict] = defaultdict(lambda: {b.value: ZERO for b in Bucket} | {"total": ZERO})
    for row in _sums(visible(user).filter(month=month, **filters), "currency", "bucket"):
        totals[row["currency"]][row["bucket"]] = row["effective"]
        totals[row["currency"]]["total"] += row["effective"]
    return dict(sorted(totals.items()))


def overview(user, month: date, currency: str) -> dict:
    """The split of one month and currency by team, kind, domain and the top entities (five queries
    whatever the data's size)."""
    one = visible(user).filter(month=month, currency=currency)
    by_team = _sums(one.exclude(bucket=Bucket.UNALLOCATED), "owner_team__name", "owner_team__title")
    by_kind = _sums(one.filter(bucket=Bucket.ENTITY), "kind")
    by_domain = _sums(one.filter(bucket=Bucket.ENTITY).exclude(domain=""), "domain")
    top = list(one.filter(bucket=Bucket.ENTITY).select_related("entity", "owner_team").order_by("-effective_cost")[:20])
    return {"by_team": by_team, "by_kind": by_kind, "by_domain": by_domain, "top": top,
            "hidden": hidden_entities(user, month=month)}


def domain_titles(user, refs) -> dict[str, str]:
    """How pages name domains (`domain:default/payments` → "Payments"): the title of each domain entity the
    user may see, else the name in its reference. One query."""
    from catalog.models import Entity

    refs = {r for r in refs if r}
    found = dict(permissions.filter_visible(Entity.objects.filter(ref__in=refs), user)
                 .exclude(title="").values_list("ref", "title")) if refs else {}
    return {r: found.get(r) or r.rsplit("/", 1)[-1] for r in refs}


def trend(user, currency: str, *, team_id: int | None = None, entity_id: int | None = None,
          last: int = 12) -> list[tuple[str, Decimal]]:
    qs = visible(user).filter(currency=currency)
    if team_id:
        qs = qs.filter(owner_team_id=team_id)
    if entity_id:
        qs = qs.filter(entity_id=entity_id)
    rows = list(qs.values("month").annotate(effective=Sum("effective_cost")).order_by("-month")[:last])
    return [(r["month"].strftime("%Y-%m"), r["effective"]) for r in reversed(rows)]


def team_view(user, team, month: date) -> dict:
    qs = visible(user).filter(month=month, owner_team=team)
    totals = month_totals(user, month, owner_team=team)
    entities = list(qs.filter(bucket=Bucket.ENTITY).select_related("entity").order_by("currency", "-effective_cost"))
    return {"totals": totals, "entities": entities,
            "hidden": hidden_entities(user, month=month, owner_team=team)}


def team_month_spend(month: date, team_ids: list[int]) -> dict[tuple[int, str], Decimal]:
    """(team id, currency) → the month's effective cost (entities, team tags, shared share). One query."""
    rows = (Allocation.objects.filter(month=month, owner_team_id__in=team_ids)
            .values("owner_team_id", "currency").annotate(effective=Sum("effective_cost")).order_by())
    return {(r["owner_team_id"], r["currency"]): r["effective"] for r in rows}


def entity_months(entity, *, last: int = 12) -> list[dict]:
    """The entity's cost per month and currency, newest first (one query)."""
    rows = (Allocation.objects.filter(entity=entity).values("month", "currency")
            .annotate(effective=Sum("effective_cost"), billed=Sum("billed_cost"), lines=Sum("lines"))
            .order_by("-month", "currency"))
    return list(rows[: last * 4])


def entity_header(entity) -> list[Money]:
    """The latest month's cost of the entity, per currency, for the page header (ONE query)."""
    rows = list(Allocation.objects.filter(entity=entity).order_by("-month", "currency")
                .values_list("month", "currency", "effective_cost")[:24])
    if not rows:
        return []
    latest = rows[0][0]
    out: dict[str, Decimal] = defaultdict(Decimal)
    for month, currency, amount in rows:
        if month == latest:
            out[currency] += amount
    return [Money(c, a) for c, a in sorted(out.items())]


def training_runs(entity, month_list: list[date]) -> dict[date, int]:
    """MLflow runs that produced a synced version of the model, per month the run started (one query)."""
    from catalog.models import ModelVersion

    if not month_list:
        return {}
    first = datetime.combine(min(month_list), time.min, tzinfo=UTC)  # an aware datetime: no naive-time warning
    counts: dict[date, set] = defaultdict(set)
    for run_id, started in (ModelVersion.objects.filter(entity=entity, experiment_run__started_at__gte=first)
                            .values_list("experiment_run_id", "experiment_run__started_at")):
        counts[date(started.year, started.month, 1)].add(run_id)
    return {m: len(runs) for m, runs in counts.items()}


@dataclass(frozen=True)
class ModelRow:
    """The few columns of a model the portfolio shows (not the whole descriptor)."""

    id: int
    ref: str
    kind_key: str
    namespace: str
    name: str
    title: str
    team: str | None

    @property
    def display_name(self) -> str:
        return self.title or self.name


def portfolio(user, month: date, *, limit: int = 500) -> dict:
    """Models that declare a business value, with the month's cost in the value's currency and the
    ratio; models whose declaration is invalid are listed with the reason (two queries)."""
    from catalog import selectors as catalog_selectors

    rows = list(catalog_selectors.visible_entities(user).filter(
        kind_key="model", data__metadata__annotations__has_key=roi.VALUE_ANNOTATION).order_by("name_key")
        .values_list("id", "ref", "kind_key", "namespace", "name", "title", "owner_team__name",
                     "data__metadata__annotations")[:limit])
    costs: dict[tuple[int, str], Decimal] = defaultdict(Decimal)
    for entity_id, currency, amount in Allocation.objects.filter(
            month=month, entity_id__in=[r[0] for r in rows]).values_list("entity_id", "currency", "effective_cost"):
        costs[(entity_id, currency)] += amount
    out = []
    for *fields, declared in rows:
        model = ModelRow(*fields)
        value = roi.declared_value(declared)
        cost = costs.get((model.id, value.currency)) if value.ok else None
        out.append({"entity": model, "value": value, "cost": cost, "ratio": roi.ratio(value, cost)})
    out.sort(key=lambda r: (r["ratio"] is None, -(r["ratio"] or 0), r["entity"].name.lower()))
    return {"rows": out}


def imports(limit: int = 50) -> list[CostImport]:
    return list(CostImport.objects.select_related("provider", "created_by")[:limit])


def scorecard_facts(entity_ids: list[int], annotations: dict[int, dict] | None = None) -> dict[int, dict]:
    """The `cost` fact of each entity with cost data (two queries whatever the batch; one when the caller
    passes the entities' annotations): the latest month's effective cost in one currency (the declared
    value's, else the largest), the declared monthly value in that currency and the value/cost ratio.
    Entities without cost data are absent (their fact stays None)."""
    from catalog.models import Entity

    if not entity_ids:
        return {}
    latest: dict[int, date] = {}
    sums: dict[int, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for entity_id, month, currency, amount in (Allocation.objects.filter(entity_id__in=values_in(entity_ids))
                                               .order_by("entity_id", "-month")
                                               .values_list("entity_id", "month", "currency", "effective_cost")):
        if latest.setdefault(entity_id, month) == month:
            sums[entity_id][currency] += amount
    if annotations is None:
        annotations = dict(Entity.objects.filter(id__in=list(sums)).values_list("id", "data__metadata__annotations"))
    out = {}
    for entity_id, per_currency in sums.items():
        value = roi.declared_value(annotations.get(entity_id))
        currency = value.currency if value.ok and value.currency in per_currency else max(
            per_currency, key=lambda c: per_currency[c])
        monthly = per_currency[currency]
        same = value.ok and value.currency == currency
        ratio = roi.ratio(value, monthly) if same else None
        out[entity_id] = {"monthly": float(round(monthly, 2)), "currency": currency,
                          "month": latest[entity_id].strftime("%Y-%m"),
                          "value_monthly": float(value.amount) if same else None,
                          "roi": None if ratio is None else round(ratio, 3)}
    return out
