"""`manage.py search relevance`: how well search ranks, measured.

The demo catalog (the real, described assets of `manage.py demo load`) is mixed with a generated
noise catalog built to fool a ranker: its names are made of the demo's own words
(`fraud-anomaly-2143`, `payments-churn-88`), most of it is in production, it has templated
descriptions and tags that reuse the same words, and a few of its entities have titles. Then the
labelled queries in `search_relevance.yaml` are run through the one query path (`selectors.search`,
as the user each query names) and scored:

* **MRR** — the mean over queries of 1/rank of the first "best" answer in the top 10 (0 if none);
* **NDCG@10** — graded gains (best 3, good 2 or 1, everything else 0), discounted by rank, against
  the ideal order of the labels.

A query with no labelled answer ("no good answer") scores 1 on both when it returns nothing and 0
otherwise. Bench code: the portal never imports this module."""

from __future__ import annotations

import math
import random
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from django.contrib.auth import get_user_model
from django.db import connection

from portal.search import index, selectors
from portal.search.query import tokens

QUERIES_FILE = Path(__file__).with_name("search_relevance.yaml")
NOISE_NAMESPACE = "noise"
NOISE_PREFIX = "plinth-relevance-noise-"
TOP_K = 10
# The words of the demo catalog the noise is made of (and a few of its own).
VOCABULARY = [
    "fraud", "detector", "detection", "scoring", "score", "card", "transactions", "chargeback", "churn",
    "customer", "profile", "product", "ranker", "ranking", "recommendations", "recommendation", "session",
    "features", "feature", "clickstream", "storefront", "email", "nightly", "batch", "mlflow", "tracking",
    "store", "platform", "payments", "personalisation", "risk", "governance", "training", "evaluation",
    "merchant", "credit", "model", "service", "events", "anomaly", "predictor", "pipeline", "report",
]
GENERIC_TAGS = ["pii", "python", "batch", "streaming", "tier-1", "beta", "gpu", "java", "internal", "legacy"]
VOCABULARY_TAGS = ["fraud", "churn", "recommendation", "ranking", "customer", "classification", "training"]
DEMO_TEAMS = ["fraud-ml", "recsys", "platform"]
KINDS = ["Component", "API", "Model", "FeatureSet", "Dataset", "Pipeline", "System", "Resource"]
PLINTH_KINDS = {"Model", "FeatureSet", "Dataset", "Pipeline"}
DESCRIPTIONS = [
    "{A} {b} {kind} #{n}.",
    "Generated {kind} for {a} {b}.",
    "Copy of the {a} {b} job.",
    "{A} {b} events, batch {n}.",
    "Owned by {team}: {a} and {b}.",
    "Legacy {a} service, see {b} runbook.",
]


# -- the noise catalog ----------------------------------------------------------------------------
def noise_documents(count: int, seed: int = 16, reserved: set[str] | None = None) -> list[dict]:
    """`count` adversarial descriptors in namespace `noise` (names never equal a `reserved` name)."""
    rng = random.Random(seed)  # noqa: S311 (reproducible test data, not secrets)
    reserved = reserved or set()
    teams = [f"noise-team-{i}" for i in range(40)]
    systems = [f"{rng.choice(VOCABULARY)}-system-{i}" for i in range(max(10, count // 200))]
    docs, used = [], set()
    for system in systems:
        docs.append(_descriptor("System", system, {"owner": rng.choice(teams)}, {}))
        used.add(system)
    n = 0
    while len(docs) < count:
        n += 1
        kind = KINDS[n % len(KINDS)]
        words = rng.sample(VOCABULARY, 3)
        style = rng.random()
        if style < 0.6:
            name = f"{words[0]}-{words[1]}-{n}"
        elif style < 0.8:
            name = f"{rng.choice(teams).removeprefix('noise-')}-{words[0]}-{n}"
        else:
            name = "-".join(words)
        if name in used or name in reserved:
            continue
        used.add(name)
        owner = rng.choice(DEMO_TEAMS) if rng.random() < 0.1 else rng.choice(teams)
        meta: dict = {}
        if rng.random() < 0.85:
            a, b = rng.choice(VOCABULARY), rng.choice(VOCABULARY)
            meta["description"] = rng.choice(DESCRIPTIONS).format(
                A=a.capitalize(), a=a, b=b, kind=kind.lower(), n=n, team=owner
            )
        if rng.random() < 0.005:  # rare, as in generated catalogs, and about something else
            meta["title"] = f"{rng.choice(VOCABULARY).capitalize()} {rng.choice(VOCABULARY)} {kind.lower()}"
        if rng.random() < 0.6:
            tags = rng.sample(GENERIC_TAGS, rng.choice([1, 2]))
            if rng.random() < 0.08:
                tags.append(rng.choice(VOCABULARY_TAGS))
            meta["tags"] = tags
        if n % 17 == 0:
            meta["annotations"] = {"plinth.dev/visibility": "private"}
        lifecycle = rng.choices(["production", "experimental", "deprecated"], [0.55, 0.3, 0.15])[0]
        spec = _noise_spec(rng, kind, owner, lifecycle, systems, n)
        docs.append(_descriptor(kind, name, spec, meta))
    return docs


def _noise_spec(rng: random.Random, kind: str, owner: str, lifecycle: str, systems: list[str], n: int) -> dict:
    system = f"system:{NOISE_NAMESPACE}/{rng.choice(systems)}"
    other = f"{rng.choice(VOCABULARY)}-{rng.choice(VOCABULARY)}-{max(1, n - 3)}"
    if kind == "Component":
        return {"type": rng.choice(["service", "library", "website"]), "lifecycle": lifecycle, "owner": owner,
                "system": system}
    if kind == "API":
        return {"type": "openapi", "lifecycle": lifecycle, "owner": owner, "system": system,
                "definition": "openapi: 3.0.0\ninfo: {title: x, version: '1'}\npaths: {}\n"}
    if kind == "Model":
        return {"type": rng.choice(["classifier", "regressor", "ranker"]), "lifecycle": lifecycle, "owner": owner,
                "system": system, "riskTier": rng.choice([1, 2, 3]),
                "consumesFeatures": [f"featureset:{NOISE_NAMESPACE}/{other}"],
                "trainedOn": [f"dataset:{NOISE_NAMESPACE}/{other}"]}
    if kind == "FeatureSet":
        return {"owner": owner, "system": system, "ttl": "24h", "online": True, "offline": True,
                "entities": [{"name": rng.choice(["customer", "card", "merchant", "session"]),
                              "joinKeys": ["id"], "valueType": "STRING"}],
                "features": [{"name": f"{rng.choice(VOCABULARY)}_{rng.choice(VOCABULARY)}_{w}", "type": "FLOAT"}
                             for w in ("1h", "7d")]}
    if kind == "Dataset":
        return {"owner": owner, "system": system, "uri": f"s3://noise/{n}/",
                "classification": rng.choice(["internal", "pii", "public"])}
    if kind == "Pipeline":
        return {"type": "training", "owner": owner, "system": system, "schedule": "0 3 * * *",
                "orchestrator": rng.choice(["airflow", "flink"]), "inputs": [f"dataset:{NOISE_NAMESPACE}/{other}"],
                "outputs": []}
    if kind == "Resource":
        return {"type": rng.choice(["database", "bucket", "queue"]), "owner": owner, "system": system}
    return {"owner": owner}


def _descriptor(kind: str, name: str, spec: dict, meta: dict) -> dict:
    api = "plinth.dev/v1alpha1" if kind in PLINTH_KINDS else "backstage.io/v1alpha1"
    return {"apiVersion": api, "kind": kind, "metadata": {"name": name, "namespace": NOISE_NAMESPACE, **meta},
            "spec": spec}


# -- the labelled queries ------------------------------------------------------------------------
@dataclass
class Judged:
    text: str
    user: str
    category: str
    grades: dict[str, int]  # key → 3 (best), 2 or 1 (good)
    note: str = ""

    @property
    def best(self) -> set[str]:
        return {k for k, g in self.grades.items() if g == 3}


def _key(ref: str) -> str:
    kind, _, name = ref.partition(":")
    return ref if "/" in name else f"{kind}:default/{name}"


def judgements(path: Path = QUERIES_FILE) -> list[Judged]:
    data = yaml.safe_load(path.read_text())
    out = []
    for category, entries in data["categories"].items():
        for entry in entries:
            grades = {_key(ref): 3 for ref in entry.get("best", [])}
            for grade, refs in ((2, entry.get("good", [])), (1, entry.get("related", []))):
                grades.update({_key(ref): grade for ref in refs if _key(ref) not in grades})
            out.append(Judged(str(entry["q"]), entry.get("user", data["user"]), category, grades,
                              entry.get("note", "")))
    return out


# -- metrics ------------------------------------------------------------------------------------------
def reciprocal_rank(judged: Judged, keys: list[str]) -> float:
    if not judged.grades:
        return 1.0 if not keys else 0.0
    for rank, key in enumerate(keys[:TOP_K], 1):
        if key in judged.best:
            return 1.0 / rank
    return 0.0


def ndcg(judged: Judged, keys: list[str]) -> float:
    if not judged.grades:
        return 1.0 if not keys else 0.0
    dcg = sum((2 ** judged.grades.get(k, 0) - 1) / math.log2(i + 2) for i, k in enumerate(keys[:TOP_K]))
    ideal = sorted(judged.grades.values(), reverse=True)[:TOP_K]
    idcg = sum((2**g - 1) / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg


@dataclass
class Report:
    mrr: float
    ndcg: float
    queries: int
    by_category: dict[str, dict[str, float]]
    failing: list[dict]
    tops: dict[str, str | None]
    proven_top: int  # queries whose first hit provably holds its place
    exact: int  # queries whose whole first page was provably exact
    latency_ms: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "db": connection.vendor,
            "queries": self.queries,
            "mrr": round(self.mrr, 4),
            "ndcg_at_10": round(self.ndcg, 4),
            "by_category": self.by_category,
            "top_hit_proven": self.proven_top,
            "page_exact": self.exact,
            "latency_ms": self.latency_ms,
            "failing": self.failing,
        }


def evaluate(queries: list[Judged] | None = None) -> Report:
    """Run every labelled query as its user and score the first TOP_K hits."""
    queries = judgements() if queries is None else queries
    users = {u.username: u for u in get_user_model().objects.filter(username__in={q.user for q in queries})}
    rrs, ndcgs, failing, tops, timings = [], [], [], {}, []
    per: dict[str, list[tuple[float, float]]] = {}
    proven = exact = 0
    for judged in queries:
        started = time.perf_counter()
        results = selectors.search(users[judged.user], judged.text, limit=TOP_K, with_facets=False)
        timings.append((time.perf_counter() - started) * 1000)
        keys = [h.key for h in results.hits]
        rr, gain = reciprocal_rank(judged, keys), ndcg(judged, keys)
        rrs.append(rr)
        ndcgs.append(gain)
        per.setdefault(judged.category, []).append((rr, gain))
        tops[f"{judged.user}: {judged.text}"] = keys[0] if keys else None
        proven += bool(results.ranking.get("provenHits")) or not keys
        exact += bool(results.ranking.get("exact")) or not keys
        if rr < 1 or gain < 0.8:
            failing.append({
                "query": judged.text, "user": judged.user, "category": judged.category,
                "rr": round(rr, 3), "ndcg": round(gain, 3), "best": sorted(judged.best),
                "got": [f"{k} ({judged.grades.get(k, 0)})" for k in keys[:5]],
                "corrected": results.corrected,
            })
    return Report(
        mrr=statistics.fmean(rrs),
        ndcg=statistics.fmean(ndcgs),
        queries=len(queries),
        by_category={c: {"queries": len(v), "mrr": round(statistics.fmean(r for r, _ in v), 3),
                         "ndcg": round(statistics.fmean(g for _, g in v), 3)} for c, v in per.items()},
        failing=failing,
        tops=tops,
        proven_top=proven,
        exact=exact,
        latency_ms={"p50": round(statistics.median(timings), 2),
                    "p95": round(sorted(timings)[int(len(timings) * 0.95)], 2)},
    )


# -- set-up -------------------------------------------------------------------------------------------
def load_noise(count: int, seed: int = 16) -> Path:
    """Write the noise catalog to a temporary folder and register it (as an admin would); the caller
    removes it with `remove_noise`."""
    from catalog import services as catalog_services
    from catalog.models import Entity

    root = Path(tempfile.mkdtemp(prefix=NOISE_PREFIX))
    # No noise entity is named like a demo entity or like a labelled query ("merchant-risk-score" would
    # be the right answer to "merchant risk score", and the labels would lie).
    reserved = set(Entity.objects.exclude(namespace=NOISE_NAMESPACE).values_list("name", flat=True))
    reserved |= {"-".join(tokens(j.text)) for j in judgements()}
    docs = noise_documents(count, seed, reserved)
    per_file = 1000
    for n, start in enumerate(range(0, len(docs), per_file)):
        folder = root / f"repo-{n:04d}"
        folder.mkdir()
        (folder / "catalog-info.yaml").write_text(
            yaml.dump_all(docs[start:start + per_file], Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper),
                          sort_keys=False)
        )
    catalog_services.location_register(target=str(root), actor=None, file_roots=None)
    return root


def remove_noise(root: Path | None = None) -> None:
    """Unregister the noise catalog at `root` (None: every one an earlier --keep run left)."""
    from catalog import services as catalog_services
    from catalog.models import Location

    locations = Location.objects.filter(target__contains=f"/{NOISE_PREFIX}")
    if root is not None:
        locations = locations.filter(target=str(root.resolve()))
    for location in locations:
        catalog_services.location_unregister(location=location, actor=None)
    if root is not None:
        shutil.rmtree(root, ignore_errors=True)


def run(noise: int = 20_000, seed: int = 16, keep: bool = False) -> Report:
    """Load the demo organisation and catalog (again: unchanged files are skipped), add the noise,
    rebuild the index, evaluate; the noise is removed afterwards unless `keep`."""
    from catalog import demo as catalog_demo
    from portal.accounts import demo as org_demo

    org_demo.load_org()
    catalog_demo.load_catalog()
    remove_noise()
    root = load_noise(noise, seed)
    try:
        index.rebuild()
        selectors.clear_cache()
        return evaluate()
    finally:
        if not keep:
            remove_noise(root)
