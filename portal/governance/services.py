"""Writes for governance. Every function is one transaction that locks the request row, checks the
state machine, writes its audit event and queues follow-up work in the outbox — all or nothing.

State machine (docs/governance.md):

    draft → pending (gates run) → in-review (stage k of n) → approved → executing → executed
    pending → blocked (a blocking gate failed, or a policy could not be evaluated: fail closed)
    in-review → rejected | changes-requested | expired;  pending/in-review/execution-failed → withdrawn
    executing → execution-failed (retryable) → approved (retry)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef
from django.http import Http404
from django.utils import timezone

from catalog.models import Entity, ModelVersion
from portal.accounts import permissions
from portal.accounts.models import Membership, Team
from portal.core import usage
from portal.core.audit import audit_record
from portal.core.numbers import digits
from portal.core.usage import Client, EventType

from . import conf, gate_input, impact, outbox, policy, signals, workflows
from .models import (
    AccessGrant,
    ActionType,
    ApprovalRequest,
    Comment,
    Decision,
    DecisionKind,
    OutboxMessage,
    PolicyResult,
    Stage,
    StageState,
    State,
)

ALIAS = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,62}$")
RESERVED_ALIAS = re.compile(r"^(v\d+|latest)$", re.IGNORECASE)
REF = re.compile(r"^(?:([a-z0-9-]+):)?(?:([a-z0-9-]+)/)?([A-Za-z0-9._-]{1,63})$", re.IGNORECASE)
PARAMS = {
    ActionType.PROMOTE_MODEL_VERSION: {"version", "alias"},
    ActionType.MARK_PRODUCTION: set(),
    ActionType.GRANT_ACCESS: {"team", "purpose"},
    ActionType.DEPRECATE: {"reason"},
    ActionType.RETIRE: {"reason"},
}
KINDS = {
    ActionType.PROMOTE_MODEL_VERSION: {"model"},
    ActionType.MARK_PRODUCTION: {"model", "pipeline"},
    ActionType.GRANT_ACCESS: {"dataset", "featureset"},
}
REVIEW_ROLES = permissions.REVIEW_ROLES  # who reviews is the permission module's rule


class GovernanceError(Exception):
    status = 400

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra


class InvalidRequest(GovernanceError):
    status = 400


class Conflict(GovernanceError):
    """The request is not in a state that allows this (HTTP 409, with the current state)."""

    status = 409


# -- helpers ------------------------------------------------------------------------------------


def _max_text() -> int:
    return int(conf.get("MAX_COMMENT_CHARS"))


def _check_text(value, field: str, *, required: bool = False) -> str:
    if value is not None and not isinstance(value, str):
        raise InvalidRequest(f"{field}: must be text ({type(value).__name__} given)")
    value = (value or "").strip()
    if required and not value:
        raise InvalidRequest(f"{field}: a {field} is required")
    if len(value) > _max_text():
        raise InvalidRequest(f"{field}: at most {_max_text()} characters ({len(value)} given)")
    return value


def parse_ref(target: str) -> str:
    match = REF.match((target or "").strip())
    if not match or not match.group(1):
        raise InvalidRequest("target: expected an entity reference such as model:default/fraud-detector")
    kind, namespace, name = match.group(1), match.group(2) or "default", match.group(3)
    return f"{kind}:{namespace}/{name}".lower()


def _locked(request_id: int) -> ApprovalRequest:
    try:
        return (
            # Only the request's own row: PostgreSQL refuses FOR UPDATE on the nullable side of the
            # outer join to its entity (which may be gone), and the entity needs no lock here.
            ApprovalRequest.objects.select_for_update(of=("self",))
            .select_related("entity", "requester")
            .get(pk=request_id)
        )
    except ApprovalRequest.DoesNotExist:
        raise Http404("No such approval request") from None


def _transition(req: ApprovalRequest, state: str, **fields: Any) -> None:
    """Compare-and-set on `version`: a concurrent transition makes this one fail, never both win."""
    fields = {"state": state, "version": req.version + 1, "updated_at": timezone.now(), **fields}
    if state in {
        State.EXECUTED,
        State.REJECTED,
        State.CHANGES_REQUESTED,
        State.BLOCKED,
        State.EXPIRED,
        State.WITHDRAWN,
    }:
        fields.setdefault("closed_at", timezone.now())
    updated = ApprovalRequest.objects.filter(pk=req.pk, version=req.version).update(**fields)
    if updated != 1:
        raise Conflict("The request changed meanwhile; reload and try again.", state=req.state)
    for key, value in fields.items():
        setattr(req, key, value)


def _usage(req: ApprovalRequest, type_: str, *, user=None, value: float | None = None, **data: Any) -> None:
    """Usage analytics (portal/insights): buffered, and only if the transaction commits."""
    client = Client.BROWSER if user is not None else Client.SYSTEM
    usage.record(type_, user=user, team=req.owner_team_id, subject=f"request:{req.pk}", value=value,
                   client=client, data={"workflow": req.workflow_name, "action": req.action, **data})


def _seconds_since(start) -> float | None:
    return (timezone.now() - start).total_seconds() if start else None


def _snapshot(req: ApprovalRequest) -> dict:
    return {"state": req.state, "stage": req.current_stage, "version": req.version}


def _audit(
    req: ApprovalRequest,
    actor,
    action: str,
    *,
    before=None,
    after=None,
    outcome: str = "success",
    remote_addr: str | None = None,
    extra: dict | None = None,
) -> None:
    payload_after = {**(after or {}), **(extra or {})} if (after or extra) else None
    audit_record(
        actor=actor,
        action=f"governance.request.{action}",
        target=req.audit_target,
        before=before,
        after={"entity": req.target_ref, "request_action": req.action, **(payload_after or {})},
        outcome=outcome,
        remote_addr=remote_addr,
        policy_hash=req.policy_hash,
        approval_request_id=req.pk,
    )


visible_requests_q = permissions.visible_requests_q


def get_visible(user, request_id: int) -> ApprovalRequest:
    req = ApprovalRequest.objects.filter(visible_requests_q(user), pk=request_id).distinct().first()
    if req is None:
        raise Http404("No such approval request")
    return req


def eligible_reviewers(stage: Stage, exclude_user_ids: set[int]):
    User = get_user_model()
    members = Membership.objects.filter(team__in=stage.teams.all(), role__in=REVIEW_ROLES).values("user_id")
    return User.objects.filter(pk__in=members, is_active=True).exclude(pk__in=exclude_user_ids)


def may_review_stage(user, stage: Stage) -> bool:
    # The stage's teams read here, not inside the rule (rules decide on facts; teams.all() uses the
    # request page's prefetch).
    return permissions.may_review_for(user, [team.pk for team in stage.teams.all()])


# -- confirmation before a production-affecting approval -------------------------------------------

# Aliases that serve production traffic: moving one is a production change whatever the tier.
PRODUCTION_ALIASES = frozenset({"champion", "production", "prod"})


def confirmation_reason(req: ApprovalRequest) -> str | None:
    """Why approving this request needs an explicit, typed confirmation in the browser (None: it does
    not). docs/governance.md promises it for risk tier 1 and for anything that changes production."""
    change = req.change or {}
    if req.risk_tier == 1:
        return "the model is risk tier 1"
    if change.get("alias") in PRODUCTION_ALIASES:
        return f"it moves the production alias {change['alias']}"
    lifecycle = change.get("lifecycle") or {}
    if "production" in (lifecycle.get("from"), lifecycle.get("to")):
        return "it changes the lifecycle of a production entity"
    return None


def confirmation_word(req: ApprovalRequest) -> str:
    """What the reviewer types to confirm: the target's name (the request number without an entity)."""
    return req.entity.name if req.entity is not None else str(req.pk)


def confirmation_problem(req: ApprovalRequest, decision: str, typed: str | None) -> str | None:
    """The browser's decide form refuses an approval that needs a confirmation it did not get, so an
    Enter on a focused Approve button cannot approve a production change by itself. (The API's callers
    name their decision in a request body: nothing there to press by accident.)"""
    if decision != DecisionKind.APPROVE or confirmation_reason(req) is None:
        return None
    word = confirmation_word(req)
    if (typed or "").strip() != word:
        return (
            f"confirm: approving #{req.pk} needs a confirmation because {confirmation_reason(req)}: "
            f"type {word} in the confirmation box"
        )
    return None


def request_refusal(actor, action: str, entity: Entity) -> str | None:
    """Why `actor` may not start this request about `entity` — said when the form opens, before anything
    is typed — or None. The same rules `_validate` applies when the request is submitted."""
    if action == ActionType.GRANT_ACCESS:
        if any(permissions.may_request_for_team(actor, tid) for tid in permissions.team_ids(actor)):
            return None
        return ("You are not a member of a team that may request access (members, maintainers and admins "
                "of a team may). Ask one of your team's members to request it.")
    if permissions.can(actor, permissions.Action.REQUEST, entity):
        return None
    roles = [f"{r}s" for r in permissions.roles_allowing(permissions.Action.REQUEST)]
    roles_text = ", ".join(roles[:-1]) + f" and {roles[-1]}" if len(roles) > 1 else "".join(roles)
    team = entity.owner_team.display_name if entity.owner_team else "its owner team"
    reviewing = " You review such requests once they are submitted." if (
        entity.owner_team_id is not None
        and permissions.can_on_team(actor, permissions.Action.REVIEW, entity.owner_team_id)) else ""
    return (f"Only {team}'s {roles_text} may start approval requests about {entity.display_name}."
            f"{reviewing} Ask one of them to submit this request.")


# -- create -------------------------------------------------------------------------------------


@dataclass
class _Target:
    entity: Entity
    params: dict
    change: dict


def _validate(actor, action: str, ref: str, params: dict) -> _Target:
    entity = Entity.objects.select_related("owner_team").filter(ref=ref).first()
    if entity is None or not permissions.can(actor, permissions.Action.VIEW, entity):
        raise Http404(f"No entity {ref} (or you may not see it)")
    allowed_kinds = KINDS.get(ActionType(action))
    if allowed_kinds and entity.kind_key not in allowed_kinds:
        raise InvalidRequest(
            f"target: {action} applies to {', '.join(sorted(allowed_kinds))} entities, not {entity.kind}"
        )
    unknown = set(params) - PARAMS[ActionType(action)]
    if unknown:
        raise InvalidRequest(f"params: unknown parameter(s) {', '.join(sorted(unknown))} for {action}")
    if action == ActionType.GRANT_ACCESS:
        team = Team.objects.filter(name=str(params.get("team", ""))).first()
        if team is None:
            raise InvalidRequest("params.team: no such team")
        if not permissions.may_request_for_team(actor, team.pk):
            raise PermissionDenied(f"You may not request access for team {team.name}")
        return _Target(
            entity,
            {"team": team.name, "purpose": _check_text(params.get("purpose", ""), "purpose")},
            {"grant": team.name, "to": entity.ref},
        )
    if not permissions.can(actor, permissions.Action.REQUEST, entity):
        raise PermissionDenied("You may not start approval requests about this entity")
    if action == ActionType.PROMOTE_MODEL_VERSION:
        version = str(params.get("version", "")).strip()
        alias = str(params.get("alias", "champion")).strip()
        if not digits(version):
            raise InvalidRequest("params.version: a model version number is required")
        if not ALIAS.match(alias) or RESERVED_ALIAS.match(alias):
            raise InvalidRequest(
                f"params.alias: {alias!r} is not a valid alias (letters, digits, - and _; "
                "v<number> and latest are reserved)"
            )
        rows = list(ModelVersion.objects.filter(entity=entity).only("version", "aliases"))
        if not any(r.version == version for r in rows):
            known = ", ".join(sorted((r.version for r in rows), key=lambda v: int(v) if v.isdigit() else 0))
            raise InvalidRequest(
                f"params.version: {entity.name} has no version {version}"
                + (f" (known: {known})" if known else " (no versions synced from MLflow)")
            )
        holder = next((r.version for r in rows if alias in (r.aliases or [])), None)
        if holder == version:
            raise InvalidRequest(f"params.version: v{version} already holds the alias {alias}")
        return _Target(
            entity,
            {"version": version, "alias": alias},
            {"alias": alias, "from": holder, "to": version, "model": _mlflow_name(entity),
             "drops": [a for a in conf.get("ALIAS_SUPERSEDES").get(alias, []) if a != alias]},
        )
    if action == ActionType.MARK_PRODUCTION:
        return _Target(entity, {}, {"lifecycle": {"from": entity.lifecycle, "to": "production"}})
    reason = _check_text(params.get("reason", ""), "reason")
    target_state = "deprecated" if action == ActionType.DEPRECATE else "retired"
    return _Target(
        entity,
        {"reason": reason} if reason else {},
        {"lifecycle": {"from": entity.lifecycle, "to": target_state}},
    )


def _mlflow_name(entity: Entity) -> str:
    from catalog.mlflow_sync import model_name

    return model_name(entity)


def _stage_teams(entity: Entity, names: list[str]) -> list[Team]:
    teams = []
    for name in names:
        if name == "owner":
            if entity.owner_team is None:
                raise InvalidRequest("target: it has no owner team in Plinth, so no one can review it")
            teams.append(entity.owner_team)
            continue
        team = Team.objects.filter(name=name).first()
        if team is None:
            raise InvalidRequest(f"workflow: the reviewer team {name!r} does not exist")
        teams.append(team)
    return teams


@transaction.atomic
def request_create(
    *,
    actor,
    action: str,
    target: str,
    params: dict | None = None,
    justification: str = "",
    remote_addr: str | None = None,
) -> ApprovalRequest:
    """Submit a request: validated, stored as pending with its stages, gates queued — or nothing at all."""
    if action not in ActionType.values:
        raise InvalidRequest(f"action: unknown action {action!r} (one of {', '.join(ActionType.values)})")
    if params is not None and not isinstance(params, dict):
        raise InvalidRequest("params: must be an object")
    params = params or {}
    justification = _check_text(justification, "justification")
    ref = parse_ref(target)
    resolved_target = _validate(actor, action, ref, params)
    entity = resolved_target.entity
    _lock_target(entity)
    _refuse_duplicate(ref, action, resolved_target.params)
    tier = entity.spec.get("riskTier")
    tier = tier if isinstance(tier, int) and tier in (1, 2, 3) else None
    try:
        definition = workflows.for_action(action).resolve(tier)
    except workflows.WorkflowError as exc:
        raise InvalidRequest(f"workflow: {exc}") from exc
    stage_teams = [_stage_teams(entity, s["teams"]) for s in definition["stages"]]
    now = timezone.now()
    req = ApprovalRequest.objects.create(
        action=action,
        target_ref=ref,
        entity=entity,
        owner_team=entity.owner_team,
        visibility=entity.visibility,
        params=resolved_target.params,
        justification=justification,
        requester=actor,
        state=State.PENDING,
        workflow_name=definition["name"],
        workflow_version=definition["version"],
        workflow=definition,
        risk_tier=tier,
        change=resolved_target.change,
        submitted_at=now,
    )
    for index, (spec, teams) in enumerate(zip(definition["stages"], stage_teams, strict=True)):
        stage = Stage.objects.create(request=req, index=index, name=spec["name"], quorum=spec["quorum"])
        stage.teams.set(teams)
    _audit(
        req,
        actor,
        "submit",
        after={
            "state": req.state,
            "params": req.params,
            "change": req.change,
            "workflow": f"{req.workflow_name}@{req.workflow_version}",
            "justification": justification,
        },
        remote_addr=remote_addr,
    )
    outbox.enqueue(req, "gates", "portal.governance.tasks.evaluate_gates", [req.pk])
    _usage(req, EventType.APPROVAL_REQUESTED, user=actor)
    return req


def _lock_target(entity: Entity) -> None:
    """Serialise submissions on one target until commit, so the duplicate check that follows sees a
    request submitted at the same moment (on PostgreSQL's READ COMMITTED both would pass it otherwise).
    FOR NO KEY UPDATE leaves rows that merely reference the entity free to be written; SQLite ignores
    it, its writes are serialised already."""
    Entity.objects.select_for_update(no_key=True).filter(pk=entity.pk).values_list("pk", flat=True).first()


def _refuse_duplicate(ref: str, action: str, params: dict) -> None:
    """Conflict when a request for the same change (target, action, parameters) is still open."""
    open_ = ApprovalRequest.objects.filter(
        target_ref=ref,
        action=action,
        state__in=[State.PENDING, State.IN_REVIEW, State.APPROVED, State.EXECUTING, State.EXECUTION_FAILED],
    ).only("pk", "params", "state")
    for other in open_:
        if other.params == params:
            raise Conflict(
                f"Request #{other.pk} for the same change is already open ({other.state}).",
                state=other.state,
                request_id=other.pk,
            )


# -- gates --------------------------------------------------------------------------------------


@transaction.atomic
def request_evaluate_gates(*, request_id: int) -> ApprovalRequest | None:
    """Run the workflow's gates. Blocking failure (or any error) → blocked; otherwise → in review."""
    req = _locked(request_id)
    if req.state != State.PENDING:
        return None  # already evaluated: the task ran twice
    before = _snapshot(req)
    gates = req.workflow.get("gates") or {}
    # Deprecate/retire: what depends on the target now, kept with the request (never raises).
    snapshot = impact.compute(req) if impact.applies(req) else None
    try:
        payload = gate_input.build(req, impact=snapshot)
        outcomes, _ = policy.current().evaluate(gates, payload)
        error = ""
    except Exception as exc:  # fail closed: nothing is approved on an error
        outcomes, error = [], f"Policy evaluation failed: {type(exc).__name__}: {exc}"[:2000]
    for o in outcomes:
        PolicyResult.objects.update_or_create(
            request=req,
            gate=o.gate,
            defaults={
                "title": o.title,
                "policy_file": o.policy_file,
                "policy_hash": o.policy_hash,
                "enforcement": o.enforcement,
                "passed": o.passed,
                "rules": o.rules,
                "error": o.error,
                "duration_ms": o.duration_ms,
            },
        )
    summary = {o.gate: ("pass" if o.passed else f"fail ({o.enforcement})") for o in outcomes}
    blocked = error or [o.gate for o in outcomes if o.blocking]
    req.policy_hash = policy.combined_hash(outcomes) if outcomes else ""
    if snapshot is not None and snapshot.total:
        # The owners of what depends on the target hear of it once, whatever the gates decide.
        outbox.enqueue(req, "notify:impact", "portal.governance.tasks.notify", [req.pk, "impact", 0])
    if blocked:
        gate_error = error or "Blocked by " + ", ".join(o.gate for o in outcomes if o.blocking) + "".join(
            f"; {o.gate}: {o.error}" for o in outcomes if o.error
        ) + "".join(
            f" — {r['message']}" for o in outcomes if o.blocking and not o.error
            for r in o.rules if not r["pass"] and r.get("severity") != "warn"
        )
        _transition(req, State.BLOCKED, policy_hash=req.policy_hash, gate_error=gate_error[:2000])
        _audit(
            req,
            None,
            "gates",
            before=before,
            after={"state": req.state, "gates": summary, "error": gate_error},
            outcome="blocked",
        )
        outbox.enqueue(req, "notify:blocked", "portal.governance.tasks.notify", [req.pk, "blocked", 0])
        _usage(req, EventType.APPROVAL_DECIDED, decision="blocked",
               gates=[o.gate for o in outcomes if o.blocking] or ["error"])
        return req
    _start_stage(req, 0, policy_hash=req.policy_hash)
    _audit(req, None, "gates", before=before, after={"state": req.state, "gates": summary}, outcome="passed")
    return req


def _start_stage(req: ApprovalRequest, index: int, **fields: Any) -> None:
    now = timezone.now()
    remind, escalate, expire = workflows.sla_deltas(req.workflow)
    Stage.objects.filter(request=req, index=index).update(state=StageState.ACTIVE, started_at=now)
    _transition(
        req,
        State.IN_REVIEW,
        current_stage=index,
        stage_started_at=now,
        remind_at=now + remind,
        escalate_at=now + escalate,
        expires_at=now + expire,
        reminded=False,
        escalated=False,
        **fields,
    )
    outbox.enqueue(req, f"notify:review:{index}", "portal.governance.tasks.notify", [req.pk, "review", index])


# -- decisions ----------------------------------------------------------------------------------


def request_decide(
    *, actor, request_id: int, decision: str, comment: str = "", remote_addr: str | None = None
) -> ApprovalRequest:
    """Record one vote. Reject and request-changes need a comment. Closed requests answer 409."""
    if decision not in DecisionKind.values:
        raise InvalidRequest(f"decision: one of {', '.join(DecisionKind.values)}")
    comment = _check_text(
        comment, "comment", required=decision in (DecisionKind.REJECT, DecisionKind.REQUEST_CHANGES)
    )
    visible = get_visible(actor, request_id)  # 404 before anything else when the user may not see it
    if permissions.separation_of_duties_forbids(actor, visible):
        # Separation of duties binds everyone, platform admins included. The refusal itself is audited.
        with transaction.atomic():
            _audit(
                visible,
                actor,
                "decide",
                after={"decision": decision, "reason": "separation of duties"},
                outcome="denied",
                remote_addr=remote_addr,
            )
        raise PermissionDenied("Separation of duties: you cannot decide on your own request.")
    _expire(request_id, timezone.now())  # past its expiry but not swept yet: expired now, so no decision lands
    return _decide(
        actor=actor, request_id=request_id, decision=decision, comment=comment, remote_addr=remote_addr
    )


@transaction.atomic
def _decide(
    *, actor, request_id: int, decision: str, comment: str, remote_addr: str | None
) -> ApprovalRequest:
    req = _locked(request_id)
    if req.state != State.IN_REVIEW:
        raise Conflict(
            f"The request is {req.get_state_display().lower()}; it takes no more decisions.", state=req.state
        )
    if req.expires_at is not None and req.expires_at <= timezone.now():  # expired since request_decide looked
        raise Conflict("The request has expired; it takes no more decisions.", state=State.EXPIRED)
    if permissions.separation_of_duties_forbids(actor, req):
        raise PermissionDenied("Separation of duties: you cannot decide on your own request.")
    stage = Stage.objects.get(request=req, index=req.current_stage)
    if not may_review_stage(actor, stage):
        raise PermissionDenied(
            f"Only reviewers of {', '.join(stage.teams.values_list('name', flat=True))} "
            f"decide on the stage {stage.name!r}."
        )
    if Decision.objects.filter(request=req, user=actor).exists():
        raise Conflict("You have already decided on this request (one vote per person).", state=req.state)
    before = _snapshot(req)
    try:
        with transaction.atomic():
            Decision.objects.create(
                request=req,
                stage=stage,
                user=actor,
                decision=decision,
                comment=comment,
                policy_hash=req.policy_hash,
            )
    except IntegrityError:
        raise Conflict(
            "You have already decided on this request (one vote per person).", state=req.state
        ) from None
    if decision == DecisionKind.REJECT:
        Stage.objects.filter(pk=stage.pk).update(state=StageState.CLOSED, completed_at=timezone.now())
        _transition(req, State.REJECTED)
    elif decision == DecisionKind.REQUEST_CHANGES:
        Stage.objects.filter(pk=stage.pk).update(state=StageState.CLOSED, completed_at=timezone.now())
        _transition(req, State.CHANGES_REQUESTED)
    else:
        approvals = Decision.objects.filter(stage=stage, decision=DecisionKind.APPROVE).count()
        if approvals >= stage.quorum:
            Stage.objects.filter(pk=stage.pk).update(state=StageState.APPROVED, completed_at=timezone.now())
            if stage.index + 1 < req.stage_count:
                _start_stage(req, stage.index + 1)
            else:
                _transition(req, State.APPROVED, remind_at=None, escalate_at=None, expires_at=None)
                outbox.enqueue(
                    req,
                    f"execute:{req.execution_attempts}",
                    "portal.governance.tasks.execute_request",
                    [req.pk],
                )
        else:
            _transition(req, State.IN_REVIEW)  # bump the version: a vote was counted
    _audit(
        req,
        actor,
        "decide",
        before=before,
        after={"state": req.state, "decision": decision, "stage": stage.name, "comment": comment},
        remote_addr=remote_addr,
    )
    _usage(req, EventType.APPROVAL_DECIDED, user=actor, value=_seconds_since(stage.started_at),
           stage=stage.name, decision=decision)
    if req.state != State.IN_REVIEW or decision != DecisionKind.APPROVE:
        outbox.enqueue(req, f"notify:{req.state}", "portal.governance.tasks.notify", [req.pk, req.state, 0])
    return req


@transaction.atomic
def request_withdraw(*, actor, request_id: int, remote_addr: str | None = None) -> ApprovalRequest:
    get_visible(actor, request_id)
    req = _locked(request_id)
    if not permissions.may_withdraw_request(actor, req):
        raise PermissionDenied("Only the requester can withdraw a request.")
    if req.state not in (State.DRAFT, State.PENDING, State.IN_REVIEW, State.EXECUTION_FAILED):
        raise Conflict(
            f"The request is {req.get_state_display().lower()}; it cannot be withdrawn.", state=req.state
        )
    before = _snapshot(req)
    Stage.objects.filter(request=req, state__in=[StageState.ACTIVE, StageState.WAITING]).update(
        state=StageState.CLOSED
    )
    _transition(req, State.WITHDRAWN, remind_at=None, escalate_at=None, expires_at=None)
    _audit(req, actor, "withdraw", before=before, after={"state": req.state}, remote_addr=remote_addr)
    return req


@transaction.atomic
def request_comment(*, actor, request_id: int, body: str, remote_addr: str | None = None) -> Comment:
    body = _check_text(body, "comment", required=True)
    req = get_visible(actor, request_id)
    comment = Comment.objects.create(request=req, author=actor, body=body)
    _audit(
        req, actor, "comment", after={"comment_id": comment.pk, "length": len(body)}, remote_addr=remote_addr
    )
    return comment


@transaction.atomic
def request_retry_execution(*, actor, request_id: int, remote_addr: str | None = None) -> ApprovalRequest:
    """Execution failed (e.g. MLflow down for longer than the retries): try again."""
    visible = get_visible(actor, request_id)
    reviewer = any(may_review_stage(actor, s) for s in visible.stages.all())
    if not permissions.may_retry_execution(actor, visible, reviews_it=reviewer):
        raise PermissionDenied("Only the requester, a reviewer or an admin can retry the execution.")
    req = _locked(request_id)
    if req.state != State.EXECUTION_FAILED:
        raise Conflict(
            f"The request is {req.get_state_display().lower()}; only a failed execution is retried.",
            state=req.state,
        )
    before = _snapshot(req)
    _transition(req, State.APPROVED, last_error="")
    _audit(req, actor, "retry", before=before, after={"state": req.state}, remote_addr=remote_addr)
    outbox.enqueue(
        req, f"execute:{req.execution_attempts}", "portal.governance.tasks.execute_request", [req.pk]
    )
    return req


# -- execution ----------------------------------------------------------------------------------


@transaction.atomic
def execution_claim(*, request_id: int, task_id: str) -> ApprovalRequest | None:
    """Take the execution. None when there is nothing to do (done, or another live task holds it)."""
    req = _locked(request_id)
    now = timezone.now()
    lease = timedelta(seconds=int(conf.get("EXECUTION_LEASE_SECONDS")))
    if req.state == State.EXECUTING:
        held_by_other = req.execution_task_id and req.execution_task_id != task_id
        if held_by_other and req.execution_claimed_at and req.execution_claimed_at > now - lease:
            return None
    elif req.state != State.APPROVED:
        return None
    before = _snapshot(req)
    _transition(
        req,
        State.EXECUTING,
        execution_task_id=task_id[:64],
        execution_claimed_at=now,
        execution_attempts=req.execution_attempts + (1 if req.state == State.APPROVED else 0),
    )
    if before["state"] == State.APPROVED:
        _audit(req, None, "execute_start", before=before, after={"state": req.state, "change": req.change})
    return req


@transaction.atomic
def execution_complete(*, request_id: int, task_id: str, result: dict) -> ApprovalRequest | None:
    req = _locked(request_id)
    if req.state != State.EXECUTING:
        return None
    if req.action == ActionType.GRANT_ACCESS:
        team = Team.objects.filter(name=req.params["team"]).first()
        if team is None:  # renamed or deleted since `executors.run` looked: fails for good, no retry loop
            return _execution_failed_for_good(req, missing_team_message(req.params["team"]))
    before = _snapshot(req)
    if req.action == ActionType.GRANT_ACCESS:
        AccessGrant.objects.get_or_create(
            team=team,
            target_ref=req.target_ref,
            defaults={"request": req, "purpose": req.params.get("purpose", "")},
        )
    change = {**req.change, "result": result}
    _transition(req, State.EXECUTED, change=change, last_error="")
    _audit(req, None, "execute", before=before, after={"state": req.state, "result": result})
    _usage(req, EventType.APPROVAL_EXECUTED, value=_seconds_since(req.submitted_at), requester=req.requester_id)
    outbox.enqueue(req, "notify:executed", "portal.governance.tasks.notify", [req.pk, "executed", 0])
    if req.action == ActionType.PROMOTE_MODEL_VERSION:
        # The catalog's copy of the aliases follows at once instead of at the next scheduled sync.
        outbox.enqueue(req, "catalog-sync", "catalog.tasks.sync_mlflow", [])
    executed = {"request_id": req.pk, "action": req.action, "entity_id": req.entity_id}
    transaction.on_commit(lambda: signals.request_executed.send(sender=ApprovalRequest, **executed))
    return req


@transaction.atomic
def execution_failed(*, request_id: int, error: str, final: bool) -> ApprovalRequest | None:
    req = _locked(request_id)
    if req.state != State.EXECUTING:
        return None
    if not final:
        # Still ours: renew the lease so check_slas does not dispatch a second task meanwhile.
        ApprovalRequest.objects.filter(pk=req.pk).update(
            last_error=error[:2000], execution_claimed_at=timezone.now()
        )
        return req
    return _execution_failed_for_good(req, error)


def missing_team_message(name: str) -> str:
    return f"the team {name!r} no longer exists (renamed or deleted since the request was made)"


def _execution_failed_for_good(req: ApprovalRequest, error: str) -> ApprovalRequest:
    before = _snapshot(req)
    _transition(req, State.EXECUTION_FAILED, last_error=error[:2000], execution_task_id="")
    _audit(
        req,
        None,
        "execute",
        before=before,
        after={"state": req.state, "error": error[:500]},
        outcome="failure",
    )
    outbox.enqueue(
        req,
        f"notify:failed:{req.execution_attempts}",
        "portal.governance.tasks.notify",
        [req.pk, "execution-failed", 0],
    )
    return req


# -- SLAs ----------------------------------------------------------------------------------------


def sla_sweep(now=None) -> dict:
    """Reminders, escalations, expiry, and executions whose worker died. Each request in its own transaction."""
    now = now or timezone.now()
    counts = {"reminded": 0, "escalated": 0, "expired": 0, "redispatched": 0}
    open_reviews = ApprovalRequest.objects.filter(state=State.IN_REVIEW)
    for pk in open_reviews.filter(expires_at__lte=now).values_list("pk", flat=True):
        counts["expired"] += _expire(pk, now)
    for pk in open_reviews.filter(escalated=False, escalate_at__lte=now).values_list("pk", flat=True):
        counts["escalated"] += _flag(pk, "escalated", now)
    for pk in open_reviews.filter(reminded=False, remind_at__lte=now).values_list("pk", flat=True):
        counts["reminded"] += _flag(pk, "reminded", now)
    lease = timedelta(seconds=int(conf.get("EXECUTION_LEASE_SECONDS")))
    stuck = ApprovalRequest.objects.filter(state=State.EXECUTING, execution_claimed_at__lte=now - lease)
    for pk in stuck.values_list("pk", flat=True):
        counts["redispatched"] += _redispatch(pk, now)
    # Gates published but never run (a whole worker died holding the message): dispatch them again.
    unsent = OutboxMessage.objects.filter(request=OuterRef("pk"), sent_at__isnull=True)
    stale = ApprovalRequest.objects.filter(state=State.PENDING, submitted_at__lte=now - lease).exclude(
        Exists(unsent)
    )
    for pk in stale.values_list("pk", flat=True):
        counts["redispatched"] += _redispatch_gates(pk, now)
    return counts


@transaction.atomic
def _redispatch_gates(pk: int, now) -> int:
    req = _locked(pk)
    if req.state != State.PENDING:
        return 0
    outbox.enqueue(
        req, f"gates:redispatch:{now:%Y%m%d%H%M%S%f}", "portal.governance.tasks.evaluate_gates", [req.pk]
    )
    return 1


@transaction.atomic
def _expire(pk: int, now) -> int:
    req = _locked(pk)
    if req.state != State.IN_REVIEW or not req.expires_at or req.expires_at > now:
        return 0
    before = _snapshot(req)
    Stage.objects.filter(request=req, state=StageState.ACTIVE).update(
        state=StageState.CLOSED, completed_at=now
    )
    _transition(req, State.EXPIRED)
    _audit(req, None, "expire", before=before, after={"state": req.state}, outcome="expired")
    outbox.enqueue(req, "notify:expired", "portal.governance.tasks.notify", [req.pk, "expired", 0])
    return 1


@transaction.atomic
def _flag(pk: int, flag: str, now) -> int:
    req = _locked(pk)
    due = req.escalate_at if flag == "escalated" else req.remind_at
    if req.state != State.IN_REVIEW or getattr(req, flag) or not due or due > now:
        return 0
    ApprovalRequest.objects.filter(pk=pk).update(**{flag: True})
    kind = "escalation" if flag == "escalated" else "reminder"
    if flag == "escalated":
        _audit(req, None, "escalate", after={"stage": req.current_stage}, outcome="escalated")
    outbox.enqueue(
        req,
        f"notify:{kind}:{req.current_stage}",
        "portal.governance.tasks.notify",
        [req.pk, kind, req.current_stage],
    )
    return 1


@transaction.atomic
def _redispatch(pk: int, now) -> int:
    req = _locked(pk)
    if req.state != State.EXECUTING:
        return 0
    stamp = req.execution_claimed_at.strftime("%Y%m%d%H%M%S%f") if req.execution_claimed_at else "0"
    # A new claim time makes the dead task's lease stale; the new task takes it over.
    ApprovalRequest.objects.filter(pk=pk).update(execution_task_id="")
    outbox.enqueue(
        req,
        f"execute:{req.execution_attempts}:redispatch:{stamp}",
        "portal.governance.tasks.execute_request",
        [req.pk],
    )
    return 1
