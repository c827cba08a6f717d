"""Costs REST API: queue an import (multipart upload), read an import, read costs grouped by team,
entity, kind, domain or bucket for a month, and one entity's months."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.decorators import api_view, parser_classes
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.response import Response

from catalog import selectors as catalog_selectors
from portal.core.api import JSONParser, MultiPartParser, error_responses
from portal.core.limits import body_limit

from . import conf, focus, selectors, services, views
from .models import Bucket, CostImport

GROUPS = {"team": "owner_team__name", "entity": "entity__ref", "kind": "kind", "domain": "domain", "bucket": "bucket"}


def import_dict(imp: CostImport) -> dict:
    return {"id": imp.pk, "provider": imp.provider.name, "file": imp.file_name, "format": imp.format,
            "source": imp.source, "status": imp.status, "error": imp.error or None, "rows": imp.rows,
            "periods": imp.periods, "totals": imp.totals, "size": imp.size,
            "createdAt": imp.created_at.isoformat(), "finishedAt": imp.finished_at.isoformat() if imp.finished_at else None}


IMPORT = inline_serializer("CostImport", {
    "id": serializers.IntegerField(), "provider": serializers.CharField(), "file": serializers.CharField(),
    "format": serializers.ChoiceField(["csv", "parquet"]), "source": serializers.CharField(),
    "status": serializers.ChoiceField(["queued", "running", "done", "failed"]),
    "error": serializers.CharField(allow_null=True, help_text="Names the file, row and column of the first bad value"),
    "rows": serializers.IntegerField(), "periods": serializers.ListField(child=serializers.DateField()),
    "totals": serializers.DictField(help_text="{currency: {billed, effective, lines}} of the replaced periods"),
    "size": serializers.IntegerField(), "createdAt": serializers.DateTimeField(),
    "finishedAt": serializers.DateTimeField(allow_null=True)})
UPLOAD = inline_serializer("CostImportUpload", {
    "file": serializers.FileField(help_text="A FOCUS 1.x export, CSV (UTF-8, header row) or Parquet"),
    "provider": serializers.CharField(help_text="Short name of the source, e.g. aws; a re-import of the same "
                                                "provider and billing period replaces it")})


def _upload_limit() -> int:
    return int(conf.get("MAX_UPLOAD_BYTES"))


@extend_schema(operation_id="costs_import_create", tags=["costs"], summary="Import a FOCUS cost export",
               description="Platform admins. The header is checked at once (a missing required column is a 400 "
               "naming it); the rows are imported by the worker: poll the import until `done` or `failed`. "
               "Idempotent per provider and billing period: a re-import replaces, never doubles.",
               request={"multipart/form-data": UPLOAD},
               responses={202: IMPORT, **error_responses(403)})
@body_limit(_upload_limit)
@api_view(["POST"])
@parser_classes([MultiPartParser, JSONParser])  # JSON: answered with a 400 that says to send the file
def import_create(request):
    if not services.may_import(request.user):
        raise PermissionDenied("Only platform admins import cost exports.")
    upload = request.FILES.get("file")
    if upload is None:
        raise ValidationError({"file": ["Send a FOCUS export (CSV or Parquet) in the `file` field of a "
                                        "multipart/form-data body."]})
    try:
        with views.on_disk(upload) as path:
            imp = services.import_queue(source_path=path, file_name=upload.name,
                                        provider=str(request.data.get("provider", "")), source="api",
                                        actor=request.user)
    except focus.FocusError as exc:
        raise ValidationError({"file": [str(exc)]}) from None
    except DjangoValidationError as exc:
        raise ValidationError(exc.message_dict) from None
    return Response(import_dict(imp), status=status.HTTP_202_ACCEPTED)


@extend_schema(operation_id="costs_import_retrieve", tags=["costs"], summary="One cost import",
               description="Platform admins (to others: 404): its status, rows, replaced billing periods and "
               "per-currency totals.", responses={200: IMPORT, **error_responses(404)})
@api_view(["GET", "HEAD"])
def import_retrieve(request, pk: int):
    imp = CostImport.objects.select_related("provider").filter(pk=pk).first()
    if imp is None or not services.may_import(request.user):  # to others an import is as missing as a missing one
        raise NotFound(f"No cost import {pk}.")
    return Response(import_dict(imp))


ROW = inline_serializer("CostRow", {
    "key": serializers.CharField(allow_null=True, help_text="The team, entity ref, kind, domain or bucket"),
    "currency": serializers.CharField(), "effective": serializers.CharField(help_text="Decimal, as text"),
    "billed": serializers.CharField(), "lines": serializers.IntegerField()})


@extend_schema(operation_id="costs_list", tags=["costs"], summary="Costs of a month",
               description="Effective and billed cost per currency (never summed across currencies), grouped by "
               "`group`. Only what the caller may see is summed; `hidden` counts the entities left out.",
               parameters=[OpenApiParameter("month", str, description="YYYY-MM (default: the latest with data)"),
                           OpenApiParameter("group", str, enum=list(GROUPS), description="default team"),
                           OpenApiParameter("team", str), OpenApiParameter("currency", str)],
               responses={200: inline_serializer("CostList", {
                   "month": serializers.CharField(), "group": serializers.CharField(),
                   "items": ROW.__class__(many=True), "hidden": serializers.IntegerField()}), **error_responses()})
@api_view(["GET", "HEAD"])
def cost_list(request):
    group = request.query_params.get("group", "team")
    if group not in GROUPS:
        raise ValidationError({"group": [f"One of {', '.join(GROUPS)}"]})
    try:
        month = views._month(request._request, selectors.months(request.user))
    except views.BadParameter as exc:
        raise ValidationError({"month": [str(exc)]}) from None
    qs = selectors.visible(request.user).filter(month=month)
    filters = {"month": month}
    if request.query_params.get("team"):
        qs = qs.filter(owner_team__name=request.query_params["team"][:63])
        filters["owner_team__name"] = request.query_params["team"][:63]
    if request.query_params.get("currency"):
        qs = qs.filter(currency=request.query_params["currency"][:3].upper())
    if group == "entity":
        qs = qs.filter(bucket=Bucket.ENTITY)
    field = GROUPS[group]
    rows = (qs.values(field, "currency").order_by().annotate(**_sums()).order_by(field, "currency")[:5000])
    return Response({"month": month.strftime("%Y-%m"), "group": group,
                     "items": [{"key": r[field], "currency": r["currency"], "effective": str(r["effective"]),
                                "billed": str(r["billed"]), "lines": r["lines"]} for r in rows],
                     "hidden": selectors.hidden_entities(request.user, **filters)})


def _sums() -> dict:
    from django.db.models import Sum

    return {"effective": Sum("effective_cost"), "billed": Sum("billed_cost"), "lines": Sum("lines")}


@extend_schema(operation_id="entity_costs", tags=["costs"], summary="Costs of one entity",
               description="Monthly cost per currency (newest first), with the declared business value of a "
               "model and, when the entity names its predictions counter (`plinth.dev/predictions-metric`), the "
               "predictions served each month (from Prometheus) and the cost per 1,000 of them. 404 when the "
               "entity does not exist or the caller may not see it.",
               responses={200: inline_serializer("EntityCosts", {
                   "entity": serializers.CharField(),
                   "months": inline_serializer("EntityCostMonth", {
                       "month": serializers.CharField(), "currency": serializers.CharField(),
                       "effective": serializers.CharField(), "billed": serializers.CharField(),
                       "predictions": serializers.FloatField(allow_null=True),
                       "costPer1kPredictions": serializers.CharField(allow_null=True)}, many=True),
                   "value": serializers.DictField(allow_null=True),
                   "predictions": inline_serializer("EntityPredictions", {
                       "metric": serializers.CharField(allow_null=True),
                       "error": serializers.CharField(allow_null=True)})}), **error_responses(404)})
@api_view(["GET", "HEAD"])
def entity_costs(request, kind: str, namespace: str, name: str):
    from . import roi, usage

    entity = catalog_selectors.entity_by_name(request.user, kind, namespace, name)
    if entity is None:
        raise NotFound(f"No entity {kind}:{namespace}/{name}.")
    value = roi.declared_value(entity.metadata.get("annotations"))
    rows = selectors.entity_months(entity)
    used = usage.monthly_predictions(entity.metadata.get("annotations"), [r["month"] for r in rows])

    def per_1k(row) -> str | None:
        amount = used.per_thousand(row["month"], row["effective"])
        return None if amount is None else f"{amount:.4f}"

    return Response({
        "entity": entity.ref,
        "months": [{"month": r["month"].strftime("%Y-%m"), "currency": r["currency"], "effective": str(r["effective"]),
                    "billed": str(r["billed"]), "predictions": used.counts.get(r["month"]),
                    "costPer1kPredictions": per_1k(r)} for r in rows],
        "predictions": {"metric": used.selector or None, "error": used.error or None},
        "value": roi.value_dict(value),
    })


