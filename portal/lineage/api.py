"""The lineage API: `POST /api/v1/lineage` takes OpenLineage events as Marquez does; `GET /api/v1/lineage`
(the graph, Marquez's shape), `GET /api/v1/lineage/columns` and `GET /api/v1/lineage/impact` read the
unified graph (`portal.lineage.graph`); `GET /api/v1/lineage/runs` lists one job's runs."""

from __future__ import annotations

from django.db.models import Q
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view, parser_classes
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.parsers import BaseParser
from rest_framework.response import Response

from portal.core import pagination
from portal.core.api import error_responses
from portal.core.limits import body_limit

from . import events, graph, selectors, services
from . import spec as spec_module
from .api_schema import (
    GRAPH_EXAMPLE,
    LineageColumnGraphSerializer,
    LineageGraphSerializer,
    LineageImpactSerializer,
    LineageRunsSerializer,
)
from .conf import max_body_bytes


class RawJSONParser(BaseParser):
    """The body is read as bytes by the view: its nesting is counted before any parser recurses."""

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        return None


class IngestSerializer(serializers.Serializer):
    received = serializers.IntegerField(help_text="Events in the request.")
    stored = serializers.IntegerField(help_text="Events stored now.")
    duplicates = serializers.IntegerField(help_text="Events stored before (same runId, eventType, eventTime).")
    runs = serializers.ListField(child=serializers.CharField(), help_text="The runIds the events touched.")


EXAMPLE = {"eventType": "START", "eventTime": "2026-12-01T10:00:00Z",
           "producer": "https://github.com/OpenLineage/OpenLineage/tree/1.54.0/client/python",
           "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
           "run": {"runId": "0193a5a4-8b7e-7c1e-9a37-5f7a1d2c3b4a"},
           "job": {"namespace": "airflow", "name": "etl.orders_daily"},
           "inputs": [{"namespace": "postgres://db.internal:5432", "name": "shop.public.orders"}],
           "outputs": [{"namespace": "s3://lake", "name": "marts/orders_daily"}]}


@extend_schema(
    methods=["GET"],
    operation_id="lineage_graph",
    summary="The lineage graph around a node",
    description=(
        "Marquez's lineage shape (`{\"graph\": [{\"id\", \"type\", \"data\", \"inEdges\", \"outEdges\"}]}`) "
        "over one graph joining OpenLineage datasets and jobs, catalog entities and their lineage relations "
        "(a model `trainedOn` a dataset, a pipeline's inputs and outputs, `dependsOn`, …), MLflow runs and model "
        "versions, and deployments with the service that serves them. `depth` counts edges from the node; "
        "cycles end. Nodes you may not see are left out — with their edges, and the walk does not pass "
        "through them — and counted in `hidden`. An unknown node and one you may not see both answer 404. "
        "`truncated` is true when a very busy neighbourhood was cut at the row cap."),
    parameters=[
        OpenApiParameter("nodeId", str, required=True, description=(
            "`dataset:<namespace>:<name>`, `job:<namespace>:<name>`, `entity:<kind>:<namespace>:<name>`, "
            "`run:<MLflow run id>` or `version:<kind>:<namespace>:<name>:<version>`.")),
        OpenApiParameter("depth", {"type": "integer", "minimum": 0, "maximum": graph.MAX_DEPTH},
                         description=f"Edges to follow from the node, 0–{graph.MAX_DEPTH} (default 2)."),
        OpenApiParameter("direction", str, enum=list(graph.DIRECTIONS),
                         description="upstream, downstream or both (default)."),
    ],
    responses={200: OpenApiResponse(LineageGraphSerializer, description="The graph.",
                                    examples=[OpenApiExample("Around a dataset", value=GRAPH_EXAMPLE)]),
               **error_responses(404)},
)
@extend_schema(
    methods=["POST"],
    operation_id="lineage_create",
    summary="Send OpenLineage events",
    description=(
        "One OpenLineage event (RunEvent, DatasetEvent or JobEvent, spec 2-0-x) or a JSON array of them, "
        "checked against the OpenLineage JSON Schema and its standard facets. A batch is atomic: one bad "
        "event refuses the whole batch (400 naming `[index].field`) and nothing is stored. Events are "
        "idempotent by (runId, eventType, eventTime): a resend is counted in `duplicates`. Credentials in "
        "URLs (`postgres://user:secret@host`) are stripped before anything is stored. Needs the member role "
        "(or higher) in a team. 409 when a runId already names a run of another job (a runId is one run of "
        "one job). 503 when the server has no OpenLineage spec to check against."),
    request=OpenApiTypes.OBJECT,
    responses={201: OpenApiResponse(IngestSerializer, description="Stored (or already stored)."),
               **error_responses(403, 409, 503)},
    examples=[OpenApiExample("A START event", request_only=True, value=EXAMPLE)],
)
@body_limit(max_body_bytes)
@api_view(["GET", "HEAD", "POST"])
@parser_classes([RawJSONParser])
def lineage_create(request):
    if request.method in ("GET", "HEAD"):
        return _graph(request)
    try:
        spec = spec_module.load()
    except spec_module.SpecMissing as exc:
        return Response({"error": {"status": 503, "message": str(exc)}}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
    with events.collector_paused():  # see its docstring: a quarter of the ingest's time
        try:
            items, batch, facts = events.parse_body(request._request.body)
            checked = []
            for index, item in enumerate(items):
                try:
                    checked.append(events.check(item, spec, facts))
                except events.EventInvalid as exc:
                    raise exc.at(f"[{index}]") if batch else exc from None
        except events.EventInvalid as exc:
            message = str(exc)
            if batch_index := _index(exc.path):
                message += f" (event {batch_index} of the batch; nothing of the batch was stored)"
            return Response({"error": {"status": 400, "message": message,
                                       "details": {exc.path or "body": [exc.message]}}},
                            status=status.HTTP_400_BAD_REQUEST)
        try:
            result = services.lineage_ingest(events=checked, actor=request.user)
        except services.RunJobConflict as exc:
            path = f"[{exc.index}].run.runId" if batch else "run.runId"
            message = f"{path}: {exc}"
            if batch:
                message += f" (event {exc.index} of the batch; nothing of the batch was stored)"
            return Response({"error": {"status": 409, "message": message, "details": {path: [str(exc)]}}},
                            status=status.HTTP_409_CONFLICT)
    return Response(result.as_dict(), status=status.HTTP_201_CREATED)


def _index(path: str) -> str | None:
    if path.startswith("["):
        return path[1:path.index("]")]
    return None


# -- reading the graph -------------------------------------------------------------------------------


def _query(request, name: str) -> str | None:
    values = request.query_params.getlist(name)
    if len(values) > 1:
        raise ValidationError({name: ["give it once"]})
    return values[0] if values else None


def _checked(name: str, check, *args, **kwargs):
    try:
        return check(*args, **kwargs)
    except ValueError as exc:
        raise ValidationError({name: [str(exc)]}) from None


def _node_id(request) -> str:
    value = _query(request, "nodeId")
    if value is None or value == "":
        raise ValidationError({"nodeId": ["is required"]})
    try:
        graph.parse_node_id(value)
    except graph.NodeIdInvalid as exc:
        raise ValidationError({"nodeId": [str(exc).removeprefix("nodeId: ")]}) from None
    return value


def _not_found() -> NotFound:
    # The same body for a missing node and one the reader may not see.
    return NotFound("No such node.")


def _read(query, *args, **kwargs):
    """One graph read: a node id the graph refuses is a 400 naming `nodeId`, a missing or invisible
    node the same 404."""
    try:
        result = query(*args, **kwargs)
    except graph.NodeIdInvalid as exc:
        raise ValidationError({"nodeId": [str(exc).removeprefix("nodeId: ")]}) from None
    except graph.NodeNotFound:
        raise _not_found() from None
    return result


def _graph(request):
    node_id = _node_id(request)
    depth = _checked("depth", graph.check_depth, _query(request, "depth"))
    direction = _checked("direction", graph.check_direction, _query(request, "direction"))
    return Response(_read(graph.lineage, node_id, user=request.user, depth=depth, direction=direction).as_marquez())


@extend_schema(
    operation_id="lineage_columns",
    summary="Column-level lineage of a dataset",
    description=(
        "The graph of dataset fields drawn from OpenLineage `columnLineage` facets, from one column (or every "
        "column of the dataset that has column lineage), `depth` hops upstream, downstream or both. Each "
        "field's `data.transformations` lists what fed it (`from`, type, subtype, masking). Fields of datasets "
        "you may not see are left out and counted in `hidden`."),
    parameters=[
        OpenApiParameter("nodeId", str, required=True, description="`dataset:<namespace>:<name>`."),
        OpenApiParameter("column", str, description="A field name (default: every field with column lineage)."),
        OpenApiParameter("depth", {"type": "integer", "minimum": 0, "maximum": graph.MAX_DEPTH},
                         description="Hops, 0–20 (default 5)."),
        OpenApiParameter("direction", str, enum=list(graph.DIRECTIONS), description="Default both."),
    ],
    responses={200: OpenApiResponse(LineageColumnGraphSerializer, description="The field graph.", examples=[
        OpenApiExample("One column", value={"root": "dataset:s3://lake:marts/orders_daily", "hidden": 0, "graph": [
            {"id": "datasetField:s3://lake:marts/orders_daily:amount", "type": "DATASET_FIELD",
             "data": {"namespace": "s3://lake", "name": "marts/orders_daily", "field": "amount",
                      "fieldType": "numeric", "dataset": "dataset:s3://lake:marts/orders_daily", "ref": None,
                      "url": None, "team": None, "transformations": [
                          {"from": "datasetField:postgres://db.internal:5432:shop.public.orders:amount",
                           "type": "DIRECT", "subtype": "IDENTITY"}]},
             "inEdges": [{"origin": "datasetField:postgres://db.internal:5432:shop.public.orders:amount",
                          "destination": "datasetField:s3://lake:marts/orders_daily:amount"}], "outEdges": []}]})]),
               **error_responses(404)},
)
@api_view(["GET", "HEAD"])
def lineage_columns(request):
    node_id = _node_id(request)
    column = _query(request, "column")
    depth = _checked("depth", graph.check_depth, _query(request, "depth"), default=5)
    direction = _checked("direction", graph.check_direction, _query(request, "direction"))
    if column is not None:
        _checked("column", graph.check_column, column)
    return Response(_read(graph.columns, node_id, user=request.user, column=column, depth=depth,
                          direction=direction).as_marquez())


@extend_schema(
    operation_id="lineage_impact",
    summary="Impact analysis: what depends on a node",
    description=(
        "Everything downstream of the node within `depth` hops (default 10), grouped by kind and owning team. "
        "Production models (lifecycle `production`) and live deployments are `critical` and come first, in "
        "`critical` and in the groups' order. Nodes you may not see are counted in `hidden` and not passed "
        "through."),
    parameters=[
        OpenApiParameter("nodeId", str, required=True, description="Any node id (see `GET /api/v1/lineage`)."),
        OpenApiParameter("depth", {"type": "integer", "minimum": 0, "maximum": graph.MAX_DEPTH},
                         description="Hops downstream, 0–20 (default 10)."),
    ],
    responses={200: OpenApiResponse(LineageImpactSerializer, description="What depends on the node.", examples=[
        OpenApiExample("A training dataset", value={
            "root": "entity:dataset:default:transactions", "total": 2, "hidden": 0, "depth": 10, "truncated": False,
            "critical": [{"id": "entity:model:default:fraud-detector", "type": "ENTITY", "kind": "model",
                          "name": "fraud-detector", "title": "Fraud detector", "ref": "model:default/fraud-detector",
                          "url": "/catalog/model/default/fraud-detector/", "team": "fraud-ml",
                          "lifecycle": "production", "distance": 1, "critical": True, "reason": "production model"}],
            "groups": [{"kind": "model", "team": "fraud-ml", "critical": True, "items": [
                {"id": "entity:model:default:fraud-detector", "type": "ENTITY", "kind": "model",
                 "name": "fraud-detector", "title": "Fraud detector", "ref": "model:default/fraud-detector",
                 "url": "/catalog/model/default/fraud-detector/", "team": "fraud-ml", "lifecycle": "production",
                 "distance": 1, "critical": True, "reason": "production model"}]}]})]),
               **error_responses(404)},
)
@api_view(["GET", "HEAD"])
def lineage_impact(request):
    node_id = _node_id(request)
    hops = _checked("depth", graph.check_depth, _query(request, "depth"), default=10)
    return Response(_read(graph.impact, node_id, user=request.user, hops=hops).as_dict())


# -- one job's runs ----------------------------------------------------------------------------------

RUNS_LIMIT = 500


def _start_or_none(value):
    return None if value is None else pagination.timestamp(value)


def _run_json(run) -> dict:
    return {"runId": str(run.run_id), "state": run.state,
            "startedAt": run.started_at.isoformat() if run.started_at else None,
            "endedAt": run.ended_at.isoformat() if run.ended_at else None,
            "durationSeconds": run.duration_seconds, "errorMessage": run.error_message or None,
            "parentRunId": str(run.parent_run_id) if run.parent_run_id else None}


@extend_schema(
    operation_id="lineage_runs",
    summary="Every run of a lineage job",
    description=(
        "The runs of one OpenLineage job, newest first (by start; runs without a recorded start — their START "
        "never arrived — after those with one), a cursor page at a time, with `totalItems`. The entity page's "
        "runs panel shows the last ten; this lists them all (runs past the retention are deleted, each job "
        "keeping its latest). An unknown job and one you may not see both answer 404 `No such node.`; a "
        "`nodeId` that is not a job id is a 400."),
    parameters=[
        OpenApiParameter("nodeId", str, required=True, description="`job:<namespace>:<name>`."),
        OpenApiParameter("limit", {"type": "integer", "minimum": 1, "maximum": RUNS_LIMIT},
                         description=f"Runs per page, 1–{RUNS_LIMIT} (default 100)."),
        OpenApiParameter("cursor", str, description="`pageInfo.nextCursor` of the previous page."),
    ],
    responses={200: OpenApiResponse(LineageRunsSerializer, description="One page of the job's runs.", examples=[
        OpenApiExample("A daily job", value={
            "job": "job:airflow:etl.orders_daily", "totalItems": 214, "pageInfo": {"nextCursor": "eyJ0Ij…"},
            "items": [{"runId": "0193a5a4-8b7e-7c1e-9a37-5f7a1d2c3b4a", "state": "COMPLETE",
                       "startedAt": "2026-12-01T10:00:00+00:00", "endedAt": "2026-12-01T10:04:30+00:00",
                       "durationSeconds": 270.0, "errorMessage": None, "parentRunId": None}]})]),
               **error_responses(404)},
)
@api_view(["GET", "HEAD"])
def lineage_runs(request):
    node_id = _node_id(request)
    parsed = graph.parse_node_id(node_id)  # checked by _node_id
    if parsed.type != "job":
        raise ValidationError({"nodeId": ["runs are listed for a job: give job:<namespace>:<name>"]})
    limit = pagination.page_size(request.query_params, default=100, maximum=RUNS_LIMIT)
    cursor = _query(request, "cursor")
    job = selectors.visible_job_by_candidates(request.user, parsed.candidates)
    if job is None:
        raise _not_found()
    runs = selectors.runs_of_job(job)
    total = runs.count()
    if cursor:
        after = pagination.decode_cursor(cursor, {"t": _start_or_none, "id": pagination.integer})
        if after["t"] is None:
            runs = runs.filter(started_at__isnull=True, pk__lt=after["id"])
        else:
            runs = runs.filter(Q(started_at__lt=after["t"]) | Q(started_at=after["t"], pk__lt=after["id"])
                               | Q(started_at__isnull=True))
    rows = list(runs[:limit + 1])
    more, rows = len(rows) > limit, rows[:limit]
    next_cursor = pagination.encode_cursor({"t": rows[-1].started_at, "id": rows[-1].pk}) if more else None
    return Response({"job": job.node_id, "items": [_run_json(r) for r in rows], "totalItems": total,
                     "pageInfo": {"nextCursor": next_cursor}})
