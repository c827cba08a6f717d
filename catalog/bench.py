"""`manage.py catalog bench`: generate a realistic catalog, ingest it, measure, report one dict.

Runs against the configured database (use a scratch PLINTH_VAR_DIR); generated entities live in
namespace `bench` and are removed afterwards unless --keep."""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import random
import resource
import shutil
import tempfile
import time
from pathlib import Path

import yaml
from django.contrib.auth import get_user_model
from django.db import connection, reset_queries
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings

from portal.accounts.models import Membership, Role, Team
from portal.core.db import wait_for_checkpoints

from . import services
from .models import Entity, Location

WORDS = ["fraud", "churn", "ranker", "credit", "risk", "score", "forecast", "demand", "price", "search", "ads", "click", "session", "basket", "customer", "merchant", "card", "loan", "claim", "image", "text", "embed", "vision", "speech", "anomaly", "stock", "supply", "route"]
PER_FILE = 1000


def _name(rng: random.Random, i: int) -> str:
    return f"{rng.choice(WORDS)}-{rng.choice(WORDS)}-{i}"


def generate(root: Path, total: int, seed: int = 7) -> dict:
    rng = random.Random(seed)  # noqa: S311 (reproducible test data, not secrets)
    teams = [f"bench-team-{i}" for i in range(max(10, total // 1000))]
    systems = [f"bench-system-{i}" for i in range(max(10, total // 250))]
    docs: list[dict] = []
    for team in teams:
        docs.append({"apiVersion": "backstage.io/v1alpha1", "kind": "Group",
                     "metadata": {"name": team}, "spec": {"type": "team", "children": []}})
    for system in systems:
        docs.append({"apiVersion": "backstage.io/v1alpha1", "kind": "System",
                     "metadata": {"name": system, "namespace": "bench"},
                     "spec": {"owner": rng.choice(teams)}})
    kinds = ["Component", "API", "Model", "FeatureSet", "Dataset", "Pipeline"]
    i = 0
    while len(docs) < total:
        i += 1
        kind = kinds[i % len(kinds)]
        owner = rng.choice(teams)
        meta = {"name": _name(rng, i), "namespace": "bench",
                "description": f"{rng.choice(WORDS)} {rng.choice(WORDS)} {kind.lower()} number {i}",
                "tags": rng.sample(["pii", "python", "gpu", "batch", "streaming", "tier-1", "beta"], 2)}
        if i % 17 == 0:
            meta["annotations"] = {"plinth.dev/visibility": "private"}
        system = f"system:bench/{rng.choice(systems)}"
        lifecycle = rng.choice(["production", "experimental", "deprecated"])
        if kind == "Component":
            spec = {"type": rng.choice(["service", "library", "website"]), "lifecycle": lifecycle, "owner": owner,
                    "system": system, "dependsOn": [f"component:bench/{_name(rng, max(1, i - 6))}"]}
        elif kind == "API":
            spec = {"type": "openapi", "lifecycle": lifecycle, "owner": owner, "system": system,
                    "definition": "openapi: 3.0.0\ninfo: {title: x, version: '1'}\npaths: {}\n"}
        elif kind == "Model":
            spec = {"type": rng.choice(["classifier", "regressor", "ranker"]), "lifecycle": lifecycle,
                    "owner": owner, "system": system, "riskTier": rng.choice([1, 2, 3]),
                    "consumesFeatures": [f"featureset:bench/{_name(rng, i - 2)}"],
                    "trainedOn": [f"dataset:bench/{_name(rng, i - 1)}"]}
        elif kind == "FeatureSet":
            spec = {"owner": owner, "system": system, "ttl": "24h", "online": True, "offline": True,
                    "entities": [{"name": "customer", "joinKeys": ["customer_id"], "valueType": "STRING"}],
                    "features": [{"name": f"f_{j}", "type": "FLOAT"} for j in range(3)]}
        elif kind == "Dataset":
            spec = {"owner": owner, "system": system, "uri": f"s3://bench/{i}/",
                    "classification": rng.choice(["internal", "pii", "public"])}
        else:
            spec = {"type": "training", "owner": owner, "system": system, "schedule": "0 3 * * *",
                    "orchestrator": "airflow", "inputs": [f"dataset:bench/{_name(rng, i - 3)}"], "outputs": []}
        api_version = "plinth.dev/v1alpha1" if kind in {"Model", "FeatureSet", "Dataset", "Pipeline"} else "backstage.io/v1alpha1"
        docs.append({"apiVersion": api_version, "kind": kind, "metadata": meta, "spec": spec})
    for n, start in enumerate(range(0, len(docs), PER_FILE)):
        folder = root / f"repo-{n:04d}"
        folder.mkdir(parents=True)
        text = yaml.dump_all(docs[start:start + PER_FILE], Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper),
                             sort_keys=False)
        (folder / "catalog-info.yaml").write_text(text)
    return {"teams": teams, "files": (len(docs) + PER_FILE - 1) // PER_FILE}


def _children_cpu() -> float:
    """CPU seconds of this process's finished children (the reading processes of an ingest)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _p(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * pct))] * 1000, 2)


def _time_requests(client: Client, urls: list[str], repeat: int = 3) -> tuple[list[float], list[int]]:
    timings, queries = [], []
    for _ in range(repeat):
        for url in urls:
            with CaptureQueriesContext(connection) as ctx:
                started = time.perf_counter()
                response = client.get(url)
                timings.append(time.perf_counter() - started)
            assert response.status_code == 200, (url, response.status_code)
            queries.append(len(ctx.captured_queries))
    return timings, queries


@contextlib.contextmanager
def quiet_access_log():
    """One access-log line per timed request would time the terminal, not the portal. The level is put
    back afterwards: the tests run benches in-process, and later tests read the access log."""
    access = logging.getLogger("plinth.access")
    level = access.level
    access.setLevel(logging.WARNING)
    try:
        yield
    finally:
        access.setLevel(level)


def run(total: int, keep: bool = False) -> dict:
    with quiet_access_log():
        return _run(total, keep)


def _run(total: int, keep: bool) -> dict:
    root = Path(tempfile.mkdtemp(prefix="plinth-bench-"))
    result: dict = {"entities_requested": total, "db": connection.vendor}
    try:
        started = time.perf_counter()
        info = generate(root, total)
        result["generate_s"] = round(time.perf_counter() - started, 2)

        # As in production: with DEBUG on (the dev settings), Django would also log every statement.
        with override_settings(DEBUG=False):
            started, cpu, readers = time.perf_counter(), time.process_time(), _children_cpu()
            plan = services.location_register(target=str(root), actor=None, file_roots=None)
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
            readers = _children_cpu() - readers
            # The log the ingest filled is copied back into the database by a background thread
            # after the commit (portal.core.db.bulk_write_cache): timed apart, and waited for, so
            # that what follows is measured without it.
            started = time.perf_counter()
            wait_for_checkpoints()
            result["ingest_checkpoint_after_s"] = round(time.perf_counter() - started, 2)
        stored = Entity.objects.filter(location__target=str(root.resolve())).count()
        result.update(ingest_s=round(elapsed, 2), ingest_cpu_s=round(cpu, 2),
                      ingest_reader_processes_cpu_s=round(readers, 2), entities_stored=stored,
                      ingest_entities_per_s=round(stored / elapsed), ingest_errors=len(plan.errors),
                      load_average=round(os.getloadavg()[0], 2))
        location = Location.objects.get(target=str(root.resolve()))

        with override_settings(DEBUG=False):
            started = time.perf_counter()
            refresh = services.location_refresh(location=location)
            result["refresh_unchanged_s"] = round(time.perf_counter() - started, 2)
        result["refresh_changed"] = len(refresh.changed) + len(refresh.added)

        User = get_user_model()
        user, _ = User.objects.get_or_create(username="bench-user")
        team = Team.objects.get(name=info["teams"][0])
        Membership.objects.get_or_create(user=user, team=team, defaults={"role": Role.MEMBER})
        client = Client(HTTP_HOST="localhost")
        client.force_login(user)
        some = list(Entity.objects.filter(namespace="bench", visibility="internal").values_list(
            "kind_key", "name")[: 20])
        owner = info["teams"][3]
        list_urls = ["/catalog/", "/catalog/?kind=model", f"/catalog/?kind=model&owner={owner}",
                     "/catalog/?tag=pii&lifecycle=production", "/catalog/?kind=component&page=50",
                     "/catalog/?q=fraud", "/catalog/?mine=true"]
        api_urls = ["/api/v1/entities?limit=50", "/api/v1/entities?filter=kind=model,spec.type=classifier&limit=50",
                    f"/api/v1/entities?filter=spec.owner={owner}&limit=20",
                    "/api/v1/entities?filter=metadata.tags=gpu&limit=50&fields=kind,metadata.name"]
        entity_urls = [f"/catalog/{k}/bench/{n}/" for k, n in some]
        facet_urls = ["/api/v1/entity-facets?facet=kind&facet=spec.type&facet=spec.lifecycle",
                      "/api/v1/entity-facets?facet=metadata.tags&filter=kind=model",
                      "/api/v1/entity-facets?facet=spec.owner"]
        # A web process holds none of the ingestion's objects: drop them before timing requests
        # (a quarter-million candidates would make every garbage collection slow).
        del plan, refresh
        gc.collect()
        reset_queries()
        for name, urls in {"list_page": list_urls, "list_api": api_urls, "entity_page": entity_urls,
                           "facets": facet_urls}.items():
            # The first request of each URL pays for cold caches (the facet cube's arrangement in this
            # process, its per-filter sums, SQLite pages): reported apart, as the slowest cold one.
            cold, _ = _time_requests(client, urls, repeat=1)
            timings, queries = _time_requests(client, urls)
            result[f"{name}_p50_ms"] = _p(timings, 0.5)
            result[f"{name}_p95_ms"] = _p(timings, 0.95)
            result[f"{name}_cold_max_ms"] = _p(cold, 1.0)
            result[f"{name}_max_queries"] = max(queries)
            if name == "list_page":  # which page is slow, if one is
                result["list_page_p50_by_url_ms"] = {
                    url: _p(timings[i::len(urls)], 0.5) for i, url in enumerate(urls)}
        return result
    finally:
        if not keep:
            remove(root)


def remove(root: Path) -> None:
    """Undo a bench's catalog: its location's entities, the bench teams, the generated files."""
    for location in Location.objects.filter(target=str(root.resolve())):
        services.location_unregister(location=location, actor=None)
    Team.objects.filter(name__startswith="bench-team-").delete()
    shutil.rmtree(root, ignore_errors=True)
