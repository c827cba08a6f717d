"""Writes of the unified graph: keeps `GraphEdge` (the edges OpenLineage did not draw) in step with the
catalog, the MLflow sync and deployments.

Each row is owned by one catalog entity and recomputed whole when that entity — or an entity its edges
point at — changes: `graph_edges_refresh(entity_ids=…)`. The receivers below call it on the catalog's
signals (registration, observed entities, Deployment entities, MLflow sync); `graph_edges_rebuild()`
(`manage.py lineage rebuild`) recomputes everything. OpenLineage's own edges (`Edge`) are walked in place
and need nothing here (see docs/lineage.md, "Why two tables")."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable

from django.db import connection, transaction
from django.db.models import Min

from catalog.descriptors.relations import RELATION_PAIRS
from catalog.models import Entity, ModelVersion, Relation, RunInput
from catalog.services import OBSERVED_SOURCE
from portal.core.db import values_in, values_table

from .models import (
    EdgeOrigin,
    GraphEdge,
    Node,
    NodeType,
    entity_key,
    entity_key_sql,
    node_key,
    run_key,
    version_key,
)

log = logging.getLogger("plinth.lineage")
CHUNK = 2000
JOIN_CHUNK = 50_000

# Catalog relations that are lineage, oriented upstream → downstream. True: data flows from the row's
# source_ref to its target_ref; False: from target_ref to source_ref. Both directions of a relation are
# stored (with the declaring entity as origin), so each pair is listed from both sides and gives one edge.
# Ownership, partOf/hasPart, memberOf, childOf are not lineage; deploymentOf is drawn from the deployment
# rows instead (model version → deployment).
FLOW: dict[str, bool] = {
    "trainedOn": False,            # model trainedOn dataset: dataset → model
    "consumesFeatures": False,     # model consumesFeatures feature set: feature set → model
    "dependsOn": False,            # X dependsOn Y: Y → X (the dependency feeds the dependant)
    "consumesDataset": False,      # pipeline consumes dataset: dataset → pipeline
    "producesDataset": True,       # pipeline produces dataset: pipeline → dataset
    "consumesApi": False,          # component consumes API: API → component
    "providesApi": True,           # component provides API: component → API
    "servedBy": True,              # deployment servedBy component/API: deployment → service
}
FLOW.update({RELATION_PAIRS[forward]: not downstream for forward, downstream in list(FLOW.items())})
LABEL = {**{t: t for t in RELATION_PAIRS}, **{inverse: forward for forward, inverse in RELATION_PAIRS.items()}}


def _chunks(values: list, size: int = CHUNK) -> Iterable[list]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


def entity_keys(entity_ids: Iterable[int]) -> dict[int, int]:
    """The graph key of each entity: its lineage node when one maps to it (the lowest id when several
    do), else its own entity key."""
    ids = list(set(entity_ids))
    keys = {pk: entity_key(pk) for pk in ids}
    for chunk in _chunks(ids):
        for entity_id, node in Node.objects.filter(entity_id__in=values_in(chunk)).values("entity_id").annotate(
                first=Min("id")).values_list("entity_id", "first"):
            keys[entity_id] = node
    return keys


def _owners(entity_ids: set[int], refs: Iterable[str] = (), known: set[str] = frozenset()) -> set[int]:
    """The entities whose edges must be recomputed when these change: themselves, the descriptors that
    name them in a lineage relation, the models whose runs logged them, the deployments of a model
    without a version row. `known`: the refs of `entity_ids`, when the caller has them."""
    from portal.deployments.models import Deployment

    owners = set(entity_ids)
    ids = list(entity_ids)
    all_refs = set(refs) | known
    for chunk in _chunks(ids, JOIN_CHUNK):
        if not known:
            all_refs.update(Entity.objects.filter(pk__in=values_in(chunk)).values_list("ref", flat=True))
        owners.update(ModelVersion.objects.filter(experiment_run__inputs__entity_id__in=values_in(chunk))
                      .values_list("entity_id", flat=True))
        owners.update(Deployment.objects.filter(model_id__in=values_in(chunk), model_version__isnull=True)
                      .values_list("entity_id", flat=True))
    owners.update(_naming(all_refs))
    return owners


def _naming(refs: Iterable[str]) -> set[int]:
    """The entities whose lineage relations name one of `refs` (both directions of a relation are
    stored, so as a row's source). The refs are joined to as a table, all of them in one statement:
    looked up 2,000 at a time with `IN`, each ref was an index probe, 7 s for a 250k registration on
    PostgreSQL; joined, the planner scans and merges instead when they are many. In 50,000-ref pieces
    that scan ran five times (1.7 s at 250k on PostgreSQL, against 1.05 s in one)."""
    refs = sorted(refs)
    if not refs:
        return set()
    table = connection.ops.quote_name(Relation._meta.db_table)
    types = list(FLOW)
    refs_table, params = values_table(refs, text=True)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT DISTINCT r.origin_id FROM {table} r JOIN {refs_table} ON r.source_ref = v.value "  # noqa: S608 (fixed SQL)
                       f"WHERE r.type IN ({', '.join(['%s'] * len(types))})", [*params, *types])
        return {row[0] for row in cursor.fetchall()}


def graph_edges_refresh(*, entity_ids: Iterable[int] = (), removed_refs: Iterable[str] = (),
                        refs: Iterable[str] = ()) -> int:
    """Recompute the graph edges of these entities and of every entity whose edges point at them (or at
    the removed refs). `refs`: the refs of `entity_ids` when the caller has them (all of them), so they
    are not read back. Returns the rows written."""
    ids = set(entity_ids)
    removed = list(removed_refs)
    owners = _owners(ids, removed, known=set(refs))
    written = 0
    with transaction.atomic():
        if removed:
            # The removed entities' own rows: their ids are gone with them.
            GraphEdge.objects.exclude(owner__in=Entity.objects.values("pk")).delete()
        ordered = sorted(owners)
        for chunk in _chunks(ordered, JOIN_CHUNK):
            GraphEdge.objects.filter(owner__in=values_in(chunk)).delete()
        written += _insert_relation_edges(ordered)
        for chunk in _chunks(ordered):
            rows = [*_mlflow_edges(chunk), *_deployment_edges(chunk)]
            unique = {(r.owner, r.origin, r.source, r.target): r for r in rows if r.source != r.target}
            GraphEdge.objects.bulk_create(list(unique.values()), batch_size=1000)
            written += len(unique)
    return written


def graph_edges_rebuild() -> int:
    """Recompute every graph edge from the catalog, the MLflow tables and the deployments."""
    from portal.deployments.models import Deployment

    with transaction.atomic():
        GraphEdge.objects.all().delete()
        owners = set(Relation.objects.filter(type__in=list(FLOW)).values_list("origin_id", flat=True).distinct())
        owners.update(ModelVersion.objects.values_list("entity_id", flat=True).distinct())
        owners.update(Deployment.objects.values_list("entity_id", flat=True))
        return graph_edges_refresh(entity_ids=owners)


def _insert_relation_edges(owners: list[int]) -> int:
    """Write the relation edges of these owners in one statement (they have none at this point): each
    lineage relation whose two ends are registered, oriented by `FLOW`, its ends as graph keys (the
    entity's lowest lineage node, else its entity key). Both stored directions of a relation give the
    same row, which is written once. A dangling relation is drawn when its target is registered (that
    refresh finds this owner through `_naming`). One statement for all the owners: built row by row in
    Python, 2,000 owners at a time, this took 5–10 s after a 250k registration on PostgreSQL (1.3 M
    relations); this statement takes ~1 s (in 50,000-owner pieces: 5 scans of the relations, 5.7 s)."""
    if not owners:
        return 0
    quote = connection.ops.quote_name
    relation, entity = quote(Relation._meta.db_table), quote(Entity._meta.db_table)
    node, edge = quote(Node._meta.db_table), quote(GraphEdge._meta.db_table)
    owners_table, params = values_table(owners)
    flows = ", ".join(["(%s, %s, %s)"] * len(FLOW))
    flow_params = [value for type_, down in FLOW.items() for value in (type_, 1 if down else 0, LABEL.get(type_, type_))]
    source_key, target_key = (
        f"COALESCE((SELECT MIN(n.id) FROM {node} n WHERE n.entity_id = {e}.id), {entity_key_sql(e + '.id')})"  # noqa: S608 (fixed SQL)
        for e in ("s", "t"))
    # INSERT first: SQLite's driver counts the rows of a statement that starts with INSERT only. The join
    # to `f` filters the types too, but alone PostgreSQL applied it last, after both lookups by ref.
    sql = f"""
        INSERT INTO {edge} (source, target, origin, owner, label)
        WITH f(type, down, label) AS (VALUES {flows}),
        ends AS (
            SELECT r.origin_id AS owner, f.down AS down, f.label AS label,
                   {source_key} AS skey, {target_key} AS tkey
            FROM {relation} r
            JOIN {owners_table} ON r.origin_id = v.value
            JOIN f ON f.type = r.type
            JOIN {entity} s ON s.ref = r.source_ref
            JOIN {entity} t ON t.ref = r.target_ref
            WHERE r.type IN ({", ".join(["%s"] * len(FLOW))})
        ),
        oriented AS (
            SELECT owner, label, CASE WHEN down = 1 THEN skey ELSE tkey END AS up,
                   CASE WHEN down = 1 THEN tkey ELSE skey END AS dn
            FROM ends WHERE skey <> tkey
        )
        SELECT up, dn, %s, owner, MIN(label) FROM oriented GROUP BY owner, up, dn"""  # noqa: S608 (fixed SQL)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Compiling its plan (the estimated cost is high for a large registration) took 0.4 s, more
            # than a third of the statement; a small refresh runs it in ~2 ms either way.
            cursor.execute("SET LOCAL jit = off")
        cursor.execute(sql, [*flow_params, *params, *FLOW, EdgeOrigin.RELATION.value])
        return max(cursor.rowcount, 0)


def _mlflow_edges(owners: list[int]) -> list[GraphEdge]:
    """Per model: each version → the model; its MLflow run → the version; each logged input → the run
    (the input's Dataset entity, else the lineage node of its OpenLineage name)."""
    versions = list(ModelVersion.objects.filter(entity_id__in=values_in(owners)).values_list("pk", "entity_id",
                                                                                 "experiment_run_id"))
    if not versions:
        return []
    runs = {run for _, _, run in versions if run is not None}
    inputs = list(RunInput.objects.filter(run_id__in=values_in(runs)).values_list("run_id", "entity_id", "namespace",
                                                                       "dataset_name"))
    keys = entity_keys([model for _, model, _ in versions] + [e for _, e, _, _ in inputs if e is not None])
    by_name = {node_key(NodeType.DATASET, ns, name): None for _, e, ns, name in inputs if e is None}
    if by_name:
        by_name.update(dict(Node.objects.filter(key__in=values_in(by_name, text=True)).values_list("key", "pk")))
    inputs_of: dict[int, list[int]] = defaultdict(list)
    for run, entity, namespace, name in inputs:
        key = keys[entity] if entity is not None else by_name.get(node_key(NodeType.DATASET, namespace, name))
        if key is not None:
            inputs_of[run].append(key)
    edges = []
    for version, model, run in versions:
        edges.append(GraphEdge(source=version_key(version), target=keys[model], origin=EdgeOrigin.MLFLOW,
                               owner=model, label="versionOf"))
        if run is None:
            continue
        edges.append(GraphEdge(source=run_key(run), target=version_key(version), origin=EdgeOrigin.MLFLOW,
                               owner=model, label="registered"))
        edges.extend(GraphEdge(source=source, target=run_key(run), origin=EdgeOrigin.MLFLOW, owner=model,
                               label="input") for source in inputs_of.get(run, ()))
    return edges


def _deployment_edges(owners: list[int]) -> list[GraphEdge]:
    """A deployment is fed by its model version (or by its model when the version row is unknown); what
    serves it is its `servedBy` relation (a relation edge)."""
    from portal.deployments.models import Deployment

    rows = list(Deployment.objects.filter(entity_id__in=values_in(owners)).values_list("entity_id", "model_id",
                                                                           "model_version_id"))
    if not rows:
        return []
    keys = entity_keys([d for d, _, _ in rows] + [m for _, m, v in rows if v is None])
    return [GraphEdge(source=version_key(version) if version is not None else keys[model], target=keys[dep],
                      origin=EdgeOrigin.DEPLOYMENT, owner=dep, label="deployedAs")
            for dep, model, version in rows]


# -- receivers (connected in apps.ready) -------------------------------------------------------------


def on_entities_changed(sender, changed=(), removed=(), snapshot=None, **kwargs) -> None:
    """After a catalog change commits: the changed entities' edges, and the edges that point at them.
    Orphans a refresh kept (not in `removed`) keep their relations, so their edges stay as they are."""
    refs = list(changed)
    if not refs and not removed:
        return
    try:
        ids: list[int] = []
        if snapshot is not None and set(refs) <= snapshot.keys():
            if not removed and all(snapshot[ref][2].source == OBSERVED_SOURCE for ref in refs):
                # Observed entities (the lineage ingest creates thousands at once) own no edges: no
                # relations, model versions or deployments of their own. Only descriptors that name
                # them in a lineage relation, and models whose runs logged them, have edges to redraw.
                owners = _naming(refs)
                for chunk in _chunks(refs):
                    owners.update(ModelVersion.objects.filter(
                        experiment_run__inputs__entity_id__in=values_in([snapshot[ref][0] for ref in chunk]))
                        .values_list("entity_id", flat=True))
                if owners:
                    graph_edges_refresh(entity_ids=owners)
                return
            ids = [snapshot[ref][0] for ref in refs]  # the writer's ids: nothing to read back
        else:
            for chunk in _chunks(refs):
                ids.extend(Entity.objects.filter(ref__in=values_in(chunk, text=True)).values_list("pk", flat=True))
        graph_edges_refresh(entity_ids=ids, removed_refs=removed, refs=refs if snapshot is not None else ())
    except Exception:  # the catalog change is committed; `manage.py lineage rebuild` repairs the edges
        log.exception("refreshing the lineage graph after %d changed entities failed", len(refs) + len(removed))


def on_model_versions_synced(sender, entity_ids=(), **kwargs) -> None:
    """Inside the MLflow sync's transaction: the synced models' run and version edges commit with it. A
    failure here rolls back its own savepoint only and is logged: the sync is not lost for the graph's
    sake (`manage.py lineage rebuild`, or the next sync, repairs the edges)."""
    try:
        graph_edges_refresh(entity_ids=list(entity_ids))
    except Exception:
        log.exception("refreshing the lineage graph after the MLflow sync of %d models failed", len(entity_ids))
