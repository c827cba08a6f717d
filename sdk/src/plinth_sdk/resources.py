"""The API's operations, grouped as the portal groups them. Each method builds a `Call` for one
operation (registered below by its OpenAPI `operationId`) and lets the client run it: on `Client` a
method returns its result, on `AsyncClient` an awaitable of it (iterators: async iterators)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from . import models
from ._http import endpoint

if TYPE_CHECKING:
    from ._http import _Base

# -- the operations, by operationId (the coverage test compares them with /api/schema/) ------------
ME = endpoint("v1_me_retrieve", "GET", "/api/v1/me")
TOKEN_LIST = endpoint("tokens_list", "GET", "/api/v1/tokens")
TOKEN_CREATE = endpoint("tokens_create", "POST", "/api/v1/tokens")
TOKEN_REVOKE = endpoint("tokens_revoke", "DELETE", "/api/v1/tokens/{id}")
ENTITY_LIST = endpoint("v1_entities_retrieve", "GET", "/api/v1/entities")
ENTITY_EXPORT = endpoint("v1_entities_export_retrieve", "GET", "/api/v1/entities/export")
ENTITY_GET = endpoint("v1_entities_by_name_retrieve", "GET", "/api/v1/entities/by-name/{kind}/{namespace}/{name}")
ENTITY_DELETE_ORPHAN = endpoint("v1_entities_by_name_destroy", "DELETE",
                                "/api/v1/entities/by-name/{kind}/{namespace}/{name}")
ENTITY_RELATIONS = endpoint("v1_entities_by_name_relations_retrieve", "GET",
                            "/api/v1/entities/by-name/{kind}/{namespace}/{name}/relations")
MODEL_VERSION_RUN = endpoint("v1_entities_by_name_versions_run_retrieve", "GET",
                             "/api/v1/entities/by-name/{kind}/{namespace}/{name}/versions/{model_version}/run")
MODEL_COMPARE = endpoint("v1_entities_by_name_compare_retrieve", "GET",
                         "/api/v1/entities/by-name/{kind}/{namespace}/{name}/compare")
ENTITY_FACETS = endpoint("v1_entity_facets_retrieve", "GET", "/api/v1/entity-facets")
REFRESH = endpoint("v1_refresh_create", "POST", "/api/v1/refresh")
LOCATION_LIST = endpoint("locations_list", "GET", "/api/v1/locations")
LOCATION_REGISTER = endpoint("locations_register", "POST", "/api/v1/locations")
LOCATION_UPLOAD = endpoint("locations_upload", "POST", "/api/v1/locations/upload")
LOCATION_GET = endpoint("locations_retrieve", "GET", "/api/v1/locations/{id}")
LOCATION_DELETE = endpoint("locations_destroy", "DELETE", "/api/v1/locations/{id}")
VALIDATE = endpoint("v1_validate_entity_create", "POST", "/api/v1/validate-entity")
SEARCH = endpoint("v1_search_retrieve", "GET", "/api/v1/search")
APPROVAL_LIST = endpoint("approval_requests_list", "GET", "/api/v1/approval-requests")
APPROVAL_CREATE = endpoint("approval_requests_create", "POST", "/api/v1/approval-requests")
APPROVAL_GET = endpoint("approval_requests_read", "GET", "/api/v1/approval-requests/{id}")
APPROVAL_DECIDE = endpoint("approval_requests_decide", "POST", "/api/v1/approval-requests/{id}/decisions")
APPROVAL_COMMENT = endpoint("approval_requests_comment", "POST", "/api/v1/approval-requests/{id}/comments")
APPROVAL_WITHDRAW = endpoint("approval_requests_withdraw", "POST", "/api/v1/approval-requests/{id}/withdraw")
APPROVAL_RETRY = endpoint("approval_requests_retry", "POST", "/api/v1/approval-requests/{id}/retry")
AUDIT_LIST = endpoint("audit_events_list", "GET", "/api/v1/audit-events")
TEMPLATE_LIST = endpoint("v1_scaffolder_templates_retrieve", "GET", "/api/v1/scaffolder/templates")
RUN_CREATE = endpoint("v1_scaffolder_runs_create", "POST", "/api/v1/scaffolder/runs")
RUN_GET = endpoint("v1_scaffolder_runs_retrieve", "GET", "/api/v1/scaffolder/runs/{uid}")
RUN_RETRY = endpoint("v1_scaffolder_runs_retry_create", "POST", "/api/v1/scaffolder/runs/{uid}/retry")
RUN_CANCEL = endpoint("v1_scaffolder_runs_cancel_create", "POST", "/api/v1/scaffolder/runs/{uid}/cancel")
DOCS_SITES = endpoint("techdocs_sites_list", "GET", "/api/v1/techdocs/sites")
DOCS_SITE = endpoint("techdocs_site_retrieve", "GET", "/api/v1/techdocs/sites/{kind}/{namespace}/{name}")
DOCS_PAGE = endpoint("techdocs_page_retrieve", "GET", "/api/v1/techdocs/sites/{kind}/{namespace}/{name}/page")
DOCS_BUILD = endpoint("techdocs_site_build", "POST", "/api/v1/techdocs/sites/{kind}/{namespace}/{name}/build")
DOCS_DEFINITION = endpoint("techdocs_definition_retrieve", "GET",
                           "/api/v1/techdocs/definitions/{kind}/{namespace}/{name}")
INSIGHTS_EVENTS = endpoint("insights_events", "GET", "/api/v1/insights/events")
FEEDBACK_LIST = endpoint("feedback_list", "GET", "/api/v1/feedback")
FEEDBACK_CREATE = endpoint("feedback_create", "POST", "/api/v1/feedback")
FEEDBACK_GET = endpoint("feedback_read", "GET", "/api/v1/feedback/{id}")
FEEDBACK_STATUS = endpoint("feedback_set_status", "POST", "/api/v1/feedback/{id}/status")
FEEDBACK_VOTE = endpoint("feedback_vote", "POST", "/api/v1/feedback/{id}/vote")
ROADMAP = endpoint("feedback_roadmap", "GET", "/api/v1/roadmap")
LINEAGE_SEND = endpoint("lineage_create", "POST", "/api/v1/lineage")
LINEAGE_GRAPH = endpoint("lineage_graph", "GET", "/api/v1/lineage")
LINEAGE_COLUMNS = endpoint("lineage_columns", "GET", "/api/v1/lineage/columns")
LINEAGE_IMPACT = endpoint("lineage_impact", "GET", "/api/v1/lineage/impact")
LINEAGE_RUNS = endpoint("lineage_runs", "GET", "/api/v1/lineage/runs")
DEPLOYMENT_EVENT = endpoint("deployment_events_create", "POST", "/api/v1/deployments/events")
SCORECARD_LIST = endpoint("scorecards_list", "GET", "/api/v1/scorecards")
SCORECARD_RESULTS = endpoint("scorecards_results", "GET", "/api/v1/scorecards/{name}/results")
SCORECARD_ROLLUP = endpoint("scorecards_rollup", "GET", "/api/v1/scorecards/{name}/rollup")
TEAM_OPERATIONS = endpoint("teams_operations", "GET", "/api/v1/teams/{name}/operations")
ENTITY_SCORECARDS = endpoint("entity_scorecards", "GET",
                             "/api/v1/entities/by-name/{kind}/{namespace}/{name}/scorecards")
SLO_LIST = endpoint("slos_list", "GET", "/api/v1/slos")
ENTITY_SLOS = endpoint("entity_slos", "GET", "/api/v1/entities/by-name/{kind}/{namespace}/{name}/slos")
COST_LIST = endpoint("costs_list", "GET", "/api/v1/costs")
COST_IMPORT = endpoint("costs_import_create", "POST", "/api/v1/costs/imports")
COST_IMPORT_GET = endpoint("costs_import_retrieve", "GET", "/api/v1/costs/imports/{id}")
ENTITY_COSTS = endpoint("entity_costs", "GET", "/api/v1/entities/by-name/{kind}/{namespace}/{name}/costs")
INCIDENT_LIST = endpoint("incidents_list", "GET", "/api/v1/incidents")
INCIDENT_CREATE = endpoint("incidents_create", "POST", "/api/v1/incidents")
INCIDENT_GET = endpoint("incidents_read", "GET", "/api/v1/incidents/{id}")
INCIDENT_STATUS = endpoint("incidents_set_status", "POST", "/api/v1/incidents/{id}/status")
INCIDENT_NOTE = endpoint("incidents_note", "POST", "/api/v1/incidents/{id}/notes")
INCIDENT_POSTMORTEM = endpoint("incidents_set_postmortem", "POST", "/api/v1/incidents/{id}/postmortem")
DOCS_MODEL_CARD = endpoint("techdocs_model_card_retrieve", "GET", "/api/v1/techdocs/model-cards/{namespace}/{name}")


def parse_ref(ref: str, default_kind: str | None = None) -> tuple[str, str, str]:
    """`kind:namespace/name`, `kind:name` or (with `default_kind`) `name` → (kind, namespace, name)."""
    kind, sep, rest = ref.strip().partition(":")
    if not sep:
        if default_kind is None:
            raise ValueError(f"'{ref}' is not an entity reference: expected kind:namespace/name, e.g. "
                             "model:default/fraud-detector")
        kind, rest = default_kind, ref.strip()
    namespace, _, name = rest.rpartition("/")
    if not kind or not name:
        raise ValueError(f"'{ref}' is not an entity reference: expected kind:namespace/name")
    return kind.lower(), (namespace or "default").lower(), name.lower()


class _Resource:
    def __init__(self, client: _Base):
        self._c = client

    def _run(self, call):
        return self._c._run(call)


class Account(_Resource):
    """The signed-in user."""

    def me(self) -> models.Me:
        """Who the token belongs to, with their teams and roles."""
        return self._run(ME.call(models.Me.from_api))


class Insights(_Resource):
    """Usage analytics (aggregates of your teams; the organisation and per-user rows for platform admins)."""

    def events(self, type: str, *, start_date: str | None = None, end_date: str | None = None,  # noqa: A002
               grouping: str | None = None, team: str | None = None, limit: int | None = None,
               per_user: bool = False) -> dict:
        """`type`: active_users, top_templates, top_searches, top_entities, top_docs or funnel. Dates are
        YYYY-MM-DD (default: the last 30 days). Returns the API's body: `{"grouping", "data": [...], ...}`."""
        params = {"type": type, "start_date": start_date, "end_date": end_date, "grouping": grouping,
                  "team": team, "limit": limit, "per_user": "true" if per_user else None}
        return self._run(INSIGHTS_EVENTS.call(params=params))


class Tokens(_Resource):
    """Your own API tokens (as on the portal's API tokens page)."""

    def list(self, *, page_size: int = 100, limit: int | None = None) -> Iterator[models.Token]:
        """Newest first, revoked and expired ones included (`active` tells); never the secrets."""
        return self._c._pages(TOKEN_LIST.call(params={"limit": page_size}), models.Token.from_api, limit=limit)

    def create(self, name: str, *, expires_in_days: int | None = None) -> models.Token:
        """A new token; its `secret` is in this answer only. `expires_in_days`: 7, 30, 90 or 365 (None:
        it does not expire)."""
        return self._run(TOKEN_CREATE.call(models.Token.from_api,
                                           json={"name": name, "expiresInDays": expires_in_days}))

    def revoke(self, id: int) -> None:  # noqa: A002
        """Revoke one of your tokens at once (`NotFoundError` for an id that is not yours)."""
        return self._run(TOKEN_REVOKE.call(id=id))


class Entities(_Resource):
    """Catalog entities."""

    def list(self, *, filter: str | Iterable[str] | None = None, kind: str | None = None,  # noqa: A002
             owner: str | None = None, tag: str | None = None, lifecycle: str | None = None,
             type: str | None = None, q: str | None = None, namespace: str | None = None,  # noqa: A002
             fields: Iterable[str] | None = None, order: str | None = None, page_size: int = 500,
             limit: int | None = None) -> Iterator[models.Entity]:
        """Every entity the caller may see that matches, as an iterator (constant memory, however large
        the catalog). `filter` takes Backstage filters (`kind=model,spec.type=classifier`; several are
        OR-ed); `fields` projects (`["kind", "metadata.name"]`).

        Without `order` and `limit` this is a full listing: it streams (`GET /api/v1/entities/export`,
        in the order entities were first stored) and takes up a dropped connection where it broke.
        With `order` (`metadata.name`, `-updated`, …) or `limit` (stop after that many) it pages
        through the list `page_size` at a time."""
        filters = [filter] if isinstance(filter, str) else list(filter or [])
        wanted = list(fields or [])
        params = {"filter": filters, "kind": kind, "owner": owner, "tag": tag, "lifecycle": lifecycle,
                  "type": type, "q": q, "namespace": namespace}
        if order is None and limit is None:
            # A resumed stream tells the entities it already sent by their uid: asked for even when
            # `fields` leaves it out, and taken away again.
            keep_uid = not wanted or "metadata" in wanted or "metadata.uid" in wanted
            params["fields"] = ",".join(wanted if keep_uid else [*wanted, "metadata.uid"]) or None
            parse = models.Entity.from_api if keep_uid else _without_uid
            return self._c._stream(ENTITY_EXPORT.call(params=params), parse, key=_uid)
        params.update(fields=",".join(wanted) or None, order=order, limit=page_size)
        return self._c._pages(ENTITY_LIST.call(params=params), models.Entity.from_api, limit=limit)

    def get(self, ref: str) -> models.Entity:
        """One entity by reference (`model:default/fraud-detector`); `NotFoundError` if it does not
        exist or the caller may not see it."""
        kind, namespace, name = parse_ref(ref)
        return self._run(ENTITY_GET.call(models.Entity.from_api, kind=kind, namespace=namespace, name=name))

    def delete_orphan(self, ref: str) -> None:
        """Delete an orphan: an entity its location no longer defines, kept (flagged) by the catalog.
        `ConflictError` when a location still defines it (remove it from its file instead),
        `PermissionDeniedError` without the delete right on its team (maintainer, admin)."""
        kind, namespace, name = parse_ref(ref)
        return self._run(ENTITY_DELETE_ORPHAN.call(kind=kind, namespace=namespace, name=name))

    def relations(self, ref: str, *, depth: int = 1) -> dict:
        """The relation graph around an entity (`nodes`, `edges`), `depth` 1–4."""
        kind, namespace, name = parse_ref(ref)
        return self._run(ENTITY_RELATIONS.call(params={"depth": depth}, kind=kind, namespace=namespace, name=name))

    def facets(self, *facets: str, filter: str | None = None) -> dict[str, list[dict]]:  # noqa: A002
        """Counts per value of each facet (`kind`, `spec.type`, `spec.owner`, …) over matching entities."""
        return self._run(ENTITY_FACETS.call(lambda b: b["facets"],
                                            params={"facet": list(facets) or None, "filter": filter}))

    def refresh(self, ref: str) -> models.Plan:
        """Read the entity's location again now; returns what changed."""
        return self._run(REFRESH.call(models.Plan.from_api, json={"entityRef": ref}))


def _uid(doc: dict) -> Any:
    return (doc.get("metadata") or {}).get("uid")


def _without_uid(doc: dict) -> models.Entity:
    meta = doc.get("metadata")
    if isinstance(meta, dict):
        meta.pop("uid", None)
        if not meta:
            del doc["metadata"]
    return models.Entity.from_api(doc)


class Models(_Resource):
    """Model versions' MLflow runs and their comparison."""

    def run(self, ref: str, version: str | int) -> dict:
        """The MLflow run behind a version of a model (`fraud-detector` or `model:default/fraud-detector`):
        params, metrics, metric series (`history`), tags and input datasets; `NotFoundError` when the
        model, the version or its run is unknown or hidden."""
        kind, namespace, name = parse_ref(ref, default_kind="model")
        return self._run(MODEL_VERSION_RUN.call(kind=kind, namespace=namespace, name=name,
                                                model_version=str(version)))

    def compare(self, ref: str, versions: Iterable[str | int]) -> dict:
        """2–10 versions side by side, the first as the baseline: per metric each value with its
        difference to the baseline and a `better`/`worse`/`same` verdict; params with `differs`."""
        kind, namespace, name = parse_ref(ref, default_kind="model")
        wanted = ",".join(str(v) for v in versions)
        return self._run(MODEL_COMPARE.call(params={"versions": wanted}, kind=kind, namespace=namespace, name=name))


class Locations(_Resource):
    """Locations: where descriptors come from."""

    def list(self, *, page_size: int = 500, limit: int | None = None) -> Iterator[models.Location]:
        return self._c._pages(LOCATION_LIST.call(params={"limit": page_size}), models.Location.from_api,
                              limit=limit)

    def get(self, id: int) -> models.Location:  # noqa: A002
        return self._run(LOCATION_GET.call(models.Location.from_api, id=id))

    def register(self, target: str, *, dry_run: bool = False) -> models.Plan:
        """Register a location the server can read (an http(s) URL, or a path below its file roots)."""
        return self._run(LOCATION_REGISTER.call(models.Plan.from_api, json={"target": target, "dryRun": dry_run}))

    def upload(self, files: Mapping[str, str], *, source: str, dry_run: bool = False) -> models.Plan:
        """Register descriptors sent as content — from a CI runner or a laptop, where the server cannot
        read the files. `files` maps relative paths (`catalog-info.yaml`, `models/x/catalog-info.yaml`,
        files their `$text` refers to) to text; `source` names the upload (e.g. `github.com/acme/fraud`):
        sending the same `source` again replaces it, like refreshing a location."""
        body = {"source": source, "files": [{"path": p, "content": c} for p, c in files.items()],
                "dryRun": dry_run}
        return self._run(LOCATION_UPLOAD.call(models.Plan.from_api, json=body))

    def delete(self, id: int) -> None:  # noqa: A002
        """Unregister a location (its entities are removed)."""
        return self._run(LOCATION_DELETE.call(id=id))


class Lineage(_Resource):
    """OpenLineage events (the portal takes what Marquez takes at the same path), and the lineage graph
    joining them with the catalog, MLflow runs and versions, and deployments."""

    def send(self, events: Mapping[str, Any] | Iterable[Mapping[str, Any]]) -> dict:
        """Send one OpenLineage event (a RunEvent, DatasetEvent or JobEvent as a dict) or several as one
        batch. A batch is atomic: one invalid event refuses it all (`InvalidInput` naming
        `[index].field`). Resent events count as `duplicates`. Returns `{"received", "stored",
        "duplicates", "runs"}`."""
        body: Any = dict(events) if isinstance(events, Mapping) else [dict(e) for e in events]
        return self._run(LINEAGE_SEND.call(json=body))

    def graph(self, node_id: str, *, depth: int = 2, direction: str = "both") -> dict:
        """The graph around a node, Marquez's shape: `{"graph": [{"id", "type", "data", "inEdges",
        "outEdges"}], "hidden", "root", …}`. `node_id`: `dataset:<ns>:<name>`, `job:<ns>:<name>`,
        `entity:<kind>:<ns>:<name>`, `run:<MLflow run id>` or `version:<kind>:<ns>:<name>:<version>`;
        `depth` 0–20 edges; `direction` upstream, downstream or both. `NotFoundError` for an unknown node
        or one you may not see."""
        return self._run(LINEAGE_GRAPH.call(params={"nodeId": node_id, "depth": depth, "direction": direction}))

    def columns(self, node_id: str, *, column: str | None = None, depth: int = 5, direction: str = "both") -> dict:
        """Column-level lineage of a dataset (`dataset:<ns>:<name>`) from one column, or from every column
        with column lineage: DATASET_FIELD nodes with their transformations."""
        params: dict[str, Any] = {"nodeId": node_id, "depth": depth, "direction": direction}
        if column is not None:
            params["column"] = column
        return self._run(LINEAGE_COLUMNS.call(params=params))

    def impact(self, node_id: str, *, depth: int = 10) -> dict:
        """What depends on a node, `depth` hops downstream: `{"root", "total", "hidden", "critical",
        "groups": [{"kind", "team", "critical", "items"}]}`, production models and live deployments first."""
        return self._run(LINEAGE_IMPACT.call(params={"nodeId": node_id, "depth": depth}))

    def runs(self, node_id: str, *, page_size: int = 100, limit: int | None = None) -> Iterator[dict]:
        """Every run of a lineage job (`job:<namespace>:<name>`), newest first, page by page: `{"runId",
        "state", "startedAt", "endedAt", "durationSeconds", "errorMessage", "parentRunId"}`. Runs past the
        retention are gone (each job keeps its latest). `NotFoundError` for an unknown job or one you may
        not see; `InvalidInput` for a node that is not a job."""
        params = {"nodeId": node_id, "limit": page_size}
        return self._c._pages(LINEAGE_RUNS.call(params=params), dict, limit=limit)


class Scorecards(_Resource):
    """Scorecards: Rego checks over entity facts, grouped in levels (Bronze, Silver, Gold…)."""

    def list(self) -> list[dict]:
        """Every scorecard definition with its levels and checks; a broken one has `error` set."""
        return self._run(SCORECARD_LIST.call(lambda body: list(body.get("items") or [])))

    def results(self, name: str, *, team: str | None = None, level: str | None = None, domain: str | None = None,
                unowned: bool = False, page_size: int = 100, limit: int | None = None) -> Iterator[dict]:
        """Each visible entity's result on scorecard `name`, page by page, filtered as the scorecard's entity
        list is. `level="none"`: below the first; `domain` a ref or name, `""` in no domain; `unowned=True`
        the entities of no team (the API's empty `team`)."""
        if unowned and team:
            raise ValueError("Give team or unowned, not both.")
        params = {"team": "" if unowned else team, "level": level, "domain": domain, "limit": page_size}
        return self._c._pages(SCORECARD_RESULTS.call(params=params, name=name), dict,
                              next_of=lambda body: body.get("next"), limit=limit)

    def entity(self, ref: str) -> list[dict]:
        """The scorecards of one entity (`kind:namespace/name`): level and every check with why it fails."""
        kind, namespace, name = parse_ref(ref)
        return self._run(ENTITY_SCORECARDS.call(lambda body: list(body.get("items") or []), kind=kind,
                                                namespace=namespace, name=name))

    def rollup(self, name: str) -> dict:
        """Entities per level of scorecard `name` per team and per domain (what you may see), with the change
        at the top level against 7 and 30 days ago: `{"scorecard", "levels", "teams", "domains"}`."""
        return self._run(SCORECARD_ROLLUP.call(lambda body: dict(body), name=name))

    def team_operations(self, team: str) -> dict:
        """A team's operations rollup: each entity's levels, SLOs, open incidents and cost against its
        declared value, and the team's cost against budget (the team page's Operations section)."""
        return self._run(TEAM_OPERATIONS.call(lambda body: dict(body), name=team))


class SLOs(_Resource):
    """SLOs declared in OpenSLO files next to descriptors: SLI, error budget, burn rates, alerts."""

    def list(self, *, entity: str | None = None, team: str | None = None, page_size: int = 100,
             limit: int | None = None) -> Iterator[dict]:
        """Every SLO objective you may see, page by page; `entity` (kind:namespace/name) and `team` filter."""
        params = {"entity": entity, "team": team, "limit": page_size}
        return self._c._pages(SLO_LIST.call(params=params), dict, next_of=lambda body: body.get("next"), limit=limit)

    def entity(self, ref: str) -> dict:
        """One entity's SLOs (`kind:namespace/name`): `file`, `fileErrors` and `items`."""
        kind, namespace, name = parse_ref(ref)
        return self._run(ENTITY_SLOS.call(lambda body: dict(body), kind=kind, namespace=namespace, name=name))
class Costs(_Resource):
    """Costs from FOCUS exports, allocated to entities and teams (docs/finops.md)."""

    def list(self, *, month: str | None = None, group: str = "team", team: str | None = None,
             currency: str | None = None) -> dict:
        """A month's (YYYY-MM; default the latest) cost per `group` (team, entity, kind, domain, bucket) and
        currency: `{"month", "group", "items": [{key, currency, effective, billed, lines}], "hidden"}`."""
        params = {"month": month, "group": group, "team": team, "currency": currency}
        return self._run(COST_LIST.call(params=params))

    def entity(self, ref: str) -> dict:
        """One entity's monthly cost per currency, its declared business value and, when it names its
        predictions counter, the predictions per month and `costPer1kPredictions`."""
        kind, namespace, name = parse_ref(ref)
        return self._run(ENTITY_COSTS.call(kind=kind, namespace=namespace, name=name))

    def upload(self, path: str, *, provider: str) -> dict:
        """Queue the import of a FOCUS export (CSV or Parquet) for `provider` (platform admins). The file is
        streamed, never read into memory. Returns the import (`status` queued); see `import_status`."""
        from pathlib import Path

        files = {"file": (Path(path).name, Path(path), "application/octet-stream")}  # opened by the transport
        return self._run(COST_IMPORT.call(files=files, data={"provider": provider}))

    def import_status(self, id: int) -> dict:  # noqa: A002
        """An import: `status` (queued, running, done, failed), `error` naming file/row/column, rows, totals."""
        return self._run(COST_IMPORT_GET.call(id=id))
class Incidents(_Resource):
    """Incidents: opened by hand, by an SLO's burn or by Alertmanager; acknowledged, resolved, reopened."""

    def list(self, *, status: str | None = None, severity: str | None = None, team: str | None = None,
             entity: str | None = None, source: str | None = None, page_size: int = 100,
             limit: int | None = None) -> Iterator[dict]:
        """Incidents you may see, newest first. `status`: open, acknowledged, resolved or active (open or
        acknowledged); `severity`: sev1–sev4; `entity`: only those linking this entity reference."""
        params = {"status": status, "severity": severity, "team": team, "entity": entity, "source": source,
                  "limit": page_size}
        return self._c._pages(INCIDENT_LIST.call(params=params), dict, limit=limit)

    def get(self, id: int) -> dict:  # noqa: A002
        """One incident with its timeline and alerts."""
        return self._run(INCIDENT_GET.call(id=id))

    def open(self, title: str, severity: str, *, entities: Iterable[str] = (), team: str | None = None,
             summary: str = "", dedup_key: str = "") -> dict:
        """Open an incident on `entities` (references; the first gives the owning team unless `team`). With
        `dedup_key`, the unresolved incident holding it is answered instead of a second one."""
        body = {"title": title, "severity": severity, "entities": list(entities), "team": team or "",
                "summary": summary, "dedupKey": dedup_key}
        return self._run(INCIDENT_CREATE.call(json=body))

    def set_status(self, id: int, status: str, *, note: str = "") -> dict:  # noqa: A002
        """`acknowledged`, `resolved`, or `open` (reopen a resolved one), with an optional timeline note."""
        return self._run(INCIDENT_STATUS.call(json={"status": status, "note": note}, id=id))

    def acknowledge(self, id: int, *, note: str = "") -> dict:  # noqa: A002
        return self.set_status(id, "acknowledged", note=note)

    def resolve(self, id: int, *, note: str = "") -> dict:  # noqa: A002
        return self.set_status(id, "resolved", note=note)

    def reopen(self, id: int, *, note: str = "") -> dict:  # noqa: A002
        return self.set_status(id, "open", note=note)

    def note(self, id: int, text: str) -> dict:  # noqa: A002
        """Add a note to the incident's timeline."""
        return self._run(INCIDENT_NOTE.call(json={"text": text}, id=id))

    def postmortem(self, id: int, url: str) -> dict:  # noqa: A002
        """Link the postmortem: a docs page of the portal (`/docs/<kind>/<namespace>/<name>/<path>`); "" unlinks."""
        return self._run(INCIDENT_POSTMORTEM.call(json={"url": url}, id=id))


class Validation(_Resource):
    """Descriptor validation on the server (the offline twin is `plinth_sdk.validate`)."""

    def validate(self, *, entity: dict | None = None, yaml: str | None = None) -> models.ValidationResult:
        """Validate one entity (a dict) or YAML text (several documents allowed); stores nothing. An
        invalid descriptor is a result with `valid=False`, not an exception."""
        body = {"yaml": yaml} if yaml is not None else {"entity": entity}
        return self._run(VALIDATE.call(_validation_result, json=body, accept=[400]))


def _validation_result(body: Any) -> models.ValidationResult:
    if isinstance(body, dict) and "error" in body:  # a malformed body: the envelope, not a result
        from .errors import api_error

        raise api_error(400, body, None)
    return models.ValidationResult.from_api(body)


class Search(_Resource):
    """Full-text search over everything indexed (entities, docs pages)."""

    def __call__(self, q: str, **filters: Any) -> Iterator[models.SearchHit]:
        return self.query(q, **filters)

    def query(self, q: str, *, kind: str | Iterable[str] | None = None, type: str | Iterable[str] | None = None,  # noqa: A002
              owner: str | Iterable[str] | None = None, lifecycle: str | Iterable[str] | None = None,
              tag: str | Iterable[str] | None = None, page_size: int = 50,
              limit: int | None = None) -> Iterator[models.SearchHit]:
        """Hits in rank order, page by page. `q` uses the portal's query language
        (`fraud kind:model -deprecated`)."""
        def many(value):
            return [value] if isinstance(value, str) else list(value or [])

        params = {"q": q, "kind": many(kind), "type": many(type), "owner": many(owner),
                  "lifecycle": many(lifecycle), "tag": many(tag), "limit": page_size}
        return self._c._pages(SEARCH.call(params=params), models.SearchHit.from_api, limit=limit)


class Approvals(_Resource):
    """Approval requests and decisions."""

    def list(self, *, state: str | None = None, mine: bool = False, awaiting: bool = False,
             target: str | None = None, page_size: int = 100, limit: int | None = None) -> Iterator[models.ApprovalRequest]:
        """Requests the caller may see, newest first. `awaiting`: those waiting for your decision."""
        params = {"state": state, "mine": "true" if mine else None, "awaiting": "true" if awaiting else None,
                  "target": target, "limit": page_size}
        return self._c._pages(APPROVAL_LIST.call(params=params), models.ApprovalRequest.from_api, limit=limit)

    def get(self, id: int) -> models.ApprovalRequest:  # noqa: A002
        return self._run(APPROVAL_GET.call(models.ApprovalRequest.from_api, id=id))

    def request(self, action: str, target: str, *, params: dict | None = None,
                justification: str = "") -> models.ApprovalRequest:
        """Submit a request, e.g. `request("promote-model-version", "model:default/churn",
        params={"version": "3", "alias": "champion"}, justification="…")`."""
        body = {"action": action, "target": target, "params": params or {}, "justification": justification}
        return self._run(APPROVAL_CREATE.call(models.ApprovalRequest.from_api, json=body))

    def decide(self, id: int, decision: str, *, comment: str = "") -> models.ApprovalRequest:  # noqa: A002
        """`decision`: approve, reject or request-changes (the last two need a comment)."""
        return self._run(APPROVAL_DECIDE.call(models.ApprovalRequest.from_api,
                                              json={"decision": decision, "comment": comment}, id=id))

    def approve(self, id: int, *, comment: str = "") -> models.ApprovalRequest:  # noqa: A002
        return self.decide(id, "approve", comment=comment)

    def reject(self, id: int, *, comment: str) -> models.ApprovalRequest:  # noqa: A002
        return self.decide(id, "reject", comment=comment)

    def request_changes(self, id: int, *, comment: str) -> models.ApprovalRequest:  # noqa: A002
        return self.decide(id, "request-changes", comment=comment)

    def comment(self, id: int, body: str) -> dict:  # noqa: A002
        return self._run(APPROVAL_COMMENT.call(json={"body": body}, id=id))

    def withdraw(self, id: int) -> models.ApprovalRequest:  # noqa: A002
        """Withdraw your own request."""
        return self._run(APPROVAL_WITHDRAW.call(models.ApprovalRequest.from_api, id=id))

    def retry(self, id: int) -> models.ApprovalRequest:  # noqa: A002
        """Run a failed execution again."""
        return self._run(APPROVAL_RETRY.call(models.ApprovalRequest.from_api, id=id))

    def wait(self, id: int, *, until: Iterable[str] = ("executed", "rejected"), timeout: float | None = 600,  # noqa: A002
             interval: float = 1.0,
             on_update: Callable[[models.ApprovalRequest], None] | None = None) -> models.ApprovalRequest:
        """Block until the request reaches one of `until` or any other state from which it cannot move
        on by itself (withdrawn, expired, blocked, changes requested, execution failed); returns it.
        `WaitTimeout` after `timeout` seconds (None: no limit). `on_update` sees every poll."""
        wanted = frozenset(until)
        return self._c._poll(APPROVAL_GET.call(models.ApprovalRequest.from_api, id=id),
                             lambda r: r.state in wanted or r.done, timeout=timeout, interval=interval,
                             on_update=on_update, what=f"approval request #{id}")


class Audit(_Resource):
    """The hash-chained audit trail (platform admins)."""

    def events(self, *, actor: str | None = None, action: str | None = None, target: str | None = None,
               request: int | None = None, since: str | None = None, until: str | None = None,
               page_size: int = 200, limit: int | None = None) -> Iterator[models.AuditEvent]:
        """Events oldest first, page by page. `action` matches a prefix; `request` an approval request."""
        params = {"actor": actor, "action": action, "target": target, "request": request, "since": since,
                  "until": until, "limit": page_size}
        return self._c._pages(AUDIT_LIST.call(params=params), models.AuditEvent.from_api,
                              next_of=lambda body: body.get("nextAfter"), cursor_param="after", limit=limit)


class Templates(_Resource):
    """Scaffolder templates; `run` starts one."""

    def list(self, *, type: str | None = None, owner: str | None = None, page_size: int = 100,  # noqa: A002
             limit: int | None = None) -> Iterator[models.Template]:
        """Templates you can see; `owner` keeps those owned by exactly that ref (`team` is
        `group:default/team`, as on the Create page)."""
        return self._c._pages(TEMPLATE_LIST.call(params={"type": type, "owner": owner, "limit": page_size}),
                              models.Template.from_api, limit=limit)

    def get(self, name: str) -> models.Template:
        """A template by name or reference (`ml-model-service`, `template:default/ml-model-service`).
        The API lists templates only, so this walks the list, 200 a page, until it is found."""
        kind, namespace, short = parse_ref(name, default_kind="template")
        wanted = f"{kind}:{namespace}/{short}"
        return self._c._find(TEMPLATE_LIST.call(params={"limit": 200}), models.Template.from_api,
                             lambda template: template.ref == wanted, missing=f"No template {wanted}.")

    def run(self, name: str, values: Mapping[str, Any] | None = None, *, dry_run: bool = False, wait: bool = False,
            timeout: float | None = 900, interval: float = 1.0,
            on_log: Callable[[models.LogEntry], None] | None = None) -> models.Run:
        """Start a run of a template with the form's `values`. `wait=True` blocks until it succeeds,
        fails or is cancelled (returns the finished run; check `run.succeeded`), calling `on_log` with each new log line."""
        kind, namespace, short = parse_ref(name, default_kind="template")
        body = {"templateRef": f"{kind}:{namespace}/{short}", "values": dict(values or {}), "dryRun": dry_run}
        started = self._run(RUN_CREATE.call(models.Run.from_api, json=body))
        if not wait:
            return started
        runs = Runs(self._c)
        return self._c._then(started, lambda run: runs.wait(run.id, timeout=timeout, interval=interval, on_log=on_log))


class Runs(_Resource):
    """Scaffolder runs."""

    def get(self, id: str) -> models.Run:  # noqa: A002
        """A run with its steps and log (the first 2,000 lines: `raw["logTruncated"]` says when there are more)."""
        return self._run(RUN_GET.call(models.Run.from_api, uid=id))

    def retry(self, id: str) -> models.Run:  # noqa: A002
        """Queue a failed run again (`ConflictError` when it has not failed)."""
        return self._run(RUN_RETRY.call(models.Run.from_api, uid=id))

    def cancel(self, id: str) -> models.Run:  # noqa: A002
        """Cancel a queued run (it never starts) or a running one (it stops before its next step; `wait` for
        status "cancelled"). `ConflictError` when it has already finished."""
        return self._run(RUN_CANCEL.call(models.Run.from_api, uid=id))

    def wait(self, id: str, *, timeout: float | None = 900, interval: float = 1.0,  # noqa: A002
             on_log: Callable[[models.LogEntry], None] | None = None) -> models.Run:
        """Block until the run has succeeded, failed or been cancelled, streaming new log lines to `on_log`."""
        seen = [0]

        def update(run: models.Run) -> None:
            if on_log is not None:
                for entry in run.log[seen[0]:]:
                    on_log(entry)
            seen[0] = max(seen[0], len(run.log))

        return self._c._poll(RUN_GET.call(models.Run.from_api, uid=id), lambda r: r.done, timeout=timeout,
                             interval=interval, on_update=update, what=f"run {id}")


class Docs(_Resource):
    """TechDocs sites, pages, API definitions and model cards."""

    def sites(self, *, page_size: int = 100, limit: int | None = None) -> Iterator[models.DocsSite]:
        return self._c._pages(DOCS_SITES.call(params={"limit": page_size}), models.DocsSite.from_api, limit=limit)

    def site(self, ref: str) -> models.DocsSite:
        kind, namespace, name = parse_ref(ref, default_kind="component")
        return self._run(DOCS_SITE.call(models.DocsSite.from_api, kind=kind, namespace=namespace, name=name))

    def page(self, ref: str, path: str = "") -> models.DocsPage:
        """One built page (sanitised HTML); `path` '' is the index."""
        kind, namespace, name = parse_ref(ref, default_kind="component")
        return self._run(DOCS_PAGE.call(models.DocsPage.from_api, params={"path": path}, kind=kind,
                                        namespace=namespace, name=name))

    def build(self, ref: str) -> dict:
        """Queue a rebuild of an entity's docs."""
        kind, namespace, name = parse_ref(ref, default_kind="component")
        return self._run(DOCS_BUILD.call(kind=kind, namespace=namespace, name=name))

    def definition(self, ref: str) -> dict:
        """An API entity's definition (OpenAPI, AsyncAPI, …), sanitised, as JSON."""
        kind, namespace, name = parse_ref(ref, default_kind="api")
        return self._run(DOCS_DEFINITION.call(kind=kind, namespace=namespace, name=name))

    def model_card(self, ref: str) -> dict:
        """A model's card: facts from the catalog and MLflow."""
        _kind, namespace, name = parse_ref(ref, default_kind="model")
        return self._run(DOCS_MODEL_CARD.call(namespace=namespace, name=name))

    def url(self, ref: str) -> str:
        """The browser address of an entity's docs (no request)."""
        kind, namespace, name = parse_ref(ref, default_kind="component")
        return f"{self._c.url}/docs/{kind}/{namespace}/{name}/"


class Feedback(_Resource):
    """Feedback loops: "Was this useful?" answers, ideas for the portal, the owning team's status and answer,
    votes and the roadmap."""

    def list(self, *, status: str | None = None, kind: str | None = None, mine: bool = False,
             team: str | None = None, page_size: int = 100, limit: int | None = None) -> Iterator[models.FeedbackItem]:
        """Items the caller may see, newest first (`mine`: your own; `team`: owned by that team)."""
        params = {"status": status, "kind": kind, "mine": "true" if mine else None, "team": team, "limit": page_size}
        return self._c._pages(FEEDBACK_LIST.call(params=params), models.FeedbackItem.from_api, limit=limit)

    def get(self, id: int) -> models.FeedbackItem:  # noqa: A002
        return self._run(FEEDBACK_GET.call(models.FeedbackItem.from_api, id=id))

    def useful(self, kind: str, target: str, useful: bool, *, path: str = "", comment: str = "") -> models.FeedbackItem:
        """Answer "Was this useful?" about an entity (`kind="entity"`, `target` its reference), a docs page
        (`"docs"`, the entity's reference and the page's `path`) or a template run (`"template"`, the run's
        id). Answering again changes your answer."""
        body = {"kind": kind, "target": target, "path": path, "useful": useful, "comment": comment}
        return self._run(FEEDBACK_CREATE.call(models.FeedbackItem.from_api, json=body))

    def idea(self, title: str, comment: str = "", *, client_key: str = "") -> models.FeedbackItem:
        """Feedback about the portal itself, for the platform team (`client_key`: sent twice, stored once)."""
        body = {"kind": "platform", "title": title, "comment": comment, "clientKey": client_key}
        return self._run(FEEDBACK_CREATE.call(models.FeedbackItem.from_api, json=body))

    def set_status(self, id: int, status: str, *, answer: str | None = None) -> models.FeedbackItem:  # noqa: A002
        """As a maintainer or admin of the owning team: open, planned, done or declined, with an answer the
        author sees (`answer=None` keeps the current one)."""
        return self._run(FEEDBACK_STATUS.call(models.FeedbackItem.from_api, json={"status": status, "answer": answer},
                                              id=id))

    def vote(self, id: int, voted: bool | None = None) -> bool:  # noqa: A002
        """Vote (True), withdraw (False) or toggle (None); returns whether you now vote for it."""
        return self._run(FEEDBACK_VOTE.call(lambda body: bool(body["voted"]), json={"voted": voted}, id=id))

    def roadmap(self, *, status: str | None = None, kind: str | None = None) -> list[models.RoadmapEntry]:
        """Open and planned requests, ranked by votes and the asking teams' active users."""
        return self._run(ROADMAP.call(lambda body: [models.RoadmapEntry.from_api(r) for r in body.get("items") or []],
                                      params={"status": status, "kind": kind}))


class Deployments(_Resource):
    """Where model versions serve: CD pipelines report deployments."""

    def report(self, model: str, version: str | int, environment: str, status: str, *, platform: str,
               endpoint: str | None = None, time: str | None = None, served_by: str | None = None,
               idempotency_key: str | None = None) -> models.DeploymentEvent:
        """Report that `version` of `model` is `status` (deploying, live, failed, retired) in `environment`,
        e.g. `report("model:default/churn", 3, "prod", "live", platform="kserve", endpoint="https://…")`.
        `time`: ISO 8601 with offset (default: now). `idempotency_key`: a retry with the same key and event
        answers the stored event (`replayed`); with another event, `ConflictError`."""
        body = {"model": model if ":" in model else f"model:{model}", "version": str(version),
                "environment": environment, "status": status, "platform": platform, "endpoint": endpoint,
                "time": time, "servedBy": served_by, "idempotencyKey": idempotency_key}
        return self._run(DEPLOYMENT_EVENT.call(models.DeploymentEvent.from_api,
                                               json={k: v for k, v in body.items() if v is not None}))
