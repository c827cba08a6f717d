"""SLO REST API: the SLOs the caller may see (filtered by entity or team, cursor paged) and one entity's."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response

from catalog import selectors as catalog_selectors
from catalog.descriptors.refs import parse_ref
from portal.core.api import error_responses
from portal.core.pagination import decode_cursor, encode_cursor, integer, page_size

from . import compute, selectors
from .models import SLOFile


def slo_dict(slo) -> dict:
    e = slo.entity
    return {
        "entity": e.ref, "entityTitle": e.display_name, "url": e.get_absolute_url() + "slos/",
        "team": slo.owner_team.name if slo.owner_team else None,
        "name": slo.name, "objective": slo.objective, "title": slo.title, "target": slo.target,
        "budgetingMethod": slo.budgeting, "timeWindow": slo.window,
        "sli": slo.sli, "meeting": slo.meeting,
        "errorBudget": {"remaining": slo.budget_remaining, "amount": slo.budget_amount,
                        "unit": slo.budget_unit or None},
        "burnRates": {w: slo.burn.get(w) for w in compute.SHOWN_WINDOWS},
        "alerts": slo.alerts,
        "evaluatedAt": slo.evaluated_at.isoformat() if slo.evaluated_at else None,
        "checkedAt": slo.checked_at.isoformat() if slo.checked_at else None,
        "stale": slo.stale, "problem": slo.problem or None, "error": slo.error or None,
    }


ALERT = inline_serializer("SLOAlert", {
    "severity": serializers.ChoiceField(choices=["page", "ticket"]), "threshold": serializers.FloatField(),
    "long": serializers.CharField(), "short": serializers.CharField(),
    "long_burn": serializers.FloatField(allow_null=True), "short_burn": serializers.FloatField(allow_null=True),
    "firing": serializers.BooleanField()})
SLO = inline_serializer("SLO", {
    "entity": serializers.CharField(), "entityTitle": serializers.CharField(), "url": serializers.CharField(),
    "team": serializers.CharField(allow_null=True), "name": serializers.CharField(),
    "objective": serializers.CharField(), "title": serializers.CharField(), "target": serializers.FloatField(),
    "budgetingMethod": serializers.CharField(), "timeWindow": serializers.CharField(),
    "sli": serializers.FloatField(allow_null=True, help_text="Good fraction over the window (0–1)"),
    "meeting": serializers.BooleanField(allow_null=True),
    "errorBudget": inline_serializer("SLOErrorBudget", {
        "remaining": serializers.FloatField(allow_null=True, help_text="Fraction left; negative when overspent"),
        "amount": serializers.FloatField(allow_null=True, help_text="What is left, in `unit`"),
        "unit": serializers.CharField(allow_null=True, help_text="events or seconds")}),
    "burnRates": serializers.DictField(child=serializers.FloatField(allow_null=True),
                                       help_text="Burn rate over 1h, 6h, 1d and 3d"),
    "alerts": ALERT.__class__(many=True), "evaluatedAt": serializers.DateTimeField(allow_null=True),
    "checkedAt": serializers.DateTimeField(allow_null=True), "stale": serializers.BooleanField(),
    "problem": serializers.CharField(allow_null=True), "error": serializers.CharField(allow_null=True)})


@extend_schema(operation_id="slos_list", tags=["slos"], summary="List SLOs",
               description="SLO objectives of the entities the caller may see, in a stable order, a page at a "
               "time (`next` is the cursor of the next page). `entity` (kind:namespace/name) and `team` filter.",
               parameters=[OpenApiParameter("entity", str), OpenApiParameter("team", str),
                           OpenApiParameter("limit", int, description="1–500 (default 100)"),
                           OpenApiParameter("cursor", str)],
               responses={200: inline_serializer("SLOPage", {"items": SLO.__class__(many=True),
                                                             "next": serializers.CharField(allow_null=True)}),
                          **error_responses(400, 404)})
@api_view(["GET", "HEAD"])
def slo_list(request):
    limit = page_size(request.query_params, default=100, maximum=500)
    entity = None
    if request.query_params.get("entity"):
        text = request.query_params["entity"][:300]
        try:
            ref = parse_ref(text)
        except ValueError as exc:
            raise ValidationError({"entity": f"{text[:100]!r} is not an entity reference (kind:namespace/name): "
                                             f"{exc}"}) from None
        entity = catalog_selectors.entity_by_name(request.user, ref.kind, ref.namespace, ref.name)
        if entity is None:
            raise NotFound(f"No entity {text[:200]}.")
    qs = selectors.visible_slos(request.user, entity=entity, team=request.query_params.get("team", "")[:63])
    if request.query_params.get("cursor"):
        after = decode_cursor(request.query_params["cursor"], {"id": integer})
        qs = qs.filter(id__gt=after["id"])
    rows = list(qs[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return Response({"items": [slo_dict(r) for r in rows], "next": encode_cursor({"id": rows[-1].pk}) if more else None})


@extend_schema(operation_id="entity_slos", tags=["slos"], summary="SLOs of one entity",
               description="The entity's OpenSLO file (its path and problems) and every SLO objective with its "
               "SLI, error budget, burn rates and alert conditions. 404 when the entity does not exist or the "
               "caller may not see it.",
               responses={200: inline_serializer("EntitySLOs", {
                   "file": serializers.CharField(allow_null=True),
                   "fileErrors": serializers.ListField(child=serializers.CharField()),
                   "items": SLO.__class__(many=True)}), **error_responses(404)})
@api_view(["GET", "HEAD"])
def entity_slos(request, kind: str, namespace: str, name: str):
    entity = catalog_selectors.entity_by_name(request.user, kind, namespace, name)
    if entity is None:
        raise NotFound(f"No entity {kind[:40]}:{namespace[:63]}/{name[:63]}.")
    file = SLOFile.objects.filter(entity=entity).first()
    rows = selectors.visible_slos(request.user, entity=entity)
    return Response({"file": file.path if file else None, "fileErrors": file.errors if file else [],
                     "items": [slo_dict(r) for r in rows]})
