"""Reads from the catalog, always filtered by what the user may see."""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from datetime import timedelta
from urllib.parse import quote

from django.core.cache import cache
from django.db import connections, router
from django.db.models import CharField, Count, F, QuerySet, TextField, Value
from django.db.models.functions import Cast, JSONObject
from django.utils import timezone

from portal.accounts import permissions

from . import facets as cube  # the facet cube (`facets` below counts live)
from .models import (
    Entity,
    EntityTag,
    Location,
    MlflowSyncJob,
    MlflowSyncState,
    ModelVersion,
    ProcessingError,
    Relation,
    Star,
)

LIST_COLUMNS = ("id", "ref", "kind", "kind_key", "namespace", "name", "title", "description", "spec_type",
                "lifecycle", "owner_ref", "visibility", "tags", "orphan", "error_count", "updated_at")
FACET_FIELDS = {"kind": "kind_key", "type": "spec_type", "lifecycle": "lifecycle", "owner": "owner_ref",
                "namespace": "namespace"}


def visible_entities(user) -> QuerySet[Entity]:
    return permissions.filter_visible(Entity.objects.all(), user)


def entity_list(user) -> QuerySet[Entity]:
    return visible_entities(user).only(*LIST_COLUMNS)


def entity_by_name(user, kind: str, namespace: str, name: str) -> Entity | None:
    ref = f"{kind}:{namespace}/{name}".lower()
    return visible_entities(user).select_related("owner_team", "location").filter(ref=ref).first()


# -- the API's by-name read ----------------------------------------------------------------------
# One indexed row and its relations: each statement takes ~0.03 ms in the database, while the ORM
# took ~0.4 ms to build each (1.1 ms for `entity_by_name` with its joins and visibility filter), the
# larger part of a by-name read (docs/deployment.md, "Request latency"). So the entity's statement is
# built by the ORM once per database and run as a raw query afterwards, and visibility is decided on
# the row by `permissions.can` (the same rule `visible_q` writes as SQL).
BODY_COLUMNS = ("id", "ref", "uid", "content_hash", "data", "orphan", "error_count", "visibility", "kind_key",
                "namespace", "name", "owner_team_id")
_BY_REF: dict[tuple[str, str], str] = {}
_MARK = "\x00plinth-ref\x00"  # stands for the parameter while the statement is built


def _by_ref_sql(alias: str) -> str:
    key = (alias, connections[alias].vendor)
    sql = _BY_REF.get(key)
    if sql is None:
        query = Entity.objects.using(alias).filter(ref=_MARK).only(*BODY_COLUMNS).order_by()[:1].query
        sql, params = query.get_compiler(using=alias).as_sql()
        if list(params) != [_MARK]:  # the statement must take the ref as its one parameter
            raise RuntimeError(f"unexpected parameters in the by-ref statement: {params!r}")
        _BY_REF[key] = sql
    return sql


def entity_body_by_name(user, kind: str, namespace: str, name: str) -> Entity | None:
    """The entity as the API's by-name read needs it (`BODY_COLUMNS`), or None when it is missing or
    the user may not see it (the caller answers both with the same 404)."""
    ref = f"{kind}:{namespace}/{name}".lower()
    alias = router.db_for_read(Entity)
    found = list(Entity.objects.using(alias).raw(_by_ref_sql(alias), [ref]))
    if not found or not permissions.can(user, permissions.Action.VIEW, found[0]):
        return None
    return found[0]


def owned_by_team(team, user) -> QuerySet[Entity]:
    return entity_list(user).filter(owner_team=team).order_by("kind_key", "name_key")


def owned_by_user_teams(user) -> QuerySet[Entity]:
    return entity_list(user).filter(owner_team_id__in=permissions.team_ids(user)).order_by("-updated_at")


def starred_by(user) -> QuerySet[Entity]:
    return entity_list(user).filter(stars__user=user).order_by("name_key")


def is_starred(user, entity: Entity) -> bool:
    return Star.objects.filter(user=user, entity=entity).exists()


# What teams build and run: the catalog list opens on these kinds, and the home page counts them first
# (the directory — users, groups, locations — and templates after them).
DEFAULT_KINDS = ("model", "featureset", "dataset", "pipeline", "component", "api", "airesource", "resource",
                 "system", "domain")


def kind_counts(user) -> list[dict]:
    rows = visible_entities(user).values("kind", "kind_key").annotate(n=Count("id")).order_by("-n")
    return sorted(rows, key=lambda r: (r["kind_key"] not in DEFAULT_KINDS, -r["n"], r["kind_key"]))


def facets(queryset: QuerySet[Entity], names: list[str]) -> dict[str, list[dict]]:
    """Counts per value for each facet, over an already-filtered queryset: one GROUP BY over all the
    column facets together (summed here), plus one for tags."""
    result: dict[str, list[dict]] = {}
    columns = {name: FACET_FIELDS[name] for name in names if name in FACET_FIELDS}
    if columns:
        # One GROUP BY per column, UNION ALL-ed into one statement: grouping by all columns together
        # returns a row per combination (thousands, for owners x kinds x types) to sum up here.
        base = queryset.order_by()
        parts = [base.annotate(facet=Value(name, output_field=CharField()), value=F(column))
                 .values("facet", "value").annotate(n=Count("id")).values_list("facet", "value", "n")
                 for name, column in columns.items()]
        counters: dict[str, Counter] = {name: Counter() for name in columns}
        for name, value, n in parts[0].union(*parts[1:], all=True) if len(parts) > 1 else parts[0]:
            if value:
                counters[name][value] += n
        for name, counter in counters.items():
            result[name] = cube.top_values(counter)
    if "tag" in names:
        rows = (EntityTag.objects.filter(entity__in=queryset.values("pk")).values("tag")
                .annotate(count=Count("id")).order_by("-count", "tag")[:30])
        result["tag"] = [{"value": r["tag"], "count": r["count"]} for r in rows]
    return {name: result[name] for name in names if name in result}


LIVE_COUNT_CAP = 10_000
FACET_SAMPLE = 2_000


def _first(queryset: QuerySet[Entity], n: int) -> QuerySet[Entity]:
    return Entity.objects.filter(pk__in=queryset.order_by().values("pk")[:n])


def list_counts(user, params, queryset: QuerySet[Entity], names: list[str]) -> tuple[int, dict[str, list[dict]], bool, int | None]:
    """(total, facet counts, capped, sampled) of a filtered list; `params` None means "filters the
    cube cannot answer".

    From the cached facet cube when the filters allow (exact). Otherwise the total is counted live,
    stopping at LIVE_COUNT_CAP matches (then `capped` is true and the total reads "10,000+"). Facets
    the cube cannot give (all of them for text and several tags; the co-occurring tags under a tag
    filter) are counted over the first FACET_SAMPLE matches: `sampled` is that number when the
    matches are more, else None. Live counts are remembered for the catalog version, per filter set
    and permission scope, so paging through a result (or a second visitor) does not count again."""
    simple = cube.simple_filters(params) if params is not None else None
    key = _live_key(user, params, names)
    current = cube.version()
    memo = _live_memo(current) if key is not None else {}
    # Shared by the web processes for this version; never for the unversioned catalog (see _live_memo).
    share_as = _shared_key(current, key) if key is not None and current != cube.UNVERSIONED else None
    if share_as is not None and key not in memo:  # another process may have counted it already
        shared = cache.get(share_as)
        if shared is not None:
            _remember(memo, key, shared, share_as=None)
    if key in memo:
        total, found, capped, sampled = memo[key]
        return total, {n: [dict(f) for f in v] for n, v in found.items()}, capped, sampled
    if simple is not None:
        total, found = cube.counts(user, simple, names, current)
        missing = [n for n in names if n not in found]
        sampled = None
        if missing:
            sampled = FACET_SAMPLE if total > FACET_SAMPLE else None
            found.update(facets(_first(queryset, FACET_SAMPLE) if sampled else queryset, missing))
        result = (total, {n: found[n] for n in names if n in found}, False, sampled)
        if missing and key is not None:
            _remember(memo, key, result, share_as=share_as)
        return result
    total = queryset.order_by()[: LIVE_COUNT_CAP + 1].count()
    capped = total > LIVE_COUNT_CAP
    sampled = FACET_SAMPLE if total > FACET_SAMPLE else None
    found = facets(_first(queryset, FACET_SAMPLE) if sampled else queryset, names) if names else {}
    result = (min(total, LIVE_COUNT_CAP), found, capped, sampled)
    if key is not None:
        _remember(memo, key, result, share_as=share_as)
    return result


LIVE_MEMO_SIZE = 512
LIVE_SHARED_SECONDS = 600  # a version's counts are exact for as long as it lasts; most last seconds
_LIVE: dict = {"version": None, "memo": {}}


def _live_memo(current: int) -> dict:
    """This process's remembered live counts of catalog version `current` (forgotten on a new one;
    nothing is remembered for the unversioned catalog)."""
    if _LIVE["version"] != current or current == cube.UNVERSIONED:
        _LIVE["version"], _LIVE["memo"] = current, {}
    return _LIVE["memo"]



def _live_key(user, params, names: list[str]) -> tuple | None:
    """What live counts depend on: the filters, the facets asked for and who is asking (their
    permission scope). None when that cannot be told from here (the API's free-form filters) or
    when the answer is the user's own (stars change without a catalog version)."""
    if params is None or "starred" in params:
        return None
    filters = tuple(sorted((k, tuple(params.getlist(k))) for k in params if k not in cube.IGNORED_PARAMS))
    scope = "admin" if permissions.is_platform_admin(user) else tuple(sorted(permissions.team_ids(user)))
    return filters, tuple(names), scope


def _remember(memo: dict, key: tuple, result: tuple, *, share_as: str | None) -> None:
    """Keep live counts in this process and (`share_as`) in the shared cache for the other web
    processes: after each catalog write, every process used to count each filter set again (35-65 ms
    at 250k for text, "mine" or tag-and-lifecycle filters)."""
    if len(memo) >= LIVE_MEMO_SIZE:
        memo.clear()
    memo[key] = (result[0], {n: [dict(f) for f in v] for n, v in result[1].items()}, result[2], result[3])
    if share_as is not None:
        cache.set(share_as, memo[key], LIVE_SHARED_SECONDS)


def _shared_key(current: int, key: tuple) -> str:
    """The shared cache's key of live counts: the catalog version and a digest of what they depend on
    (`_live_key`: filters, facets, permission scope)."""
    digest = hashlib.blake2b(repr(key).encode(), digest_size=16).hexdigest()
    return f"plinth:catalog:live:v1:{current}:{digest}"


def visible_relations(user, source_refs: list[str]) -> dict[str, list[tuple[str, str]]]:
    """Outgoing (type, target ref) of each source, ordered: the one rule for every relation list
    (pages, graph, API bodies). A row is shown when the user may see the entity whose descriptor stated
    it (its `origin`), whatever the target: a target the user may not see is then named as that
    descriptor names it, like a ref that names no entity, and callers flag both "missing" alike. The
    rows a hidden entity's own descriptor stated (`dependencyOf`, `ownerOf`… on the other side) are
    dropped: they would name it. So another team's private entity reads exactly as a deleted one (which
    takes exactly the rows it stated with it, the cascade on `origin`). One statement, with the
    visibility rule as `permissions.visible_sql` writes it (one decision per call, whatever the rows):
    the ORM's two statements took 0.9 ms for one source, the database 0.05 ms (docs/deployment.md,
    "Request latency")."""
    refs = list(dict.fromkeys(source_refs))
    if not refs:
        return {}
    alias = router.db_for_read(Relation)
    connection = connections[alias]
    quote = connection.ops.quote_name
    entity = quote(Entity._meta.db_table)  # unaliased: `visible_sql` names its columns by the table
    rule = permissions.visible_sql(Entity, user)
    params: list = list(refs)
    if rule is None:  # the user sees no entity: every row's origin is hidden
        hidden = "1 = 1"
    elif rule[0] == "":  # a platform admin: nothing is hidden
        hidden = None
    else:  # NULL-safe: a row the rule does not say yes to is hidden
        hidden, params = f"CASE WHEN {rule[0]} THEN 0 ELSE 1 END = 1", [*params, *rule[1]]
    # Table names come from the models, the rule from the ORM; values are parameters.
    sql = (f"SELECT r.source_ref, r.type, r.target_ref FROM {quote(Relation._meta.db_table)} r "  # noqa: S608
           f"WHERE r.source_ref IN ({', '.join(['%s'] * len(refs))})")
    if hidden is not None:
        origin = quote(Relation._meta.get_field("origin").column)
        sql += (f" AND NOT EXISTS (SELECT 1 FROM {entity} WHERE {entity}.{quote(Entity._meta.pk.column)} = "  # noqa: S608
                f"r.{origin} AND {hidden})")
    sql += " ORDER BY r.source_ref, r.type, r.target_ref"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    grouped: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for source, rtype, target in rows:
        grouped[source].append((rtype, target))
    return grouped


def visible_relations_json(user, source_refs: list[str]) -> dict[str, str]:
    """`visible_relations` as the API writes them, a JSON array per source (`[{"type", "targetRef"}…]`),
    each object composed by the database: the stream (`catalog.export`) writes them as they come. The
    same rule (rows whose origin the user may see), joined in: one statement."""
    rows = permissions.filter_visible(Relation.objects.filter(source_ref__in=source_refs), user, "origin__")
    grouped: dict[str, list[str]] = defaultdict(list)
    for source, doc in rows.annotate(doc=Cast(JSONObject(type="type", targetRef="target_ref"), TextField())).values_list(
            "source_ref", "doc").order_by("source_ref", "type", "target_ref"):
        grouped[source].append(doc)
    return {source: "[" + ",".join(docs) + "]" for source, docs in grouped.items()}


def relation_graph(user, entity: Entity, depth: int = 1, max_nodes: int = 80) -> dict:
    """Nodes and edges around an entity, breadth-first, by `visible_relations`: a target the user may
    not see is a node flagged missing, as one that names no entity is (and is walked on the same way)."""
    depth = max(1, min(depth, 4))
    nodes: dict[str, dict] = {}
    edges: list[dict] = []
    frontier = [entity.ref]
    seen = {entity.ref}
    for level in range(depth):
        if not frontier:
            break
        rels = [(source, rtype, target) for source, found_rels in visible_relations(user, frontier).items()
                for rtype, target in found_rels]
        targets = {t for _, _, t in rels}
        found = {e.ref: e for e in visible_entities(user).filter(ref__in=targets | set(frontier)).only(
            "ref", "kind", "kind_key", "namespace", "name", "title")}
        next_frontier = []
        for source, rtype, target in rels:
            edges.append({"source": source, "type": rtype, "target": target})
            if target not in seen and len(seen) < max_nodes:
                seen.add(target)
                next_frontier.append(target)
        for ref in set(frontier) | set(next_frontier):
            e = found.get(ref)
            nodes[ref] = {
                "ref": ref, "level": level if ref in frontier else level + 1,
                "exists": e is not None,
                "kind": e.kind if e else ref.split(":", 1)[0],
                "name": (e.title or e.name) if e else ref.split("/", 1)[-1],
                "url": e.get_absolute_url() if e else None,
            }
        frontier = next_frontier
    edges = [e for e in edges if e["source"] in nodes and e["target"] in nodes]
    return {"root": entity.ref, "nodes": list(nodes.values()), "edges": edges}


def related_entities(user, entity: Entity) -> dict[str, list[dict]]:
    """Outgoing relations (`visible_relations`) grouped by type, each target resolved, or None
    (shown "missing") when it names no entity the user may see."""
    rels = visible_relations(user, [entity.ref]).get(entity.ref, [])
    found = {e.ref: e for e in visible_entities(user).filter(ref__in={t for _, t in rels}).only(
        "ref", "kind", "kind_key", "namespace", "name", "title", "lifecycle", "visibility")} if rels else {}
    grouped: dict[str, list[dict]] = defaultdict(list)
    for rtype, target in rels:
        grouped[rtype].append({"ref": target, "entity": found.get(target)})
    return dict(grouped)


def orphan_referrers(user, entity: Entity, limit: int = 50) -> dict:
    """The entities whose descriptors name this one in a relation (they keep those relations, dangling,
    when it is deleted): those the user may see, up to `limit`, in kind and name order, their count,
    and how many others there are that the user may not see (counted, never named)."""
    # Both directions of a relation are stored, each by the descriptor that states it: the rows from
    # this entity's side that another descriptor wrote name its referrers (by the (source_ref, type) index).
    origins = Relation.objects.filter(source_ref=entity.ref).exclude(origin_id=entity.pk).values("origin_id")
    visible_q = permissions.visible_q(user)
    counts = Entity.objects.filter(pk__in=origins).aggregate(total=Count("pk"), shown=Count("pk", filter=visible_q))
    total, shown = counts["total"], counts["shown"]
    visible = Entity.objects.filter(visible_q, pk__in=origins)
    rows = list(visible.order_by("kind_key", "name_key").only(
        "ref", "kind", "kind_key", "namespace", "name", "title", "lifecycle", "visibility")[:limit])
    return {"entities": rows, "count": shown, "hidden": total - shown}


def visible_locations(user) -> QuerySet[Location]:
    """Locations the user may see (`permissions.visible_locations_q`), each once."""
    return Location.objects.filter(pk__in=Location.objects.filter(permissions.visible_locations_q(user)).values("pk"))


def location_for(user, pk: int) -> Location | None:
    """One location, or None when it is missing or the user may not see it (the caller 404s)."""
    return visible_locations(user).filter(pk=pk).first()


def location_owner_team_ids(location) -> set[int | None]:
    """The teams owning a location's entities (None for unowned ones), for location rules."""
    return set(Entity.objects.filter(location=location).values_list("owner_team_id", flat=True).distinct())


def entity_errors(entity: Entity) -> list[ProcessingError]:
    if entity.location_id is None:
        return list(entity.errors.all())
    return list(ProcessingError.objects.filter(location_id=entity.location_id, source=entity.source)[:50])


MODEL_VERSIONS_SHOWN = 50


def model_versions(entity: Entity) -> list[ModelVersion]:
    """The newest MODEL_VERSIONS_SHOWN versions with their runs and the runs' input datasets (three queries)."""
    from django.db.models import Prefetch

    from .models import RunInput

    return list(entity.model_versions.select_related("experiment_run").prefetch_related(
        Prefetch("experiment_run__inputs", queryset=RunInput.objects.select_related("entity").order_by("id")))[:MODEL_VERSIONS_SHOWN])


def attach_run_inputs(user, versions: list[ModelVersion]) -> None:
    """Sets `run_inputs` on each version: its run's datasets as pages show them, a linked Dataset entity
    only when the user may see it (one query for all versions)."""
    from . import experiments

    groups = [list(v.experiment_run.inputs.all()) if v.experiment_run else [] for v in versions]
    visible = experiments.visible_dataset_ids(user, [i for g in groups for i in g])
    for v, group in zip(versions, groups, strict=True):
        v.run_inputs = [experiments.input_body(i, visible) for i in group]


# Aliases shown first, in this order; any others follow alphabetically.
ALIAS_ORDER = ("champion", "challenger")
HEADLINE_METRICS = 4


def model_summary(entity: Entity, versions: list[ModelVersion]) -> dict:
    """What the model page shows about MLflow, from rows already read (no further queries): aliases with
    their versions, the headline metrics, a chart per headline metric, links into the MLflow UI."""
    from django.conf import settings

    from . import charts
    from .mlflow_sync import model_name

    name = model_name(entity)
    ui = settings.PLINTH_MLFLOW_UI_URL
    quoted = quote(name, safe="")
    for v in versions:  # links into the MLflow UI, read by the templates as attributes of the rows
        v.mlflow_url = f"{ui}/#/models/{quoted}/versions/{quote(v.version, safe='')}"
        v.run_url = f"{ui}/#/runs/{quote(v.run_id, safe='')}" if v.run_id else ""
    aliases = [{"alias": a, "version": v} for v in versions for a in (v.aliases or [])]
    aliases.sort(key=lambda r: (ALIAS_ORDER.index(r["alias"]) if r["alias"] in ALIAS_ORDER else len(ALIAS_ORDER),
                                r["alias"]))
    # Headline metrics: what the first alias holder (else the latest version) logged, by name.
    reference = aliases[0]["version"] if aliases else (versions[0] if versions else None)
    headline = sorted(k for k, v in (reference.metrics if reference else {}).items()
                      if isinstance(v, int | float) and not isinstance(v, bool))[:HEADLINE_METRICS]
    for row in aliases:
        row["metrics"] = [(m, row["version"].metrics.get(m)) for m in headline]
    return {
        "registered_model": name,
        "aliases": aliases,
        "headline": headline,
        "charts": [c for c in (charts.metric_chart(m, versions) for m in headline) if c],
        "url": f"{ui}/#/models/{quoted}",
    }


def mlflow_state() -> MlflowSyncState | None:
    return MlflowSyncState.objects.order_by("-pk").first()


def mlflow_sync_job(entity: Entity, job_id: int) -> MlflowSyncJob | None:
    return MlflowSyncJob.objects.filter(entity=entity, pk=job_id).first()


SYNC_JOB_LEASE = timedelta(minutes=10)  # a queued or running sync older than this is given up on


def pending_mlflow_sync_jobs(entity: Entity) -> QuerySet[MlflowSyncJob]:
    """The model's queued or running "Sync from MLflow now" jobs within their lease, newest first: what a
    second press gets back (services.mlflow_sync_request) and what the page polls after a reload."""
    return (MlflowSyncJob.objects
            .filter(entity=entity, state__in=[MlflowSyncJob.State.QUEUED, MlflowSyncJob.State.RUNNING],
                    created_at__gte=timezone.now() - SYNC_JOB_LEASE)
            .order_by("-pk"))


# -- domains (a system's spec.domain; an entity's domain is its system's) ----------------------------
DOMAIN_CHUNK = 500


def domain_ref(value) -> str:
    """A descriptor's `spec.domain` as a full ref (`domain:default/cards`), or "" when absent or malformed."""
    from .descriptors.refs import parse_ref

    if not isinstance(value, str) or not value:
        return ""
    try:
        return parse_ref(value, default_kind="domain").key()
    except ValueError:
        return ""


def system_domains(system_refs) -> dict[str, str]:
    """system ref → its domain ref ("" when it names none), one query per DOMAIN_CHUNK systems."""
    refs, out = sorted(r for r in set(system_refs) if r), {}
    for i in range(0, len(refs), DOMAIN_CHUNK):
        for ref, domain in Entity.objects.filter(ref__in=refs[i:i + DOMAIN_CHUNK]).values_list("ref", "data__spec__domain"):
            out[ref] = domain_ref(domain)
    return out


def domain_of(kind: str, ref: str, system_ref: str, own_domain, domains: dict[str, str]) -> str:
    """An entity's domain: itself for a domain, its own spec.domain for a system, else its system's."""
    if kind == "domain":
        return ref
    if kind == "system":
        return domain_ref(own_domain)
    return domains.get(system_ref or "", "")
