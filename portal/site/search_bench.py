"""`manage.py search bench`: a catalog of N entities (catalog.bench's generator), a timed index
rebuild, then timed API searches, typeahead requests and the bare full-text queries they wrap."""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client, override_settings

from catalog import bench as catalog_bench
from catalog import services as catalog_services
from catalog.models import Entity, Location
from catalog.signals import entities_changed, entities_staged
from portal.accounts.models import Membership, Role, Team
from portal.search import index, selectors
from portal.search.backends import get_backend
from portal.search.backends.base import Spec
from portal.search.query import parse

QUERIES = [
    "fraud",
    "credit risk",
    "customer churn",
    "forecast kind:model",
    "merchant lifecycle:production",
    "price tag:gpu",
    "anomaly score",
    "fruad",
    "cust",
    "supply route -deprecated",
    '"card loan"',
    "search ads kind:component",
    "vision embed",
    "stock demand type:classifier",
    "basket session",
    "clamy",
    "risk-score-12",
    "text speech kind:dataset owner:bench-team-3",
]
TYPEAHEAD = ["fr", "fra", "frau", "fraud", "cus", "custo", "churn m", "ima", "sess", "ranker"]


def _p(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * pct))] * 1000, 2)


def _timed_get(client: Client, url: str) -> float:
    started = time.perf_counter()
    with override_settings(ALLOWED_HOSTS=[*settings.ALLOWED_HOSTS, "testserver"]):
        response = client.get(url)
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, (url, response.status_code, response.content[:300])
    return elapsed


ROOT_PREFIX = "plinth-search-bench-"


def _measure(client: Client, urls: list[str], repeat: int) -> list[float]:
    for url in urls:  # warm the page cache (and, unless disabled, the results cache)
        _timed_get(client, url)
    return [_timed_get(client, url) for _ in range(repeat) for url in urls]


def run(total: int, keep: bool = False, repeat: int = 5, reuse: bool | None = None) -> dict:
    """With `reuse` (default: the environment variable PLINTH_SEARCH_BENCH_REUSE=1), the catalog an
    earlier `--keep` run left is searched again, its index rebuilt and timed, instead of generating
    and ingesting a new one."""
    if reuse is None:
        reuse = os.environ.get("PLINTH_SEARCH_BENCH_REUSE") == "1"
    root = Path(tempfile.mkdtemp(prefix=ROOT_PREFIX))
    result: dict = {"entities_requested": total, "db": connection.vendor}
    handlers = entities_changed.receivers[:], entities_staged.receivers[:]
    try:
        if reuse and Team.objects.filter(name="bench-team-0").exists():
            result["reused"] = True
        else:
            catalog_bench.generate(root, total)
            for signal in (entities_changed, entities_staged):  # ingest without indexing: the rebuild is timed
                signal.receivers = []
                signal.sender_receivers_cache.clear()
            try:
                catalog_services.location_register(target=str(root), actor=None, file_roots=None)
            finally:
                for signal, receivers in zip((entities_changed, entities_staged), handlers, strict=True):
                    signal.receivers = receivers
                    signal.sender_receivers_cache.clear()
        result["entities_stored"] = Entity.objects.count()
        built = index.rebuild()
        result["index_build_s"] = built["seconds"]
        result["documents_indexed"] = sum(built["documents"].values())

        user, _ = get_user_model().objects.get_or_create(username="search-bench-user")
        Membership.objects.get_or_create(
            user=user, team=Team.objects.get(name="bench-team-0"), defaults={"role": Role.MEMBER}
        )
        client = Client()
        client.force_login(user)
        from urllib.parse import quote

        api_urls = [f"/api/v1/search?q={quote(q)}&limit=20" for q in QUERIES]
        ta_urls = [f"/search/typeahead/?q={quote(q)}" for q in TYPEAHEAD]
        # As served: repeated queries come from the results cache (selectors.CACHE_SIZE).
        api = _measure(client, api_urls, repeat)
        ta = _measure(client, ta_urls, repeat)
        # The same requests with the results cache off: every request runs its SQL.
        cache_size, selectors.CACHE_SIZE = selectors.CACHE_SIZE, 0
        try:
            api_uncached = _measure(client, api_urls, repeat)
            ta_uncached = _measure(client, ta_urls, repeat)
        finally:
            selectors.CACHE_SIZE = cache_size

        backend = get_backend()
        allowed = selectors.scope(user)
        bare = []
        for _ in range(repeat):
            for q in QUERIES:
                parsed = parse(q)
                if not parsed.has_text:
                    continue
                spec = Spec(query=parsed, scope_sql=allowed[0], scope_params=allowed[1], limit=20)
                started = time.perf_counter()
                backend.bare_search(spec)
                bare.append(time.perf_counter() - started)
        result.update(
            search_api_p50_ms=_p(api, 0.5),
            search_api_p95_ms=_p(api, 0.95),
            typeahead_p50_ms=_p(ta, 0.5),
            typeahead_p95_ms=_p(ta, 0.95),
            bare_fts_p50_ms=_p(bare, 0.5),
            bare_fts_p95_ms=_p(bare, 0.95),
            api_to_bare_ratio_median=round(statistics.median(api) / statistics.median(bare), 2),
            search_api_uncached_p50_ms=_p(api_uncached, 0.5),
            search_api_uncached_p95_ms=_p(api_uncached, 0.95),
            typeahead_uncached_p50_ms=_p(ta_uncached, 0.5),
            typeahead_uncached_p95_ms=_p(ta_uncached, 0.95),
            api_uncached_to_bare_ratio_median=round(
                statistics.median(api_uncached) / statistics.median(bare), 2
            ),
            queries=len(QUERIES),
            repeat=repeat,
        )
        return result
    finally:
        if not keep:
            for location in Location.objects.filter(target__contains=f"/{ROOT_PREFIX}"):
                catalog_services.location_unregister(location=location, actor=None)
            Team.objects.filter(name__startswith="bench-team-").delete()
            get_user_model().objects.filter(username="search-bench-user").delete()
        shutil.rmtree(root, ignore_errors=True)
