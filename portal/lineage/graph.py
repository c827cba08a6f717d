"""The unified lineage graph (reads): OpenLineage datasets and jobs, catalog entities and their lineage
relations, MLflow runs and model versions, deployments — walked from one node, filtered by visibility.

The contract other apps build on is helpers/GRAPH.md, restated in docs/lineage.md: node ids
(`dataset:<ns>:<name>`, `job:<ns>:<name>`, `entity:<kind>:<ns>:<name>`, `run:<id>`,
`version:<kind>:<ns>:<name>:<version>`), `lineage()` → `Graph` (Marquez's shape), `impact()` →
`Impact`, `columns()` → `ColumnGraph`, `node_id_for_entity()`.

How a request runs, whatever the graph's size: one query finds the root, one recursive CTE walks
`lineage_edge` and `lineage_graphedge` together (bounded by depth and by `MAX_ROWS`), then one query
per kind of node met (lineage nodes, entities, runs, versions) reads their facts with visibility
decided in the same query (`permissions.filter_visible` as an EXISTS). The walk then keeps what the
reader may see: it never passes through a node they may not see, and counts such nodes in `hidden`."""

from __future__ import annotations

import contextlib
import functools
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field

import orjson
from django.db import connection
from django.urls import reverse

from catalog.models import Entity, ExperimentRun, ModelVersion
from portal.accounts import permissions
from portal.accounts.models import Team
from portal.core.numbers import digits

from .events import normalise_dataset
from .models import (
    KEY_ENTITY,
    KEY_RUN,
    KEY_VERSION,
    ColumnEdge,
    Edge,
    GraphEdge,
    Node,
    Run,
    entity_key,
    node_key,
    run_key,
    split_key,
    version_key,
)

MAX_DEPTH = 20
DIRECTIONS = ("upstream", "downstream", "both")
MAX_ROWS = 20_000  # walk rows (edges met) per request: a hub with 100k readers is cut, and says so
MAX_ID_LENGTH = 2200
CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
_NAME_PART = re.compile(r"^[A-Za-z0-9._-]{1,63}$")
_RUN_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_VERSION_NAME = re.compile(r"^[A-Za-z0-9._-]{1,20}$")
PRODUCTION = "production"
LIVE = "live"


class NodeIdInvalid(ValueError):
    """A node id that is not one of the five forms (the API answers 400 naming `nodeId`)."""


class NodeNotFound(LookupError):
    """No such node, or one the reader may not see (the API answers 404, the same for both)."""


# -- node ids -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Parsed:
    type: str  # dataset | job | entity | run | version
    candidates: tuple = ()  # dataset/job: (namespace, name) splits; entity/version: (ref,); run: (run id,)
    version: str = ""


def parse_node_id(node_id) -> Parsed:
    """Check a node id's form (no database). A dataset or job namespace may itself hold colons
    (`postgres://db:5432`): every split is a candidate and the lookup decides."""
    if not isinstance(node_id, str) or not node_id:
        raise NodeIdInvalid("nodeId is required")
    if len(node_id) > MAX_ID_LENGTH:
        raise NodeIdInvalid(f"nodeId is longer than {MAX_ID_LENGTH} characters")
    if CONTROL_CHARS.search(node_id):
        raise NodeIdInvalid("nodeId holds a control character")
    prefix, sep, rest = node_id.partition(":")
    if not sep or not rest:
        raise NodeIdInvalid("nodeId must look like dataset:<namespace>:<name>, job:<namespace>:<name>, "
                            "entity:<kind>:<namespace>:<name>, run:<run id> or version:<kind>:<namespace>:<name>:<version>")
    if prefix in ("dataset", "job"):
        splits = []
        for index, char in enumerate(rest):
            if char == ":" and 0 < index < len(rest) - 1:
                namespace, name = rest[:index], rest[index + 1:]
                if len(namespace) <= 1000 and len(name) <= 1000:
                    splits.append((namespace, name))
        if not splits:
            raise NodeIdInvalid(f"nodeId: a {prefix} id is {prefix}:<namespace>:<name>")
        return Parsed(prefix, tuple(splits[:64]))
    if prefix == "entity":
        parts = rest.split(":")
        if len(parts) != 3 or not all(_NAME_PART.match(p) for p in parts):
            raise NodeIdInvalid("nodeId: an entity id is entity:<kind>:<namespace>:<name>")
        kind, namespace, name = parts
        return Parsed("entity", (f"{kind}:{namespace}/{name}".lower(),))
    if prefix == "run":
        if not _RUN_ID.match(rest):
            raise NodeIdInvalid("nodeId: a run id is run:<MLflow run id> (letters, digits, - and _)")
        return Parsed("run", (rest,))
    if prefix == "version":
        parts = rest.split(":")
        if len(parts) != 4 or not all(_NAME_PART.match(p) for p in parts[:3]) or not _VERSION_NAME.match(parts[3]):
            raise NodeIdInvalid("nodeId: a version id is version:<kind>:<namespace>:<name>:<version>")
        kind, namespace, name, version = parts
        return Parsed("version", (f"{kind}:{namespace}/{name}".lower(),), version)
    raise NodeIdInvalid("nodeId must start with dataset:, job:, entity:, run: or version:")


def check_depth(value, *, name: str = "depth", default: int = 2, maximum: int = MAX_DEPTH) -> int:
    if value is None or value == "":
        return default
    text = str(value)
    if not digits(text) or len(text) > 3 or int(text) > maximum:
        raise ValueError(f"{name} must be a whole number from 0 to {maximum}")
    return int(text)


def check_direction(value, *, name: str = "direction") -> str:
    if value is None or value == "":
        return "both"
    if value not in DIRECTIONS:
        raise ValueError(f"{name} must be one of upstream, downstream, both")
    return value


def check_column(value) -> str:
    if not isinstance(value, str) or not value or len(value) > 300 or CONTROL_CHARS.search(value):
        raise ValueError("column must be a field name of 1 to 300 characters without control characters")
    return value


def _first(sql: str, params: list):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def _resolve(node_id: str) -> int:
    """The graph key of a node id, or NodeNotFound (one query)."""
    parsed = parse_node_id(node_id)
    node, entity = Node._meta.db_table, Entity._meta.db_table
    row = None
    if parsed.type in ("dataset", "job"):
        keys = []
        for namespace, name in parsed.candidates:
            keys.append(node_key(parsed.type, namespace, name))
            if parsed.type == "dataset":
                with contextlib.suppress(ValueError):
                    keys.append(node_key("dataset", *normalise_dataset(namespace, name)))
        row = _first(f"SELECT id FROM {node} WHERE {connection.ops.quote_name('key')} IN ({_marks(keys)}) AND type = %s ORDER BY id LIMIT 1",  # noqa: S608
                     [*keys, parsed.type])
    elif parsed.type == "entity":
        found = _first(f"SELECT e.id, (SELECT MIN(n.id) FROM {node} n WHERE n.entity_id = e.id) "  # noqa: S608
                       f"FROM {entity} e WHERE e.ref = %s", [parsed.candidates[0]])
        row = (found[1] or entity_key(found[0]),) if found else None
    elif parsed.type == "run":
        found = _first(f"SELECT id FROM {ExperimentRun._meta.db_table} WHERE run_id = %s",  # noqa: S608
                       [parsed.candidates[0]])
        row = (run_key(found[0]),) if found else None
    else:
        found = _first(f"SELECT mv.id FROM {ModelVersion._meta.db_table} mv JOIN {entity} e ON e.id = mv.entity_id "  # noqa: S608
                       "WHERE e.ref = %s AND mv.version = %s", [parsed.candidates[0], parsed.version])
        row = (version_key(found[0]),) if found else None
    if row is None:
        raise NodeNotFound(node_id)
    return row[0]


def node_id_for_entity(entity: Entity) -> str:
    """The id to ask the graph for an entity's page: its lineage node's when one maps to it (the graph
    shows that node once, with `data.entity` naming the entity), else `entity:<kind>:<ns>:<name>`."""
    node = Node.objects.filter(entity_id=entity.pk).order_by("pk").only("type", "namespace", "name").first()
    if node is not None:
        return node.node_id
    return _entity_node_id(entity.kind_key, entity.namespace, entity.name)


def _entity_node_id(kind_key: str, namespace: str, name: str) -> str:
    return f"entity:{kind_key}:{namespace}:{name}"


# -- the walk -----------------------------------------------------------------------------------------

_EDGE = Edge._meta.db_table
_GRAPH = GraphEdge._meta.db_table

# PostgreSQL: one recursive term, each step reading both edge tables through a LATERAL union (each
# branch one index range: lineage_edge's unique (source, target) or (target, source); the graph
# edge indexes likewise); `dir` keeps an upstream walk upstream.
_WALK_PG = f"""
WITH RECURSIVE walk(node, parent, depth, dir) AS (
    SELECT seed.node, seed.parent, seed.depth, seed.dir
      FROM (VALUES (%(root)s::bigint, NULL::bigint, 0, 'd'), (%(root)s::bigint, NULL::bigint, 0, 'u')) AS seed(node, parent, depth, dir)
     WHERE seed.dir = ANY(%(dirs)s)
    UNION
    SELECT step.next, w.node, w.depth + 1, w.dir
      FROM walk w
      CROSS JOIN LATERAL (
            SELECT e.target_id AS next FROM {_EDGE} e WHERE w.dir = 'd' AND e.source_id = w.node
            UNION ALL SELECT g.target FROM {_GRAPH} g WHERE w.dir = 'd' AND g.source = w.node
            UNION ALL SELECT e.source_id FROM {_EDGE} e WHERE w.dir = 'u' AND e.target_id = w.node
            UNION ALL SELECT g.source FROM {_GRAPH} g WHERE w.dir = 'u' AND g.target = w.node
      ) AS step
     WHERE w.depth < %(depth)s
)
SELECT node, parent, depth, dir FROM walk LIMIT %(limit)s
"""  # noqa: S608 (table names only)

# SQLite (3.34+): several recursive SELECTs, each joining the queue to one index.
_WALK_SQLITE = f"""
WITH RECURSIVE walk(node, parent, depth, dir) AS (
    SELECT %(root)s, NULL, 0, 'd' WHERE %(down)s
    UNION SELECT %(root)s, NULL, 0, 'u' WHERE %(up)s
    UNION SELECT e.target_id, w.node, w.depth + 1, 'd' FROM walk w JOIN {_EDGE} e ON e.source_id = w.node
           WHERE w.dir = 'd' AND w.depth < %(depth)s
    UNION SELECT g.target, w.node, w.depth + 1, 'd' FROM walk w JOIN {_GRAPH} g ON g.source = w.node
           WHERE w.dir = 'd' AND w.depth < %(depth)s
    UNION SELECT e.source_id, w.node, w.depth + 1, 'u' FROM walk w JOIN {_EDGE} e ON e.target_id = w.node
           WHERE w.dir = 'u' AND w.depth < %(depth)s
    UNION SELECT g.source, w.node, w.depth + 1, 'u' FROM walk w JOIN {_GRAPH} g ON g.target = w.node
           WHERE w.dir = 'u' AND w.depth < %(depth)s
)
SELECT node, parent, depth, dir FROM walk LIMIT %(limit)s
"""  # noqa: S608 (table names only)


def walk_sql(root: int, depth: int, direction: str, limit: int = MAX_ROWS) -> tuple[str, dict]:
    """The recursive query and its parameters (the benchmark compares against it, bare)."""
    down, up = direction in ("downstream", "both"), direction in ("upstream", "both")
    params = {"root": root, "depth": depth, "limit": limit}
    if connection.vendor == "postgresql":
        params["dirs"] = [d for d, wanted in (("d", down), ("u", up)) if wanted]
        return _WALK_PG, params
    params.update(down=int(down), up=int(up))
    return _WALK_SQLITE, params


@dataclass
class _Walk:
    root: int
    rows: list  # (node, parent, depth, dir)
    truncated: bool


def _walk(root: int, depth: int, direction: str) -> _Walk:
    sql, params = walk_sql(root, depth, direction, MAX_ROWS + 1)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    truncated = len(rows) > MAX_ROWS
    return _Walk(root, rows[:MAX_ROWS], truncated)


# -- node facts ----------------------------------------------------------------------------------------


@functools.cache
def _url_template() -> str:
    return reverse("catalog:entity-detail", args=["KIND", "NS", "NAME"]).replace("KIND", "{0}", 1).replace(
        "NS", "{1}", 1).replace("NAME", "{2}", 1)


def _entity_url(kind_key: str, namespace: str, name: str) -> str:
    return _url_template().format(kind_key, namespace, name)


def _dates(run: str) -> dict[str, str]:
    """A run's start and end as ISO text (UTC, to the second) and its duration in seconds, computed by the
    database: the same text on both, and no datetime parsing per node (it was a third of the time)."""
    if connection.vendor == "postgresql":
        iso = "to_char({0} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS')"
        seconds = f"EXTRACT(EPOCH FROM ({run}.ended_at - {run}.started_at))::float"
    else:
        iso = "strftime('%%Y-%%m-%%dT%%H:%%M:%%S', {0})"
        seconds = f"ROUND((julianday({run}.ended_at) - julianday({run}.started_at)) * 86400.0, 3)"
    return {"started": iso.format(f"{run}.started_at"), "ended": iso.format(f"{run}.ended_at"), "seconds": seconds}


def visible_sql(user) -> tuple[str, list]:
    """The permission module's rule (`permissions.visible_q`, what `filter_visible` applies) as a SQL
    condition over `catalog_entity`, for the raw queries below (`permissions.visible_sql`)."""
    compiled = permissions.visible_sql(Entity, user)
    if compiled is None:
        return "(1 = 0)", []
    sql, params = compiled
    return (f"({sql})", params) if sql else ("(1 = 1)", [])


def _json(value, wanted: tuple[str, ...] = ()):
    """jsonb/JSON text read by a raw cursor; text that mentions none of `wanted` is not parsed. orjson
    reads it when it can; json reads what orjson refuses (NaN that json wrote, say)."""
    if value is None or isinstance(value, (dict, list)):
        return value
    if wanted and not any(w in value for w in wanted):
        return {}
    if _LONG_DIGITS.search(value) is None:  # orjson makes integers beyond 64 bits floats
        try:
            return orjson.loads(value)
        except ValueError:
            pass
    try:
        return json.loads(value)
    except ValueError:
        return {}


def _run_dict(state, started, ended, seconds) -> dict | None:
    """`started`/`ended`: ISO text without offset, UTC (see `_dates`)."""
    if state is None:
        return None
    return {"state": state, "startedAt": f"{started}+00:00" if started else None,
            "endedAt": f"{ended}+00:00" if ended else None,
            "durationSeconds": float(seconds) if seconds is not None else None}


def _quality(facets: dict) -> dict | None:
    metrics = facets.get("dataQualityMetrics")
    if not isinstance(metrics, dict):
        return None
    columns = metrics.get("columnMetrics") if isinstance(metrics.get("columnMetrics"), dict) else {}
    return {"rowCount": metrics.get("rowCount"), "bytes": metrics.get("bytes"),
            "fileCount": metrics.get("fileCount"), "columns": len(columns)}


def _schema(facets: dict) -> list[dict]:
    fields = (facets.get("schema") or {}).get("fields") if isinstance(facets.get("schema"), dict) else None
    if not isinstance(fields, list):
        return []
    return [{"name": str(f.get("name", "")), "type": str(f.get("type", "") or "")}
            for f in fields[:500] if isinstance(f, dict)]


def _description(facets: dict) -> str:
    docs = facets.get("documentation")
    return str(docs.get("description") or "")[:2000] if isinstance(docs, dict) else ""


def _entity_facts(kind_key, namespace, name, title, lifecycle, team) -> dict:
    return {"entity": _entity_node_id(kind_key, namespace, name), "ref": f"{kind_key}:{namespace}/{name}",
            "url": _entity_url(kind_key, namespace, name), "title": title or name, "team": team,
            "lifecycle": lifecycle or ""}


def _marks(values) -> str:
    return ", ".join(["%s"] * len(values))


_E, _T = Entity._meta.db_table, Team._meta.db_table
_NODE, _RUN, _COLUMN = Node._meta.db_table, Run._meta.db_table, ColumnEdge._meta.db_table
_MLRUN, _VERSION = ExperimentRun._meta.db_table, ModelVersion._meta.db_table
_LONG_DIGITS = re.compile(r"[0-9]{19}")
_FACETS_WANTED = re.compile(r'"(?:schema|dataQualityMetrics|documentation)"')  # the facets a node shows

# Datasets and jobs with their entity, whether the reader may see it, their last run (a dataset: the
# newest run among those that drew an edge into it from a job the reader may see — run ids grow with
# time, and MAX needs no sort per node; the subquery's own catalog_entity, the writer's, is the one the
# rule there reads) and whether column lineage touches them.
_LINEAGE_NODES = f"""
SELECT n.id, n.type, n.namespace, n.name, n.facets, n.entity_id, {_E}.kind_key, {_E}.namespace, {_E}.name,
       {_E}.title, {_E}.lifecycle, t.name,
       CASE WHEN n.entity_id IS NULL THEN 1 WHEN {{rule}} THEN 1 ELSE 0 END,
       r.state, {{started}}, {{ended}}, {{seconds}},
       CASE WHEN EXISTS (SELECT 1 FROM {_COLUMN} c WHERE c.target_id = n.id)
              OR EXISTS (SELECT 1 FROM {_COLUMN} c WHERE c.source_id = n.id) THEN 1 ELSE 0 END
  FROM {_NODE} n
  LEFT JOIN {_E} ON {_E}.id = n.entity_id
  LEFT JOIN {_T} t ON t.id = {_E}.owner_team_id
  LEFT JOIN {_RUN} r ON r.id = CASE WHEN n.type = 'job' THEN n.last_run_id ELSE
       (SELECT MAX(e.run_id) FROM {_EDGE} e JOIN {_NODE} w ON w.id = e.source_id
          LEFT JOIN {_E} ON {_E}.id = w.entity_id
         WHERE e.target_id = n.id AND (w.entity_id IS NULL OR {{rule}})) END
 WHERE n.id IN ({{ids}})
"""  # noqa: S608 (table names and placeholders only)

_ENTITIES = f"""
SELECT {_E}.id, {_E}.kind_key, {_E}.namespace, {_E}.name, {_E}.title, {_E}.lifecycle, t.name, {_E}.description,
       {_E}.spec_type, CASE WHEN {_E}.kind_key = 'deployment' THEN {_E}.data END,
       CASE WHEN {{rule}} THEN 1 ELSE 0 END
  FROM {_E} LEFT JOIN {_T} t ON t.id = {_E}.owner_team_id
 WHERE {_E}.id IN ({{ids}})
"""  # noqa: S608

# An MLflow run is seen by who may see every model registered from it.
_RUNS = f"""
SELECT r.id, r.run_id, r.name, r.status, {{started}}, {{ended}}, {{seconds}}, r.experiment_id,
       CASE WHEN EXISTS (SELECT 1 FROM {_VERSION} mv JOIN {_E} ON {_E}.id = mv.entity_id
                          WHERE mv.experiment_run_id = r.id AND (CASE WHEN {{rule}} THEN 0 ELSE 1 END) = 1)
            THEN 1 ELSE 0 END,
       (SELECT t.name FROM {_VERSION} mv JOIN {_E} m ON m.id = mv.entity_id LEFT JOIN {_T} t ON t.id = m.owner_team_id
         WHERE mv.experiment_run_id = r.id ORDER BY mv.id LIMIT 1),
       (SELECT m.ref FROM {_VERSION} mv JOIN {_E} m ON m.id = mv.entity_id
         WHERE mv.experiment_run_id = r.id ORDER BY mv.id LIMIT 1)
  FROM {_MLRUN} r WHERE r.id IN ({{ids}})
"""  # noqa: S608

_VERSIONS = f"""
SELECT mv.id, mv.version, mv.aliases, mv.status, mv.run_id, {_E}.kind_key, {_E}.namespace, {_E}.name, {_E}.title,
       {_E}.lifecycle, t.name, CASE WHEN {{rule}} THEN 1 ELSE 0 END
  FROM {_VERSION} mv JOIN {_E} ON {_E}.id = mv.entity_id LEFT JOIN {_T} t ON t.id = {_E}.owner_team_id
 WHERE mv.id IN ({{ids}})
"""  # noqa: S608


class _Facts:
    """Reads every node the walk met, one raw query per kind of node (the ORM's query building cost more
    than the reads): key → (visible, node dict without edges)."""

    def __init__(self, user):
        self.rule, self.rule_params = visible_sql(user)

    def _rows(self, template: str, ids: list[int]) -> list[tuple]:
        sql = template.format(rule=self.rule, ids=_marks(ids), **_dates("r"))
        with connection.cursor() as cursor:
            cursor.execute(sql, [*self.rule_params * template.count("{rule}"), *ids])
            return cursor.fetchall()

    def read(self, keys: set[int]) -> dict[int, tuple[bool, dict]]:
        groups: dict[int, list[int]] = defaultdict(list)
        for key in keys:
            type_, pk = split_key(key)
            groups[type_].append(pk)
        out: dict[int, tuple[bool, dict]] = {}
        if groups.get(0):
            out.update(self._lineage_nodes(groups[0]))
        if groups.get(KEY_ENTITY):
            out.update(self._entities(groups[KEY_ENTITY]))
        if groups.get(KEY_RUN):
            out.update(self._runs(groups[KEY_RUN]))
        if groups.get(KEY_VERSION):
            out.update(self._versions(groups[KEY_VERSION]))
        return out

    def _lineage_nodes(self, ids: list[int]) -> dict:
        out = {}
        url = _url_template().format
        wanted = _FACETS_WANTED.search
        for (pk, type_, namespace, name, facets, entity_id, kind, ens, ename, title, lifecycle, team, visible,
             state, started, ended, seconds, has_columns) in self._rows(_LINEAGE_NODES, ids):
            # Most nodes carry none of the facets shown: their text is not parsed (a per-node cost).
            if facets is not None and not isinstance(facets, dict):
                facets = _json(facets) if wanted(facets) else None
            data = {"name": name, "namespace": namespace, "kind": type_, "title": name, "ref": None, "url": None,
                    "entity": None, "team": None, "lifecycle": "",
                    "lastRun": _run_dict(state, started, ended, seconds) if state else None,
                    "schema": _schema(facets) if facets else [],
                    "dataQualityMetrics": _quality(facets) if facets else None,
                    "description": _description(facets) if facets else "", "hasColumnLineage": bool(has_columns)}
            if entity_id is not None:
                # _entity_facts, inlined: it ran for every node.
                data["entity"] = f"entity:{kind}:{ens}:{ename}"
                data["ref"] = f"{kind}:{ens}/{ename}"
                data["url"] = url(kind, ens, ename)
                data["title"] = title or ename
                data["team"] = team
                data["lifecycle"] = lifecycle or ""
                data["entityKind"] = kind
            out[pk] = (bool(visible), {"id": f"{type_}:{namespace}:{name}", "type": type_.upper(), "data": data})
        return out

    def _entities(self, ids: list[int]) -> dict:
        out = {}
        for pk, kind, namespace, name, title, lifecycle, team, description, spec_type, raw, visible in self._rows(
                _ENTITIES, ids):
            data = {"name": name, "namespace": namespace, "kind": kind, "specType": spec_type,
                    "description": (description or "")[:2000], "lastRun": None, "schema": [],
                    "dataQualityMetrics": None, "hasColumnLineage": False,
                    **_entity_facts(kind, namespace, name, title, lifecycle, team)}
            if kind == "deployment":
                spec = (_json(raw) or {}).get("spec") or {}
                data.update({field_: spec.get(field_) if isinstance(spec.get(field_), str) else ""
                             for field_ in ("status", "environment", "endpoint")})
            out[entity_key(pk)] = (bool(visible),
                                   {"id": _entity_node_id(kind, namespace, name), "type": "ENTITY", "data": data})
        return out

    def _runs(self, ids: list[int]) -> dict:
        out = {}
        for pk, run_id, name, status, started, ended, seconds, experiment, blocked, team, model_ref in self._rows(
                _RUNS, ids):
            data = {"name": run_id, "namespace": "mlflow", "kind": "run", "title": name or run_id,
                    "runName": name, "experimentId": experiment, "ref": model_ref, "url": None, "entity": None,
                    "team": team, "lifecycle": "", "lastRun": _run_dict(status or None, started, ended, seconds),
                    "schema": [], "dataQualityMetrics": None, "hasColumnLineage": False}
            out[run_key(pk)] = (not blocked, {"id": f"run:{run_id}", "type": "RUN", "data": data})
        return out

    def _versions(self, ids: list[int]) -> dict:
        out = {}
        for pk, version, aliases, status, run_id, kind, namespace, name, title, lifecycle, team, visible in \
                self._rows(_VERSIONS, ids):
            facts = _entity_facts(kind, namespace, name, title, lifecycle, team)
            aliases = _json(aliases)
            data = {"name": f"{name}:{version}", "namespace": namespace, "kind": "version", "version": version,
                    "aliases": aliases if isinstance(aliases, list) else [], "status": status, "runId": run_id,
                    "lastRun": None, "schema": [], "dataQualityMetrics": None, "hasColumnLineage": False,
                    **facts, "title": f"{facts['title']} v{version}"}
            out[version_key(pk)] = (bool(visible), {"id": f"version:{kind}:{namespace}:{name}:{version}",
                                                    "type": "VERSION", "data": data})
        return out


# -- the graph ------------------------------------------------------------------------------------------


@dataclass
class Graph:
    root: str
    nodes: dict[str, dict]
    hidden: int
    depth: int
    direction: str
    truncated: bool = False
    distance: dict[str, int] = field(default_factory=dict)  # node id → hops from the root

    def as_marquez(self) -> dict:
        return {"graph": list(self.nodes.values()), "hidden": self.hidden, "root": self.root,
                "depth": self.depth, "direction": self.direction, "truncated": self.truncated}


def _prune(walk: _Walk, facts: dict[int, tuple[bool, dict]], depth: int):
    """Keep what the reader may see: a breadth-first pass over the walked edges from the root that never
    enters a node the reader may not see (counted once in `hidden`) nor one that no longer exists.
    Returns (distance by key, edges as (origin key, destination key), hidden count)."""
    adjacent: dict[tuple[int, str], set[int]] = defaultdict(set)
    for node, parent, _, direction in walk.rows:
        if parent is not None:
            adjacent[(parent, direction)].add(node)
    distance = {walk.root: 0}
    hidden: set[int] = set()
    edges: set[tuple[int, int]] = set()
    for direction in ("d", "u"):
        seen = {walk.root: 0}
        frontier = [walk.root]
        for hop in range(1, depth + 1):
            following = []
            for key in frontier:
                for other in adjacent.get((key, direction), ()):
                    fact = facts.get(other)
                    if fact is None:
                        continue  # a row gone since the edge was drawn
                    if not fact[0]:
                        hidden.add(other)
                        continue
                    edges.add((key, other) if direction == "d" else (other, key))
                    if other not in seen:
                        seen[other] = hop
                        following.append(other)
            frontier = following
        for key, hop in seen.items():
            distance[key] = min(distance.get(key, hop), hop)
    hidden -= set(distance)
    return distance, edges, len(hidden)


def _assemble(walk: _Walk, user, depth: int):
    keys = {walk.root} | {row[0] for row in walk.rows}
    facts = _Facts(user).read(keys)
    root = facts.get(walk.root)
    if root is None or not root[0]:
        raise NodeNotFound("no such node")
    distance, edges, hidden = _prune(walk, facts, depth)
    nodes: dict[int, dict] = {}
    for key in sorted(distance, key=lambda k: (distance[k], facts[k][1]["id"])):
        node = dict(facts[key][1])
        node["inEdges"], node["outEdges"] = [], []
        nodes[key] = node
    for origin, destination in sorted(edges, key=lambda e: (nodes[e[0]]["id"], nodes[e[1]]["id"])):
        edge = {"origin": nodes[origin]["id"], "destination": nodes[destination]["id"]}
        nodes[origin]["outEdges"].append(edge)
        nodes[destination]["inEdges"].append(edge)
    return nodes, distance, hidden


def lineage(node_id: str, *, user, depth: int = 2, direction: str = "both") -> Graph:
    """The graph around a node, `depth` hops upstream, downstream or both. NodeIdInvalid for a malformed
    id, ValueError for a bad depth or direction, NodeNotFound for a missing or invisible root."""
    depth = check_depth(depth)
    direction = check_direction(direction)
    root = _resolve(node_id)
    walk = _walk(root, depth, direction)
    nodes, distance, hidden = _assemble(walk, user, depth)
    by_id = {nodes[k]["id"]: d for k, d in distance.items()}
    return Graph(root=nodes[root]["id"], nodes={n["id"]: n for n in nodes.values()}, hidden=hidden, depth=depth,
                 direction=direction, truncated=walk.truncated, distance=by_id)


# -- impact analysis -----------------------------------------------------------------------------------


KIND_ORDER = {"deployment": 0, "model": 1, "version": 2, "run": 3, "api": 4, "component": 5, "featureset": 6,
              "pipeline": 7, "job": 7, "dataset": 8}


@dataclass
class Impact:
    root: str
    items: list[dict]
    hidden: int
    hops: int
    truncated: bool = False

    @property
    def critical(self) -> list[dict]:
        return [item for item in self.items if item["critical"]]

    @property
    def groups(self) -> list[dict]:
        """Items grouped by (kind, owning team); groups holding a critical item first, then by kind."""
        grouped: dict[tuple[str, str], list[dict]] = defaultdict(list)
        for item in self.items:
            grouped[(item["kind"], item["team"] or "")].append(item)
        groups = [{"kind": kind, "team": team or None, "items": items,
                   "critical": any(i["critical"] for i in items)} for (kind, team), items in grouped.items()]
        groups.sort(key=lambda g: (not g["critical"], KIND_ORDER.get(g["kind"], 9), g["kind"], g["team"] or "~"))
        return groups

    def as_dict(self) -> dict:
        return {"root": self.root, "total": len(self.items), "hidden": self.hidden, "depth": self.hops,
                "truncated": self.truncated, "critical": self.critical, "groups": self.groups}


def _critical(node: dict) -> str:
    data = node["data"]
    kind = data.get("entityKind") or data.get("kind")
    if kind == "model" and data.get("lifecycle") == PRODUCTION:
        return "production model"
    if kind == "deployment" and data.get("status") == LIVE:
        return "live deployment"
    return ""


def impact(node_id: str, *, user, hops: int = 10) -> Impact:
    """What depends on a node: everything downstream within `hops`, critical first (production models,
    live deployments), then by distance and name."""
    hops = check_depth(hops, default=10)
    root = _resolve(node_id)
    walk = _walk(root, hops, "downstream")
    nodes, distance, hidden = _assemble(walk, user, hops)
    items = []
    for key, node in nodes.items():
        if key == root:
            continue
        data = node["data"]
        reason = _critical(node)
        items.append({"id": node["id"], "type": node["type"], "kind": data.get("entityKind") or data["kind"],
                      "name": data["name"], "title": data.get("title") or data["name"], "ref": data.get("ref"),
                      "url": data.get("url"), "team": data.get("team"), "lifecycle": data.get("lifecycle") or "",
                      "distance": distance[key], "critical": bool(reason), "reason": reason})
    items.sort(key=lambda i: (not i["critical"], i["distance"], i["kind"], i["title"]))
    return Impact(root=nodes[root]["id"], items=items, hidden=hidden, hops=hops, truncated=walk.truncated)


# -- column lineage ------------------------------------------------------------------------------------


@dataclass
class ColumnGraph:
    root: str
    nodes: dict[str, dict]
    hidden: int
    truncated: bool = False

    def as_marquez(self) -> dict:
        return {"graph": list(self.nodes.values()), "hidden": self.hidden, "root": self.root,
                "truncated": self.truncated}


_COLS = ColumnEdge._meta.db_table
MAX_SEED_FIELDS = 200  # the root's fields walked when no column is named

# Fields are (node id, field name) pairs; the walk reads the column edges' two indexes: (target,
# target_field, …) upstream, (source, source_field) downstream. One walk starts from every field asked
# for (the root's fields, one per seed row), so a dataset of 150 columns costs one query, and MAX_ROWS
# caps the request, not each field.
_COLUMN_WALK = f"""
WITH RECURSIVE seed(field) AS (VALUES {{seeds}}),
walk(node, field, parent, pfield, depth, dir) AS (
    SELECT %(root)s, seed.field, NULL, NULL, 0, 'd' FROM seed WHERE %(down)s
    UNION SELECT %(root)s, seed.field, NULL, NULL, 0, 'u' FROM seed WHERE %(up)s
    UNION SELECT c.target_id, c.target_field, w.node, w.field, w.depth + 1, 'd'
            FROM walk w JOIN {_COLS} c ON c.source_id = w.node AND c.source_field = w.field
           WHERE w.dir = 'd' AND w.depth < %(depth)s
    UNION SELECT c.source_id, c.source_field, w.node, w.field, w.depth + 1, 'u'
            FROM walk w JOIN {_COLS} c ON c.target_id = w.node AND c.target_field = w.field
           WHERE w.dir = 'u' AND w.depth < %(depth)s
)
SELECT node, field, parent, pfield, depth, dir FROM walk LIMIT %(limit)s
"""  # noqa: S608 (table names and placeholders only)

_COLUMN_WALK_PG = f"""
WITH RECURSIVE walk(node, field, parent, pfield, depth, dir) AS (
    SELECT %(root)s::bigint, seed.field, NULL::bigint, NULL::varchar, 0, d.dir
      FROM unnest(%(fields)s::varchar[]) AS seed(field) CROSS JOIN unnest(%(dirs)s::text[]) AS d(dir)
    UNION
    SELECT step.node, step.field, w.node, w.field, w.depth + 1, w.dir
      FROM walk w
      CROSS JOIN LATERAL (
            SELECT c.target_id AS node, c.target_field::varchar AS field FROM {_COLS} c
             WHERE w.dir = 'd' AND c.source_id = w.node AND c.source_field = w.field
            UNION ALL
            SELECT c.source_id, c.source_field::varchar FROM {_COLS} c
             WHERE w.dir = 'u' AND c.target_id = w.node AND c.target_field = w.field
      ) AS step
     WHERE w.depth < %(depth)s
)
SELECT node, field, parent, pfield, depth, dir FROM walk LIMIT %(limit)s
"""  # noqa: S608 (table names only)


def column_walk_sql(root: int, fields: list[str], depth: int, direction: str, limit: int) -> tuple[str, dict]:
    """The column walk from `fields` of the root node, and its parameters."""
    down, up = direction in ("downstream", "both"), direction in ("upstream", "both")
    params: dict = {"root": root, "depth": depth, "limit": limit}
    if connection.vendor == "postgresql":
        params.update(fields=list(fields), dirs=[d for d, wanted in (("d", down), ("u", up)) if wanted])
        return _COLUMN_WALK_PG, params
    params.update(down=int(down), up=int(up), **{f"f{i}": name for i, name in enumerate(fields)})
    return _COLUMN_WALK.format(seeds=", ".join(f"(%(f{i})s)" for i in range(len(fields)))), params


def columns(node_id: str, *, user, column: str | None = None, depth: int = 5,
            direction: str = "both") -> ColumnGraph:
    """Column-level lineage of a dataset: from one column (or from every column with column lineage)
    `depth` hops through the columnLineage facets. Fields of datasets the reader may not see are
    dropped (those next to a shown field counted in `hidden`) and never passed through."""
    depth = check_depth(depth, default=5)
    direction = check_direction(direction)
    if column is not None:
        column = check_column(column)
    parsed = parse_node_id(node_id)
    if parsed.type != "dataset":
        raise NodeIdInvalid("nodeId: column lineage starts at a dataset (dataset:<namespace>:<name>)")
    root = _resolve(node_id)
    if column is None:
        fields = sorted(set(ColumnEdge.objects.filter(target_id=root).values_list("target_field", flat=True)
                            [:MAX_SEED_FIELDS])
                        | set(ColumnEdge.objects.filter(source_id=root).values_list("source_field", flat=True)
                              [:MAX_SEED_FIELDS]))[:MAX_SEED_FIELDS]
    else:
        fields = [column]
    rows: list = []
    if fields:
        sql, params = column_walk_sql(root, fields, depth, direction, MAX_ROWS + 1)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
    result = _column_graph(root, fields, rows[:MAX_ROWS], user, depth)
    result.truncated = len(rows) > MAX_ROWS
    return result


def _column_graph(root: int, fields: list[str], rows: list, user, depth: int) -> ColumnGraph:
    nodes_needed = {root} | {r[0] for r in rows}
    facts = _Facts(user)._lineage_nodes(list(nodes_needed))
    if root not in facts or not facts[root][0]:
        raise NodeNotFound("no such node")
    pairs = {(r[2], r[3], r[0], r[1]) if r[5] == "d" else (r[0], r[1], r[2], r[3]) for r in rows if r[2] is not None}
    # Transformations of each field edge (one query for all of them).
    transformations: dict[tuple, list] = {}
    if pairs:
        targets = {(t, tf) for _, _, t, tf in pairs}
        for s, sf, t, tf, tr in ColumnEdge.objects.filter(target_id__in={t for t, _ in targets}).values_list(
                "source_id", "source_field", "target_id", "target_field", "transformations"):
            if (s, sf, t, tf) in pairs:
                transformations[(s, sf, t, tf)] = tr if isinstance(tr, list) else []
    visible = {k for k, (ok, _) in facts.items() if ok}
    # Reachable through visible datasets only; a field the reader may not see is counted when a shown
    # field leads to it (as `_prune` counts nodes): what lies behind it is neither shown nor counted.
    adjacent: dict[tuple, set] = defaultdict(set)
    for s, sf, t, tf in pairs:
        adjacent[(s, sf, "d")].add((t, tf))
        adjacent[(t, tf, "u")].add((s, sf))
    shown = {(root, f) for f in fields}
    hidden: set[tuple] = set()
    for direction in ("d", "u"):
        frontier = [(root, f) for f in fields]
        for _ in range(depth):
            following = []
            for node, fname in frontier:
                for other in adjacent.get((node, fname, direction), ()):
                    if other[0] not in visible:
                        if other[0] in facts:  # not a node gone since the edge was drawn
                            hidden.add(other)
                    elif other not in shown:
                        shown.add(other)
                        following.append(other)
            frontier = following
    schema_types = {}
    out: dict[tuple, dict] = {}
    for node, fname in sorted(shown, key=lambda p: (facts[p[0]][1]["id"], p[1])):
        data = facts[node][1]["data"]
        if node not in schema_types:
            schema_types[node] = {f["name"]: f["type"] for f in data["schema"]}
        out[(node, fname)] = {
            "id": f"datasetField:{data['namespace']}:{data['name']}:{fname}", "type": "DATASET_FIELD",
            "data": {"namespace": data["namespace"], "name": data["name"], "field": fname,
                     "fieldType": schema_types[node].get(fname, ""), "dataset": facts[node][1]["id"],
                     "ref": data.get("ref"), "url": data.get("url"), "team": data.get("team"),
                     "transformations": []},
            "inEdges": [], "outEdges": []}
    for (s, sf, t, tf) in sorted(pairs, key=str):
        if (s, sf) in out and (t, tf) in out:
            edge = {"origin": out[(s, sf)]["id"], "destination": out[(t, tf)]["id"]}
            out[(s, sf)]["outEdges"].append(edge)
            out[(t, tf)]["inEdges"].append(edge)
            for tr in transformations.get((s, sf, t, tf), []):
                if isinstance(tr, dict):
                    out[(t, tf)]["data"]["transformations"].append({"from": out[(s, sf)]["id"], **{
                        k: tr.get(k) for k in ("type", "subtype", "description", "masking") if k in tr}})
    root_id = facts[root][1]["id"]
    return ColumnGraph(root=root_id, nodes={n["id"]: n for n in out.values()}, hidden=len(hidden - shown))
