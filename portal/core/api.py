"""API conventions shared by every app: the error envelope (and its OpenAPI description), the base
permission, and the shapes every list shares (a cursor page's `pageInfo`, a facet value with its count)."""

from __future__ import annotations

import math
import re

from django.conf import settings as django_settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, QueryDict
from django.http.multipartparser import MultiPartParserError
from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, parsers, serializers, status
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler

from . import throttling
from .errors import NUL_MESSAGE, nul_field
from .middleware import (
    StrictMultiPartParser,
    form_field_not_text,
    not_text_message,
    unreadable_charset_message,
)


def exception_handler(exc, context):
    """Every API error reads `{"error": {"status", "message", "details"?}}`."""
    request = context.get("request")
    if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)) and request is not None:
        # Anonymous callers never reach the throttles (DRF checks permissions first): count them here.
        refusal = throttling.count_unauthenticated(request)
        if refusal is not None:
            request._request.rate_limit_refusal = refusal
            exc = exceptions.Throttled(refusal.wait)
    if isinstance(exc, ValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        exc = exceptions.ValidationError(detail)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or "Not found.")
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    refusal = getattr(getattr(request, "_request", None), "rate_limit_refusal", None)
    if isinstance(exc, exceptions.Throttled) and refusal is not None:
        response.data = {"error": {"status": 429, "message": refusal.message, "scope": refusal.scope,
                                   "limit": refusal.limit, "periodSeconds": refusal.period,
                                   "retryAfter": refusal.wait}}
        return response
    if isinstance(data, dict) and set(data) == {"detail"}:
        body = {"status": response.status_code, "message": str(data["detail"])}
    else:
        data = _as_lists(data)
        body = {"status": response.status_code, "message": _summary(data), "details": data}
    response.data = {"error": body}
    return response


def _as_lists(data):
    """`{field: "message"}` (a ValidationError raised with a plain dict) as `{field: ["message"]}`, like a
    serializer's errors, so that clients read one shape."""
    if isinstance(data, dict):
        return {key: [value] if isinstance(value, str) else _as_lists(value) for key, value in data.items()}
    return data


def _summary(data) -> str:
    """The first error, named by its field's path as the input spells it: `files[0].path: Ensure…`
    (a nested serializer's errors are dicts, a list's are dicts keyed by index or lists of dicts, in
    which a valid item is `{}`); non-field errors name their object, or nothing at the top."""
    found = _first_error(data, "")
    if found is None:
        return "Invalid request."
    path, message = found
    return f"{path}: {message}" if path else message


def _first_error(data, path: str) -> tuple[str, str] | None:
    if isinstance(data, dict):
        for key, value in data.items():
            if key == api_settings.NON_FIELD_ERRORS_KEY:
                where = path
            elif isinstance(key, int):
                where = f"{path}[{key}]"
            else:
                where = f"{path}.{key}" if path else str(key)
            if found := _first_error(value, where):
                return found
        return None
    if isinstance(data, list):
        for index, item in enumerate(data):
            # A list of messages belongs to its field; a list of containers is one per input item.
            found = _first_error(item, f"{path}[{index}]") if isinstance(item, dict | list) else \
                (path, str(item))
            if found:
                return found
        return None
    return (path, str(data)) if data is not None else None


def conflict(message: str, **extra) -> Response:
    return Response({"error": {"status": 409, "message": message, **extra}}, status=status.HTTP_409_CONFLICT)


# -- request bodies -------------------------------------------------------------------------------------
# The rule for every API body, whatever the view does with it: no string or key anywhere in it may hold a
# NUL (PostgreSQL's text and jsonb cannot store one: a 500 there, stored on SQLite) or a lone surrogate
# (`"\\ud800"` without its pair is no character: UTF-8 cannot encode it, so the audit hash, SQLite and
# psycopg all fail on it, a 500 anywhere). DRF's CharField refuses both, but free-form objects (approval
# `params`, template `values`, a descriptor's `metadata`) are stored as they come: the parsers refuse them
# for every field of every JSON, form and multipart body, naming the field's path (`metadata.tags[2]`),
# as the view first reads `request.data`, so before it writes anything. Query strings and form fields:
# RejectNulMiddleware and the strict form parsers (a surrogate's UTF-8 bytes are not text there). Two APIs
# read their raw bytes instead and answer for them: lineage ingestion (`lineage.events`) and the MLflow
# webhook (`catalog.mlflow_webhooks`).


# A number beyond a float's range (`1e400`) parses as infinity, which no JSON column stores (SQLite's
# JSON_VALID, PostgreSQL's jsonb refuse it): a 500 at the first write. Refused up front, named, too.
NON_FINITE_MESSAGE = "Numbers must be finite (this one is beyond a 64-bit float's range)."
NESTED_MESSAGE = "The JSON body is nested too deeply."
_SURROGATE = re.compile("[\ud800-\udfff]")
_UNSHOWABLE = re.compile("[\x00\ud800-\udfff]")


def surrogate_message(surrogate: str) -> str:
    return f"Must be valid Unicode text: it holds a lone surrogate (\\u{ord(surrogate):04x})."


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return NUL_MESSAGE
    found = _SURROGATE.search(text)
    return surrogate_message(found.group()) if found else None


def _shown(path: str) -> str:
    """A path as an answer can carry it: a NUL or a lone surrogate in a key escaped (`\\u0000`, `\\ud800`),
    which the JSON renderer could not write as UTF-8 (a 500 on the 400)."""
    return _UNSHOWABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", path)


def _unstorable(value) -> tuple[str, str] | None:
    """(the path, the message) of the first string or key holding a NUL or a lone surrogate, or of the
    first non-finite number; None when there is none. Iterative: a body nests as deep as the JSON decoder
    allowed. A key is judged before what it holds, so a path shown is made of keys already found good."""
    stack: list[tuple[object, str]] = [(value, "")]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if problem := _text_problem(item):
                return path or "body", problem
        elif isinstance(item, float):
            if not math.isfinite(item):
                return path or "body", NON_FINITE_MESSAGE
        elif isinstance(item, dict):
            children = []
            for key, child in item.items():
                where = f"{path}.{key}" if path else str(key)
                if problem := _text_problem(str(key)):
                    return _shown(where), problem
                children.append((child, where))
            stack.extend(reversed(children))
        elif isinstance(item, list):
            stack.extend(reversed([(child, f"{path}[{index}]") for index, child in enumerate(item)]))
    return None


def _refuse_nul(data):
    # A form's QueryDict: every value of every key, named by the key. Its text was decoded strictly
    # (FormParser, MultiPartParser), so it holds no lone surrogate.
    if hasattr(data, "lists"):
        where = nul_field(data)
        found = (where, NUL_MESSAGE) if where else None
    else:
        found = _unstorable(data)
    if found:
        where, message = found
        raise exceptions.ValidationError({where: [message]})
    return data


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:  # the decoder recurses once per level: `[[[[…` thousands deep
            raise exceptions.ParseError(NESTED_MESSAGE) from None
        return _refuse_nul(data)


def _undecodable(encoding: str) -> exceptions.ParseError:
    return exceptions.ParseError(unreadable_charset_message(encoding))


def _not_text(field: str, encoding: str) -> exceptions.ValidationError:
    return exceptions.ValidationError({field: [not_text_message(encoding)]})


class FormParser(parsers.FormParser):
    """Decoded strictly, by the pages' rule (`portal.core.middleware`, "form text"): a field whose bytes,
    raw or %-escaped, are not text in the charset is a 400 naming it, where Django's QueryDict would store
    it garbled ("caf\xc3" → "cafÃ", "caf%C3" → "caf\ufffd"); a codec that is not a text codec, or one
    that fails its own way (idna, punycode), is refused too."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding") or django_settings.DEFAULT_CHARSET
        raw = stream.read()
        try:
            field = form_field_not_text(raw, encoding)
            if field is None:
                raw.decode(encoding)
        except (LookupError, UnicodeError, ValueError):
            raise _undecodable(encoding) from None
        if field is not None:
            raise _not_text(field, encoding)
        return _refuse_nul(QueryDict(raw, encoding=encoding))


class MultiPartParser(parsers.MultiPartParser):
    """Parsed by the pages' StrictMultiPartParser: a field (not a file's content) whose bytes are not
    text in the charset is a 400 naming it, where Django would store it with U+FFFD."""

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        request = parser_context["request"]
        encoding = parser_context.get("encoding") or django_settings.DEFAULT_CHARSET
        meta = request.META.copy()
        meta["CONTENT_TYPE"] = media_type
        try:
            parser = StrictMultiPartParser(meta, stream, request.upload_handlers, encoding)
            data, files = parser.parse()
        except MultiPartParserError as exc:  # an unreadable charset (idna) is one, named
            raise exceptions.ParseError(f"Multipart form parse error - {exc}") from None
        if parser.not_text is not None:
            raise _not_text(parser.not_text, encoding)
        _refuse_nul(data)
        return parsers.DataAndFiles(data, files)


# -- the error envelope in the OpenAPI schema ---------------------------------------------------------


class ErrorBodySerializer(serializers.Serializer):
    status = serializers.IntegerField(help_text="The HTTP status, repeated.")
    message = serializers.CharField(help_text="What is wrong, naming the first failing field.")
    details = serializers.JSONField(
        required=False,
        help_text="Every failing field: `{field: [message, ...]}`, nested like the input for nested fields.",
    )


class ErrorSerializer(serializers.Serializer):
    """`{"error": {...}}`; some errors add facts of their own next to `status` (a 409 names the state)."""

    error = ErrorBodySerializer()


ERROR_DESCRIPTIONS = {
    400: "Invalid input; nothing was changed. `details` names each failing field by its path in the body "
         "(`metadata.tags[2]`) or the query parameter. Besides each operation's own rules, one holds for every "
         "operation: no string or key anywhere in the body or the query may hold a NUL character (`\\u0000`) "
         "or a lone surrogate (`\\ud800` without its pair), which no database stores.",
    401: "No credentials, or an invalid, expired or revoked token.",
    403: "Signed in, but not allowed to do this (or a session request without its CSRF token).",
    404: "No such object, or one the caller may not see.",
    409: "The object is not in a state that allows this; nothing was changed.",
    411: "A chunked request body (no `Content-Length`) on a server that cannot bound it; send its length.",
    413: "The request body is over this operation's cap (`limit`, in bytes); nothing was read.",
    503: "The server cannot check this request right now (a missing part of its configuration, named in "
         "`message`); nothing was changed.",
    429: "Over a rate limit (`scope`, `limit`, `periodSeconds`); retry after `retryAfter` seconds (also "
         "the `Retry-After` header).",
}


def error_responses(*codes: int) -> dict[int, OpenApiResponse]:
    """The documented error answers of an operation: `codes`, and those any request can get: 400 (a NUL
    or a lone surrogate anywhere: the parsers above, `RejectNulMiddleware`), 401 (every operation needs
    credentials), 413 (a body over the cap, or 411 for a chunked one where the server cannot bound it:
    `portal.core.limits`) and 429 (the rate limits, `portal.core.throttling`)."""
    return {code: OpenApiResponse(ErrorSerializer, description=ERROR_DESCRIPTIONS[code])
            for code in sorted({400, 401, 411, 413, 429, *codes})}


# -- OpenAPI links ------------------------------------------------------------------------------------
# drf-spectacular has no way to declare them, so apps declare them here and a postprocessing hook writes
# them into the responses: {operationId: {status: {link name: link object}}}.
_LINKS: dict[str, dict[str, dict[str, dict]]] = {}


def declare_links(operation_id: str, status: int, links: dict[str, dict]) -> None:
    """Links of one response, each built with `openapi_link`."""
    _LINKS.setdefault(operation_id, {}).setdefault(str(status), {}).update(links)


def openapi_link(operation_id: str, description: str, **parameters: str) -> dict:
    """`parameters` map the target's parameter names to runtime expressions, e.g. `"$response.body#/id"`."""
    return {"operationId": operation_id, "parameters": parameters, "description": description}


REQUEST_ID_HEADER = {
    "X-Request-ID": {
        "description": "The request's id, also in the server's logs: quote it when reporting a problem.",
        "required": True,
        "schema": {"type": "string"},
    }
}


def postprocess_request_id_header(result, generator, request, public):
    """Every answer carries `X-Request-ID` (RequestIdMiddleware); the schema says so for each."""
    result.setdefault("components", {}).setdefault("headers", {}).update(REQUEST_ID_HEADER)
    ref = {name: {"$ref": f"#/components/headers/{name}"} for name in REQUEST_ID_HEADER}
    for item in result.get("paths", {}).values():
        for operation in item.values():
            if isinstance(operation, dict):
                for response in operation.get("responses", {}).values():
                    response.setdefault("headers", {}).update(ref)
    return result


# The API reference's sections, in reading order. Views name their section with `extend_schema(tags=[…])`;
# those that do not get it from their path below. An operation left in drf-spectacular's default section
# (the path's first segment, here "v1") fails the schema generation, so a new endpoint cannot land unsorted.
API_SECTIONS = {
    "catalog": "Entities: list, read, export, facets, compare model versions; descriptor validation.",
    "locations": "Where descriptors come from: register, upload, refresh and remove locations.",
    "search": "One search over the catalog, docs and templates.",
    "lineage": "OpenLineage ingestion, the lineage graph (Marquez's shape), column lineage and impact analysis.",
    "deployments": "Where model versions serve, from CD pipelines' events.",
    "governance": "Approval requests: create, comment, decide, retry.",
    "scaffolder": "Software templates and their runs.",
    "docs": "Docs sites, API definitions and model cards.",
    "scorecards": "Scorecards, their results and rollups.",
    "slos": "Service level objectives and their error budgets.",
    "incidents": "Incidents, their timeline and postmortems.",
    "costs": "FOCUS cost imports and allocated costs.",
    "insights": "Usage events.",
    "feedback": "Feedback on pages, entities and runs; the roadmap.",
    "accounts": "Who you are and your API tokens.",
    "mlflow": "The MLflow registry's webhook.",
}
_SECTION_OF_PATH = [
    ("/api/v1/entities", "catalog"), ("/api/v1/entity-facets", "catalog"), ("/api/v1/validate-entity", "catalog"),
    ("/api/v1/locations", "locations"), ("/api/v1/refresh", "locations"), ("/api/v1/search", "search"),
    ("/api/v1/lineage", "lineage"), ("/api/v1/scaffolder/", "scaffolder"), ("/api/v1/techdocs/", "docs"),
    ("/api/v1/tokens", "accounts"), ("/api/v1/me", "accounts"), ("/api/v1/ping", "accounts"),
    ("/api/v1/webhooks/mlflow", "mlflow"),
]


def postprocess_tags(result, generator, request, public):
    """Each operation in one section of API_SECTIONS; the sections listed, described and ordered."""
    used = set()
    for path, item in result.get("paths", {}).items():
        for method, operation in item.items():
            if not isinstance(operation, dict):
                continue
            tags = operation.get("tags") or []
            if tags == ["v1"]:
                tags = [section for prefix, section in _SECTION_OF_PATH if path.startswith(prefix)][:1]
            unknown = [t for t in tags if t not in API_SECTIONS]
            if not tags or unknown:
                raise ValueError(f"OpenAPI: {method.upper()} {path} has no section of portal.core.api.API_SECTIONS "
                                 f"({unknown or 'none'}); name one with extend_schema(tags=[...])")
            operation["tags"] = tags
            used.update(tags)
    result["tags"] = [{"name": name, "description": text} for name, text in API_SECTIONS.items() if name in used]
    return result


def postprocess_links(result, generator, request, public):
    operations = {op.get("operationId"): op for item in result.get("paths", {}).values() for op in item.values()
                  if isinstance(op, dict)}
    for operation_id, by_status in _LINKS.items():
        if operation_id not in operations:
            continue  # not in this (possibly filtered) schema
        for status_code, links in by_status.items():
            missing = [link["operationId"] for link in links.values() if link["operationId"] not in operations]
            response = operations[operation_id].get("responses", {}).get(status_code)
            if response is None or missing:
                # A renamed operation must not leave a link that silently leads nowhere.
                raise ValueError(f"OpenAPI links of {operation_id} {status_code}: no such response or "
                                 f"target operation {missing}")
            response["links"] = links
    return result


class PageInfoSerializer(serializers.Serializer):
    nextCursor = serializers.CharField(allow_null=True, help_text="Pass as `cursor` for the next page.")


class FacetValueSerializer(serializers.Serializer):
    value = serializers.CharField()
    count = serializers.IntegerField()
