"""`manage.py lineage bench`, second part: the graph queries over what the ingest part stored (or what the
database holds, `--skip-ingest`), from its busiest nodes: the graph query (depth 5, both directions) and
impact analysis (10 hops downstream) as the API computes them — median and p95 — and their ratio to the
bare recursive SQL over the same edges (`graph.walk_sql`, fetched and nothing else).

Never imported by the app itself."""

from __future__ import annotations

import statistics
import time

from django.db import connection

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


def _timed(call) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def _summary(samples: list[float]) -> dict:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"median_ms": round(statistics.median(ordered), 2), "p95_ms": round(p95, 2), "queries": len(ordered)}


def _bare(root: int, depth: int, direction: str) -> None:
    sql, params = graph.walk_sql(root, depth, direction)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        cursor.fetchall()


def run(*, queries: int = 200) -> dict:
    """Each measurement runs `queries` times over the busiest nodes in turn, after one untimed warm-up
    pass; the graph and impact timings include everything the API does but HTTP and JSON encoding
    (root lookup, the walk, node facts with visibility, pruning, the Marquez/impact dicts)."""
    user = _reader()
    busy = _busy_nodes()
    if not busy:
        return {"error": "no edges: ingest first"}
    plan = [busy[i % len(busy)] for i in range(max(queries, 1))]
    for pk, node_id in busy:  # warm-up: caches, the user's roles, query plans
        _bare(pk, GRAPH_DEPTH, "both")
        graph.lineage(node_id, user=user, depth=GRAPH_DEPTH, direction="both").as_marquez()
        graph.impact(node_id, user=user, hops=IMPACT_HOPS).as_dict()
    bare = [_timed(lambda pk=pk: _bare(pk, GRAPH_DEPTH, "both")) for pk, _ in plan]
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
        "impact_10_hops": {**_summary(impact), "items_median": statistics.median(impacts)},
        "bare_sql_10_hops_downstream": _summary(bare_impact),
    }
    out["ratio_graph_to_bare_sql"] = {
        "median": round(out["graph_depth5"]["median_ms"] / max(out["bare_sql_depth5"]["median_ms"], 1e-6), 2),
        "p95": round(out["graph_depth5"]["p95_ms"] / max(out["bare_sql_depth5"]["p95_ms"], 1e-6), 2)}
    out["ratio_impact_to_bare_sql"] = {
        "median": round(out["impact_10_hops"]["median_ms"] / max(out["bare_sql_10_hops_downstream"]["median_ms"], 1e-6), 2),
        "p95": round(out["impact_10_hops"]["p95_ms"] / max(out["bare_sql_10_hops_downstream"]["p95_ms"], 1e-6), 2)}
    out["targets"] = {"graph_p95_ms": 50, "impact_p95_ms": 100, "ratio": 3}
    return out
