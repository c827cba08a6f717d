"""The insights app's pages: the per-user analytics opt-out (account area), and the Insights dashboards —
one view serves every dashboard (its slug comes from the URL map), as HTML or, with `?format=csv`, as a
CSV download of the same filters."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_safe

from portal.accounts import permissions
from portal.accounts.models import Team
from portal.core.limits import FORM, body_limit

from . import capture, selectors, services
from .dashboards import BY_SLUG, DASHBOARDS
from .export import tables_to_csv
from .filters import GROUPINGS, PRESETS, FilterError, read_filters


@body_limit(FORM)
@require_http_methods(["GET", "POST"])
def preferences(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        choice = request.POST.get("choice")
        if choice == "out":
            services.analytics_opt_out(user=request.user)
            messages.success(request, "You are no longer counted individually.")
        elif choice == "in":
            services.analytics_opt_in(user=request.user)
            messages.success(request, "You are counted individually again.")
        else:
            return HttpResponseBadRequest("choice: must be 'out' or 'in'")
        return redirect("insights-core:preferences")
    context = {"opted_out": selectors.is_opted_out(request.user), "analytics_on": capture.enabled()}
    response = render(request, "insights/preferences.html", context)
    response["Cache-Control"] = "no-store"
    return response


@require_safe
def dashboard(request: HttpRequest, slug: str) -> HttpResponse:
    if not permissions.may_see_insights(request.user):
        raise PermissionDenied("Insights are for members of a team and platform admins.")
    board = BY_SLUG[slug]
    scope = permissions.insights_team_ids(request.user)
    teams = list(Team.objects.order_by("name") if scope is None else Team.objects.filter(pk__in=scope).order_by("name"))
    now = timezone.now()
    wants_csv = request.GET.get("format") == "csv"
    context = {"board": board, "dashboards": DASHBOARDS, "teams": teams, "groupings": GROUPINGS,
               "preset_links": [(days, f"?days={days}") for days in PRESETS],
               "whole_org": scope is None, "may_see_analytics": permissions.may_see_analytics(request.user),
               "body": f"insights/inc/{board.slug.replace('-', '_')}.html"}
    try:
        if request.GET.get("format", "html") not in ("html", "csv"):
            raise FilterError([f"format: '{request.GET['format'][:20]}' is not a format; use html or csv"])
        filters = read_filters(request.GET, today=now.date(), teams=teams)
    except FilterError as exc:
        if wants_csv:
            return HttpResponse("Bad filters: " + "; ".join(exc.messages) + "\n", status=400,
                                content_type="text/plain; charset=utf-8")
        # The form keeps what was asked for, so the one wrong field can be corrected.
        context |= {"errors": exc.messages, "params": request.GET, "sel_team": request.GET.get("team", ""),
                    "sel_grouping": request.GET.get("grouping", "daily")}
        return render(request, "insights/dashboard.html", context, status=400)
    data = board.build(filters, filters.scope(scope), teams=teams, now=now, user=request.user)
    if wants_csv:
        response = HttpResponse(tables_to_csv(data["tables"]), content_type="text/csv; charset=utf-8")
        name = f"insights-{board.slug}-{filters.period.start}-{filters.period.end}.csv"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response
    context |= {"f": filters, "data": data, "params": request.GET, "sel_grouping": filters.grouping,
                "sel_team": filters.team.name if filters.team else "",
                "preset_links": [(days, "?" + filters.query(days=days)) for days in PRESETS],
                "csv_query": filters.query(format="csv")}
    return render(request, "insights/dashboard.html", context)
