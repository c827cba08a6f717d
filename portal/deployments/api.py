"""Deployments REST API: CD pipelines report where model versions serve."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.decorators import api_view
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from portal.core.api import conflict, error_responses
from portal.core.limits import FORM, body_limit

from . import api_schema, services
from .models import DeploymentEvent

FIELDS = frozenset({"model", "version", "environment", "status", "platform", "endpoint", "time", "servedBy",
                    "idempotencyKey"})


def event_dict(event: DeploymentEvent, *, replayed: bool) -> dict:
    dep = event.deployment
    return {
        "event": {"id": event.pk, "status": event.status, "time": event.occurred_at.isoformat(),
                  "receivedAt": event.received_at.isoformat(), "reporter": event.actor_label,
                  "current": dep.last_event_at == event.occurred_at},
        "deployment": {"ref": dep.entity.ref, "url": dep.entity.get_absolute_url(), "model": dep.model.ref,
                       "version": dep.version, "environment": dep.environment, "status": dep.status,
                       "statusSince": dep.status_since.isoformat(), "endpoint": dep.endpoint,
                       "platform": dep.platform, "servedBy": dep.served_by_ref, "source": dep.source,
                       "drift": dep.drifts.filter(cleared_at__isnull=True).exists()},
        "replayed": replayed,
    }


@extend_schema(
    operation_id="deployment_events_create",
    tags=["deployments"],
    summary="Report a deployment event (CD pipelines)",
    description="Records where a model version serves: a history row, and the Deployment entity created or "
    "updated in the catalog. Every field is checked before anything is written; a model you may not see "
    "answers 404 like a missing one; reporting needs the edit right on the model's team. An event older "
    "than the deployment's latest is kept in the history without changing its current state.",
    request=api_schema.DeploymentEventRequestSerializer,
    responses={
        201: OpenApiResponse(api_schema.DeploymentEventResultSerializer, description="Stored."),
        200: OpenApiResponse(api_schema.DeploymentEventResultSerializer,
                             description="The same idempotency key and event were stored before: that event."),
        **error_responses(403, 404, 409),
    },
    examples=[OpenApiExample("Live in prod", request_only=True, value={
        "model": "model:default/fraud-detector", "version": "3", "environment": "prod", "status": "live",
        "platform": "kserve", "endpoint": "https://fraud.prod.example.com/v1/predict",
        "time": "2026-12-02T10:00:00Z", "idempotencyKey": "pipeline-4711-deploy"})],
)
@body_limit(FORM)
@api_view(["POST"])
def deployment_events(request):
    body = request.data
    if not isinstance(body, dict):
        raise ValidationError({"non_field_errors": ["The body must be a JSON object."]})
    unknown = sorted(str(k) for k in body if k not in FIELDS)
    if unknown:
        # Shown as sent, except what cannot be written back as UTF-8 (a lone surrogate): escaped.
        name = unknown[0][:60].encode("utf-8", "backslashreplace").decode()
        raise ValidationError({name: [f"unknown field (accepted: {', '.join(sorted(FIELDS))})"]})
    try:
        event, created = services.deployment_report(actor=request.user, body=body)
    except services.InvalidEvent as exc:
        raise ValidationError({exc.field: [exc.message]}) from exc
    except services.ReplayConflict as exc:
        return conflict(str(exc))
    return Response(event_dict(event, replayed=not created),
                    status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)
