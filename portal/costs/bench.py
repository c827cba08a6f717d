"""`manage.py costs bench --rows N`: write N FOCUS rows to a CSV file (not timed), import them (timed:
rows/s and the process's peak RSS), allocate them (timed), then time the cost pages' queries as a team
member sees them (p95 over repeated runs). Prints one dict.

Runs against the configured database (use a scratch PLINTH_VAR_DIR, as `make costs-bench` does). Rows
go to provider `bench`, teams `cbench-team-*` and entities in namespace `cbench`; removed afterwards
unless --keep. Never imported by the app."""

from __future__ import annotations

import hashlib
import json
import random
import resource
import statistics
import tempfile
import time
from pathlib import Path

from django.db import transaction

from catalog.models import Entity
from portal.accounts.models import Membership, Team

from . import allocation, conf, selectors, services
from .models import Allocation, CostImport, CostLine, Provider

SERVICES = [("Amazon SageMaker", "AI and Machine Learning"), ("Amazon EC2", "Compute"), ("Amazon S3", "Storage"),
            ("Amazon RDS", "Databases"), ("AWS Data Transfer", "Networking")]


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def generate_entities(teams: int = 20, per_team: int = 25) -> tuple[list[Team], list[str]]:
    made = Team.objects.bulk_create([Team(name=f"cbench-team-{i}") for i in range(teams)])
    entities = []
    for i in range(teams * per_team):
        team = made[i % teams]
        name = f"cb-model-{i}"
        data = {"apiVersion": "backstage.io/v1alpha1", "kind": "Model",
                "metadata": {"name": name, "namespace": "cbench",
                             "annotations": {"plinth.dev/value-monthly": f"{(i % 9 + 1) * 1000} USD",
                                             "plinth.dev/value-kpi": "bench KPI",
                                             "plinth.dev/cost-resource-ids": f"arn:bench:endpoint/{name}-*"}},
                "spec": {"type": "classifier", "owner": f"group:default/{team.name}", "lifecycle": "production"}}
        entities.append(Entity(ref=f"model:cbench/{name}", kind="Model", kind_key="model", namespace="cbench",
                               name=name, name_key=name, api_version="backstage.io/v1alpha1", spec_type="classifier",
                               lifecycle="production", owner_ref=data["spec"]["owner"], owner_team=team,
                               visibility="private" if i % 13 == 0 else "internal", tags=[], data=data,
                               content_hash=hashlib.sha256(name.encode()).hexdigest()))
    with transaction.atomic():
        Entity.objects.bulk_create(entities, batch_size=2000)
    return made, [e.ref for e in entities]


def write_csv(path: Path, rows: int, refs: list[str], teams: list[Team], seed: int = 7) -> None:
    """Hourly usage lines of one billing month, spread over entities (by tag and by ResourceId), team
    tags, shared and untagged lines, with a few credits."""
    rng = random.Random(seed)  # noqa: S311 (reproducible test data)
    header = ["BilledCost", "EffectiveCost", "ListCost", "BillingCurrency", "BillingPeriodStart", "BillingPeriodEnd",
              "ChargePeriodStart", "ChargePeriodEnd", "ChargeCategory", "ChargeClass", "ServiceName",
              "ServiceCategory", "ResourceId", "RegionId", "Tags", "BillingAccountId", "ChargeFrequency"]
    tag_choices = ([json.dumps({"plinth-entity": r, "team": "x"}) for r in refs[:200]]
                   + [json.dumps({"team": t.name}) for t in teams] + ['{"plinth-shared":"true"}', "", "{}"])
    hours = [f"2026-01-{d:02d}T{h:02d}:00:00Z" for d in range(1, 32) for h in range(24)]
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(",".join(header) + "\n")
        for i in range(rows):
            hour = i % len(hours)
            start = hours[hour]
            end = hours[hour + 1] if hour + 1 < len(hours) else "2026-02-01T00:00:00Z"
            service, category = SERVICES[i % len(SERVICES)]
            cost = rng.random() * 3
            charge = "Usage"
            if i % 997 == 0:
                charge, cost = "Credit", -cost
            tags = tag_choices[i % len(tag_choices)] if i % 5 else ""
            resource_id = f"arn:bench:endpoint/{refs[i % len(refs)].split('/')[-1]}-{i % 3}"
            f.write(f'{cost:.6f},{cost * 0.9:.6f},{cost * 1.1:.6f},USD,2026-01-01T00:00:00Z,2026-02-01T00:00:00Z,'
                    f'{start},{end},{charge},,{service},{category},{resource_id},us-east-1,'
                    f'"{tags.replace(chr(34), chr(34) * 2)}",123456789012,Usage-Based\n')


def run(rows: int, *, keep: bool = False) -> dict:
    scratch = Path(tempfile.mkdtemp(prefix="costs-bench-"))
    teams, refs = generate_entities()
    member = _member(teams[0])
    path = scratch / "focus.csv"
    t0 = time.perf_counter()
    write_csv(path, rows, refs, teams)
    generated = time.perf_counter() - t0
    rss_before = _rss_mib()
    t0 = time.perf_counter()
    imp = services.import_now(path=path, provider="bench", allocate=False)
    imported = time.perf_counter() - t0
    if imp.status != "done":
        raise RuntimeError(imp.error)
    rss_import = _rss_mib()
    t0 = time.perf_counter()
    stats = allocation.allocate(None)
    allocated = time.perf_counter() - t0
    timings: dict[str, list[float]] = {"overview": [], "team": [], "portfolio": [], "entity_header": []}
    month = selectors.months(member)[0]
    entity = Entity.objects.filter(ref=refs[1]).first()
    for _ in range(40):
        t = time.perf_counter()
        totals = selectors.month_totals(member, month)
        selectors.overview(member, month, next(iter(totals)))
        selectors.trend(member, "USD")
        timings["overview"].append(time.perf_counter() - t)
        t = time.perf_counter()
        selectors.team_view(member, teams[0], month)
        timings["team"].append(time.perf_counter() - t)
        t = time.perf_counter()
        selectors.portfolio(member, month)
        timings["portfolio"].append(time.perf_counter() - t)
        t = time.perf_counter()
        selectors.entity_header(entity)
        timings["entity_header"].append(time.perf_counter() - t)
    out = {
        "rows": rows, "file_mib": round(path.stat().st_size / 2**20, 1), "generate_s": round(generated, 2),
        "import_s": round(imported, 2), "rows_per_s": round(rows / imported), "allocate_s": round(allocated, 2),
        "allocation_rows": stats["rows"], "rss_mib_before_import": round(rss_before), "rss_mib_peak": round(rss_import),
        **{f"{k}_p95_ms": round(statistics.quantiles(v, n=20)[18] * 1000, 1) for k, v in timings.items()},
        "batch_rows": conf.get("BATCH_ROWS"),
    }
    path.unlink(missing_ok=True)
    scratch.rmdir()
    if not keep:
        _clean(teams)
    return out


def _member(team: Team):
    from django.contrib.auth import get_user_model

    user, _ = get_user_model().objects.get_or_create(username="cbench-member")
    Membership.objects.get_or_create(user=user, team=team, defaults={"role": "member"})
    return user


def _clean(teams: list[Team]) -> None:
    provider = Provider.objects.filter(name="bench").first()
    if provider:
        CostLine.objects.filter(provider=provider)._raw_delete(CostLine.objects.db)
        CostImport.objects.filter(provider=provider).delete()
        provider.delete()
    Allocation.objects.all()._raw_delete(Allocation.objects.db)
    Entity.objects.filter(namespace="cbench").delete()
    from django.contrib.auth import get_user_model

    get_user_model().objects.filter(username="cbench-member").delete()
    Team.objects.filter(pk__in=[t.pk for t in teams]).delete()
    allocation.allocate(None)
