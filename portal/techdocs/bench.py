"""`manage.py techdocs bench`: build N realistic Markdown pages, then time serving built pages.

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
from django.test import Client

from catalog.ingest.reader import content_hash
from catalog.models import Entity, Location

from . import services

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


def run(*, pages: int = 1000, requests: int = 300) -> dict:
    name = f"techdocs-bench-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="techdocs-bench-") as tmp:
        root = Path(tmp)
        _write_tree(root, pages)
        data = {"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
                "metadata": {"name": name, "namespace": "default",
                             "annotations": {"plinth.dev/techdocs-ref": "dir:./docs"}},
                "spec": {"type": "website", "lifecycle": "experimental", "owner": "platform"}}
        location = Location.objects.create(type="file", target=str(root / "catalog-info.yaml"))
        entity = Entity.objects.create(
            ref=f"component:default/{name}", kind="Component", kind_key="component", namespace="default",
            name=name, name_key=name, api_version=data["apiVersion"], data=data, location=location,
            source=str(root / "catalog-info.yaml"), content_hash=content_hash(data))
        user = get_user_model().objects.create(username=name, is_superuser=True, is_staff=True)
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
            location.delete()
