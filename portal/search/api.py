"""`GET /api/v1/search`: ranked, permission-filtered results with facets and a cursor."""

from __future__ import annotations

import hashlib

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework.decorators import api_view
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from portal.accounts import permissions
from portal.core import pagination
from portal.core.api import error_responses

from . import api_schema, selectors, services
from .models import SearchQuery
from .query import normalize

MAX_LIMIT = 100
MAX_OFFSET = 1000
FILTER_PARAMS = ("kind", "type", "owner", "lifecycle", "tag")
EXPLAIN_VALUES = {"1": True, "true": True, "0": False, "false": False}


def _fingerprint(request) -> str:
    parts = [normalize(request.query_params.get("q", ""))] + [
        ",".join(sorted(request.query_params.getlist(p))) for p in FILTER_PARAMS
    ]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:12]


def _offset(value) -> int:
    offset = pagination.integer(value)
    if not 0 < offset <= MAX_OFFSET:
        raise ValueError
    return offset


def _decode_cursor(raw: str, fingerprint: str) -> int:
    """The offset a cursor of this query and these filters points to (a 400 naming `cursor` for
    anything else: the shared decoder's checks, size and nesting included)."""
    return pagination.decode_cursor(raw, {"o": _offset, "f": pagination.constant(fingerprint)})["o"]


def _explain_requested(raw: str | None) -> bool:
    if raw is None:
        return False
    value = raw.strip().lower()
    if value not in EXPLAIN_VALUES:
        raise ValidationError(
            {"explain": "Use explain=1 (or true) to see the score components, 0 (or false) not to."}
        )
    return EXPLAIN_VALUES[value]


def _explain(hit) -> dict:
    """score = (1 + sum of evidence + proximity + nameSignal) × (quality + popularity) × personal."""
    c = hit.components
    return {
        "score": hit.score,
        "evidence": {k.removeprefix("evidence_"): v for k, v in c.items() if k.startswith("evidence_")},
        "proximity": c["proximity"],
        "nameSignal": c["name_signal"],
        "quality": c["quality"],
        "popularity": c["popularity"],
        "personal": c["personal"],
    }


def _encode_cursor(offset: int, fingerprint: str) -> str:
    return pagination.encode_cursor({"o": offset, "f": fingerprint})


EXAMPLE = {
    "query": {
        "text": "fraud kind:model",
        "terms": ["fraud"],
        "phrases": [],
        "excluded": [],
        "filters": {"kind": ["model"]},
        "excludedFilters": {},
        "correctedQuery": "",
        "notes": [],
    },
    "items": [
        {
            "key": "model:default/fraud-detector",
            "kind": "Model",
            "name": "fraud-detector",
            "title": "Fraud detector",
            "owner": "fraud-ml",
            "lifecycle": "production",
            "type": "classifier",
            "tags": ["fraud", "classification", "pii"],
            "visibility": "internal",
            "url": "/catalog/model/default/fraud-detector/",
            "snippet": "Gradient-boosted classifier scoring each card transaction for <mark>fraud</mark>.",
        }
    ],
    "facets": {
        "kind": [{"value": "model", "count": 1}],
        "type": [{"value": "classifier", "count": 1}],
        "owner": [{"value": "fraud-ml", "count": 1}],
        "lifecycle": [{"value": "production", "count": 1}],
        "tag": [{"value": "fraud", "count": 1}],
    },
    "totalItems": 1,
    "totalIsLowerBound": False,
    "pageInfo": {"nextCursor": None},
    "tookMs": 3.1,
}


@extend_schema(
    summary="Search the portal",
    description=(
        "Ranked full-text search over everything the portal indexes (catalog entities now), limited to what "
        "the caller may see — results, facet counts and totals alike. `q` uses the search syntax: words "
        '(prefix-matched), `"quoted phrases"`, `kind:` `owner:` `tag:` `lifecycle:` `type:` filters and '
        "`-word` exclusions; small typos are corrected when nothing matches (`query.correctedQuery`). The "
        "filter parameters add to filters typed in `q`; repeat one or separate values with commas for OR. "
        "`totalItems` and facet counts are exact up to 1,000 matches; beyond, `totalIsLowerBound` is true and "
        "they count the first 1,000. `snippet` is HTML: everything is escaped except `<mark>` around matched words. "
        "Results are ordered by a relevance score (field-weighted evidence, name signal, quality and personal "
        "boosts; see docs/search.md); `explain=1` adds each item's score components and, in `ranking`, how "
        "the page was ranked — for platform admins only, other callers get the plain response."
    ),
    parameters=[
        OpenApiParameter("q", str, description="The query, e.g. `fraud detec kind:model -deprecated`."),
        OpenApiParameter("kind", str, many=True, description="Only these kinds, e.g. `model`."),
        OpenApiParameter("type", str, many=True),
        OpenApiParameter("owner", str, many=True),
        OpenApiParameter("lifecycle", str, many=True),
        OpenApiParameter("tag", str, many=True),
        OpenApiParameter(
            "limit",
            {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
            description=f"Page size, 1–{MAX_LIMIT} (default 20).",
        ),
        OpenApiParameter(
            "cursor",
            str,
            description=f"`pageInfo.nextCursor` of the previous page (up to {MAX_OFFSET} results deep).",
        ),
        OpenApiParameter(
            "explain",
            str,
            enum=list(EXPLAIN_VALUES),
            description="`1`: add each item's `explain` (score and its components) and the response's `ranking` "
            "(platform admins only; ignored for anyone else).",
        ),
    ],
    responses={200: api_schema.SearchResultsSerializer, **error_responses()},
    examples=[OpenApiExample("Results", value=EXAMPLE, response_only=True)],
)
@api_view(["GET", "HEAD"])
def search(request):
    limit = pagination.page_size(request.query_params, default=20, maximum=MAX_LIMIT)
    fingerprint = _fingerprint(request)
    raw_cursor = request.query_params.get("cursor")
    offset = _decode_cursor(raw_cursor, fingerprint) if raw_cursor else 0
    filters = {p: request.query_params.getlist(p) for p in FILTER_PARAMS if request.query_params.getlist(p)}
    text = request.query_params.get("q", "")
    explain = _explain_requested(request.query_params.get("explain")) and permissions.may_explain_search(
        request.user
    )
    results = selectors.search(request.user, text, filters=filters, limit=limit, offset=offset)
    if not offset:
        services.query_record(
            user=request.user,
            text=text,
            via=SearchQuery.Via.API,
            result_count=results.total or 0,
            latency_ms=results.elapsed_ms,
        )
    q = results.query
    next_offset = offset + len(results.hits)
    body = {
        "query": {
            "text": q.text,
            "terms": q.terms,
            "phrases": q.phrases,
            "excluded": q.excluded,
            "filters": q.filters,
            "excludedFilters": q.excluded_filters,
            "correctedQuery": results.corrected,
            "notes": results.notes,
        },
        "items": [
            {
                "key": h.key,
                "kind": h.kind_label,
                "name": h.name,
                "title": h.title,
                "owner": h.owner,
                "lifecycle": h.lifecycle,
                "type": h.type,
                "tags": h.tags,
                "visibility": h.visibility,
                "url": h.url,
                "snippet": str(h.snippet),
                **({"explain": _explain(h)} if explain else {}),
            }
            for h in results.hits
        ],
        "facets": results.facets,
        "totalItems": results.total or 0,
        "totalIsLowerBound": results.total_capped,
        "pageInfo": {
            "nextCursor": _encode_cursor(next_offset, fingerprint)
            if results.has_more and next_offset <= MAX_OFFSET
            else None
        },
        "tookMs": results.elapsed_ms,
    }
    if explain:
        body["ranking"] = results.ranking
    return Response(body)
