"""`manage.py lineage bench`, second part: the graph queries over what the ingest part stored (or what the
database holds, `--skip-ingest`), from its busiest nodes: the graph query (depth 5, both directions) and
impact analysis (10 hops downstream) as the API computes them — median and p95 — and their ratio to the
bare recursive SQL over the same edges (`graph.walk_sql`, fetched and nothing else).

Never imported by the app itself."""

from __future__ import annotations

import statistics
import time

from django.db import connection
from django.test.utils import override_settings

from . import graph
from .models import Edge, Node

BUSY_NODES = 50
GRAPH_DEPTH = 5
IMPACT_HOPS = 10


def _reader():
    """A team member (not a platform admin): every node's visibility is decided as for real readers."""
    from django.contrib.auth import get_user_model

    from portal.accounts.models import Membership, Role, Team

    User = get_user_model()  # noqa: N806
    user, _ = User.objects.get_or_create(username="lineage-bench-reader")
    team, _ = Team.objects.get_or_create(name="lineage-bench")
    Membership.objects.get_or_create(user=user, team=team, defaults={"role": Role.MEMBER})
    return User.objects.get(pk=user.pk)


def _busy_nodes() -> list[tuple[int, str]]:
    """The nodes with the most edges (in + out), busiest first."""
    table = connection.ops.quote_name(Edge._meta.db_table)
    sql = (f"SELECT node, COUNT(*) AS degree FROM (SELECT source_id AS node FROM {table} "  # noqa: S608
           f"UNION ALL SELECT target_id FROM {table}) AS ends GROUP BY node ORDER BY degree DESC, node LIMIT %s")
    with connection.cursor() as cursor:
        cursor.execute(sql, [BUSY_NODES])
        ids = [row[0] for row in cursor.fetchall()]
    names = {n.pk: n.node_id for n in Node.objects.filter(pk__in=ids).only("type", "namespace", "name")}
    return [(pk, names[pk]) for pk in ids if pk in names]


def _timed(call) -> tuple[float, float]:
    """(wall ms, CPU ms of this process): on a busy machine the CPU time is what the query itself cost."""
    started, cpu = time.perf_counter(), time.process_time()
    call()
    return (time.perf_counter() - started) * 1000, (time.process_time() - cpu) * 1000


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def _summary(samples: list[tuple[float, float]]) -> dict:
    wall, cpu = [w for w, _ in samples], [c for _, c in samples]
    return {"median_ms": round(statistics.median(wall), 3), "p95_ms": round(_p95(wall), 3),
            "cpu_median_ms": round(statistics.median(cpu), 3), "cpu_p95_ms": round(_p95(cpu), 3),
            "queries": len(samples)}


def _bare(root: int, depth: int, direction: str) -> None:
    sql, params = graph.walk_sql(root, depth, direction)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        cursor.fetchall()


def _bare_named(root: int, depth: int, direction: str) -> None:
    """The same walk, and what any answer needs besides integers: each node's type, namespace and name
    (one statement; nothing about runs, entities or visibility)."""
    sql, params = graph.walk_sql(root, depth, direction)
    table = connection.ops.quote_name(Node._meta.db_table)
    named = (f"SELECT w.node, w.parent, w.depth, w.dir, n.type, n.namespace, n.name "  # noqa: S608
             f"FROM ({sql}) AS w LEFT JOIN {table} n ON n.id = w.node")
    with connection.cursor() as cursor:
        cursor.execute(named, params)
        cursor.fetchall()


def _ratios(ours: dict, bare: dict) -> dict:
    return {key: round(ours[key] / max(bare[key], 1e-6), 2) for key in ("median_ms", "p95_ms", "cpu_median_ms")}


def run(*, queries: int = 200) -> dict:
    """Each measurement runs `queries` times over the busiest nodes in turn, after one untimed warm-up
    pass; the graph and impact timings include everything the API does but HTTP and JSON encoding
    (root lookup, the walk, node facts with visibility, pruning, the Marquez/impact dicts). DEBUG is
    off, as in production: Django's debug cursor would add its logging to every statement."""
    with override_settings(DEBUG=False):
        return _run(queries)


def _run(queries: int) -> dict:
    user = _reader()
    busy = _busy_nodes()
    if not busy:
        return {"error": "no edges: ingest first"}
    plan = [busy[i % len(busy)] for i in range(max(queries, 1))]
    for pk, node_id in busy:  # warm-up: caches, the user's roles, query plans
        _bare(pk, GRAPH_DEPTH, "both")
        _bare_named(pk, GRAPH_DEPTH, "both")
        graph.lineage(node_id, user=user, depth=GRAPH_DEPTH, direction="both").as_marquez()
        graph.impact(node_id, user=user, hops=IMPACT_HOPS).as_dict()
    bare = [_timed(lambda pk=pk: _bare(pk, GRAPH_DEPTH, "both")) for pk, _ in plan]
    named = [_timed(lambda pk=pk: _bare_named(pk, GRAPH_DEPTH, "both")) for pk, _ in plan]
    lineage = [_timed(lambda n=n: graph.lineage(n, user=user, depth=GRAPH_DEPTH, direction="both").as_marquez())
               for _, n in plan]
    bare_impact = [_timed(lambda pk=pk: _bare(pk, IMPACT_HOPS, "downstream")) for pk, _ in plan]
    impact = [_timed(lambda n=n: graph.impact(n, user=user, hops=IMPACT_HOPS).as_dict()) for _, n in plan]
    sizes = [len(graph.lineage(n, user=user, depth=GRAPH_DEPTH).nodes) for _, n in busy[:10]]
    impacts = [len(graph.impact(n, user=user, hops=IMPACT_HOPS).items) for _, n in busy[:10]]
    out = {
        "busy_nodes": len(busy), "nodes_in_graph": Node.objects.count(),
        "graph_depth5": {**_summary(lineage), "nodes_returned_median": statistics.median(sizes)},
        "bare_sql_depth5": _summary(bare),
        "bare_sql_depth5_with_names": _summary(named),
        "impact_10_hops": {**_summary(impact), "items_median": statistics.median(impacts)},
        "bare_sql_10_hops_downstream": _summary(bare_impact),
    }
    out["ratio_graph_to_bare_sql"] = _ratios(out["graph_depth5"], out["bare_sql_depth5"])
    out["ratio_graph_to_bare_sql_with_names"] = _ratios(out["graph_depth5"], out["bare_sql_depth5_with_names"])
    out["ratio_impact_to_bare_sql"] = _ratios(out["impact_10_hops"], out["bare_sql_10_hops_downstream"])
    out["targets"] = {"graph_p95_ms": 50, "impact_p95_ms": 100, "ratio": 3}
    return out
