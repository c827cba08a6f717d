"""Scaffolder REST API: list templates, start a run (validated exactly like the form), read a run."""

from __future__ import annotations

from django.db.models import Q
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.decorators import api_view, throttle_classes
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response

from catalog import selectors as catalog_selectors
from portal.core import pagination, throttling
from portal.core.limits import PARAMETERS, body_limit

from . import forms, selectors, services
from .templates import from_entity


def _template_json(entity) -> dict:
    t = from_entity(entity)
    return {
        "ref": entity.ref,
        "name": t.name,
        "title": t.title,
        "description": t.description,
        "type": t.type,
        "owner": t.owner,
        "tags": t.tags,
        "parameters": t.pages,
        "runnable": t.runnable,
        "unsupportedActions": t.unsupported_actions,
    }


MAX_LIMIT = 200


@extend_schema(
    responses=OpenApiTypes.OBJECT,
    summary="Templates the caller can see",
    parameters=[
        OpenApiParameter("type", str, description="Only templates of this `spec.type`."),
        OpenApiParameter("limit", int, description=f"Page size, 1–{MAX_LIMIT} (default 100)."),
        OpenApiParameter("cursor", str, description="`pageInfo.nextCursor` of the previous page."),
    ],
)
@api_view(["GET"])
def template_list(request):
    params = request.query_params
    limit = pagination.page_size(params, default=100, maximum=MAX_LIMIT)
    qs = selectors.templates_for(request.user).order_by("name_key", "id")
    if params.get("type"):
        qs = qs.filter(spec_type__iexact=params["type"])
    if params.get("cursor"):
        after = pagination.decode_cursor(params["cursor"], {"k": pagination.text, "id": pagination.integer})
        qs = qs.filter(Q(name_key__gt=after["k"]) | Q(name_key=after["k"], id__gt=after["id"]))
    page = list(qs[: limit + 1])
    more = len(page) > limit
    page = page[:limit]
    next_cursor = pagination.encode_cursor({"k": page[-1].name_key, "id": page[-1].pk}) if more else None
    return Response({"items": [_template_json(e) for e in page], "pageInfo": {"nextCursor": next_cursor}})


def run_json(run, *, detail: bool = True) -> dict:
    data = {
        "id": str(run.uid),
        "template": run.template_ref,
        "status": run.status,
        "dryRun": run.dry_run,
        "error": run.error,
        "attempts": run.attempts,
        "createdAt": run.created_at,
        "startedAt": run.started_at,
        "finishedAt": run.finished_at,
        "output": run.output,
        "url": run.get_absolute_url(),
    }
    if detail:
        data["steps"] = [
            {"id": s.step_id, "name": s.name, "action": s.action, "status": s.status, "message": s.message}
            for s in run.steps.all()
        ]
        data["log"] = [
            {"at": entry.created_at, "step": entry.step_id, "level": entry.level, "message": entry.message}
            for entry in run.logs.all()[:2000]
        ]
        if run.dry_run:
            data["files"] = run.files
    return data


@extend_schema(
    request=inline_serializer(
        "RunCreate",
        {
            "templateRef": serializers.CharField(),
            "values": serializers.DictField(),
            "dryRun": serializers.BooleanField(),
        },
    ),
    responses={201: OpenApiTypes.OBJECT, 400: OpenApiTypes.OBJECT},
    summary="Start a run of a template",
)
@body_limit(PARAMETERS)
@api_view(["POST"])
@throttle_classes(throttling.EXPENSIVE)
def run_create(request):
    ref = str(request.data.get("templateRef") or "")
    kind, _, rest = ref.partition(":") if ":" in ref else ("template", "", ref)
    namespace, _, name = rest.rpartition("/")
    entity = catalog_selectors.entity_by_name(request.user, "template", namespace or "default", name)
    if entity is None or kind.lower() != "template":
        raise NotFound("No such template")
    template = from_entity(entity)
    values = request.data.get("values") or {}
    if not isinstance(values, dict):
        raise ValidationError({"values": "must be an object"})
    pages = forms.pages(template, request.user)
    values = forms.with_defaults(pages, values)
    errors = {}
    for page in pages:
        for field, messages in forms.validate_page(page, values).items():
            errors.setdefault(field or "values", []).extend(messages)
    if errors:
        raise ValidationError(errors)
    if not template.runnable:
        raise ValidationError(
            {"template": f"unsupported action(s): {', '.join(template.unsupported_actions)}"}
        )
    parameters, secret_values = forms.split_secrets(pages, values)
    run = services.run_create(
        template=template,
        entity=entity,
        actor=request.user,
        parameters=parameters,
        secret_values=secret_values,
        dry_run=bool(request.data.get("dryRun")),
        owner_team=forms.owner_team(pages, values, request.user),
    )
    return Response(run_json(run, detail=False), status=status.HTTP_201_CREATED)


@extend_schema(responses=OpenApiTypes.OBJECT, summary="A run: status, steps, log, output links")
@api_view(["GET"])
def run_detail(request, uid):
    run = selectors.run_for(request.user, uid)
    if run is None:
        raise NotFound("No such run")
    return Response(run_json(run))
