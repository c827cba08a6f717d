"""`manage.py techdocs bench`: build N realistic Markdown pages, then time serving built pages.
`manage.py techdocs bench-card`: time the model-card tab of a model whose 512 KiB card is not built yet.

Works on the configured database with its own temporary rows (a Location, an Entity, a superuser),
removed afterwards. The entity is written directly, not through the catalog service, so no
`entities_changed` signal queues a competing background build while we measure."""

from __future__ import annotations

import os
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.test import Client

from catalog.ingest.reader import content_hash
from catalog.models import Entity, Location

from . import modelcards, selectors, services

PAGE = """---
title: Page {n}
---
# Page {n}: feature pipeline notes

Intro paragraph with **bold**, *emphasis*, `inline code` and a [link to the next page](page-{next}.md#usage).

## Usage

!!! note "Remember"
    Feature views are materialised every hour; see [the index](../index.md).

```python
from plinth import client

def score(transaction: dict) -> float:
    \"\"\"Score one transaction ({n}).\"\"\"
    features = client.features("card-transactions", transaction["card_id"])
    return model.predict([features])[0]
```

## Parameters

| Name | Type | Default | Description |
|------|------|--------:|-------------|
| ttl | duration | 24h | How long features stay fresh |
| online | bool | true | Served from the online store |
| batch_size | int | 512 | Rows per write |

### Details

- one
- two with `code`
- three

> A quote about section {n}.

```yaml
apiVersion: plinth.dev/v1alpha1
kind: FeatureSet
metadata: {{name: features-{n}}}
```
"""


def _write_tree(root: Path, pages: int) -> None:
    (root / "docs" / "section").mkdir(parents=True)
    (root / "docs" / "index.md").write_text("# Bench docs\n\nStart at [page 0](section/page-0.md).\n")
    for n in range(pages - 1):
        (root / "docs" / "section" / f"page-{n}.md").write_text(PAGE.format(n=n, next=(n + 1) % (pages - 1)))
    (root / "catalog-info.yaml").write_text("# bench\n")


def _bench_entity(root: Path, data: dict) -> tuple[Entity, object]:
    """The bench's entity (`data`, registered from `root`/catalog-info.yaml) and a platform admin named
    as it, to read its pages."""
    name, kind = data["metadata"]["name"], data["kind"]
    location = Location.objects.create(type="file", target=str(root / "catalog-info.yaml"))
    entity = Entity.objects.create(
        ref=f"{kind.lower()}:default/{name}", kind=kind, kind_key=kind.lower(), namespace="default",
        name=name, name_key=name, api_version=data["apiVersion"], data=data, location=location,
        source=str(root / "catalog-info.yaml"), content_hash=content_hash(data))
    user = get_user_model().objects.create(username=name, is_superuser=True, is_staff=True)
    return entity, user


def run(*, pages: int = 1000, requests: int = 300) -> dict:
    name = f"techdocs-bench-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="techdocs-bench-") as tmp:
        root = Path(tmp)
        _write_tree(root, pages)
        data = {"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
                "metadata": {"name": name, "namespace": "default",
                             "annotations": {"plinth.dev/techdocs-ref": "dir:./docs"}},
                "spec": {"type": "website", "lifecycle": "experimental", "owner": "platform"}}
        entity, user = _bench_entity(root, data)
        try:
            started, cpu_started = time.perf_counter(), time.process_time()
            site = services.docs_build(entity=entity, force=True)
            build_seconds = time.perf_counter() - started
            build_cpu = time.process_time() - cpu_started
            paths = list(site.pages.values_list("path", flat=True))
            client = Client(HTTP_HOST="localhost")
            client.force_login(user)
            base = f"/docs/component/default/{name}/"
            for path in paths[:20]:  # warm-up
                client.get(base + path)
            timings, cpu = [], []
            rng = random.Random(7)  # noqa: S311 (sampling pages for a benchmark)
            statuses = set()
            for _ in range(requests):
                path = rng.choice(paths)
                t0, c0 = time.perf_counter(), time.process_time()
                response = client.get(base + path)
                timings.append((time.perf_counter() - t0) * 1000)
                cpu.append((time.process_time() - c0) * 1000)
                statuses.add(response.status_code)
            timings.sort()
            cpu.sort()
            return {
                "benchmark": "techdocs", "pages": len(paths), "build_seconds": round(build_seconds, 2),
                "build_target_seconds": 20, "pages_per_second": round(len(paths) / build_seconds, 1),
                "serve_requests": requests, "serve_p50_ms": round(statistics.median(timings), 2),
                "serve_p95_ms": round(timings[int(len(timings) * 0.95) - 1], 2), "serve_target_p95_ms": 30,
                # CPU time of this process: what the figures are on an idle machine (wall time includes waiting
                # for a CPU when the host is busy).
                "build_cpu_seconds": round(build_cpu, 2), "serve_p95_cpu_ms": round(cpu[int(len(cpu) * 0.95) - 1], 2),
                "load_average_1m": round(os.getloadavg()[0], 2),
                "build_status": site.status, "build_errors": len(site.errors), "http_statuses": sorted(statuses),
            }
        finally:
            user.delete()
            entity.delete()
            entity.location.delete()


def card_text(kind: str, size: int = modelcards.MAX_CARD_BYTES) -> str:
    """A model card of about `size` bytes: `realistic` (the bench page's prose, tables and code, repeated)
    or `brackets` (unclosed `[`, the scan budget's worst case)."""
    if kind == "brackets":
        return "[" * size
    head = "---\nowners: [fraud-ml]\n---\n# Card\n\n## Intended use\n\nScoring card transactions.\n\n"
    parts, n = [head], len(head)
    while True:
        page = PAGE.format(n=len(parts), next=len(parts) + 1).split("---\n", 2)[2]
        if n + len(page.encode()) > size:
            return "".join(parts)
        parts.append(page)
        n += len(page.encode())


def run_card(*, kind: str = "realistic", repeats: int = 5) -> dict:
    """Median wall time of GET <model>/model-card/ for a card never built: `cold` renders it in the
    request (its cached facts removed first), `warm` reads the facts cached by its content hash,
    `built` reads the stored build (`services.model_card_build`, as the worker does on write)."""
    name = f"techdocs-bench-card-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="techdocs-bench-card-") as tmp:
        root = Path(tmp)
        card = card_text(kind)
        (root / "card.md").write_text(card)
        (root / "catalog-info.yaml").write_text("# bench\n")
        data = {"apiVersion": "plinth.dev/v1alpha1", "kind": "Model",
                "metadata": {"name": name, "namespace": "default"},
                "spec": {"type": "classifier", "lifecycle": "experimental", "owner": "platform",
                         "modelCard": "card.md"}}
        entity, user = _bench_entity(root, data)
        key = selectors.card_facts_key(modelcards.read_card(entity).source_hash)
        client = Client(HTTP_HOST="localhost")
        client.force_login(user)
        url = f"/catalog/model/default/{name}/model-card/"

        def timed(before=None) -> tuple[float, set]:
            times, statuses = [], set()
            for _ in range(repeats):
                if before:
                    before()
                t0 = time.perf_counter()
                statuses.add(client.get(url).status_code)
                times.append(time.perf_counter() - t0)
            return round(statistics.median(times), 3), statuses

        try:
            client.get(f"/catalog/model/default/{name}/")  # warm-up: imports, templates
            cold, s1 = timed(lambda: cache.delete(key))
            warm, s2 = timed()
            services.model_card_build(entity=entity)
            built, s3 = timed()
            return {"benchmark": "techdocs-model-card", "kind": kind, "card_bytes": len(card.encode()),
                    "repeats": repeats, "cold_median_s": cold, "warm_median_s": warm, "built_median_s": built,
                    "target_s": 1, "load_average_1m": round(os.getloadavg()[0], 2),
                    "http_statuses": sorted(s1 | s2 | s3)}
        finally:
            cache.delete(key)
            user.delete()
            entity.delete()
            entity.location.delete()
