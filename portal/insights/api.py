"""GET /api/v1/insights/events: usage analytics in the shape of Backstage's Adoption Insights plugin
(`{"grouping", "data": [...]}`), as JSON or CSV. Reads only the rollups (selectors.py).

A platform admin sees the whole organisation, any team, and per-user rows (`per_user=true`); anyone
else sees aggregates of their own teams only — a team they are not in answers like a missing one — and
never a ref of an entity they may not see (left out of the top lists, and counted)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.accounts import permissions
from portal.accounts.models import Team
from portal.core.api import error_responses

from . import filters, selectors
from .export import to_csv

TYPES = ("active_users", "top_templates", "top_searches", "top_entities", "top_docs", "funnel")
FORMATS = ("json", "csv")
MAX_LIMIT = 100
MAX_SPAN_DAYS = 731  # two years of daily rollups; longer ranges are refused, not truncated
DEFAULT_SPAN_DAYS = 30
# The top lists whose rows name catalog entities (`entityref`): filtered by what the caller may see.
REFS = {"top_templates": selectors.top_templates, "top_entities": selectors.top_entities,
        "top_docs": selectors.top_docs}


def _date(params, name: str) -> date | None:
    raw = params.get(name)
    if raw in (None, ""):
        return None
    try:
        value = date.fromisoformat(raw)
    except ValueError as exc:
        raise ValidationError({name: f"'{raw[:30]}' is not a date: use YYYY-MM-DD."}) from exc
    if not filters.EARLIEST <= value <= filters.LATEST:
        raise ValidationError({name: f"{value} is outside {filters.EARLIEST} to {filters.LATEST}."})
    return value


def _choice(params, name: str, options: tuple[str, ...], default: str | None) -> str | None:
    raw = params.get(name)
    if raw in (None, ""):
        if default is None:
            raise ValidationError({name: f"Required: one of {', '.join(options)}."})
        return default
    if raw not in options:
        raise ValidationError({name: f"'{raw[:40]}' is not one of {', '.join(options)}."})
    return raw


def _limit(params) -> int:
    raw = params.get("limit")
    if raw in (None, ""):
        return 10
    try:
        value = int(raw)
    except ValueError as exc:
        raise ValidationError({"limit": f"'{raw[:20]}' is not an integer; use 1 to {MAX_LIMIT}."}) from exc
    if not 1 <= value <= MAX_LIMIT:
        raise ValidationError({"limit": f"Must be between 1 and {MAX_LIMIT} (got {value})."})
    return value


def _range(params) -> tuple[date, date]:
    start, end = _date(params, "start_date"), _date(params, "end_date")
    today = datetime.now(UTC).date()
    end = end or today
    start = start or end - timedelta(days=DEFAULT_SPAN_DAYS - 1)
    if start > end:
        raise ValidationError({"start_date": f"{start} is after end_date {end}."})
    if (end - start).days + 1 > MAX_SPAN_DAYS:
        raise ValidationError({"end_date": f"The range {start} to {end} is longer than {MAX_SPAN_DAYS} days."})
    return start, end


def default_grouping(start: date, end: date) -> str:
    """As Adoption Insights does: one day → hourly, up to a week → daily, up to a month → weekly."""
    days = (end - start).days + 1
    return "hourly" if days == 1 else "daily" if days <= 7 else "weekly" if days <= 31 else "monthly"


def _teams(request, params) -> tuple[list[int] | None, str | None]:
    """The teams the answer covers: None = the organisation (admins only)."""
    name = params.get("team")
    admin = permissions.may_see_analytics(request.user)
    mine = permissions.team_ids(request.user)
    if name in (None, ""):
        return (None if admin else mine), None
    team = Team.objects.filter(name=name[:100]).only("pk").first()
    if team is None or (not admin and team.pk not in mine):
        raise ValidationError({"team": f"No team named '{name[:100]}' that you belong to."})
    return [team.pk], name


class _JsonOnly(DefaultContentNegotiation):
    """`format` is this endpoint's own parameter (json|csv, as Adoption Insights has it), not DRF's
    renderer override: errors and JSON answers are always JSON."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


SCHEMA = extend_schema(
    operation_id="insights_events",
    tags=["insights"],
    summary="Usage analytics (Adoption Insights shape)",
    description=(
        "Aggregated usage of the portal from hourly/daily rollups: `active_users` (per period: total, new and "
        "returning users; `summary` with DAU/WAU/MAU and the trend against the previous period), "
        "`top_templates` (runs, success rate, median duration), `top_searches` (count, zero-result count, "
        "clicks), `top_entities`, `top_docs`, `funnel` (onboarding steps per team and time to first "
        "registered model). Platform admins see the organisation and may ask `per_user=true` (active users "
        "only); everyone else sees their own teams' aggregates. The top lists leave out entities, templates "
        "and docs the caller may not read (another team's private ones, or gone from the catalog) and say how "
        "many in `not_shown` (the CSV in an `X-Plinth-Not-Shown` header), so a list can be shorter than `limit`. "
        "A `funnel` step's `teams` counts every team that reached it, `in_order` those that also reached every "
        "earlier step. `format=csv` answers a spreadsheet-safe CSV."
    ),
    parameters=[
        OpenApiParameter("type", str, enum=list(TYPES), required=True),
        OpenApiParameter("start_date", {"type": "string", "format": "date"},
                         description="First day (UTC), default 29 days before end_date."),
        OpenApiParameter("end_date", {"type": "string", "format": "date"},
                         description=f"Last day (UTC), default today. At most {MAX_SPAN_DAYS} days in all."),
        OpenApiParameter("grouping", str, enum=list(selectors.GROUPINGS),
                         description="Default from the range: 1 day hourly, ≤7 daily, ≤31 weekly, else monthly."),
        OpenApiParameter("team", str, description="A team's name (one you belong to, unless a platform admin)."),
        OpenApiParameter("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                         description="Rows of the top lists (default 10)."),
        OpenApiParameter("format", str, enum=list(FORMATS)),
        OpenApiParameter("per_user", str, enum=["true", "false"],
                         description="`true`: active users per user (platform admins only)."),
    ],
    responses={(200, "application/json"): {"type": "object"}, (200, "text/csv"): {"type": "string"},
               **error_responses()},
)


def _events(request):
    params = request.query_params
    type_ = _choice(params, "type", TYPES, None)
    start, end = _range(params)
    grouping = _choice(params, "grouping", selectors.GROUPINGS, default_grouping(start, end))
    limit = _limit(params)
    fmt = _choice(params, "format", FORMATS, "json")
    per_user = _choice(params, "per_user", ("true", "false"), "false") == "true"
    if per_user and type_ != "active_users":
        raise ValidationError({"per_user": "Only type=active_users has per-user rows."})
    if per_user and not permissions.may_see_analytics(request.user):
        raise PermissionDenied("per_user: per-user analytics are for platform admins.")
    teams, team_name = _teams(request, params)
    body: dict = {"type": type_, "grouping": grouping, "start_date": start.isoformat(),
                  "end_date": end.isoformat(), "team": team_name}
    if type_ == "active_users":
        if per_user:
            body["data"] = selectors.active_users_per_user(start, end, team=teams, limit=limit)
        else:
            result = selectors.active_users(start, end, grouping, team=teams)
            body["data"] = result.data
            body["summary"] = {k: v for k, v in result.as_dict().items() if k not in ("data", "grouping")}
    elif type_ in REFS:
        rows = REFS[type_](start, end, team=teams, limit=limit)
        # A row is kept under the team the event was recorded for, not always the owner of what it
        # names (a run: the run's team): refs the caller may not see are left out, and counted.
        readable = selectors.readable_refs([r["entityref"] for r in rows], request.user, titles=False)
        body["data"], body["not_shown"] = readable.only(rows)
    elif type_ == "top_searches":
        body["data"] = selectors.top_searches(start, end, team=teams, limit=limit)
        body["zero_results"] = selectors.zero_result_searches(start, end, team=teams, limit=limit)
    else:
        result = selectors.funnel(team=teams, start=start, end=end)
        body["data"] = result.steps
        body["teams"] = result.teams
        body["time_to_first_model"] = result.time_to_first_model
    if fmt == "csv":
        response = HttpResponse(to_csv(body["data"]), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="plinth_insights_{type_}.csv"'
        if "not_shown" in body:
            response["X-Plinth-Not-Shown"] = str(body["not_shown"])
        return response
    return Response(body)


class EventsView(APIView):
    content_negotiation_class = _JsonOnly

    @SCHEMA
    def get(self, request):
        return _events(request)


events = EventsView.as_view()
