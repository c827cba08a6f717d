"""Scaffolder REST API: list templates, start a run (validated exactly like the form), read, retry and
cancel a run."""

from __future__ import annotations

from django.db.models import Q
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view, throttle_classes
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response

from catalog import selectors as catalog_selectors
from portal.core import pagination, throttling
from portal.core.api import conflict, declare_links, error_responses, openapi_link
from portal.core.limits import FORM, PARAMETERS, body_limit

from . import api_schema, forms, selectors, services
from .templates import from_entity
from .views import template_hider, template_shown


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
    summary="Templates the caller can see",
    parameters=[
        OpenApiParameter("type", str, description="Only templates of this `spec.type`."),
        OpenApiParameter("owner", str, description=(
            "Only templates owned by exactly this owner (the Create page's Owner filter): an entity ref, "
            "`group:` and the default namespace unless given, e.g. `team`, `ops/team`, `user:default/alice`. "
            "A malformed ref is a 400.")),
        OpenApiParameter("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                         description=f"Page size, 1–{MAX_LIMIT} (default 100)."),
        OpenApiParameter("cursor", str, description="`pageInfo.nextCursor` of the previous page."),
    ],
    responses={200: api_schema.TemplateListSerializer, **error_responses()},
)
@api_view(["GET", "HEAD"])
def template_list(request):
    params = request.query_params
    limit = pagination.page_size(params, default=100, maximum=MAX_LIMIT)
    qs = selectors.templates_for(request.user).order_by("name_key", "id")
    if params.get("type"):
        qs = qs.filter(spec_type__iexact=params["type"])
    if "owner" in params:
        try:
            qs = qs.filter(owner_ref=selectors.parse_owner_ref(params["owner"]))
        except ValueError as exc:
            raise ValidationError({"owner": [f"Not an owner reference ({exc}); e.g. `team` or `group:default/team`."]}) from None
    if params.get("cursor"):
        after = pagination.decode_cursor(params["cursor"], {"k": pagination.text, "id": pagination.integer})
        qs = qs.filter(Q(name_key__gt=after["k"]) | Q(name_key=after["k"], id__gt=after["id"]))
    page = list(qs[: limit + 1])
    more = len(page) > limit
    page = page[:limit]
    next_cursor = pagination.encode_cursor({"k": page[-1].name_key, "id": page[-1].pk}) if more else None
    return Response({"items": [_template_json(e) for e in page], "pageInfo": {"nextCursor": next_cursor}})


def run_json(run, *, template_shown: bool, detail: bool = True) -> dict:
    """A run as the API answers it. `template_shown`: whether the caller may see the template it ran; a
    run made for the caller's team from another team's private template answers `"template": null,
    "templateHidden": true` (its steps and log are the team's; the template's identity is not, and is
    taken out of them: views.template_hider)."""
    hide = template_hider(run, template_shown)
    data = {
        "id": str(run.uid),
        "template": run.template_ref if template_shown else None,
        "templateHidden": not template_shown,
        "status": run.status,
        "dryRun": run.dry_run,
        "error": hide(run.error),
        "attempts": run.attempts,
        "createdAt": run.created_at,
        "startedAt": run.started_at,
        "finishedAt": run.finished_at,
        "output": run.output,
        "url": run.get_absolute_url(),
        "cancelRequested": run.cancel_requested_at is not None,
        "cancelledBy": run.cancelled_by or None,
    }
    if detail:
        data["steps"] = [
            {"id": s.step_id, "name": s.name, "action": s.action, "status": s.status, "message": hide(s.message)}
            for s in run.steps.all()
        ]
        logs, total = selectors.run_log(run)
        data["log"] = [
            {"at": entry.created_at, "step": entry.step_id, "level": entry.level, "message": hide(entry.message)}
            for entry in logs
        ]
        data["logTotal"] = total
        data["logTruncated"] = total > len(logs)
        if run.dry_run:
            data["files"] = run.files
    return data


class RunCreateSerializer(serializers.Serializer):
    templateRef = serializers.CharField(max_length=200, help_text="e.g. `template:default/ml-model-service`.")
    values = serializers.DictField(required=False, default=dict, help_text="The form's values, by field name.")
    dryRun = serializers.BooleanField(required=False, default=False)


declare_links("v1_scaffolder_runs_create", 201, {
    "read": openapi_link("v1_scaffolder_runs_retrieve", "The run: status, steps, log.", uid="$response.body#/id"),
})


@extend_schema(
    request=RunCreateSerializer,
    responses={
        201: OpenApiResponse(api_schema.RunSerializer, description="The run is stored and queued."),
        **error_responses(403, 404),
    },
    summary="Start a run of a template",
    examples=[
        OpenApiExample(
            "Dry run of the ML model service template",
            request_only=True,
            value={
                "templateRef": "template:default/ml-model-service",
                "values": {"name": "churn-model", "title": "Churn model", "description": "Predicts churn.",
                           "owner": "platform", "modelType": "classifier", "riskTier": 2},
                "dryRun": True,
            },
        )
    ],
)
@body_limit(PARAMETERS)
@api_view(["POST"])
@throttle_classes(throttling.EXPENSIVE)
def run_create(request):
    body = RunCreateSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    ref = body.validated_data["templateRef"]
    kind, _, rest = ref.partition(":") if ":" in ref else ("template", "", ref)
    namespace, _, name = rest.rpartition("/")
    entity = catalog_selectors.entity_by_name(request.user, "template", namespace or "default", name)
    if entity is None or kind.lower() != "template":
        raise NotFound("No such template")
    template = from_entity(entity)
    if template.problems:  # e.g. a parameter schema that is not JSON Schema: the values cannot be checked
        raise ValidationError({"template": template.problems})
    values = body.validated_data["values"]
    pages = forms.pages(template, request.user)
    values = forms.with_defaults(pages, values)
    errors = {}
    for page in pages:
        for field, messages in forms.check_page(request.user, pages, page, values).items():
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
        dry_run=body.validated_data["dryRun"],
        owner_team=forms.owner_team(pages, values, request.user),
    )
    return Response(run_json(run, template_shown=True, detail=False), status=status.HTTP_201_CREATED)


@extend_schema(
    summary="A run: status, steps, log, output links",
    responses={200: api_schema.RunDetailSerializer, **error_responses(404)},
)
@api_view(["GET", "HEAD"])
def run_detail(request, uid):
    run = selectors.run_for(request.user, uid)
    if run is None:
        raise NotFound("No such run")
    return Response(run_json(run, template_shown=template_shown(request.user, run)))


declare_links("v1_scaffolder_runs_retry_create", 202, {
    "read": openapi_link("v1_scaffolder_runs_retrieve", "The run: status, steps, log.", uid="$response.body#/id"),
})


@extend_schema(
    request=None,
    responses={
        202: OpenApiResponse(api_schema.RunSerializer, description="The run is queued again."),
        **error_responses(403, 404, 409),
    },
    summary="Retry a failed run",
    description="Queue a failed run again, as the same run: steps that already published (a repository, a "
    "catalog registration) are kept and not repeated; the others run again. 409 when the run has not "
    "failed, or used secrets (deleted when a run ends), with its `state`. 403 for a run you may see but "
    "not retry (its creator, members who may create runs for its team and platform admins may); 404 for a "
    "run you may not see.",
)
@body_limit(FORM)
@api_view(["POST"])
@throttle_classes(throttling.EXPENSIVE)
def run_retry(request, uid):
    run = selectors.run_for(request.user, uid)
    if run is None:
        raise NotFound("No such run")
    try:
        run = services.run_retry(run=run, actor=request.user)
    except services.RetryRefused as exc:
        return conflict(str(exc), state=run.status)
    return Response(run_json(run, template_shown=template_shown(request.user, run), detail=False),
                    status=status.HTTP_202_ACCEPTED)


declare_links("v1_scaffolder_runs_cancel_create", 202, {
    "read": openapi_link("v1_scaffolder_runs_retrieve", "The run: status, steps, log.", uid="$response.body#/id"),
})


@extend_schema(
    request=None,
    responses={
        202: OpenApiResponse(api_schema.RunSerializer, description=(
            "Cancelled: a queued run is `cancelled` at once and never starts; a running one answers `running` "
            "with `cancelRequested: true` and ends `cancelled` before its next step.")),
        **error_responses(403, 404, 409),
    },
    summary="Cancel a queued or running run",
    description="A queued run is cancelled at once and never starts. A running run finishes the step under way "
    "and stops before the next (its status turns `cancelled`; poll the run). Asking again changes nothing. 409 "
    "when the run has already finished, with its `state`. 403 for a run you may see but not cancel (its "
    "creator and platform admins may); 404 for a run you may not see.",
)
@body_limit(FORM)
@api_view(["POST"])
def run_cancel(request, uid):
    run = selectors.run_for(request.user, uid)
    if run is None:
        raise NotFound("No such run")
    try:
        run = services.run_cancel(run=run, actor=request.user)
    except services.CancelRefused as exc:
        return conflict(str(exc), state=exc.state)
    return Response(run_json(run, template_shown=template_shown(request.user, run), detail=False),
                    status=status.HTTP_202_ACCEPTED)
