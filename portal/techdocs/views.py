"""Docs pages: the index, a site's pages (sidebar nav, on-page TOC, build status, edit link), images,
and the rebuild button. Every lookup goes through the catalog's permission-filtered selector, so a
private entity of another team 404s exactly like a missing one."""

from __future__ import annotations

from urllib.parse import quote

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, HttpResponsePermanentRedirect
from django.shortcuts import redirect, render
from django.utils.encoding import iri_to_uri
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST, require_safe

from portal.accounts import permissions
from portal.core import csp, usage
from portal.core.limits import FORM, body_limit
from portal.core.usage import EventType

from . import builder, definitions, selectors, services
from .models import docs_url

# The portal's CSP, tightened: documentation may not even use data: images, nor start workers.
DOCS_CSP = {"img_src": "'self'", "worker_src": "'none'"}
SVG_CSP = "default-src 'none'; style-src 'unsafe-inline'; sandbox"
SITES_PAGE = 100  # rows of the index's docs table per page
APIS_SHOWN = 200  # API entities listed on the index; the catalog's list (kind=api) pages through them all
API_COUNT_CAP = 10_000  # the "of M" count stops here ("10,000+"), as the catalog's live counts do


def _entity(request, kind: str, namespace: str, name: str):
    entity = selectors.entity_for_docs(request.user, kind, namespace, name)
    if entity is None:
        raise Http404("No such entity")
    return entity


def _flat_toc(tokens: list[dict]) -> list[dict]:
    out = []
    for t in tokens:
        if 2 <= t["level"] <= 3:
            out.append(t)
        out.extend(_flat_toc(t.get("children") or []))
    return out


def edit_link(site, page) -> dict:
    """{"url": ...} for a web editor, or {"path": ...} for a local source file."""
    if site.edit_base and page is not None:
        return {"url": site.edit_base + quote(page.source_path)}  # faq#1.md is a file, not a fragment
    if site.edit_url:
        return {"url": site.edit_url}
    if page is not None and site.source_dir:
        return {"path": f"{site.source_dir}/{page.source_path}"}
    return {}


@require_safe
def index(request):
    """Every visible site, a page of SITES_PAGE at a time; the first APIS_SHOWN APIs, and how many there
    are when that is not all of them. Two reads and at most two counts whatever the catalog's size."""
    sites_page = Paginator(selectors.visible_sites(request.user), SITES_PAGE).get_page(request.GET.get("page"))
    sites = list(sites_page.object_list)
    plinth_site = (sites[0] if sites_page.number == 1 and sites and sites[0].entity.ref in selectors.PLINTH_REFS
                   else None)  # listed first
    api_qs = selectors.visible_apis(request.user)
    apis = list(api_qs[:APIS_SHOWN])
    api_total = len(apis) if len(apis) < APIS_SHOWN else api_qs.order_by()[:API_COUNT_CAP + 1].count()
    query = request.GET.copy()
    query.pop("page", None)
    context = {"sites": sites, "page": sites_page, "query": query.urlencode(), "apis": apis,
               "api_total": min(api_total, API_COUNT_CAP), "api_total_capped": api_total > API_COUNT_CAP,
               "plinth_site": plinth_site, "may_register": permissions.may_register_locations(request.user)}
    response = render(request, "techdocs/index.html", context)
    response["Content-Security-Policy"] = csp.policy(request, **DOCS_CSP)
    return response


def _with_slash(request, entity, path: str) -> HttpResponsePermanentRedirect | None:
    """A page's URL typed or pasted without its trailing slash (the catch-all page pattern matches it, so
    Django's APPEND_SLASH never does): a permanent redirect to the page's address, query kept (the
    browser keeps a #fragment), when that page exists; None otherwise, and the caller 404s as for any
    missing page. Only reached for an entity the user may see."""
    if not path or path.endswith("/") or not selectors.page_exists(entity, path + "/"):
        return None
    target = docs_url(entity, path + "/")
    if query := request.META.get("QUERY_STRING", ""):
        target += "?" + iri_to_uri(query)
    response = HttpResponsePermanentRedirect(target)
    response["Cache-Control"] = "private"  # whether it exists depends on who asks
    return response


@require_safe
def page(request, kind: str, namespace: str, name: str, path: str = ""):
    entity = _entity(request, kind, namespace, name)
    doc = selectors.page_for(entity, path)
    site = doc.site if doc is not None else None
    if doc is None:
        if path and (slashed := _with_slash(request, entity, path)) is not None:
            return slashed
        site = selectors.site_for(entity)
        has_ref = bool(builder.techdocs_ref(entity))
        if path or (site is None and not has_ref):
            raise Http404("No such page")
        first = site.pages.order_by("order").values_list("path", flat=True).first() if site else None
        if first is not None:  # pages exist, but no index.md: open the first one
            return redirect("techdocs:page", entity.kind_key, entity.namespace, entity.name, first)
    if doc is not None:
        usage.record(EventType.DOCS_VIEW, user=request.user, team=entity.owner_team_id,
                       subject=f"{entity.ref}/{doc.path}"[:300], data={"entity": entity.ref})
    context = {
        "entity": entity, "site": site, "doc": doc,
        "toc": _flat_toc(doc.toc) if doc else [],
        "nav_html": mark_safe(builder.mark_current(site.nav_html, path)) if site else "",  # noqa: S308 (built escaped)
        "edit": edit_link(site, doc) if site else {},
        "can_rebuild": permissions.can(request.user, permissions.Action.EDIT, entity),
        "page_errors": [e for e in (site.errors if site else [])
                        if doc and e.get("path") == doc.source_path and e.get("message") != doc.error],
    }
    response = render(request, "techdocs/page.html", context)
    response["Content-Security-Policy"] = csp.policy(request, **DOCS_CSP)
    return response


@require_safe
def asset(request, kind: str, namespace: str, name: str, path: str):
    entity = _entity(request, kind, namespace, name)
    item = selectors.asset_for(entity, path)
    if item is None:
        raise Http404("No such image")
    response = HttpResponse(bytes(item.data), content_type=item.content_type)
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, max-age=300"
    response["Content-Disposition"] = "inline"
    response["Content-Security-Policy"] = SVG_CSP
    return response


@require_safe
def definition_source(request, kind: str, namespace: str, name: str):
    """An API definition's highlighted source, for the Definition tab's folded Source section to fetch
    when opened (htmx); anything else is sent to the tab itself."""
    entity = _entity(request, kind, namespace, name)
    if entity.kind_key != "api":
        raise Http404("No such definition")
    if not request.htmx:
        return redirect("catalog:entity-tab", entity.kind_key, entity.namespace, entity.name, "definition")
    response = render(request, "techdocs/definition_source.html", {"td_def": definitions.for_entity(entity)})
    response["Vary"] = "HX-Request"
    return response


@body_limit(FORM)
@require_POST
def rebuild(request, kind: str, namespace: str, name: str):
    entity = _entity(request, kind, namespace, name)
    services.docs_rebuild(actor=request.user, entity=entity)
    messages.success(request, "A rebuild of these docs was queued; reload in a moment.")
    return redirect("techdocs:site", entity.kind_key, entity.namespace, entity.name)
