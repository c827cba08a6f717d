"""An entity's facts, gathered for a batch of entities with a constant number of queries (ten,
whatever the batch's size). docs/operations.md lists every fact. `slo` comes from portal.slo, `incidents`
from portal.incidents and `cost` from portal.costs (null for an entity with no SLO or no allocated cost)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
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
    now = now or timezone.now()
    found = _Found.read(rows, scope)
    return [_facts(r, found, now) for r in rows]


@dataclass(slots=True)
class _Found:
    """What the batch's queries found, by entity id (by ref for the lineage sets)."""

    docs: dict[int, tuple]  # (status, built_at)
    cards: dict[int, tuple]  # (status, sections)
    versions: dict[int, tuple]  # the newest version: (metrics, trained at)
    version_counts: dict[int, int]
    upstream: dict[str, set[str]]  # model ref → its upstream dataset refs
    described: set[str]  # those of them with a description
    live: dict[int, int]  # live deployments
    drifting: dict[int, int]  # uncleared compliance drift
    costs: dict
    incidents: dict
    slos: dict

    @classmethod
    def read(cls, rows: list[dict], scope: dict | None) -> _Found:
        from portal.costs.selectors import scorecard_facts as cost_facts
        from portal.incidents.selectors import scorecard_facts as incident_facts
        from portal.slo.selectors import scorecard_facts as slo_facts
        from portal.techdocs.models import DocSite, ModelCard

        ids = [r["id"] for r in rows]
        by_id = scope or {"entity_id__in": values_in(ids)}
        by_model = scope or {"entity_id__in": values_in([r["id"] for r in rows if r["kind_key"] == "model"])}
        versions, counts = _versions(by_model)
        upstream, described = _upstream([r["ref"] for r in rows])
        live, drifting = _serving({k.replace("entity_id", "model_id"): v for k, v in by_model.items()})
        return cls(
            docs={e: (status, built) for e, status, built in
                  DocSite.objects.filter(**by_id).values_list("entity_id", "status", "built_at")},
            cards={e: (status, sections) for e, status, sections in
                   ModelCard.objects.filter(**by_model).values_list("entity_id", "status", "sections")},
            versions=versions, version_counts=counts, upstream=upstream, described=described, live=live,
            drifting=drifting,
            costs=cost_facts(ids, {r["id"]: r["data__metadata__annotations"] for r in rows}),
            incidents=incident_facts(ids),  # one query: open, open_sev1, MTTA/MTTR over 90 days
            slos=slo_facts(ids),  # one query (portal/slo: defined, meeting, budget_remaining_min, stale)
        )


def _versions(by_model: dict) -> tuple[dict[int, tuple], dict[int, int]]:
    """Each model's newest version (metrics, when its run started or else when it was created) and its
    number of versions: one query."""
    versions: dict[int, tuple] = {}
    counts: dict[int, int] = defaultdict(int)
    for entity_id, metrics, started, created in (
        ModelVersion.objects.filter(**by_model).order_by("entity_id", "-version_number")
        .values_list("entity_id", "metrics", "experiment_run__started_at", "created_at_mlflow")
    ):
        counts[entity_id] += 1
        versions.setdefault(entity_id, (metrics, started or created))
    return versions, counts


def _upstream(refs: list[str]) -> tuple[dict[str, set[str]], set[str]]:
    """The datasets each entity is trained on or consumes, and which of them are described: two queries."""
    upstream: dict[str, set[str]] = defaultdict(set)
    for source, target in (Relation.objects.filter(source_ref__in=values_in(refs, text=True), type__in=UPSTREAM_TYPES,
                                                   target_ref__startswith="dataset:")
                           .values_list("source_ref", "target_ref")):
        upstream[source].add(target)
    targets = {t for ts in upstream.values() for t in ts}
    described = set(Entity.objects.filter(ref__in=values_in(targets, text=True)).exclude(description="")
                    .values_list("ref", flat=True))
    return upstream, described


def _serving(by_model: dict) -> tuple[dict[int, int], dict[int, int]]:
    """Live deployments and uncleared compliance drift per model: two queries."""
    from portal.deployments.models import Deployment, Drift, Status

    live: dict[int, int] = defaultdict(int)
    for model_id in Deployment.objects.filter(**by_model, status=Status.LIVE).values_list("model_id", flat=True):
        live[model_id] += 1
    drifting: dict[int, int] = defaultdict(int)
    for model_id in Drift.objects.filter(**by_model, cleared_at__isnull=True).values_list("model_id", flat=True):
        drifting[model_id] += 1
    return live, drifting


def _facts(r: dict, found: _Found, now: datetime) -> dict:
    annotations = r["data__metadata__annotations"] if isinstance(r["data__metadata__annotations"], dict) else {}
    links = r["data__metadata__links"] if isinstance(r["data__metadata__links"], list) else []
    tier = r["data__spec__riskTier"]
    doc = found.docs.get(r["id"])
    card = found.cards.get(r["id"])
    version = found.versions.get(r["id"])
    ups = found.upstream.get(r["ref"], set())
    live = found.live.get(r["id"], 0)
    return {
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
            "versions": found.version_counts.get(r["id"], 0),
            "latest_run_age_days": _age_days(version[1], now) if version else None,
            "metrics": dict(version[0] or {}) if version else {},
        },
        "lineage": {"upstream_datasets": len(ups), "documented": len(ups & found.described)},
        "approval": {"serving": live, "unapproved": min(live, found.drifting.get(r["id"], 0))},
        "scaffolder": {"template": annotations.get(SOURCE_TEMPLATE) or None},
        "slo": found.slos.get(r["id"]),
        "incidents": found.incidents.get(r["id"]),
        "cost": found.costs.get(r["id"]),
    }
