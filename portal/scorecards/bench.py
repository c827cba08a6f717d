"""`manage.py scorecards bench`: generate N entities with varied facts, evaluate the shipped scorecards
over them twice (cold: every result new; warm: the nightly pass, nothing changed), print one dict.

Runs against the configured database (use a scratch PLINTH_VAR_DIR). Generated rows live in namespace
`scbench` and teams `scbench-team-*`, and are removed afterwards unless --keep. Never imported by the app."""

from __future__ import annotations

import hashlib
import os
import random
import resource
import statistics
import time
from datetime import timedelta

from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone

from catalog.models import Entity, ModelVersion, Relation
from portal.accounts.models import Team
from portal.core.db import analyze_grown
from portal.techdocs.models import DocSite, ModelCard

from . import definitions, engine, services
from .models import LevelChange, Result

SECTIONS = ["intended use", "training data", "metrics", "limitations", "ethical considerations"]
KINDS = [("Component", "component", "service"), ("API", "api", "openapi"), ("Model", "model", "classifier")]


def _cpu() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    return me.ru_utime + me.ru_stime


def generate(total: int, seed: int = 11) -> list[int]:
    rng = random.Random(seed)  # noqa: S311 (reproducible test data)
    now = timezone.now()
    teams = Team.objects.bulk_create([Team(name=f"scbench-team-{i}") for i in range(max(10, total // 1000))])
    entities = []
    for i in range(total):
        kind, key, spec_type = KINDS[i % 3]
        name = f"sc-{key}-{i}"
        team = rng.choice(teams) if rng.random() > 0.05 else None
        meta = {"name": name, "namespace": "scbench"}
        if rng.random() > 0.15:
            meta["description"] = f"{key} number {i}"
        if rng.random() > 0.5:
            meta["links"] = [{"url": f"https://runbooks.example.com/{name}"}]
        if rng.random() > 0.7:
            meta["annotations"] = {"backstage.io/source-template": "template:default/python-service"}
        spec = {"type": spec_type, "owner": f"group:default/{team.name}" if team else "group:default/ghost",
                "lifecycle": rng.choice(["production", "experimental", "deprecated", "beta"])}
        if rng.random() > 0.4:
            spec["system"] = f"system-{i % 97}"
        if key == "model":
            spec["riskTier"] = rng.choice([1, 2, 3])
        data = {"apiVersion": "backstage.io/v1alpha1", "kind": kind, "metadata": meta, "spec": spec}
        entities.append(Entity(
            ref=f"{key}:scbench/{name}", kind=kind, kind_key=key, namespace="scbench", name=name, name_key=name,
            api_version="backstage.io/v1alpha1", description=meta.get("description", ""), spec_type=spec_type,
            lifecycle=spec["lifecycle"], owner_ref=spec["owner"], owner_team=team, system_ref=spec.get("system", ""),
            visibility="private" if i % 17 == 0 else "internal", tags=[], data=data,
            content_hash=hashlib.sha256(name.encode()).hexdigest(),
        ))
    with transaction.atomic():
        Entity.objects.bulk_create(entities, batch_size=2000)
    rows = list(Entity.objects.filter(namespace="scbench").values_list("id", "ref", "kind_key"))
    docs, cards, versions, relations = [], [], [], []
    for entity_id, ref, key in rows:
        if rng.random() > 0.4:
            docs.append(DocSite(entity_id=entity_id, status="ok", built_at=now - timedelta(days=rng.randint(0, 400))))
        if key != "model":
            continue
        if rng.random() > 0.3:
            cards.append(ModelCard(entity_id=entity_id, status="ok", sections=SECTIONS[: rng.randint(2, 5)]))
        for v in range(1, rng.randint(1, 3) + 1):
            versions.append(ModelVersion(entity_id=entity_id, version=str(v), version_number=v,
                                         metrics={"auc": round(rng.uniform(0.6, 0.95), 3)},
                                         created_at_mlflow=now - timedelta(days=rng.randint(0, 200))))
        for d in range(rng.randint(0, 2)):
            relations.append(Relation(origin_id=entity_id, source_ref=ref, type="trainedOn",
                                      target_ref=f"dataset:scbench/ds-{entity_id % 500}-{d}"))
    with transaction.atomic():
        DocSite.objects.bulk_create(docs, batch_size=2000)
        ModelCard.objects.bulk_create(cards, batch_size=2000)
        ModelVersion.objects.bulk_create(versions, batch_size=2000)
        Relation.objects.bulk_create(relations, batch_size=2000)
    # Fresh planner statistics, as a registration of this many entities leaves them (catalog.ingest's
    # writer): on PostgreSQL the cold pass otherwise plans its relation reads for empty tables.
    for model, written in ((Entity, total), (DocSite, len(docs)), (ModelCard, len(cards)),
                           (ModelVersion, len(versions)), (Relation, len(relations))):
        analyze_grown([model._meta.db_table], written)
    return [r[0] for r in rows]


def _timed(ids: list[int]) -> dict:
    cpu, wall = _cpu(), time.perf_counter()
    stats = services.evaluate_entities()  # the nightly pass: every entity of the (scratch) catalog
    return {"wall_s": round(time.perf_counter() - wall, 2), "cpu_s": round(_cpu() - cpu, 2), **stats}


def run(total: int, keep: bool = False) -> dict:
    cards = [c for c in definitions.load_all() if not c.error]
    checks = sum(len(c.checks) for c in cards)
    load_before = os.getloadavg()
    started = time.perf_counter()
    cleanup()  # a run killed or kept (--keep) before
    ids = generate(total)
    generated_s = round(time.perf_counter() - started, 1)
    try:
        cold = _timed(ids)
        warm = _timed(ids)
        levels: dict[str, dict[str, int]] = {}
        for card, level, n in (Result.objects.filter(entity__namespace="scbench").values("scorecard", "level")
                               .annotate(n=Count("id")).order_by().values_list("scorecard", "level", "n")):
            levels.setdefault(card, {})[level or "none"] = n
        dashboards = time_dashboards()
        result = {
            "bench": "scorecards", "entities": total, "scorecards": len(cards), "checks": checks,
            "check_evaluations": _evaluations(cards),
            "distinct_projections": engine_memo_size(),
            "cold": cold, "warm": warm, "per_level": levels, "generate_s": generated_s,
            "target_s": 60, "within_target": cold["wall_s"] <= 60,
            "dashboards_p95_ms": dashboards, "dashboards_within_150_ms": max(dashboards.values()) <= 150,
            "loadavg_before": [round(v, 2) for v in load_before],
            "loadavg_after": [round(v, 2) for v in os.getloadavg()],
            "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "database": connection.vendor,
        }
    finally:
        if not keep:
            cleanup()
    return result


def time_dashboards(repeats: int = 30) -> dict[str, float]:
    """p95 (ms) of the queries behind each scorecard page and API, as a member of one generated team
    and as a platform admin (who sees every result: the largest counts)."""
    from django.contrib.auth import get_user_model

    from portal.accounts.models import Membership

    from . import operations, selectors

    users = get_user_model().objects
    member, _ = users.get_or_create(username="scbench-member")
    team = Team.objects.filter(name__startswith="scbench-team-").order_by("id").first()
    Membership.objects.get_or_create(user=member, team=team, defaults={"role": "member"})
    admin, _ = users.get_or_create(username="scbench-admin", defaults={"is_superuser": True})
    cards = [c for c in definitions.load_all() if not c.error]
    campaign = next(((c, k) for c in cards for k in c.checks if k.deadline), None)
    entity = Entity.objects.filter(namespace="scbench", kind_key="model", owner_team=team).first()
    pages = {
        "index": lambda u: [selectors.level_counts(u, c) for c in cards],
        "detail": lambda u: [(selectors.team_rollup(u, c), selectors.domain_rollup(u, c)) for c in cards],
        "results_page": lambda u: list(selectors.visible_results(u, cards[0].name)[:101]),
        "results_team_level": lambda u: list(selectors.visible_results(u, cards[0].name, team=team.name,
                                                                       level=cards[0].levels[0])[:101]),
        "team_operations": lambda u: operations.team_operations(u, team),
        "entity_tab": lambda u: selectors.entity_scorecards(entity),
    }
    if campaign:
        pages["campaign"] = lambda u: selectors.campaign_failing(u, *campaign)
    out = {}
    try:
        for who, user in (("member", member), ("admin", admin)):
            for page, fn in pages.items():
                timings = []
                for _ in range(repeats):
                    user = users.get(pk=user.pk)  # a fresh request's user: no cached team roles
                    t = time.perf_counter()
                    fn(user)
                    timings.append(time.perf_counter() - t)
                out[f"{page}_{who}"] = round(statistics.quantiles(timings, n=20)[18] * 1000, 1)
    finally:
        users.filter(username__in=["scbench-member", "scbench-admin"]).delete()
    return out


def engine_memo_size() -> int:
    """How many distinct fact projections regopy evaluated: the engine's real work (docs/operations.md)."""
    return sum(len(c._memo) for c in engine._cache.values())


def _evaluations(cards) -> int:
    by_kind = dict(Entity.objects.filter(namespace="scbench").values_list("kind_key").annotate(n=Count("id"))
                   .order_by().values_list("kind_key", "n"))
    return sum(by_kind.get(k, 0) * len(c.checks) for c in cards for k in (c.filter.get("kinds") or by_kind))


def cleanup() -> None:
    ids = list(Entity.objects.filter(namespace="scbench").values_list("id", flat=True))
    for i in range(0, len(ids), 5000):
        chunk = ids[i:i + 5000]
        LevelChange.objects.filter(entity_id__in=chunk).delete()
        Result.objects.filter(entity_id__in=chunk).delete()
        Relation.objects.filter(origin_id__in=chunk).delete()
        Entity.objects.filter(id__in=chunk).delete()
    Team.objects.filter(name__startswith="scbench-team-").delete()
