"""Search pages: results with facets, the typeahead fragment, click-through, admin analytics."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.http import require_safe
from django_htmx.middleware import HtmxDetails

from portal.accounts import permissions

from . import analytics, selectors, services
from .models import SearchQuery

PAGE_SIZE = 20
MAX_PAGES = 50
FACET_PARAMS = ("kind", "type", "owner", "lifecycle", "tag")


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


def _page_number(raw: str | None) -> int:
    try:
        return min(max(int(raw or 1), 1), MAX_PAGES)
    except ValueError:
        return 1


def _facet_links(facets: dict, params) -> dict:
    """Each value links to the results with that value toggled, keeping the query and other filters."""
    for name, values in facets.items():
        current = params.get(name, "")
        for item in values:
            toggled = params.copy()
            item["active"] = current == str(item["value"])
            if item["active"]:
                toggled.pop(name, None)
            else:
                toggled[name] = item["value"]
            item["href"] = "?" + toggled.urlencode()
    return facets


def _last_page(results) -> int:
    """The last page with hits: the reachable results (see `Results.reachable`), at most MAX_PAGES."""
    return min(MAX_PAGES, max(1, (results.reachable + PAGE_SIZE - 1) // PAGE_SIZE))


@require_safe
def search_page(request: HtmxHttpRequest) -> HttpResponse:
    text = request.GET.get("q", "")
    page = _page_number(request.GET.get("page"))
    filters = {name: request.GET[name] for name in FACET_PARAMS if request.GET.get(name)}
    results = selectors.search(
        request.user, text, filters=filters, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
    )
    record = None
    if page == 1 and not request.htmx:
        record = services.query_record(
            user=request.user,
            text=text,
            via=SearchQuery.Via.PAGE,
            result_count=results.total or 0,
            latency_ms=results.elapsed_ms,
        )
    last_page = _last_page(results)
    if page > last_page:  # past the end (an old link, a typed URL): the last page instead of an empty one
        page = last_page
        results = selectors.search(
            request.user, text, filters=filters, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
        )
    params = request.GET.copy()
    params.pop("page", None)
    context = {
        "q": text,
        "results": results,
        "page": page,
        "last_page": last_page,
        "query_id": record.pk if record else "",
        "facets": _facet_links(results.facets, params),
        "query": params.urlencode(),
        "active": {k: v for k, v in filters.items()},
        "previous_page": page - 1 if page > 1 else None,
        "next_page": page + 1 if page < last_page else None,
    }
    template = (
        "search/search_page.html#results"
        if request.htmx and not request.htmx.boosted
        else "search/search_page.html"
    )
    response = render(request, template, context)
    response["Vary"] = "HX-Request"
    return response


@require_safe
def typeahead(request: HtmxHttpRequest) -> HttpResponse:
    text = request.GET.get("q", "")
    results, groups = selectors.typeahead(request.user, text)
    # A fragment with links only (no form, no navigation): rendered without the context processors,
    # which would add the navigation's database queries to every keystroke.
    html = render_to_string(
        "search/typeahead.html",
        {
            "q": text.strip(),
            "results": results,
            "groups": groups,
            "all_url": "?" + urlencode({"q": text.strip()}),
        },
    )
    return HttpResponse(html)


@require_safe
def click(request: HttpRequest) -> HttpResponse:
    """Record which result answered a query, then go there. Only visible documents' own URLs."""
    key = request.GET.get("key", "")
    doc = selectors.visible_document(request.user, key) if key else None
    if doc is None or not url_has_allowed_host_and_scheme(doc.url, allowed_hosts=None):
        raise Http404("No such result")
    try:
        position = int(request.GET.get("pos", "")) if request.GET.get("pos") else None
        query_id = int(request.GET.get("qid", "")) if request.GET.get("qid") else None
    except ValueError:
        position = query_id = None
    via = request.GET.get("via", SearchQuery.Via.PAGE)
    services.query_click(
        user=request.user,
        query_id=query_id,
        text=request.GET.get("q", ""),
        key=doc.key,
        position=position,
        via=via if via in SearchQuery.Via.values else SearchQuery.Via.PAGE,
    )
    return HttpResponseRedirect(doc.url)


@require_safe
def insights(request: HttpRequest) -> HttpResponse:
    """Top and zero-result queries of the last 30 days: platform admins only."""
    if not permissions.may_see_analytics(request.user):
        raise PermissionDenied("Search analytics are for platform admins.")
    return render(
        request,
        "search/insights.html",
        {
            "summary": analytics.summary(),
            "top": analytics.top_queries(),
            "zero": analytics.zero_result_queries(),
        },
    )
