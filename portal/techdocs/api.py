"""Docs API: built sites and pages, rebuilds, API definitions (what Swagger UI loads) and model-card
facts. Lookups go through the permission-filtered selector: hidden and missing both answer 404."""

from __future__ import annotations

from django.db.models import Q
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.decorators import api_view, throttle_classes
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from portal.core import pagination, throttling
from portal.core.api import error_responses
from portal.core.limits import FORM, body_limit

from . import api_schema, definitions, selectors, services

SITE_EXAMPLE = {
    "entityRef": "component:default/plinth", "status": "ok", "builtAt": "2026-11-26T12:00:00Z",
    "attemptedAt": "2026-11-26T12:00:00Z",
    "pageCount": 7, "url": "/docs/component/default/plinth/",
    "errors": [], "nav": [{"title": "Getting started", "path": "guide/getting-started/"}],
}
PAGE_EXAMPLE = {
    "entityRef": "component:default/plinth", "path": "guide/getting-started/", "title": "Getting started",
    "html": "<h1 id=\"doc-getting-started\">Getting started</h1><p>…</p>",
    "toc": [{"level": 1, "id": "getting-started", "name": "Getting started", "children": []}],
    "error": "", "builtAt": "2026-11-26T12:00:00Z",
}
FACTS_EXAMPLE = {
    "entityRef": "model:default/fraud-detector", "present": True, "sections": ["Intended use", "Training data", "Metrics", "Limitations", "Ethical considerations"],
    "section_keys": ["intended_use", "training_data", "metrics", "limitations", "ethical_considerations"],
    "front_matter": {"model": "fraud-detector", "owners": ["fraud-ml"], "risk_tier": 1},
    "missing_sections": [], "error": "", "built_at": "2026-11-26T12:00:00Z",
}
MAX_LIMIT = 500
NOT_FOUND = OpenApiExample("Not found (or not visible to you)", value={"error": {"status": 404, "message": "No docs for component:default/x."}},
                           response_only=True, status_codes=["404"])


def _entity(request, kind, namespace, name):
    entity = selectors.entity_for_docs(request.user, kind, namespace, name)
    if entity is None:
        raise NotFound(f"No entity {kind}:{namespace}/{name}.")
    return entity


def _site_json(site) -> dict:
    e = site.entity
    return {"entityRef": e.ref, "status": site.status, "builtAt": site.built_at, "attemptedAt": site.attempted_at,
            "pageCount": site.page_count, "url": site.get_absolute_url(), "errors": site.errors, "nav": site.nav}


@extend_schema(
    operation_id="techdocs_sites_list",
    summary="List docs sites",
    description="Every entity's built docs the caller may see, Plinth's own docs first: build status, build "
                "time and page count. Docs are built from the folder named by `plinth.dev/techdocs-ref`.",
    parameters=[OpenApiParameter("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                                 description=f"Page size, 1–{MAX_LIMIT} (default 100)."),
                OpenApiParameter("cursor", str, description="`pageInfo.nextCursor` of the previous page.")],
    responses={200: api_schema.SiteListSerializer, **error_responses()},
    examples=[OpenApiExample("Sites", value={"items": [SITE_EXAMPLE], "pageInfo": {"nextCursor": None}},
                             response_only=True)],
)
@api_view(["GET", "HEAD"])
def site_list(request):
    params = request.query_params
    limit = pagination.page_size(params, default=100, maximum=MAX_LIMIT)
    qs = selectors.visible_sites(request.user).order_by("first", "entity__name_key", "id")
    if params.get("cursor"):
        after = pagination.decode_cursor(
            params["cursor"], {"f": pagination.integer, "k": pagination.text, "id": pagination.integer})
        qs = qs.filter(Q(first__gt=after["f"]) | Q(first=after["f"], entity__name_key__gt=after["k"])
                       | Q(first=after["f"], entity__name_key=after["k"], id__gt=after["id"]))
    sites = list(qs[: limit + 1])
    more = len(sites) > limit
    sites = sites[:limit]
    last = sites[-1] if sites else None
    next_cursor = (pagination.encode_cursor({"f": last.first, "k": last.entity.name_key, "id": last.pk})
                   if more and last else None)
    return Response({"items": [_site_json(s) | {"nav": None} for s in sites], "pageInfo": {"nextCursor": next_cursor}})


@extend_schema(
    operation_id="techdocs_site_retrieve",
    summary="Get a docs site",
    description="Build status, errors (file and message), navigation and build time of one entity's docs. "
                "404 when the entity does not exist, is not visible to the caller, or has no docs.",
    responses={200: api_schema.SiteSerializer, **error_responses(404)},
    examples=[OpenApiExample("Site", value=SITE_EXAMPLE, response_only=True), NOT_FOUND],
)
@api_view(["GET", "HEAD"])
def site_detail(request, kind: str, namespace: str, name: str):
    entity = _entity(request, kind, namespace, name)
    site = selectors.site_for(entity)
    if site is None:
        raise NotFound(f"No docs for {entity.ref}.")
    site.entity = entity
    return Response(_site_json(site))


@extend_schema(
    operation_id="techdocs_page_retrieve",
    summary="Get a docs page",
    description="One built page: sanitised HTML, table of contents (ids are served with the `doc-` prefix) "
                "and title. `path` is the page's URL path below the site (empty for the index).",
    parameters=[OpenApiParameter("path", str, description="Page path, e.g. `guide/getting-started/` ('' = index).")],
    responses={200: api_schema.PageSerializer, **error_responses(404)},
    examples=[OpenApiExample("Page", value=PAGE_EXAMPLE, response_only=True), NOT_FOUND],
)
@api_view(["GET", "HEAD"])
def page_detail(request, kind: str, namespace: str, name: str):
    entity = _entity(request, kind, namespace, name)
    path = request.query_params.get("path", "")
    page = selectors.page_for(entity, path)
    if page is None:
        raise NotFound(f"No page '{path[:100]}' in the docs of {entity.ref}.")
    return Response({"entityRef": entity.ref, "path": page.path, "title": page.title, "html": page.html,
                     "toc": page.toc, "error": page.error, "builtAt": page.site.built_at})


@extend_schema(
    operation_id="techdocs_site_build",
    summary="Rebuild docs",
    description="Queue a build of the entity's docs and model card (needs the edit right on the entity). "
                "Answers 202 at once; poll the site for its status.",
    request=None,
    responses={202: api_schema.BuildQueuedSerializer, **error_responses(403, 404)},
    examples=[OpenApiExample("Queued", value={"queued": "component:default/plinth"}, response_only=True,
                             status_codes=["202"]), NOT_FOUND],
)
@body_limit(FORM)
@api_view(["POST"])
@throttle_classes(throttling.EXPENSIVE)
def site_build(request, kind: str, namespace: str, name: str):
    entity = _entity(request, kind, namespace, name)
    services.docs_rebuild(actor=request.user, entity=entity)
    return Response({"queued": entity.ref}, status=status.HTTP_202_ACCEPTED)


@extend_schema(
    operation_id="techdocs_definition_retrieve",
    summary="Get an API definition",
    description="The parsed OpenAPI or AsyncAPI document of an API entity as JSON (what the Swagger UI and "
                "Redoc views load), with `x-plinth-errors` listing problems found. Descriptions, summaries and "
                "titles are sanitised like docs (HTML allow-list; Markdown links and images to anything but "
                "http(s)/mailto/relative targets become plain text); servers are kept only when their url (through "
                "its variables) is http(s) or relative, other non-http(s) URLs are dropped. 404 for other kinds, "
                "for definitions that cannot be parsed, and for entities the caller may not see.",
    responses={200: OpenApiTypes.OBJECT, **error_responses(404)},
    examples=[OpenApiExample("OpenAPI", value={"openapi": "3.0.3", "info": {"title": "Fraud scoring API",
                             "version": "1.2.0"}, "paths": {"/v1/score": {"post": {"summary": "Score one transaction"}}}},
                             response_only=True), NOT_FOUND],
)
@api_view(["GET", "HEAD"])
def definition(request, kind: str, namespace: str, name: str):
    entity = _entity(request, kind, namespace, name)
    if entity.kind_key != "api":
        raise NotFound(f"{entity.ref} is not an API.")
    parsed = definitions.for_entity(entity)
    if parsed.data is None:
        raise NotFound(f"The definition of {entity.ref} is not a parsable OpenAPI/AsyncAPI document.")
    safe = definitions.display_for_entity(entity, parsed)
    return Response(safe | ({"x-plinth-errors": parsed.errors} if parsed.errors else {}))


@extend_schema(
    operation_id="techdocs_model_card_retrieve",
    summary="Get model-card facts",
    description="Whether a Model has a model card, its sections (level-2 headings, also as snake_case keys), "
                "its front matter and the recommended sections it lacks — what governance policies check.",
    responses={200: api_schema.ModelCardFactsSerializer, **error_responses(404)},
    examples=[OpenApiExample("Facts", value=FACTS_EXAMPLE, response_only=True), NOT_FOUND],
)
@api_view(["GET", "HEAD"])
def model_card(request, namespace: str, name: str):
    entity = _entity(request, "model", namespace, name)
    return Response({"entityRef": entity.ref, **selectors.model_card_facts(entity)})
