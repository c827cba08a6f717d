"""An entity's facts, gathered for a batch of entities with a constant number of queries (ten,
whatever the batch's size). docs/operations.md lists every fact. `slo` comes from portal.slo, `incidents`
from portal.incidents and `cost` from portal.costs (null for an entity with no SLO or no allocated cost)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from django.utils import timezone

from catalog.models import Entity, ModelVersion, Relation
from portal.core.db import values_in

UPSTREAM_TYPES = ("trainedOn", "consumesDataset", "dependsOn", "consumesFeatures")
SOURCE_TEMPLATE = "backstage.io/source-template"
BUILT = ("ok", "partial")  # techdocs BuildStatus values that produced pages

ENTITY_FIELDS = (
    "id", "ref", "kind_key", "namespace", "name", "spec_type", "lifecycle", "tags", "owner_ref", "owner_team_id",
    "owner_team__name", "visibility", "description", "system_ref", "data__metadata__annotations",
    "data__metadata__links", "data__spec__riskTier",
)


def entity_rows(queryset) -> list[dict]:
    """The entity columns facts are made of (one query)."""
    return list(queryset.values(*ENTITY_FIELDS))


def _age_days(at: datetime | None, now: datetime) -> int | None:
    return None if at is None else max(0, (now - at).days)


def gather(rows: list[dict], now: datetime | None = None, scope: dict | None = None) -> list[dict]:
    """Facts of each entity row (as entity_rows returns them), in the same order. `scope`: a filter on
    entity_id that selects the batch's rows (an id range: cheaper than a list of 2,000 ids)."""
    from portal.deployments.models import Deployment, Drift, Status
    from portal.techdocs.models import DocSite, ModelCard

    now = now or timezone.now()
    ids = [r["id"] for r in rows]
    model_ids = [r["id"] for r in rows if r["kind_key"] == "model"]
    refs = [r["ref"] for r in rows]
    by_id = scope or {"entity_id__in": values_in(ids)}
    by_model = scope or {"entity_id__in": values_in(model_ids)}
    docs = {e: (status, built) for e, status, built in
            DocSite.objects.filter(**by_id).values_list("entity_id", "status", "built_at")}
    cards = {e: (status, sections) for e, status, sections in
             ModelCard.objects.filter(**by_model).values_list("entity_id", "status", "sections")}
    versions: dict[int, tuple] = {}
    counts: dict[int, int] = defaultdict(int)
    for entity_id, metrics, started, created in (
        ModelVersion.objects.filter(**by_model).order_by("entity_id", "-version_number")
        .values_list("entity_id", "metrics", "experiment_run__started_at", "created_at_mlflow")
    ):
        counts[entity_id] += 1
        versions.setdefault(entity_id, (metrics, started or created))
    upstream: dict[str, set[str]] = defaultdict(set)
    for source, target in (Relation.objects.filter(source_ref__in=values_in(refs, text=True), type__in=UPSTREAM_TYPES,
                                                   target_ref__startswith="dataset:")
                           .values_list("source_ref", "target_ref")):
        upstream[source].add(target)
    targets = {t for ts in upstream.values() for t in ts}
    described = set(Entity.objects.filter(ref__in=values_in(targets, text=True)).exclude(description="").values_list("ref", flat=True))
    live: dict[int, int] = defaultdict(int)
    by_model_fk = {k.replace("entity_id", "model_id"): v for k, v in by_model.items()}
    for model_id in Deployment.objects.filter(**by_model_fk, status=Status.LIVE).values_list(
            "model_id", flat=True):
        live[model_id] += 1
    from portal.costs.selectors import scorecard_facts as cost_facts

    costs = cost_facts(ids, {r["id"]: r["data__metadata__annotations"] for r in rows})
    from portal.incidents.selectors import scorecard_facts as incident_facts

    incidents = incident_facts(ids)  # one query: open, open_sev1, MTTA/MTTR over 90 days
    drifting: dict[int, int] = defaultdict(int)
    for model_id in Drift.objects.filter(**by_model_fk, cleared_at__isnull=True).values_list(
            "model_id", flat=True):
        drifting[model_id] += 1
    from portal.slo.selectors import scorecard_facts as slo_facts

    slos = slo_facts(ids)  # one query (portal/slo: defined, meeting, budget_remaining_min, stale)
    out = []
    for r in rows:
        annotations = r["data__metadata__annotations"] if isinstance(r["data__metadata__annotations"], dict) else {}
        links = r["data__metadata__links"] if isinstance(r["data__metadata__links"], list) else []
        tier = r["data__spec__riskTier"]
        doc = docs.get(r["id"])
        card = cards.get(r["id"])
        version = versions.get(r["id"])
        ups = upstream.get(r["ref"], set())
        out.append({
            "kind": r["kind_key"],
            "type": (r["spec_type"] or "").lower(),
            "lifecycle": (r["lifecycle"] or "").lower(),
            "tags": list(r["tags"] or []),
            "owner": {"ref": r["owner_ref"], "team": r["owner_team__name"]},
            "descriptor": {
                "description": bool((r["description"] or "").strip()),
                "system": bool(r["system_ref"]),
                "links": len(links),
                "annotations": sorted(str(k) for k in annotations),
            },
            "risk_tier": tier if isinstance(tier, int) and not isinstance(tier, bool) else None,
            "techdocs": {
                "present": bool(doc and doc[0] in BUILT),
                "status": doc[0] if doc else None,
                "age_days": _age_days(doc[1], now) if doc else None,
            },
            "model_card": {
                "present": bool(card and card[0] in BUILT),
                "sections": [str(s).strip().lower() for s in (card[1] or [])] if card else [],
            },
            "mlflow": {
                "versions": counts.get(r["id"], 0),
                "latest_run_age_days": _age_days(version[1], now) if version else None,
                "metrics": dict(version[0] or {}) if version else {},
            },
            "lineage": {"upstream_datasets": len(ups), "documented": len(ups & described)},
            "approval": {"serving": live.get(r["id"], 0),
                         "unapproved": min(live.get(r["id"], 0), drifting.get(r["id"], 0))},
            "scaffolder": {"template": annotations.get(SOURCE_TEMPLATE) or None},
            "slo": slos.get(r["id"]),
            "incidents": incidents.get(r["id"]),
            "cost": costs.get(r["id"]),
        })
    return out
