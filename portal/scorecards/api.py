"""Scorecards REST API: the definitions, one scorecard's results (cursor paged) and one entity's."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response

from catalog import selectors as catalog_selectors
from portal.core.api import error_responses
from portal.core.pagination import decode_cursor, encode_cursor, integer, page_size

from . import definitions, filters, selectors


def card_dict(card) -> dict:
    return {
        "name": card.name, "title": card.title, "version": card.version, "description": card.description,
        "filter": {k: v for k, v in card.filter.items() if v}, "levels": card.levels, "error": card.error,
        "checks": [{"id": c.id, "title": c.title, "level": c.level, "manual": c.manual, "rule": c.rule,
                    "reads": list(c.reads), "message": c.message, "fix": c.fix,
                    "deadline": c.deadline.isoformat() if c.deadline else None} for c in card.checks],
    }


def result_dict(result) -> dict:
    e = result.entity
    return {
        "entity": e.ref, "title": e.display_name, "url": e.get_absolute_url(),
        "team": result.owner_team.name if result.owner_team else None,
        "scorecard": result.scorecard, "level": result.level or None, "rank": result.rank,
        "passed": result.passed, "total": result.total,
        "checks": [{"id": cid, "passed": v[0], "reason": v[1]} for cid, v in result.checks.items()],
        "evaluatedAt": result.evaluated_at.isoformat(), "levelSince": result.level_since.isoformat(),
    }


CHECK = inline_serializer("ScorecardCheck", {
    "id": serializers.CharField(), "title": serializers.CharField(), "level": serializers.CharField(),
    "manual": serializers.BooleanField(), "rule": serializers.CharField(),
    "reads": serializers.ListField(child=serializers.CharField()), "message": serializers.CharField(),
    "fix": serializers.CharField(), "deadline": serializers.DateField(allow_null=True)})
SCORECARD = inline_serializer("Scorecard", {
    "name": serializers.CharField(), "title": serializers.CharField(), "version": serializers.IntegerField(),
    "description": serializers.CharField(), "filter": serializers.DictField(),
    "levels": serializers.ListField(child=serializers.CharField()),
    "error": serializers.CharField(help_text="Why the definition cannot be used ('' when it can)"),
    "checks": CHECK.__class__(many=True)})
CHECK_RESULT = inline_serializer("ScorecardCheckResult", {
    "id": serializers.CharField(), "passed": serializers.BooleanField(allow_null=True),
    "reason": serializers.CharField(help_text="Why it could not be evaluated (fail closed), or ''")})
RESULT = inline_serializer("ScorecardResult", {
    "entity": serializers.CharField(), "title": serializers.CharField(), "url": serializers.CharField(),
    "team": serializers.CharField(allow_null=True), "scorecard": serializers.CharField(),
    "level": serializers.CharField(allow_null=True), "rank": serializers.IntegerField(),
    "passed": serializers.IntegerField(), "total": serializers.IntegerField(),
    "checks": CHECK_RESULT.__class__(many=True), "evaluatedAt": serializers.DateTimeField(),
    "levelSince": serializers.DateTimeField()})


@extend_schema(operation_id="scorecards_list", tags=["scorecards"], summary="List scorecards",
               description="Every scorecard definition; one that cannot be used has `error` set.",
               responses={200: inline_serializer("ScorecardList", {"items": SCORECARD.__class__(many=True)})})
@api_view(["GET", "HEAD"])
def scorecard_list(request):
    return Response({"items": [card_dict(c) for c in definitions.load_all()]})


@extend_schema(operation_id="scorecards_results", tags=["scorecards"], summary="Results of one scorecard",
               description="Entities the caller may see, in a stable order, a page at a time (`next` is the "
               "cursor of the next page). The filters are the scorecard's entity list's (its page): an empty "
               "`level` (or `none`) lists entities below the first level, an empty `team` the unowned ones, an "
               "empty `domain` those in no domain. A level not of the scorecard or a malformed domain is a 400, "
               "an unknown team a 404, each naming the parameter.",
               parameters=[OpenApiParameter("team", str, description="A team's name; empty: the unowned entities."),
                           OpenApiParameter("level", str, description="A level of the scorecard; empty or "
                                            "`none`: below the first level."),
                           OpenApiParameter("domain", str, description="A domain ref (`domain:default/payments` "
                                            "or `payments`); empty: the entities in no domain."),
                           OpenApiParameter("limit", int, description="1–500 (default 100)"),
                           OpenApiParameter("cursor", str)],
               responses={200: inline_serializer("ScorecardResultPage", {
                   "items": RESULT.__class__(many=True), "next": serializers.CharField(allow_null=True)}),
                   **error_responses(400, 404)})
@api_view(["GET", "HEAD"])
def scorecard_results(request, name: str):
    card = definitions.get(name)
    if card is None:
        raise NotFound(f"No scorecard {name[:63]!r}.")
    limit = page_size(request.query_params, default=100, maximum=500)
    try:
        chosen = filters.parse(card, request.query_params)
    except filters.FilterError as exc:
        if exc.status == 404:
            raise NotFound(exc.message) from None
        raise ValidationError({exc.field: [exc.message]}) from None
    qs = selectors.filtered_results(request.user, card, chosen).order_by("id")
    if request.query_params.get("cursor"):
        after = decode_cursor(request.query_params["cursor"], {"id": integer})
        qs = qs.filter(id__gt=after["id"])
    rows = list(qs[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return Response({"items": [result_dict(r) for r in rows],
                     "next": encode_cursor({"id": rows[-1].pk}) if more else None})


@extend_schema(operation_id="entity_scorecards", tags=["scorecards"], summary="Scorecards of one entity",
               description="Each scorecard that applies, with its level and every check. 404 when the entity "
               "does not exist or the caller may not see it.",
               responses={200: inline_serializer("EntityScorecards", {"items": inline_serializer(
                   "EntityScorecard", {"scorecard": serializers.CharField(), "title": serializers.CharField(),
                                       "level": serializers.CharField(allow_null=True),
                                       "levels": serializers.ListField(child=serializers.CharField()),
                                       "checks": serializers.ListField(child=serializers.DictField()),
                                       "evaluatedAt": serializers.DateTimeField(allow_null=True)},
                   many=True)}), **error_responses(404)})
@api_view(["GET", "HEAD"])
def entity_scorecards(request, kind: str, namespace: str, name: str):
    entity = catalog_selectors.entity_by_name(request.user, kind, namespace, name)
    if entity is None:
        raise NotFound(f"No entity {kind}:{namespace}/{name}.")
    items = []
    for sc in selectors.entity_scorecards(entity):
        card, result = sc["card"], sc["result"]
        items.append({
            "scorecard": card.name, "title": card.title, "level": (result.level or None) if result else None,
            "levels": card.levels, "evaluatedAt": result.evaluated_at.isoformat() if result else None,
            "checks": [{"id": c["check"].id, "title": c["check"].title, "level": c["check"].level,
                        "manual": c["check"].manual, "passed": c["passed"], "reason": c["reason"],
                        "message": c["check"].message, "fix": c["check"].fix}
                       for lvl in sc["levels"] for c in lvl["checks"]],
        })
    return Response({"items": items})


ROLLUP_ROW = {
    "levels": serializers.DictField(child=serializers.IntegerField(), help_text="Entities per level ('' = none)"),
    "total": serializers.IntegerField(), "topNow": serializers.IntegerField(),
    "trend7": serializers.IntegerField(allow_null=True, help_text="Change at the top level vs 7 days ago"),
    "trend30": serializers.IntegerField(allow_null=True)}


def _rollup_row(row: dict) -> dict:
    return {"levels": dict(row["per_level"]), "total": row["total"], "topNow": row["top_now"],
            "trend7": row["trend_7"], "trend30": row["trend_30"]}


@extend_schema(operation_id="scorecards_rollup", tags=["scorecards"], summary="Rollups of one scorecard",
               description="Entities per level per team and per domain (an entity's domain is its system's), "
               "counting what the caller may see, with the change in top-level entities against 7 and 30 days "
               "ago (null without a nightly rollup that day).",
               responses={200: inline_serializer("ScorecardRollup", {
                   "scorecard": serializers.CharField(), "levels": serializers.ListField(child=serializers.CharField()),
                   "error": serializers.CharField(),
                   "teams": inline_serializer("ScorecardTeamRollup", {
                       "team": serializers.CharField(allow_null=True), **ROLLUP_ROW}, many=True),
                   "domains": inline_serializer("ScorecardDomainRollup", {
                       "domain": serializers.CharField(allow_null=True), **ROLLUP_ROW}, many=True)}),
                   **error_responses(404)})
@api_view(["GET", "HEAD"])
def scorecard_rollup(request, name: str):
    card = definitions.get(name)
    if card is None:
        raise NotFound(f"No scorecard {name[:63]!r}.")
    teams = domains = []
    if not card.error:
        teams = selectors.team_rollup(request.user, card)
        domains = selectors.domain_rollup(request.user, card)
    return Response({
        "scorecard": card.name, "levels": card.levels, "error": card.error,
        "teams": [{"team": t["team"] or None, **_rollup_row(t)} for t in teams],
        "domains": [{"domain": d["domain"] or None, **_rollup_row(d)} for d in domains],
    })


def _money(amounts: dict) -> dict:
    return {currency: str(amount) for currency, amount in sorted(amounts.items())}


def _line_dict(line) -> dict:
    from portal.costs import roi

    e = line.entity
    value = line.value
    return {
        "entity": e.ref, "title": e.display_name, "url": e.get_absolute_url(),
        "scorecards": [{"title": title, "level": level or None} for title, level, _ in line.levels],
        "slos": {"objectives": len(line.slos), "met": line.slo_met, "budgetMin": line.budget_min,
                 "burnMax": line.burn_max, "alerting": line.burning},
        "incidents": {"open": len(line.incidents), "worst": line.worst},
        "cost": _money(line.cost),
        "value": roi.value_dict(value) if value is not None and value.ok else None,
        "ratio": line.ratio,
    }


@extend_schema(operation_id="teams_operations", tags=["scorecards"], summary="A team's operations rollup",
               description="The team page's Operations section as data: each entity the caller may see with its "
               "scorecard levels, SLOs (objectives met, least budget left, highest burn rate, alerts holding), "
               "open incidents and the latest month's cost against its declared value; and the team's totals, "
               "cost against budget per currency. At most 200 entities (`more` says when there are more). "
               "404 for an unknown team.",
               responses={200: inline_serializer("TeamOperations", {
                   "team": serializers.CharField(), "month": serializers.CharField(allow_null=True),
                   "more": serializers.BooleanField(), "entities": serializers.ListField(child=serializers.DictField()),
                   "scorecards": serializers.ListField(child=serializers.DictField()),
                   "slo": serializers.DictField(), "incidents": serializers.DictField(),
                   "cost": serializers.ListField(child=serializers.DictField())}), **error_responses(404)})
@api_view(["GET", "HEAD"])
def team_operations(request, name: str):
    from portal.accounts.models import Team

    from . import operations

    team = Team.objects.filter(name=name[:150]).first()
    if team is None:
        raise NotFound(f"No team {name[:63]!r}.")
    ops = operations.team_operations(request.user, team)
    slo = ops["slo"]
    return Response({
        "team": team.name, "month": ops["month"].strftime("%Y-%m") if ops["month"] else None, "more": ops["more"],
        "entities": [_line_dict(line) for line in ops["lines"]],
        "scorecards": [{"title": title, "levels": dict(levels)} for title, levels in ops["scorecards"]],
        "slo": {"entities": slo["entities"], "objectives": slo["objectives"], "met": slo["met"],
                "burning": slo["burning"], "budgetMin": slo["budget_min"]},
        "incidents": ops["incidents"],
        "cost": [{"currency": c["currency"], "total": str(c["total"]),
                  "budget": None if c["budget"] is None else str(c["budget"]), "percent": c["percent"]}
                 for c in ops["cost"]],
    })
