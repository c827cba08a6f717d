"""Incidents REST API: list, read, open, change status, notes, postmortem — and Alertmanager's webhook
(`POST /api/v1/incidents/alertmanager`, Alertmanager's own payload, a Plinth token as bearer)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.decorators import api_view, authentication_classes
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from portal.accounts.authentication import BearerTokenAuthentication
from portal.core import pagination
from portal.core.api import error_responses
from portal.core.limits import COMMENT, body_limit
from portal.techdocs.models import docs_url

from . import alertmanager, api_schema, conf, selectors, services
from .filters import STATUS_CHOICES, IncidentFilter
from .models import Incident

MAX_LIMIT = 500


def _error(exc: services.IncidentError) -> Response:
    body = {"status": exc.status, "message": exc.message}
    if exc.field:
        body["details"] = {exc.field: [exc.message]}
    return Response({"error": body}, status=exc.status)


def _iso(value):
    return value.isoformat() if value else None


def postmortem_dict(incident: Incident) -> tuple[dict | None, bool]:
    """(the link, hidden): the incident is read through `selectors.listed`, which decided per request
    whether the reader may see the postmortem's entity."""
    entity = incident.postmortem_entity
    if entity is None:
        return None, False
    if not incident.postmortem_visible:
        return None, True
    url = docs_url(entity, incident.postmortem_path)
    return {"url": url, "title": incident.postmortem_title, "entity": entity.ref, "path": incident.postmortem_path}, False


def incident_dict(incident: Incident) -> dict:
    postmortem, hidden = postmortem_dict(incident)
    return {
        "id": incident.pk, "url": incident.get_absolute_url(), "title": incident.title, "summary": incident.summary,
        "severity": incident.severity, "status": incident.status, "source": incident.source,
        "team": incident.owner_team.name if incident.owner_team_id else None,
        "entities": [e.ref for e in selectors.visible_links(incident)],
        "dedupKey": incident.dedup_key, "openedAt": _iso(incident.opened_at), "openedBy": incident.opened_by_label,
        "acknowledgedAt": _iso(incident.acknowledged_at), "resolvedAt": _iso(incident.resolved_at),
        "mttaSeconds": incident.mtta_seconds, "mttrSeconds": incident.mttr_seconds,
        "postmortem": postmortem, "postmortemHidden": hidden, "externalURL": incident.external_url,
        "createdAt": _iso(incident.created_at), "updatedAt": _iso(incident.updated_at),
    }


def detail_dict(incident: Incident) -> dict:
    return {
        **incident_dict(incident),
        "timeline": [{"at": _iso(t.at), "kind": t.kind, "actor": t.actor_label, "text": t.text}
                     for t in incident.timeline.all()],
        "alerts": [alert_dict(a) for a in incident.alerts.all()],
    }


def alert_dict(a) -> dict:
    """An alert as `selectors.incident_detail` left it: one naming no entity the reader may see keeps its
    name, status and times, not its labels, annotations or link (they name the entity)."""
    hidden = a.entity_hidden
    return {"fingerprint": a.fingerprint, "name": a.name, "status": a.status, "severity": a.severity,
            "labels": {} if hidden else a.labels, "annotations": {} if hidden else a.annotations,
            "entity": None if hidden else a.entity_ref, "entityHidden": hidden,
            "startsAt": _iso(a.starts_at), "endsAt": _iso(a.ends_at), "generatorURL": "" if hidden else a.generator_url}


def _detail(request, pk: int) -> Response:
    return Response(detail_dict(selectors.incident_detail(request.user, pk)))


@extend_schema(
    methods=["GET"], operation_id="incidents_list", tags=["incidents"], summary="Incidents you may see",
    description="Newest first. An incident follows its first linked entity's visibility.",
    parameters=[
        OpenApiParameter("status", OpenApiTypes.STR,
                         description=f"One of: {', '.join(k for k, _ in STATUS_CHOICES)} (active: open or acknowledged)"),
        OpenApiParameter("severity", OpenApiTypes.STR, description="sev1, sev2, sev3 or sev4"),
        OpenApiParameter("team", OpenApiTypes.STR, description="The owning team's name"),
        OpenApiParameter("entity", OpenApiTypes.STR, description="Only incidents linking this entity (reference)"),
        OpenApiParameter("source", OpenApiTypes.STR, description="manual, slo or alertmanager"),
        OpenApiParameter("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                         description=f"Page size, 1–{MAX_LIMIT} (default 100)"),
        OpenApiParameter("cursor", OpenApiTypes.STR, description="`pageInfo.nextCursor` of the previous page"),
    ],
    responses={200: api_schema.IncidentPageSerializer, **error_responses()},
)
@extend_schema(
    methods=["POST"], operation_id="incidents_create", tags=["incidents"], summary="Open an incident",
    description="Needs a member, maintainer or admin role in a team. The entities must exist and be visible "
    "to you (404 otherwise); the first gives the owning team and visibility, unless `team` names another team "
    "of yours. With `dedupKey`, an unresolved incident holding the key is answered (200) instead.",
    request=api_schema.IncidentCreateSerializer,
    responses={201: api_schema.IncidentDetailSerializer,
               200: OpenApiResponse(api_schema.IncidentDetailSerializer,
                                    description="An unresolved incident with this dedupKey already exists."),
               **error_responses(403, 404)},
    examples=[OpenApiExample("By hand", request_only=True, value={
        "title": "Fraud scoring answers 503", "severity": "sev2", "entities": ["component:default/fraud-api"],
        "summary": "Since 10:40 about 20 % of scoring calls fail."})],
)
@body_limit(COMMENT)
@api_view(["GET", "HEAD", "POST"])
def incidents(request):
    if request.method == "POST":
        body = api_schema.IncidentCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        try:
            incident, created = services.incident_open(
                actor=request.user, title=data["title"], severity=data["severity"], entities=data["entities"],
                team=data["team"] or None, summary=data["summary"], dedup_key=data["dedupKey"])
        except services.IncidentError as exc:
            return _error(exc)
        response = _detail(request, incident.pk)
        response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return response
    filters = IncidentFilter(request.query_params, queryset=selectors.visible_incidents(request.user),
                             request=request)
    if not filters.is_valid():
        raise ValidationError({k: list(v) for k, v in filters.errors.items()})
    limit = pagination.page_size(request.query_params, default=100, maximum=MAX_LIMIT)
    qs = selectors.listed(filters.qs, request.user).order_by("-created_at", "-id")
    rows, cursor = pagination.newest_first(qs, request.query_params, limit)
    return Response({"items": [incident_dict(r) for r in rows], "pageInfo": {"nextCursor": cursor}})


@extend_schema(operation_id="incidents_read", tags=["incidents"], summary="One incident, with its timeline and alerts",
               responses={200: api_schema.IncidentDetailSerializer, **error_responses(404)})
@api_view(["GET", "HEAD"])
def incident(request, pk: int):
    if selectors.incident_detail(request.user, pk) is None:
        return _error(services.IncidentError("No such incident.", status=404))
    return _detail(request, pk)


@extend_schema(
    operation_id="incidents_set_status", tags=["incidents"], summary="Acknowledge, resolve or reopen",
    description="Members, maintainers and admins of the owning team, and platform admins. open → acknowledged → "
    "resolved; resolved → open reopens. The status it already has changes nothing (200); another move from the "
    "current status answers 409.",
    request=api_schema.IncidentStatusSerializer,
    responses={200: api_schema.IncidentDetailSerializer, **error_responses(403, 404, 409)},
    examples=[OpenApiExample("Acknowledge", request_only=True, value={"status": "acknowledged",
                                                                       "note": "Looking at the 503s."})],
)
@body_limit(COMMENT)
@api_view(["POST"])
def set_status(request, pk: int):
    body = api_schema.IncidentStatusSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    try:
        services.incident_transition(actor=request.user, incident_id=pk, status=body.validated_data["status"],
                                     note=body.validated_data["note"])
    except services.IncidentError as exc:
        return _error(exc)
    return _detail(request, pk)


@extend_schema(operation_id="incidents_note", tags=["incidents"], summary="Add a note to the timeline",
               description="Responders only (as for the status).", request=api_schema.IncidentNoteSerializer,
               responses={201: api_schema.IncidentDetailSerializer, **error_responses(403, 404)})
@body_limit(COMMENT)
@api_view(["POST"])
def note(request, pk: int):
    body = api_schema.IncidentNoteSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    try:
        services.incident_note(actor=request.user, incident_id=pk, text=body.validated_data["text"])
    except services.IncidentError as exc:
        return _error(exc)
    response = _detail(request, pk)
    response.status_code = status.HTTP_201_CREATED
    return response


@extend_schema(operation_id="incidents_set_postmortem", tags=["incidents"], summary="Link the postmortem",
               description="A docs page of an entity, by its portal URL; it must exist and you must see it (404 "
               "otherwise). An empty `url` removes the link. Responders only.",
               request=api_schema.IncidentPostmortemSerializer,
               responses={200: api_schema.IncidentDetailSerializer, **error_responses(403, 404)},
               examples=[OpenApiExample("Postmortem", request_only=True,
                                        value={"url": "/docs/component/default/fraud-api/postmortems/inc-42/"})])
@body_limit(COMMENT)
@api_view(["POST"])
def postmortem(request, pk: int):
    body = api_schema.IncidentPostmortemSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    try:
        services.incident_set_postmortem(actor=request.user, incident_id=pk, url=body.validated_data["url"])
    except services.IncidentError as exc:
        return _error(exc)
    return _detail(request, pk)


@extend_schema(
    operation_id="incidents_alertmanager", tags=["incidents"], summary="Alertmanager's webhook",
    description="Alertmanager's own webhook payload (version 4), sent by its `webhook_configs` with a Plinth API "
    "token as bearer (`http_config.authorization`). One incident per alert group (`groupKey`) at a time; the "
    "`plinth_entity` label links entities, `severity` sets the severity; a resolved notification resolves its "
    "alerts, and the incident when none fires. Checked whole before anything is written: a malformed field is "
    "a 400 naming it; more alerts than PLINTH_INCIDENTS_MAX_ALERTS (default 1,000) a 413 (set `max_alerts`). "
    "Only bearer tokens are accepted here (no session). docs/operations.md, \"Incidents\".",
    request=api_schema.AlertmanagerPayloadSerializer,
    responses={200: api_schema.AlertmanagerResultSerializer, **error_responses(403)},
    examples=[OpenApiExample("Firing", request_only=True, value={
        "version": "4", "groupKey": "{}:{alertname=\"FraudApiErrors\"}", "status": "firing", "receiver": "plinth",
        "groupLabels": {"alertname": "FraudApiErrors"}, "commonLabels": {"alertname": "FraudApiErrors"},
        "commonAnnotations": {"summary": "5xx above 5 %"}, "externalURL": "http://alertmanager:9093",
        "truncatedAlerts": 0, "alerts": [{
            "status": "firing", "labels": {"alertname": "FraudApiErrors", "severity": "critical",
                                           "plinth_entity": "component:default/fraud-api"},
            "annotations": {"summary": "5xx above 5 %"}, "startsAt": "2026-12-03T10:40:00Z",
            "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://prometheus:9090/graph",
            "fingerprint": "c5a1d2e3f4a5b6c7"}]})],
)
@body_limit(conf.body_limit)
@api_view(["POST"])
@authentication_classes([BearerTokenAuthentication])
def alertmanager_webhook(request):
    try:
        received = services.alertmanager_receive(actor=request.user, body=request.data)
    except alertmanager.PayloadError as exc:
        return Response({"error": {"status": exc.status, "message": f"{exc.field}: {exc.message}",
                                   "details": {exc.field: [exc.message]}}}, status=exc.status)
    incident = None
    if received.incident is not None:  # as the token's user sees it (an unlinked incident: everyone signed in)
        row = selectors.listed(selectors.visible_incidents(request.user).filter(pk=received.incident.pk),
                               request.user).first()
        incident = incident_dict(row) if row is not None else None
    return Response({"incident": incident, "created": received.created, "resolved": received.resolved,
                     "alerts": received.alerts, "unlinked": received.unlinked, "note": received.note})
