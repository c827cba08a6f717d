"""Catalog pages: list with facets, entity page with tabs, location registration and pages."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST, require_safe
from django_htmx.http import HttpResponseClientRedirect

from portal.accounts import permissions
from portal.core import usage
from portal.core.errors import error_response
from portal.core.limits import FORM, body_limit
from portal.core.numbers import row_id
from portal.core.usage import EventType

from . import experiments, extensions, feast_sync, recent, selectors, services
from .descriptors.errors import DescriptorError
from .descriptors.kinds import kind_label
from .filters import ORDERINGS, EntityFilter, TooManyValues, normalized
from .forms import SAMPLE_DESCRIPTOR, LocationForm
from .models import Location

PAGE_SIZE = 25
# Like Backstage, the list opens on what teams build and run (selectors.DEFAULT_KINDS); the directory
# (people, groups, location entities) and the scaffolder's templates are one click away (`?kind=user`,
# `?kind=all`, the scope bar).
DEFAULT_KINDS = selectors.DEFAULT_KINDS
# The sort menu's words for each order, ascending and descending. "Name" is the descriptor's
# metadata.name, which the list also shows under a title that differs from it.
ORDER_LABELS = {"name": ("Name (metadata.name), A–Z", "Name (metadata.name), Z–A"),
                "kind": ("Kind, A–Z", "Kind, Z–A"),
                "updated": ("Updated, oldest first", "Updated, newest first"),
                "lifecycle": ("Lifecycle, A–Z", "Lifecycle, Z–A")}


def _scoped(get) -> tuple:
    """The filters the list applies — the default kinds when none is asked for, none for `kind=all` —
    and the scope's name for the page. TooManyValues for a filter of more values than the list reads."""
    params = normalized(get)
    raw = params.get("kind")
    if raw is None:
        params["kind"] = ",".join(DEFAULT_KINDS)
        return params, "default"
    if raw.strip().lower() == "all":
        params.pop("kind")
        return params, "all"
    return params, raw.strip().lower()


@require_safe
def entity_list(request):
    base = selectors.entity_list(request.user)
    try:
        filters, scope = _scoped(request.GET)
    except TooManyValues as exc:
        return error_response(request, 400, "Bad request", f"{exc.key}: {exc}")
    fs = EntityFilter(filters, queryset=base, request=request)
    qs = fs.qs
    order = request.GET.get("order", "name")
    qs = qs.order_by(*ORDERINGS.get(order, ORDERINGS["name"]), "id")
    total, facet_counts, capped, sampled = selectors.list_counts(
        request.user, filters, qs, ["kind", "type", "lifecycle", "owner", "tag"])
    paginator = KnownCountPaginator(qs, PAGE_SIZE, count=total)
    try:
        page = paginator.get_page(request.GET.get("page"))
    except (ValueError, TypeError) as exc:
        raise Http404 from exc
    params = request.GET.copy()
    params.pop("page", None)
    context = {
        "page": page,
        "capped": capped,
        "sampled": sampled,
        "facets": _facet_links(facet_counts, params),
        "params": params,
        "query": params.urlencode(),
        "active": {k: v for k, v in request.GET.items() if k not in {"page", "order"} and v and (k, v) != ("kind", "all")},
        "order": order,
        "orderings": [(k, *ORDER_LABELS[k]) for k in ORDERINGS if not k.startswith("-")],
        "scope": scope,
        "may_register": permissions.may_register_locations(request.user),
    }
    template = "catalog/entity_list.html#results" if request.htmx and not request.htmx.boosted else "catalog/entity_list.html"
    response = render(request, template, context)
    response["Vary"] = "HX-Request"
    return response


class KnownCountPaginator(Paginator):
    """A paginator told the total, so it does not run its own COUNT(*)."""

    def __init__(self, *args, count: int, **kwargs):
        super().__init__(*args, **kwargs)
        self._known_count = count

    @property
    def count(self) -> int:  # type: ignore[override]
        return self._known_count


def _facet_links(facets: dict, params) -> dict:
    """Each facet value links to the list with that value toggled, keeping the other filters. A kind
    reads as pages name it ("Feature sets"); its link and `data-value` keep the key (`featureset`)."""
    for name, values in facets.items():
        for item in values:
            toggled = params.copy()
            current = params.get(name, "").lower()
            value = item["value"]
            param = value
            if name == "owner":
                item["label"] = param = value.replace("group:default/", "")
            elif name == "kind":
                item["label"] = kind_label(value, 2)
            item["active"] = current == str(value).lower() or (name == "owner" and current == param)
            if item["active"]:
                toggled.pop(name, None)
            else:
                toggled[name] = param
            item["href"] = "?" + toggled.urlencode()
    return facets


def _entity_or_404(request, kind: str, namespace: str, name: str):
    entity = selectors.entity_by_name(request.user, kind, namespace, name)
    if entity is None:
        raise Http404("No such entity")
    return entity


@require_safe
def entity_detail(request, kind: str, namespace: str, name: str, tab: str = "overview"):
    entity = _entity_or_404(request, kind, namespace, name)
    tabs = _tabs_for(entity)
    if tab not in {key for key, _ in tabs}:
        raise Http404("No such tab")
    recent.remember(request, entity)
    if tab == "overview" and not request.htmx:
        usage.record(EventType.ENTITY_VIEW, user=request.user, team=entity.owner_team_id, subject=entity.ref,
                       data={"kind": entity.kind_key})
    related = selectors.related_entities(request.user, entity)
    extension = extensions.TABS.get(tab)
    context = {
        "entity": entity,
        "tab": tab,
        "tabs": tabs,
        "extension_tab": extension.template if extension else None,
        "overview_panels": extensions.panels_for(request, entity, "overview") if tab == "overview" else [],
        "action_panels": extensions.panels_for(request, entity, "actions"),
        "related": related,
        "errors": selectors.entity_errors(entity),
        "starred": selectors.is_starred(request.user, entity),
        "can_edit": permissions.can(request.user, permissions.Action.EDIT, entity),
        "may_delete_orphan": entity.orphan and permissions.may_delete_orphan(request.user, entity),
    }
    status = 200
    if extension and extension.context:
        context.update(extension.context(request, entity))
        status = context.pop("tab_status", 200)  # a tab may refuse a bad parameter (400, naming it)
    if tab == "relations":
        try:
            depth = int(request.GET.get("depth", "1"))
        except ValueError:
            depth = 1
        context["depth"] = max(1, min(depth, 4))
        from .graph import layout

        context["graph"] = layout(selectors.relation_graph(request.user, entity, context["depth"]))
    if entity.kind_key == "model":
        context.update(_model_context(request, entity, tab))
    if entity.kind_key == "group":
        context["owned"] = selectors.entity_list(request.user).filter(
            owner_ref=entity.ref).order_by("kind_key", "name_key")[:100]
        context["members"] = related.get("hasMember", [])
    if entity.kind_key == "featureset":
        context["consumers"] = related.get("featuresConsumedBy", [])
        context["feast"] = feast_sync.freshness(entity.spec)
        context["source_datasets"] = related.get("consumesDataset", [])
        source = entity.spec.get("source") if isinstance(entity.spec.get("source"), dict) else {}
        context["source_address"] = experiments.dataset_address(str(source.get("namespace", "")),
                                                                 str(source.get("datasetName", "")))
    if entity.kind_key in {"featureset", "dataset"}:
        rows = entity.spec.get("features") if entity.kind_key == "featureset" else entity.spec.get("schema")
        context["schema_rows"] = rows if isinstance(rows, list) else []
    return render(request, "catalog/entity_detail.html", context, status=status)


def _model_context(request, entity, tab: str = "overview") -> dict:
    versions = selectors.model_versions(entity)
    selectors.attach_run_inputs(request.user, versions)
    job = None
    if sync := row_id(request.GET.get("sync", "")):  # the page a non-htmx "Sync now" redirected to
        job = selectors.mlflow_sync_job(entity, sync)
    if job is None and tab in SYNC_TABS:  # a sync still waiting or running (pressed before a reload): polled on
        job = selectors.pending_mlflow_sync_jobs(entity).first()
    return {
        "versions": versions,
        "versions_capped": len(versions) >= selectors.MODEL_VERSIONS_SHOWN,  # older ones are not shown
        # When the versions shown were stored: what the page can say of them before any MLflow sync
        # succeeded (versions may come from elsewhere than the sync, e.g. seeded by a test or a benchmark).
        "versions_stored_at": max((v.synced_at for v in versions), default=None),
        "mlflow_state": selectors.mlflow_state(),
        "mlflow": selectors.model_summary(entity, versions),
        "may_sync": permissions.may_sync_mlflow_model(request.user, entity),
        "sync_job": job,
    }


SYNC_TABS = frozenset({"overview", "versions"})  # the model tabs that show "Sync from MLflow now" and its status


@require_safe
def model_compare(request, kind: str, namespace: str, name: str):
    """2–10 versions of one model side by side (`?versions=2,3`, the first is the baseline). Versions of
    other models cannot be named here: a version number means something only within its model."""
    entity = _entity_or_404(request, kind, namespace, name)
    if entity.kind_key != "model":
        raise Http404("Only models have versions to compare")
    context = {"entity": entity, "min": experiments.MIN_COMPARED, "max": experiments.MAX_COMPARED}
    if not any(v.strip(", ") for v in request.GET.getlist("versions")):  # the page opened bare: the picker alone
        return render(request, "catalog/model_compare.html", context | {"choices": selectors.model_versions(entity)})
    try:
        wanted = experiments.parse_versions(request.GET.getlist("versions"))
        context["cmp"] = experiments.comparison(request.user, entity, wanted)
    except experiments.CompareError as exc:
        # The API names the parameter ("versions: …"); the page's picker is that parameter.
        context.update(error=str(exc).removeprefix("versions: "), choices=selectors.model_versions(entity))
        return render(request, "catalog/model_compare.html", context, status=400)
    except experiments.VersionsMissing as exc:
        raise Http404(str(exc)) from exc
    return render(request, "catalog/model_compare.html", context)


@body_limit(FORM)
@require_POST
def model_sync(request, kind: str, namespace: str, name: str):
    """"Sync from MLflow now": queue a targeted MLflow sync; htmx gets the live status fragment."""
    entity = _entity_or_404(request, kind, namespace, name)
    if entity.kind_key != "model":
        raise Http404("Only models are synced from MLflow")
    job = services.mlflow_sync_request(entity=entity, actor=request.user)
    if request.htmx:
        return _sync_status(request, entity, job, status=202)
    return redirect(f"{entity.get_absolute_url()}versions/?sync={job.pk}")


@require_safe
def model_sync_status(request, kind: str, namespace: str, name: str, job_id: int):
    entity = _entity_or_404(request, kind, namespace, name)
    job = selectors.mlflow_sync_job(entity, job_id)
    if job is None:
        raise Http404("No such sync")
    return _sync_status(request, entity, job)


def _sync_status(request, entity, job, status: int = 200):
    context = {"entity": entity, "sync_job": job,
               "may_sync": permissions.may_sync_mlflow_model(request.user, entity)}
    return render(request, "catalog/inc/mlflow_sync.html", context, status=status)


def _tabs_for(entity) -> list[tuple[str, str]]:
    tabs = [("overview", "Overview"), ("relations", "Relations")]
    extra = {
        "model": [("versions", "Versions"), ("lineage", "Features & data")],
        "featureset": [("features", "Schema & consumers")],
        "pipeline": [("lineage", "Inputs & outputs")],
        "dataset": [("features", "Schema")],
        "group": [("members", "Members & ownership")],
    }
    builtin = tabs + extra.get(entity.kind_key, [])
    registered = extensions.tabs_for(entity)
    replaced = {t.key for t in registered}
    return [t for t in builtin if t[0] not in replaced] + [(t.key, t.label) for t in registered]


@body_limit(FORM)
@require_POST
def entity_star(request, kind: str, namespace: str, name: str):
    entity = _entity_or_404(request, kind, namespace, name)
    starred = request.POST.get("starred") == "1"
    services.entity_star(user=request.user, entity=entity, starred=starred)
    if request.htmx:
        return render(request, "catalog/entity_detail.html#star", {"entity": entity, "starred": starred})
    return redirect(entity.get_absolute_url())


@body_limit(FORM)
@require_http_methods(["GET", "POST"])
def location_register(request):
    if not permissions.may_register_locations(request.user):
        raise PermissionDenied("Registering locations needs the member role (or higher) in a team.")
    form = LocationForm(request.POST or None)
    plan = None
    status = 200
    if request.method == "POST" and form.is_valid():
        confirm = request.POST.get("confirm") == "1"
        try:
            plan = services.location_register(
                target=form.cleaned_data["target"], actor=request.user,
                file_roots=settings.PLINTH_CATALOG_FILE_ROOTS, dry_run=not confirm,
            )
        except DescriptorError as exc:
            form.add_error("target", exc.message)
            status = 400
        except services.OwnershipRefused as exc:
            form.add_error("target", "Nothing was registered: these descriptors name owners you may not claim.")
            plan, status = exc.plan, 403
        else:
            if confirm:
                messages.success(request, f"Registered {plan.target}: {len(plan.added)} added, "
                                          f"{len(plan.changed)} changed, {len(plan.errors)} errors.")
                url = plan.location.get_absolute_url()
                return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
    elif request.method == "POST":
        status = 400
    return render(request, "catalog/location_register.html",
                  {"form": form, "plan": plan, "sample": SAMPLE_DESCRIPTOR}, status=status)


@require_safe
def location_list(request):
    locations = selectors.visible_locations(request.user).order_by("-created_at")
    return render(request, "catalog/location_list.html",
                  {"locations": locations, "may_register": permissions.may_register_locations(request.user)})


@require_safe
def location_detail(request, pk: int):
    location = _location_or_404(request, pk)
    entities = selectors.entity_list(request.user).filter(location=location).order_by("kind_key", "name_key")
    context = {
        "location": location,
        "entities": entities[:200],
        "entity_total": entities.count(),
        "errors": location.errors.all()[:200],
        **_location_rights(request.user, location),
    }
    return render(request, "catalog/location_detail.html", context)


def _location_or_404(request, pk: int) -> Location:
    location = selectors.location_for(request.user, pk)
    if location is None:
        raise Http404("No such location")
    return location


def _location_rights(user, location: Location) -> dict:
    """What the location page offers (the services enforce the same rules)."""
    owners = selectors.location_owner_team_ids(location)
    return {"may_unregister": permissions.may_unregister_location(user, location, owners),
            "may_refresh": permissions.may_refresh_location(user, location, owners)}


@body_limit(FORM)
@require_http_methods(["GET", "POST"])
def location_unregister(request, pk: int):
    location = _location_or_404(request, pk)
    if not _location_rights(request.user, location)["may_unregister"]:
        raise PermissionDenied("Only the registrant, maintainers of every team owning its entities and platform "
                               "admins may unregister this location.")
    if request.method == "POST":
        refs = services.location_unregister(location=location, actor=request.user)
        messages.success(request, f"Unregistered {location.target}; removed {len(refs)} entities.")
        return redirect("catalog:locations")
    entities = location.entities.order_by("kind_key", "name_key")
    return render(request, "catalog/location_unregister.html",
                  {"location": location, "entities": entities[:500], "entity_total": entities.count()})


@body_limit(FORM)
@require_http_methods(["GET", "POST"])
def entity_delete_orphan(request, kind: str, namespace: str, name: str):
    """Delete an orphan: a confirmation page, then the deletion (services.orphan_delete)."""
    entity = _entity_or_404(request, kind, namespace, name)
    if not permissions.may_delete_orphan(request.user, entity):
        raise PermissionDenied("Only maintainers and admins of the team that owns it, and platform admins, may "
                               "delete an orphan.")
    if not entity.orphan:
        return render(request, "catalog/entity_delete_orphan.html", {"entity": entity, "not_orphan": True},
                      status=409)
    if request.method == "POST":
        try:
            ref = services.orphan_delete(entity=entity, actor=request.user)
        except services.NotAnOrphan as exc:  # its location took it back since the page was shown
            return render(request, "catalog/entity_delete_orphan.html",
                          {"entity": entity, "not_orphan": True, "error": str(exc)}, status=409)
        messages.success(request, f"Deleted the orphan {ref}.")
        return redirect("catalog:list")
    return render(request, "catalog/entity_delete_orphan.html",
                  {"entity": entity, "referrers": selectors.orphan_referrers(request.user, entity)})


@body_limit(FORM)
@require_POST
def location_refresh(request, pk: int):
    location = _location_or_404(request, pk)
    plan = services.location_refresh(location=location, actor=request.user)
    messages.success(request, f"Refreshed: {len(plan.added)} added, {len(plan.changed)} changed, "
                              f"{len(plan.removed)} removed, {len(plan.errors)} errors.")
    return redirect(location.get_absolute_url())
