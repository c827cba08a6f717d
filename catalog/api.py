"""Catalog REST API (Backstage-shaped): entities, by-name, relations, facets, locations, validation."""

from __future__ import annotations

import json

from django.conf import settings
from django.db.models import Exists, OuterRef, Prefetch, Q
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
)
from rest_framework import negotiation, renderers, serializers, status
from rest_framework.decorators import (
    api_view,
    authentication_classes,
    content_negotiation_class,
    permission_classes,
    renderer_classes,
    throttle_classes,
)
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.settings import api_settings

from portal.core import pagination, throttling
from portal.core.api import ErrorSerializer, conflict, declare_links, error_responses, openapi_link
from portal.core.limits import FORM, body_limit, upload_limit, validate_limit
from portal.core.numbers import digits

from . import api_schema, experiments, export, mlflow_webhooks, selectors, services
from .descriptors.errors import DescriptorError
from .descriptors.loader import Document, Limits, load_documents, within_limits
from .descriptors.validate import storable_errors, validate_entity
from .filters import EntityFilter, TooManyValues, normalized
from .models import Entity, EntityTag, Location, ProcessingError

MAX_LIMIT = 500
FILTER_FIELDS = {
    "kind": "kind_key", "metadata.name": "name_key", "metadata.namespace": "namespace",
    "spec.type": "spec_type", "spec.lifecycle": "lifecycle", "spec.owner": "owner_ref",
    "spec.system": "system_ref", "metadata.tags": "tag",
}
API_ORDERS = {"metadata.name": ("name_key", "id"), "-metadata.name": ("-name_key", "-id"),
              "updated": ("updated_at", "id"), "-updated": ("-updated_at", "-id")}
ORDER_KEY = {"metadata.name": "name_key", "-metadata.name": "name_key", "updated": "updated_at", "-updated": "updated_at"}


# -- serialisation ------------------------------------------------------------------------------
def envelope(entity: Entity, relations: list[dict] | None = None, url: str | None = None) -> dict:
    return export.body(entity.data, uid=entity.uid, content_hash=entity.content_hash, orphan=entity.orphan,
                       error_count=entity.error_count, visibility=entity.visibility,
                       url=url or entity.get_absolute_url(), relations=relations)


project = export.project


def relations_for(user, entities: list[Entity]) -> dict[str, list[dict]]:
    """Each entity's relations as the API shows them: only targets the user may see."""
    return {source: [{"type": rtype, "targetRef": target} for rtype, target in rels]
            for source, rels in selectors.visible_relations(user, [e.ref for e in entities]).items()}


# -- filters ------------------------------------------------------------------------------------
MAX_FILTER_CLAUSES = 20


def backstage_filter(params) -> Q:
    """`filter=kind=model,spec.type=classifier` (AND within one, OR between several)."""
    clauses = [c for c in params.getlist("filter") if c.replace(",", "").strip()]  # `filter=`: no filter
    if not clauses:
        return Q()
    if len(clauses) > MAX_FILTER_CLAUSES:
        raise ValidationError({"filter": f"At most {MAX_FILTER_CLAUSES} filter parameters (got {len(clauses)})."})
    combined = Q(pk__in=[])
    for clause in clauses:
        q = Q()
        for part in clause.split(","):
            if not part.strip():
                continue
            key, sep, value = part.partition("=")
            key, value = key.strip(), value.strip().lower()
            if key not in FILTER_FIELDS:
                raise ValidationError({"filter": f"Unknown filter field '{key[:60]}'. Known: {', '.join(FILTER_FIELDS)}."})
            if sep and not value:
                raise ValidationError({"filter": f"'{key[:60]}=' has no value: write '{key[:60]}=<value>', or "
                                                 f"'{key[:60]}' alone for entities that have the field."})
            column = FILTER_FIELDS[key]
            if not sep:  # "key" alone means: the field exists
                q &= Q(tag_rows__isnull=False) if column == "tag" else ~Q(**{column: ""})
            elif column == "tag":
                q &= Q(Exists(EntityTag.objects.filter(entity=OuterRef("pk"), tag=value)))
            elif column == "owner_ref" and ":" not in value:
                q &= Q(owner_ref=f"group:{value}" if "/" in value else f"group:default/{value}")
            else:
                q &= Q(**{column: value})
        combined |= q
    return combined


SIMPLE_FILTER_KEYS = {"kind": "kind", "spec.type": "type", "spec.lifecycle": "lifecycle", "spec.owner": "owner",
                      "metadata.namespace": "namespace", "metadata.tags": "tag"}


def list_params(request):
    """The request's parameters as the list and its counts both read them (`filters.normalized`)."""
    try:
        return normalized(request.query_params)
    except TooManyValues as exc:
        raise ValidationError({exc.key: str(exc)}) from exc


def count_params(params):
    """The filters (`list_params`) as list-page parameters, so counts can come from the facet cube.

    A single `filter` clause of simple `key=value` parts translates; None when it does not (OR-ed
    clauses, other fields): then the counts are live."""
    params = params.copy()
    clauses = [c for c in params.pop("filter", []) if c.replace(",", "").strip()]
    if len(clauses) > 1:
        return None
    for clause in clauses:
        for part in clause.split(","):
            if not part.strip():
                continue
            key, sep, value = part.partition("=")
            name = SIMPLE_FILTER_KEYS.get(key.strip())
            if not sep or name is None or name in params:
                return None
            params[name] = value.strip()
    return params


def filtered(request, params):
    qs = selectors.entity_list(request.user).filter(backstage_filter(params))
    fs = EntityFilter(params, queryset=qs, request=request)
    if not fs.is_valid():
        raise ValidationError(fs.errors)
    return fs.qs


def _int_param(request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ValidationError({name: f"'{raw[:20]}' is not an integer."}) from exc
    if not lo <= value <= hi:
        raise ValidationError({name: f"Must be between {lo} and {hi}."})
    return value


def _decode_cursor(raw: str, order: str) -> dict:
    key = pagination.timestamp if ORDER_KEY[order] == "updated_at" else pagination.text
    return pagination.decode_cursor(raw, {"o": pagination.constant(order), "k": key, "id": pagination.integer})


def _encode_cursor(entity: Entity, order: str) -> str:
    return pagination.encode_cursor({"o": order, "k": getattr(entity, ORDER_KEY[order]), "id": entity.pk})


# -- endpoints ----------------------------------------------------------------------------------
ENTITY_LIST_PARAMS = [
    OpenApiParameter("filter", str, many=True, description="Backstage filter, e.g. `kind=model,spec.type=classifier`. "
                     "Fields: " + ", ".join(FILTER_FIELDS) + ". Several `filter` params are OR-ed."),
    OpenApiParameter("fields", str, description="Comma-separated dotted paths to return, e.g. `kind,metadata.name`."),
    OpenApiParameter("order", str, enum=list(API_ORDERS), description="Sort order (default `metadata.name`)."),
    OpenApiParameter("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                     description=f"Page size, 1–{MAX_LIMIT} (default 50)."),
    OpenApiParameter("cursor", str, description="`pageInfo.nextCursor` of the previous page."),
    OpenApiParameter("kind", str), OpenApiParameter("owner", str), OpenApiParameter("tag", str),
    OpenApiParameter("lifecycle", str), OpenApiParameter("type", str), OpenApiParameter("q", str),
]


@extend_schema(
    summary="List entities",
    description="Entities the caller may see, filtered, projected and cursor-paginated. `totalItems` counts all matches.",
    parameters=ENTITY_LIST_PARAMS,
    responses={200: api_schema.EntityPageSerializer, **error_responses()},
    examples=[OpenApiExample("Page", value={"items": [{"apiVersion": "plinth.dev/v1alpha1", "kind": "Model",
                             "metadata": {"name": "fraud-detector"}}], "totalItems": 1, "pageInfo": {"nextCursor": None}},
                             response_only=True)],
)
@api_view(["GET", "HEAD"])
def entity_list(request):
    order = request.query_params.get("order", "metadata.name")
    if order not in API_ORDERS:
        raise ValidationError({"order": f"Unknown order '{order[:40]}'. Use one of: {', '.join(API_ORDERS)}."})
    limit = pagination.page_size(request.query_params, default=50, maximum=MAX_LIMIT)
    fields = [f.strip() for f in request.query_params.get("fields", "").split(",") if f.strip()][:50]
    params = list_params(request)
    qs = filtered(request, params)
    total, _, capped, _sampled = selectors.list_counts(request.user, count_params(params), qs, [])
    raw_cursor = request.query_params.get("cursor")
    if raw_cursor:
        cursor = _decode_cursor(raw_cursor, order)
        column = ORDER_KEY[order]
        cmp = "lt" if order.startswith("-") else "gt"
        qs = qs.filter(Q(**{f"{column}__{cmp}": cursor["k"]}) | Q(**{column: cursor["k"], f"id__{cmp}": cursor["id"]}))
    # The order's column too: the next page's cursor reads it (else one more query per page).
    # An exact count of nothing needs no page: a filter matching nothing would otherwise walk the
    # whole index of its first column looking for a row (~1 s at 250,000 entities on SQLite).
    page = [] if total == 0 and not capped else list(qs.order_by(*API_ORDERS[order]).only(
        *selectors.LIST_COLUMNS, "uid", "data", "content_hash", ORDER_KEY[order])[: limit + 1])
    has_more = len(page) > limit
    page = page[:limit]
    rels = relations_for(request.user, page) if not fields or any(f.startswith("relations") for f in fields) else {}
    urls = export.EntityUrls()  # one `reverse` per kind and namespace, not per row
    items = [project(envelope(e, rels.get(e.ref), urls(e.kind_key, e.namespace, e.name)), fields) for e in page]
    body = {"items": items, "totalItems": total,
            "pageInfo": {"nextCursor": _encode_cursor(page[-1], order) if has_more and page else None}}
    if capped:
        body["totalIsLowerBound"] = True  # counting stops at selectors.LIVE_COUNT_CAP for complex filters
    return Response(body)


class NDJSONRenderer(renderers.BaseRenderer):
    """Lets a client ask for `Accept: application/x-ndjson`. The stream itself is written by
    `entity_export`; what this renders is an error envelope, as one line."""

    media_type = export.MEDIA_TYPE
    format = "ndjson"
    charset = None

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return (json.dumps(data) + "\n").encode()


class _WithoutFormatOverride:
    """DRF's settings with `?format=` switched off: the stream has one format, asked for by `Accept`."""

    URL_FORMAT_OVERRIDE = None

    def __getattr__(self, name):
        return getattr(api_settings, name)


class StreamNegotiation(negotiation.DefaultContentNegotiation):
    settings = _WithoutFormatOverride()


class ExportLineSerializer(serializers.Serializer):
    """One line of the stream: an entity (as `Entity`, projected by `fields`) or a checkpoint."""

    nextCursor = serializers.CharField(required=False, allow_null=True, help_text=(
        "Checkpoints and the last line: pass as `cursor` to resume after every line before it; null on the "
        "last line when the stream is complete."))
    count = serializers.IntegerField(required=False, help_text="Last line only: the entity lines of this response.")


@extend_schema(
    summary="Stream every matching entity (NDJSON)",
    description=(
        "Every entity the caller may see that matches, as newline-delimited JSON (`application/x-ndjson`), "
        "for clients that want all of them: no counts, no pages, walked in id order (the order they were "
        "first stored) in server-side chunks. Each entity line is an item as `GET /api/v1/entities` answers it "
        "(the same `filter`, simple filters and `fields`). After each chunk a checkpoint line "
        "`{\"nextCursor\": \"…\"}`; pass it as `cursor` to resume after a dropped connection. The last line is "
        "`{\"nextCursor\": null, \"count\": n}`: a stream without it was cut off. A response that has run "
        "for 20 s ends with `{\"nextCursor\": \"…\", \"count\": n}` instead: continue with that cursor. Bad parameters answer 400 "
        "(JSON) before the stream starts."
    ),
    parameters=[p for p in ENTITY_LIST_PARAMS if p.name not in {"order", "limit", "cursor"}] + [
        OpenApiParameter("namespace", str),
        OpenApiParameter("cursor", str, description="A checkpoint's `nextCursor` (resume after it)."),
        OpenApiParameter("format", exclude=True),  # no `?format=`: `StreamNegotiation`
    ],
    responses={(200, export.MEDIA_TYPE): OpenApiResponse(ExportLineSerializer, description=(
        "One JSON document per line: entities (see `Entity`), checkpoints, and the final line.")),
        **error_responses()},
)
@api_view(["GET", "HEAD"])
@renderer_classes([*api_settings.DEFAULT_RENDERER_CLASSES, NDJSONRenderer])
@content_negotiation_class(StreamNegotiation)
def entity_export(request):
    fields = [f.strip() for f in request.query_params.get("fields", "").split(",") if f.strip()][:50]
    after = export.decode_cursor(request.query_params["cursor"]) if request.query_params.get("cursor") else 0
    qs = filtered(request, list_params(request))  # validated here, so a bad parameter is a 400 before the stream starts
    response = StreamingHttpResponse(export.lines(request.user, qs, after=after, fields=fields),
                                     content_type=export.MEDIA_TYPE)
    response["Cache-Control"] = "no-store"
    response["X-Accel-Buffering"] = "no"  # a proxy passes chunks on as they come
    return response


def _entity(request, kind, namespace, name) -> Entity:
    entity = selectors.entity_by_name(request.user, kind, namespace, name)
    if entity is None:
        raise NotFound(f"No entity {kind}:{namespace}/{name}.")
    return entity


@extend_schema(methods=["GET"], summary="Get an entity by name", operation_id="v1_entities_by_name_retrieve",
               description="404 when it does not exist or the caller may not see it.",
               responses={200: api_schema.EntitySerializer, **error_responses(404)})
@extend_schema(methods=["DELETE"], summary="Delete an orphan", operation_id="v1_entities_by_name_destroy",
               description="Deletes an entity its location no longer defines (`status.orphan`, kept by the `keep` "
                           "orphan strategy). Maintainers and admins of its owning team, and platform admins, may. "
                           "409 when a location still defines it: remove it from its file, or unregister the location.",
               responses={204: OpenApiResponse(description="Deleted."), **error_responses(403, 404, 409)})
@body_limit(FORM)
@api_view(["GET", "HEAD", "DELETE"])
def entity_by_name(request, kind: str, namespace: str, name: str):
    if request.method == "DELETE":
        entity = _entity(request, kind, namespace, name)
        try:
            services.orphan_delete(entity=entity, actor=request.user)
        except services.NotAnOrphan as exc:
            return conflict(str(exc), orphan=False)
        return Response(status=status.HTTP_204_NO_CONTENT)
    entity = selectors.entity_body_by_name(request.user, kind, namespace, name)
    if entity is None:
        raise NotFound(f"No entity {kind}:{namespace}/{name}.")
    return Response(envelope(entity, relations_for(request.user, [entity]).get(entity.ref)))


@extend_schema(summary="Relation graph of an entity",
               parameters=[OpenApiParameter("depth", {"type": "integer", "minimum": 1, "maximum": 4},
                                            description="1–4 (default 1)")],
               responses={200: api_schema.RelationGraphSerializer, **error_responses(404)})
@api_view(["GET", "HEAD"])
def entity_relations(request, kind: str, namespace: str, name: str):
    entity = _entity(request, kind, namespace, name)
    depth = _int_param(request, "depth", 1, 1, 4)
    return Response(selectors.relation_graph(request.user, entity, depth))


def _model(request, kind, namespace, name) -> Entity:
    entity = _entity(request, kind, namespace, name)
    if entity.kind_key != "model":
        raise NotFound(f"{kind}:{namespace}/{name} is not a model: only models have versions.")
    return entity


@extend_schema(summary="The MLflow run behind a model version",
               description="The run's params, final metrics, metric series (`history`: `{metric: [[step, value]]}`, "
                           "only for metrics logged at several steps), tags and the datasets it logged with "
                           "`mlflow.log_input`, each named the OpenLineage way (`namespace`, `datasetName`) and "
                           "linked to a Dataset entity the caller may see (`entityRef`, else null). 404 when the "
                           "model or version does not exist, the caller may not see the model, or the version "
                           "has no run (yet).",
               responses={200: api_schema.ExperimentRunSerializer, **error_responses(404)})
@api_view(["GET", "HEAD"])
def model_version_run(request, kind: str, namespace: str, name: str, model_version: str):
    # Not called `version`: drf-spectacular reserves that name for API versioning and drops it.
    version = model_version
    entity = _model(request, kind, namespace, name)
    row = experiments.model_version(entity, str(int(version))) if digits(version) and len(version) < 10 else None
    if row is None:
        raise NotFound(f"{entity.name} has no version {version[:20]}.")
    facts = experiments.run_facts(request.user, row)
    if facts is None:
        raise NotFound(f"Version {row.version} of {entity.name} has no synced MLflow run.")
    return Response({"version": row.version, "aliases": row.aliases, **facts})


@extend_schema(summary="Compare model versions",
               description="2–10 versions of one model side by side: every metric with each version's value and, "
                           "for every version after the first (the baseline), its difference, relative difference "
                           "and verdict (`better`/`worse`/`same`, by whether the metric is higher- or lower-is-better); "
                           "every param with `differs`; each version's input datasets. 400 names what is wrong with "
                           "`versions`; 404 for a model the caller may not see or a version it does not have.",
               parameters=[OpenApiParameter("versions", str, required=True,
                                            description="Comma-separated version numbers, e.g. `2,3` (the first is the baseline).")],
               responses={200: api_schema.ComparisonSerializer, **error_responses(404)})
@api_view(["GET", "HEAD"])
def model_compare(request, kind: str, namespace: str, name: str):
    entity = _model(request, kind, namespace, name)
    try:
        wanted = experiments.parse_versions(request.query_params.getlist("versions"))
        result = experiments.comparison(request.user, entity, wanted)
    except experiments.CompareError as exc:
        raise ValidationError({"versions": str(exc).removeprefix("versions: ")}) from exc
    except experiments.VersionsMissing as exc:
        raise NotFound(f"{exc}.") from exc
    return Response(experiments.comparison_body(result))


FACET_NAMES = {"kind": "kind", "spec.type": "type", "spec.lifecycle": "lifecycle", "spec.owner": "owner",
               "metadata.namespace": "namespace", "metadata.tags": "tag"}


@extend_schema(summary="Facet counts",
               description="Counts per value of each requested facet over the entities matching the filters.",
               parameters=[OpenApiParameter("facet", str, many=True, enum=list(FACET_NAMES),
                                            description="Facets to count (default `kind`).")] + ENTITY_LIST_PARAMS[:1],
               responses={200: api_schema.FacetsSerializer, **error_responses()})
@api_view(["GET", "HEAD"])
def entity_facets(request):
    names = FACET_NAMES
    requested = request.query_params.getlist("facet") or ["kind"]
    unknown = [f for f in requested if f not in names]
    if unknown:
        raise ValidationError({"facet": f"Unknown facet '{unknown[0][:40]}'. Known: {', '.join(names)}."})
    params = list_params(request)
    qs = filtered(request, params)
    wanted = [names[f] for f in requested[:10]]
    _, counts, _capped, sampled = selectors.list_counts(request.user, count_params(params), qs, wanted)
    body = {"facets": {f: counts.get(names[f], []) for f in requested[:10]}}
    if sampled:
        body["countedMatches"] = sampled  # facets the cube cannot give count the first matches only
    return Response(body)


class LocationInput(serializers.Serializer):
    target = serializers.CharField(max_length=2000, help_text="A file, a folder, an http(s) URL (a code-host file "
                                   "URL such as `https://github.com/org/repo/blob/main/catalog-info.yaml` is read "
                                   "through its integration), a Feast feature repository as `feast:/path/to/repo`, "
                                   "or an organisation to scan as `github-discovery:https://github.com/org` / "
                                   "`gitlab-discovery:https://gitlab.com/group` (docs/catalog.md).")
    type = serializers.ChoiceField(choices=["url", "file", "dir", "feast", "github-discovery", "gitlab-discovery"],
                                   required=False, help_text="Optional; inferred from the target. "
                                   "`github-discovery`/`gitlab-discovery` with a plain URL target scan that "
                                   "organisation or group.")
    dryRun = serializers.BooleanField(required=False, default=False)

    def validate(self, attrs):
        kind, target = attrs.get("type"), attrs["target"].strip()
        if kind in ("github-discovery", "gitlab-discovery") and not target.lower().startswith(kind + ":"):
            attrs["target"] = f"{kind}:{target}"
        return attrs


LOCATION_ERRORS = 200  # processing errors shown per location


def location_body(location: Location) -> dict:
    errors = getattr(location, "first_errors", None)  # prefetched by a list (_location_page)
    if errors is None:
        errors = location.errors.all()[:LOCATION_ERRORS]
    return {"id": location.pk, "type": location.type, "target": location.target, "status": location.status,
            "entityCount": location.entity_count, "errorCount": location.error_count,
            "refreshedAt": location.refreshed_at, "errors": [
                {"source": e.source, "line": e.line, "field": e.field, "message": e.message} for e in errors]}


declare_links("locations_register", 201, {
    "read": openapi_link("locations_retrieve", "The location: status, counts, errors.", id="$response.body#/location/id"),
    "unregister": openapi_link("locations_destroy", "Unregister it again.", id="$response.body#/location/id"),
})


@extend_schema(methods=["GET"], summary="List locations", operation_id="locations_list",
               parameters=[OpenApiParameter("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                                            description=f"Page size, 1–{MAX_LIMIT} (default 100)."),
                           OpenApiParameter("cursor", str, description="`pageInfo.nextCursor` of the previous page.")],
               responses={200: api_schema.LocationListSerializer, **error_responses()})
@extend_schema(
    methods=["POST"],
    operation_id="locations_register",
    summary="Register a location",
    description="Reads and validates the location and stores its entities in the same request (they are visible at once). "
                "With `?dryRun=true` (or `dryRun` in the body) nothing is stored and the plan is returned.",
    request=LocationInput,
    parameters=[OpenApiParameter("dryRun", bool)],
    responses={
        201: OpenApiResponse(api_schema.RegisteredSerializer, description="A new location, stored."),
        200: OpenApiResponse(
            PolymorphicProxySerializer("RegisterResult", [api_schema.RegisteredSerializer, api_schema.DryRunSerializer],
                                       resource_type_field_name=None),
            description="A known location, read again; or the plan of a dry run.",
        ),
        **error_responses(403),
    },
    examples=[OpenApiExample("Register", value={"target": "/srv/repos/fraud/catalog-info.yaml"}, request_only=True)],
)
@body_limit(FORM)
@api_view(["GET", "HEAD", "POST"])
@throttle_classes(throttling.EXPENSIVE)
def locations(request):
    if request.method in ("GET", "HEAD"):
        return _location_page(request)
    body = LocationInput(data=request.data)
    body.is_valid(raise_exception=True)
    dry = body.validated_data["dryRun"] or request.query_params.get("dryRun", "").lower() in {"1", "true", "yes"}
    return _registered(lambda: services.location_register(
        target=body.validated_data["target"], actor=request.user, file_roots=settings.PLINTH_CATALOG_FILE_ROOTS,
        dry_run=dry), field="target", dry=dry)


def _registered(register, *, field: str, dry: bool) -> Response:
    """Run a registration (`register()` returns its plan) and answer it: the plan's summary (201 for a
    new location), 400 naming `field` for a descriptor error, 403 listing refused ownership claims."""
    try:
        plan = register()
    except DescriptorError as exc:
        raise ValidationError({field: str(exc)}) from exc
    except services.OwnershipRefused as exc:
        return Response({"error": {"status": 403, "message": str(exc),
                                   "details": {"refused": [e.as_dict() for e in exc.errors]}}},
                        status=status.HTTP_403_FORBIDDEN)
    summary = plan.summary()
    if dry:
        return Response({"dryRun": True, **summary})
    return Response({"location": location_body(plan.location), **summary},
                    status=status.HTTP_201_CREATED if plan.created else status.HTTP_200_OK)


class UploadFileInput(serializers.Serializer):
    path = serializers.CharField(max_length=300, help_text="Relative path in the folder, e.g. "
                                 "`models/churn/catalog-info.yaml`.")
    content = serializers.CharField(allow_blank=True, trim_whitespace=False, help_text="The file's text (UTF-8).")


class UploadInput(serializers.Serializer):
    source = serializers.CharField(max_length=200, help_text="Names the upload, e.g. `github.com/acme/fraud`; "
                                   "the same source again replaces it.")
    files = UploadFileInput(many=True, allow_empty=False, max_length=500, help_text=(
        "The descriptors (files named `catalog-info.yaml`) and the files their `$text`/`$json`/`$yaml` "
        "refer to."))
    dryRun = serializers.BooleanField(required=False, default=False)


declare_links("locations_upload", 201, {
    "read": openapi_link("locations_retrieve", "The location: status, counts, errors.", id="$response.body#/location/id"),
    "unregister": openapi_link("locations_destroy", "Unregister it again.", id="$response.body#/location/id"),
})


@extend_schema(
    operation_id="locations_upload",
    summary="Register descriptors sent as content",
    description="For clients whose files the server cannot read (a CI runner, a laptop: `plinth catalog "
                "register ./folder`). The files are kept as the source's own folder and registered like a "
                "folder location: the same validation, size caps, ownership claims and conflict rules. "
                "Sending the same `source` again replaces its files and re-reads them (who may: as for a "
                "refresh). Nothing changes when the registration fails. With `dryRun` the plan is returned.",
    request=UploadInput,
    responses={
        201: OpenApiResponse(api_schema.RegisteredSerializer, description="A new upload, stored."),
        200: OpenApiResponse(
            PolymorphicProxySerializer("UploadResult", [api_schema.RegisteredSerializer, api_schema.DryRunSerializer],
                                       resource_type_field_name=None),
            description="A known source, replaced and read again; or the plan of a dry run.",
        ),
        **error_responses(403),
    },
    examples=[OpenApiExample("Upload", request_only=True, value={
        "source": "github.com/acme/churn", "files": [{"path": "catalog-info.yaml", "content": (
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: churn-service\n"
            "spec:\n  type: service\n  lifecycle: production\n  owner: team-a\n")}]})],
)
@body_limit(upload_limit)
@api_view(["POST"])
@throttle_classes(throttling.EXPENSIVE)
def location_upload(request):
    body = UploadInput(data=request.data)
    body.is_valid(raise_exception=True)
    data = body.validated_data
    files = [(f["path"], f["content"]) for f in data["files"]]
    return _registered(lambda: services.location_upload(
        source=data["source"], files=files, actor=request.user, dry_run=data["dryRun"]),
        field="files", dry=data["dryRun"])


def _location_page(request) -> Response:
    limit = pagination.page_size(request.query_params, default=100, maximum=MAX_LIMIT)
    qs = selectors.visible_locations(request.user).order_by("pk")
    if request.query_params.get("cursor"):
        after = pagination.decode_cursor(request.query_params["cursor"], {"id": pagination.integer})
        qs = qs.filter(pk__gt=after["id"])
    # Each location's first errors in one query for the page (not one per location).
    errors = Prefetch("errors", queryset=ProcessingError.objects.all()[:LOCATION_ERRORS], to_attr="first_errors")
    page = list(qs.prefetch_related(errors)[: limit + 1])
    more = len(page) > limit
    page = page[:limit]
    next_cursor = pagination.encode_cursor({"id": page[-1].pk}) if more else None
    return Response({"items": [location_body(loc) for loc in page], "pageInfo": {"nextCursor": next_cursor}})


@extend_schema(methods=["GET"], summary="Get a location", operation_id="locations_retrieve",
               responses={200: api_schema.LocationSerializer, **error_responses(404)})
@extend_schema(methods=["DELETE"], summary="Unregister a location", operation_id="locations_destroy",
               description="Removes the location and the entities it provided. Its registrant, maintainers and "
                           "admins of every team owning its entities, and platform admins may.",
               responses={204: OpenApiResponse(description="Unregistered."), **error_responses(403, 404)})
@body_limit(FORM)
@api_view(["GET", "HEAD", "DELETE"])
def location_detail(request, pk: int):
    location = selectors.location_for(request.user, pk)
    if location is None:
        raise NotFound("No such location.")
    if request.method == "DELETE":
        services.location_unregister(location=location, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
    return Response(location_body(location))


class RefreshInput(serializers.Serializer):
    entityRef = serializers.CharField(max_length=200, help_text="e.g. `component:default/checkout`.")


@extend_schema(
    summary="Refresh an entity's location now",
    request=RefreshInput,
    responses={200: api_schema.PlanSerializer, **error_responses(403, 404)},
)
@body_limit(FORM)
@api_view(["POST"])
@throttle_classes(throttling.EXPENSIVE)
def refresh(request):
    body = RefreshInput(data=request.data)
    body.is_valid(raise_exception=True)
    ref = body.validated_data["entityRef"].strip().lower()
    entity = selectors.visible_entities(request.user).filter(ref=ref).select_related("location").first()
    if entity is None:
        raise NotFound(f"No entity '{ref}'.")
    if entity.location is None:
        raise ValidationError({"entityRef": "This entity has no location (it comes from MLflow or is an orphan)."})
    plan = services.location_refresh(location=entity.location, actor=request.user)
    return Response(plan.summary())


@extend_schema(
    summary="Validate a descriptor without storing it",
    description="Body: `{\"entity\": {...}}` or `{\"yaml\": \"...\"}` (multi-document allowed). 200 when valid, 400 with every error otherwise.",
    request=OpenApiTypes.OBJECT,
    responses={
        200: api_schema.ValidationResultSerializer,
        **error_responses(),
        400: OpenApiResponse(
            PolymorphicProxySerializer("ValidateEntityRejected", [api_schema.ValidationResultSerializer, ErrorSerializer],
                                       resource_type_field_name=None),
            description="The descriptor is invalid (`errors` lists every problem), or the body is malformed "
                        "(the error envelope).",
        ),
    },
    examples=[OpenApiExample("Entity", request_only=True, value={"entity": {"apiVersion": "backstage.io/v1alpha1",
              "kind": "Component", "metadata": {"name": "svc"}, "spec": {"type": "service", "lifecycle": "production", "owner": "team-a"}}})],
)
@body_limit(validate_limit)
@api_view(["POST"])
@throttle_classes(throttling.EXPENSIVE)
def validate(request):
    if not isinstance(request.data, dict):
        raise ValidationError({"body": "Send a JSON object with `entity` or `yaml`."})
    if "yaml" in request.data:
        text = request.data["yaml"]
        if not isinstance(text, str):
            raise ValidationError({"yaml": "Must be a string."})
        docs, errors = load_documents(text, "request.yaml", max_bytes=settings.PLINTH_CATALOG_MAX_BYTES)
    elif isinstance(request.data.get("entity"), dict):
        if not within_limits(request.data["entity"]):  # as a descriptor file is held to them
            limits = Limits()
            raise ValidationError({"entity": f"Nested deeper than {limits.max_depth} levels or more than "
                                             f"{limits.max_nodes:,} values: a descriptor may not be."})
        docs, errors = [Document(data=request.data["entity"], source="request", line=1, index=0, field_lines={})], []
    else:
        raise ValidationError({"entity": "Send `entity` (an object) or `yaml` (a string)."})
    for doc in docs:
        errors.extend(validate_entity(doc) or storable_errors(doc))  # as registration judges it
    body = {"valid": not errors, "documents": len(docs), "errors": [e.as_dict() for e in errors]}
    return Response(body, status=200 if not errors else 400)


# -- MLflow webhooks ------------------------------------------------------------------------------------

WEBHOOK_MAX_BYTES = 64 * 1024  # MLflow's registry payloads are a name, a version, tags and a description


@extend_schema(
    summary="Receive an MLflow webhook delivery",
    description=(
        "MLflow 3 calls this for registered-model, model-version, version-tag and alias events. The delivery "
        "must carry `X-MLflow-Delivery-Id`, `X-MLflow-Timestamp` (Unix seconds, within "
        "`PLINTH_MLFLOW_WEBHOOK_TOLERANCE_SECONDS`) and `X-MLflow-Signature` (`v1,<base64 HMAC-SHA256>` of "
        "`<id>.<timestamp>.<body>` with `PLINTH_MLFLOW_WEBHOOK_SECRET`). Accepted deliveries queue a sync of "
        "that model. A bad or missing signature, a stale timestamp or a replayed delivery id answers 401; an "
        "unknown model or event 400; nothing is changed on refusal. 404 when no secret is configured."
    ),
    request=OpenApiTypes.OBJECT,
    responses={202: OpenApiResponse(description="Accepted: a sync of the model is queued."),
               **error_responses(400, 401, 404)},
    auth=[],
)
@body_limit(WEBHOOK_MAX_BYTES)
@api_view(["POST"])
@authentication_classes([])
@permission_classes([AllowAny])  # authenticated by the HMAC signature instead of a user
def mlflow_webhook(request):
    secret = settings.PLINTH_MLFLOW_WEBHOOK_SECRET
    if not secret:
        raise NotFound("MLflow webhooks are not enabled on this portal (PLINTH_MLFLOW_WEBHOOK_SECRET is unset).")
    body = request._request.body  # the signed bytes, before any parsing
    try:
        delivery_id, _ = mlflow_webhooks.verify(secret=secret, headers=request.headers, body=body,
                                                tolerance=settings.PLINTH_MLFLOW_WEBHOOK_TOLERANCE_SECONDS)
        delivery = mlflow_webhooks.parse(delivery_id, body)
        services.mlflow_webhook_accept(delivery=delivery)
    except mlflow_webhooks.Refused as exc:
        return Response({"error": {"status": exc.status, "message": exc.message}}, status=exc.status)
    return Response({"queued": {"sync": delivery.model, "event": delivery.event}}, status=status.HTTP_202_ACCEPTED)
