"""Incident pages: the list (filters by status, severity, team and source; htmx swaps the results), the
"open an incident" form (also on each entity's Incidents tab), one incident with its timeline, and the
responders' actions (status, note, postmortem: Post/Redirect/Get). Thin: services write, selectors read,
permissions decide."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from portal.accounts import permissions
from portal.accounts.models import Team
from portal.core.limits import COMMENT, body_limit

from . import conf, selectors, services
from .api import postmortem_dict
from .filters import STATUS_CHOICES, IncidentFilter
from .models import Severity, Source

PAGE = 50


@require_safe
def incident_list(request: HttpRequest) -> HttpResponse:
    params = request.GET.copy()
    if "status" not in params:
        params["status"] = "active"  # what needs attention, unless the reader asks for more
    filters = IncidentFilter(params, queryset=selectors.visible_incidents(request.user), request=request)
    problems = {} if filters.is_valid() else {k: " ".join(v) for k, v in filters.errors.items()}
    qs = filters.qs if not problems else selectors.visible_incidents(request.user).none()
    page = Paginator(selectors.listed(qs, request.user).order_by("severity", "-opened_at", "-id"), PAGE).get_page(
        request.GET.get("page"))
    days = int(conf.get("METRICS_DAYS"))
    since = timezone.now() - timedelta(days=days)
    # Response times over every status: under the default "open or acknowledged" no incident is resolved,
    # and MTTR read "—" on the page people open first. The other filters (severity, team, source) apply.
    any_status = params.copy()
    any_status["status"] = ""
    recent = (IncidentFilter(any_status, queryset=selectors.visible_incidents(request.user), request=request).qs
              .filter(opened_at__gte=since) if not problems else qs)
    numbers = selectors.figures(list(recent.values_list("status", "opened_at", "acknowledged_at", "resolved_at")))
    query = params.copy()
    query.pop("page", None)
    chosen = {k: params.get(k, "") for k in ("status", "severity", "team", "source")}
    teams = [(name, name) for name in Team.objects.order_by("name").values_list("name", flat=True)]
    # The filter bar's selects, one (field, label, options, chosen value) each.
    choices = [("status", "Status", STATUS_CHOICES), ("severity", "Severity", Severity.choices),
               ("team", "Team", teams), ("source", "Source", Source.choices)]
    context = {
        "page": page, "rows": [(i, selectors.visible_links(i)) for i in page.object_list], "params": chosen,
        "filter_selects": [(name, label, options, chosen[name]) for name, label, options in choices],
        "problems": problems, "query": query.urlencode(), "figures": numbers, "days": days,
        "may_open": permissions.may_open_incident(request.user),
    }
    template = "incidents/list.html#results" if getattr(request, "htmx", False) else "incidents/list.html"
    response = render(request, template, context, status=400 if problems else 200)
    patch_vary_headers(response, ["HX-Request"])
    return response


def _own_teams(user) -> list[str]:
    """Teams the user may open incidents for (every team for platform admins)."""
    ids = permissions.editable_team_ids(user)
    qs = Team.objects.all() if ids is None else Team.objects.filter(pk__in=ids)
    return list(qs.order_by("name").values_list("name", flat=True))


def _form_values(request: HttpRequest) -> dict:
    source = request.POST if request.method == "POST" else request.GET
    return {name: source.get(name, "") for name in ("title", "severity", "entity", "team", "summary")}


@body_limit(COMMENT)
@require_http_methods(["GET", "POST"])
def new(request: HttpRequest) -> HttpResponse:
    """Open an incident by hand (the entity's Incidents tab posts here too)."""
    if request.method == "GET" and not permissions.may_open_incident(request.user):
        raise PermissionDenied("Opening incidents needs a member, maintainer or admin role in a team")
    values = _form_values(request)  # a POST is decided by the service: a hidden entity 404s before the role 403s
    error = field = ""
    status = 200
    if request.method == "POST":
        entities = [r.strip() for r in values["entity"].split(",") if r.strip()]
        try:
            incident, _ = services.incident_open(actor=request.user, title=values["title"], severity=values["severity"],
                                                 entities=entities, team=values["team"] or None,
                                                 summary=values["summary"])
        except services.IncidentError as exc:
            error, field, status = exc.message, exc.field, exc.status  # 404: missing and hidden alike
        else:
            messages.success(request, f"Incident #{incident.pk} is open; {incident.owner_team.name if incident.owner_team else 'the platform admins'} "
                                      "will be notified.")
            return redirect(incident.get_absolute_url())
    return render(request, "incidents/new.html", {
        "values": values, "error": error, "field": field, "severities": Severity.choices,
        "max_title": conf.get("MAX_TITLE_CHARS"), "team_names": _own_teams(request.user),
    }, status=status)


def _context(request: HttpRequest, incident, **extra) -> dict:
    postmortem, hidden = postmortem_dict(incident)
    return {
        "incident": incident, "links": selectors.visible_links(incident),
        "may_respond": permissions.may_respond_incident(request.user, incident),
        "postmortem": postmortem, "postmortem_hidden": hidden, "max_chars": conf.get("MAX_TEXT_CHARS"), **extra,
    }


@require_safe
def detail(request: HttpRequest, pk: int) -> HttpResponse:
    incident = selectors.incident_detail(request.user, pk)
    if incident is None:
        raise Http404("No such incident")
    return render(request, "incidents/detail.html", _context(request, incident))


def _visible_or_404(request: HttpRequest, pk: int) -> None:
    """A responder's action on an incident that is missing or hidden from the user is a 404 whatever
    was posted: looked up before the input is checked, so that a refused input never says more."""
    if not selectors.visible_incidents(request.user).filter(pk=pk).exists():
        raise Http404("No such incident")


def _refused(request: HttpRequest, pk: int, exc: services.IncidentError) -> HttpResponse:
    if exc.status == 404 and exc.field != "postmortem":
        raise Http404(exc.message)
    if exc.status == 403:
        messages.error(request, exc.message)
        return redirect("incidents:detail", pk)
    incident = selectors.incident_detail(request.user, pk)
    if incident is None:  # gone (or hidden) since the action was refused
        raise Http404("No such incident")
    drafts = {k: request.POST.get(k, "") for k in ("note", "text", "url")}
    return render(request, "incidents/detail.html", _context(request, incident, error=exc.message, error_field=exc.field,
                                                             drafts=drafts), status=exc.status)


@body_limit(COMMENT)
@require_POST
def set_status(request: HttpRequest, pk: int) -> HttpResponse:
    _visible_or_404(request, pk)
    try:
        incident, changed = services.incident_transition(actor=request.user, incident_id=pk,
                                                         status=request.POST.get("status", ""),
                                                         note=request.POST.get("note", ""))
    except services.IncidentError as exc:
        return _refused(request, pk, exc)
    if changed:
        messages.success(request, f"Incident #{pk} is {incident.get_status_display().lower()}.")
    else:
        messages.info(request, f"Incident #{pk} was already {incident.get_status_display().lower()}.")
    return redirect("incidents:detail", pk)


@body_limit(COMMENT)
@require_POST
def note(request: HttpRequest, pk: int) -> HttpResponse:
    _visible_or_404(request, pk)
    try:
        services.incident_note(actor=request.user, incident_id=pk, text=request.POST.get("text", ""))
    except services.IncidentError as exc:
        return _refused(request, pk, exc)
    messages.success(request, "Note added to the timeline.")
    return redirect("incidents:detail", pk)


@body_limit(COMMENT)
@require_POST
def postmortem(request: HttpRequest, pk: int) -> HttpResponse:
    _visible_or_404(request, pk)
    try:
        incident = services.incident_set_postmortem(actor=request.user, incident_id=pk, url=request.POST.get("url", ""))
    except services.IncidentError as exc:
        return _refused(request, pk, exc)
    messages.success(request, "Postmortem linked." if incident.postmortem_entity_id else "Postmortem link removed.")
    return redirect("incidents:detail", pk)
