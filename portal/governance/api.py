"""Governance REST API: approval requests, decisions, withdraw, retry, comments, audit events."""

from __future__ import annotations

import json

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view, throttle_classes
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from portal.core import pagination, throttling
from portal.core.api import declare_links, error_responses, openapi_link
from portal.core.audit import chain_head
from portal.core.client_address import client_address
from portal.core.limits import COMMENT, FORM, PARAMETERS, body_limit
from portal.core.models import AuditEvent

from . import api_schema, impact, selectors, services
from .models import ActionType, ApprovalRequest, DecisionKind, RequestImpact, State

MAX_LIMIT = 500


def _error(exc: services.GovernanceError) -> Response:
    return Response({"error": {"status": exc.status, "message": exc.message, **exc.extra}}, status=exc.status)


def _remote(request) -> str | None:
    return client_address(request)


def request_dict(req: ApprovalRequest, *, detail: bool = False, viewer=None) -> dict:
    data = {
        "id": req.pk,
        "url": req.get_absolute_url(),
        "action": req.action,
        "target": req.target_ref,
        "params": req.params,
        "justification": req.justification,
        "requester": req.requester.get_username(),
        "state": req.state,
        "stateLabel": req.get_state_display(),
        "currentStage": req.current_stage,
        "stageCount": req.stage_count,
        "change": req.change,
        "workflow": f"{req.workflow_name}@{req.workflow_version}",
        "riskTier": req.risk_tier,
        "policyHash": req.policy_hash,
        "createdAt": req.created_at.isoformat() if req.created_at else None,
        "updatedAt": req.updated_at.isoformat() if req.updated_at else None,
        "expiresAt": req.expires_at.isoformat() if req.expires_at else None,
    }
    if detail:
        data["queued"] = selectors.queued_steps(req)
        data["gateError"] = req.gate_error
        data["lastError"] = req.last_error
        data["stages"] = [
            {
                "index": s["stage"].index,
                "name": s["stage"].name,
                "teams": s["teams"],
                "quorum": s["stage"].quorum,
                "approvals": s["approvals"],
                "state": s["stage"].state,
            }
            for s in selectors.stages_with_votes(req)
        ]
        data["policyResults"] = [
            {
                "gate": r.gate,
                "title": r.title,
                "passed": r.passed,
                "enforcement": r.enforcement,
                "policyFile": r.policy_file,
                "policyHash": r.policy_hash,
                "error": r.error,
                "rules": r.rules,
                "blocking": r.blocking,
            }
            for r in req.policy_results.all()
        ]
        data["impact"] = _impact(req, viewer)
        data["decisions"] = [
            {
                "user": d.user.get_username(),
                "decision": d.decision,
                "comment": d.comment,
                "stage": d.stage.index,
                "policyHash": d.policy_hash,
                "at": d.created_at.isoformat(),
            }
            for d in req.decisions.select_related("user", "stage")
        ]
        data["comments"] = [
            {"author": c.author.get_username(), "body": c.body, "at": c.created_at.isoformat()}
            for c in req.comments.select_related("author")
        ]
    return data


def _impact(req: ApprovalRequest, viewer) -> dict | None:
    """The downstream snapshot of a deprecate/retire request, as this reader may see it."""
    if not impact.applies(req):
        return None
    view = impact.for_viewer(RequestImpact.objects.filter(request=req).first(), viewer)
    if view is None:
        return None
    snapshot = view["snapshot"]
    return {
        "computedAt": snapshot.computed_at.isoformat(),
        "hops": snapshot.hops,
        "total": snapshot.total,
        "hidden": view["hidden"],
        "hiddenCritical": view["hidden_critical"],
        "error": snapshot.error,
        "items": [{key: item[key] for key in impact.ITEM_FIELDS}
                  for group in view["groups"] for item in group["items"]],
    }


class CreateSerializer(serializers.Serializer):
    action = serializers.CharField(max_length=40, help_text=f"One of: {', '.join(ActionType.values)}.")
    target = serializers.CharField(
        max_length=200, help_text="Entity reference, e.g. model:default/fraud-detector."
    )
    params = serializers.JSONField(
        required=False,
        default=dict,
        help_text="promote-model-version: {version, alias}; grant-access: {team, purpose}; "
        "deprecate/retire: {reason}.",
    )
    justification = serializers.CharField(required=False, allow_blank=True, max_length=20000, default="")


class DecisionSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=DecisionKind.choices)
    comment = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=20000,
        default="",
        help_text="Required to reject or request changes.",
    )


class CommentSerializer(serializers.Serializer):
    body = serializers.CharField(max_length=20000)


REQUEST_EXAMPLE = {
    "id": 7,
    "action": "promote-model-version",
    "target": "model:default/fraud-detector",
    "params": {"version": "3", "alias": "champion"},
    "state": "in-review",
    "change": {"alias": "champion", "from": "2", "to": "3", "model": "fraud-detector", "drops": ["challenger"]},
}


# Where a created request leads: what a client (and the fuzzer's stateful phase) can do with its id.
declare_links("approval_requests_create", 201, {
    name: openapi_link(operation, description, id="$response.body#/id")
    for name, operation, description in (
        ("read", "approval_requests_read", "The request, as stored."),
        ("decide", "approval_requests_decide", "Vote on it (not as its requester)."),
        ("comment", "approval_requests_comment", "Comment on it."),
        ("withdraw", "approval_requests_withdraw", "Withdraw it (its requester)."),
        ("retry", "approval_requests_retry", "Retry its failed execution."),
    )
})


@extend_schema(
    methods=["GET"],
    operation_id="approval_requests_list",
    tags=["governance"],
    summary="List approval requests you may see",
    description="Requests whose target you may see, your own, and those routed to teams in which you review.",
    parameters=[
        OpenApiParameter("state", OpenApiTypes.STR, description=f"One of: {', '.join(State.values)}"),
        OpenApiParameter("mine", OpenApiTypes.BOOL, description="Only requests you submitted"),
        OpenApiParameter(
            "awaiting", OpenApiTypes.BOOL, description="Only requests waiting for your decision"
        ),
        OpenApiParameter("target", OpenApiTypes.STR, description="Entity reference"),
        OpenApiParameter("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                         description=f"Page size, 1–{MAX_LIMIT} (default 100)"),
        OpenApiParameter("cursor", OpenApiTypes.STR, description="`pageInfo.nextCursor` of the previous page"),
    ],
    responses={200: api_schema.ApprovalRequestPageSerializer, **error_responses()},
)
@extend_schema(
    methods=["POST"],
    operation_id="approval_requests_create",
    tags=["governance"],
    summary="Submit an approval request",
    description="Validates the action, target and parameters, stores the request as `pending` and queues the "
    "policy gates. A target you may not see answers 404; an identical open request answers 409.",
    request=CreateSerializer,
    responses={
        201: OpenApiResponse(
            api_schema.ApprovalRequestDetailSerializer,
            description="Stored as `pending`; its gates are queued.",
        ),
        **error_responses(403, 404, 409),
    },
    examples=[
        OpenApiExample(
            "Promote a model version",
            request_only=True,
            value={
                "action": "promote-model-version",
                "target": "model:default/fraud-detector",
                "params": {"version": "3", "alias": "champion"},
                "justification": "AUC +0.02 on the Q3 hold-out",
            },
        ),
        OpenApiExample("Created", response_only=True, status_codes=["201"], value=REQUEST_EXAMPLE),
    ],
)
@body_limit(PARAMETERS)
@api_view(["GET", "HEAD", "POST"])
@throttle_classes(throttling.EXPENSIVE)
def approval_requests(request):
    if request.method == "POST":
        body = CreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            req = services.request_create(
                actor=request.user,
                action=body.validated_data["action"],
                target=body.validated_data["target"],
                params=body.validated_data["params"],
                justification=body.validated_data["justification"],
                remote_addr=_remote(request),
            )
        except services.GovernanceError as exc:
            return _error(exc)
        return Response(request_dict(req, detail=True, viewer=request.user), status=status.HTTP_201_CREATED)
    qs = selectors.visible_requests(request.user).select_related("requester").order_by("-created_at", "-id")
    params = request.query_params
    if params.get("state"):
        qs = qs.filter(state=params["state"])
    if params.get("mine", "").lower() in {"1", "true", "yes"}:
        qs = qs.filter(requester=request.user)
    if params.get("awaiting", "").lower() in {"1", "true", "yes"}:
        qs = qs.filter(selectors.awaiting_q(request.user))
    if params.get("target"):
        try:
            qs = qs.filter(target_ref=services.parse_ref(params["target"]))
        except services.GovernanceError as exc:
            return _error(exc)
    limit = pagination.page_size(params, default=100, maximum=MAX_LIMIT)
    total = qs.count()
    rows, next_cursor = pagination.newest_first(qs, params, limit)
    return Response({"items": [request_dict(r) for r in rows], "totalItems": total,
                     "pageInfo": {"nextCursor": next_cursor}})


@extend_schema(
    operation_id="approval_requests_read",
    tags=["governance"],
    summary="One approval request",
    description="State, stages with their votes, policy results (every rule, pass/fail, message, "
    "policy hash), decisions and comments.",
    responses={200: api_schema.ApprovalRequestDetailSerializer, **error_responses(404)},
    examples=[OpenApiExample("In review", response_only=True, value=REQUEST_EXAMPLE)],
)
@api_view(["GET", "HEAD"])
def approval_request_detail(request, pk: int):
    return Response(request_dict(services.get_visible(request.user, pk), detail=True, viewer=request.user))


@extend_schema(
    operation_id="approval_requests_decide",
    tags=["governance"],
    summary="Approve, reject or request changes",
    description="One vote per person per request; the requester never decides on their own request "
    "(not even a platform admin: 403). A closed request answers 409 with its current state. "
    "A comment is required to reject or request changes.",
    request=DecisionSerializer,
    responses={
        201: OpenApiResponse(api_schema.ApprovalRequestDetailSerializer, description="The vote is recorded."),
        **error_responses(403, 404, 409),
    },
    examples=[
        OpenApiExample("Approve", request_only=True, value={"decision": "approve", "comment": "LGTM"}),
        OpenApiExample(
            "Reject",
            request_only=True,
            value={"decision": "reject", "comment": "Recall dropped on small merchants"},
        ),
        OpenApiExample(
            "Closed",
            response_only=True,
            status_codes=["409"],
            value={
                "error": {
                    "status": 409,
                    "message": "The request is executed; it takes no more decisions.",
                    "state": "executed",
                }
            },
        ),
    ],
)
@body_limit(COMMENT)
@api_view(["POST"])
def approval_request_decide(request, pk: int):
    body = DecisionSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    try:
        req = services.request_decide(
            actor=request.user,
            request_id=pk,
            decision=body.validated_data["decision"],
            comment=body.validated_data["comment"],
            remote_addr=_remote(request),
        )
    except services.GovernanceError as exc:
        return _error(exc)
    return Response(request_dict(req, detail=True, viewer=request.user), status=status.HTTP_201_CREATED)


@extend_schema(
    operation_id="approval_requests_withdraw",
    tags=["governance"],
    summary="Withdraw your request",
    request=None,
    responses={200: api_schema.ApprovalRequestDetailSerializer, **error_responses(403, 404, 409)},
)
@body_limit(FORM)
@api_view(["POST"])
def approval_request_withdraw(request, pk: int):
    try:
        req = services.request_withdraw(actor=request.user, request_id=pk, remote_addr=_remote(request))
    except services.GovernanceError as exc:
        return _error(exc)
    return Response(request_dict(req, detail=True, viewer=request.user))


@extend_schema(
    operation_id="approval_requests_retry",
    tags=["governance"],
    summary="Retry a failed execution",
    request=None,
    responses={200: api_schema.ApprovalRequestDetailSerializer, **error_responses(403, 404, 409)},
)
@body_limit(FORM)
@api_view(["POST"])
def approval_request_retry(request, pk: int):
    try:
        req = services.request_retry_execution(
            actor=request.user, request_id=pk, remote_addr=_remote(request)
        )
    except services.GovernanceError as exc:
        return _error(exc)
    return Response(request_dict(req, detail=True, viewer=request.user))


@extend_schema(
    operation_id="approval_requests_comment",
    tags=["governance"],
    summary="Comment on a request",
    request=CommentSerializer,
    responses={201: api_schema.CommentCreatedSerializer, **error_responses(403, 404)},
)
@body_limit(COMMENT)
@api_view(["POST"])
def approval_request_comment(request, pk: int):
    body = CommentSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    try:
        comment = services.request_comment(
            actor=request.user, request_id=pk, body=body.validated_data["body"], remote_addr=_remote(request)
        )
    except services.GovernanceError as exc:
        return _error(exc)
    return Response({"id": comment.pk, "body": comment.body}, status=status.HTTP_201_CREATED)


# -- audit events ---------------------------------------------------------------------------------


def event_dict(event: AuditEvent) -> dict:
    payload = json.loads(event.payload)
    return {
        "seq": event.seq,
        "at": event.created_at,
        "actor": event.actor,
        "action": event.action,
        "target": event.target,
        "outcome": payload.get("outcome"),
        "remoteAddr": payload.get("remote_addr"),
        "requestId": payload.get("request_id"),
        "policyHash": payload.get("policy_hash"),
        "approvalRequestId": payload.get("approval_request_id"),
        "before": payload.get("before"),
        "after": payload.get("after"),
        "payload": event.payload,
        "prevHash": event.prev_hash,
        "hash": event.hash,
    }


@extend_schema(
    operation_id="audit_events_list",
    tags=["governance"],
    summary="Audit events (platform admins)",
    description="Hash-chained, append-only events, oldest first. Filter by actor, action (prefix), target, "
    "request (approval request id), since/until (ISO time); page with `after` (the last seq "
    "seen). `chainHead` lets an export be verified offline.",
    parameters=[
        OpenApiParameter(n, OpenApiTypes.STR) for n in ("actor", "action", "target", "since", "until")
    ]
    + [OpenApiParameter(n, OpenApiTypes.INT) for n in ("request", "after", "limit")],
    responses={200: api_schema.AuditEventPageSerializer, **error_responses(403)},
)
@api_view(["GET", "HEAD"])
def audit_events(request):
    qs, errors = selectors.audit_events(request.user, request.query_params)
    if errors:
        raise ValidationError(errors)
    limit = pagination.page_size(request.query_params, default=100, maximum=MAX_LIMIT)
    rows = list(qs[:limit])
    return Response(
        {
            "items": [event_dict(e) for e in rows],
            "chainHead": chain_head(),
            "nextAfter": rows[-1].seq if len(rows) == limit else None,
        }
    )
