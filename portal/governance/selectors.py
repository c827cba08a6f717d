"""Reads for governance, always filtered by what the user may see."""

from __future__ import annotations

from datetime import UTC, datetime

from django.core.exceptions import PermissionDenied
from django.db.models import Case, Count, Exists, IntegerField, OuterRef, Q, QuerySet, Value, When
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from catalog.experiments import delta_verdict, higher_is_better
from catalog.models import ModelVersion
from portal.accounts import permissions
from portal.accounts.models import Membership
from portal.core import audit
from portal.core.models import AuditEvent

from .models import OPEN_STATES, ApprovalRequest, Decision, OutboxMessage, Stage, StageState, State


def visible_requests(user) -> QuerySet[ApprovalRequest]:
    return ApprovalRequest.objects.filter(
        pk__in=ApprovalRequest.objects.filter(permissions.visible_requests_q(user)).values("pk")
    )


def awaiting_q(user) -> Q:
    """In review, the active stage routed to a team where the user reviews, not theirs, not voted yet."""
    reviewer_teams = Membership.objects.filter(user=user, role__in=permissions.REVIEW_ROLES).values("team_id")
    active = Stage.objects.filter(request=OuterRef("pk"), state=StageState.ACTIVE, teams__in=reviewer_teams)
    voted = Decision.objects.filter(request=OuterRef("pk"), user=user)
    return Q(Exists(active), state=State.IN_REVIEW) & ~Q(requester=user) & ~Q(Exists(voted))


def inbox(user) -> QuerySet[ApprovalRequest]:
    """What waits for the user, overdue first (then the oldest escalation/expiry first)."""
    now = timezone.now()
    return (
        ApprovalRequest.objects.filter(awaiting_q(user))
        .select_related("requester", "entity")
        .annotate(
            overdue=Case(
                When(escalate_at__lte=now, then=Value(0)), default=Value(1), output_field=IntegerField()
            )
        )
        .order_by("overdue", "expires_at", "id")
    )


def review_count(user) -> int:
    return ApprovalRequest.objects.filter(awaiting_q(user)).count()


def mine(user) -> QuerySet[ApprovalRequest]:
    return ApprovalRequest.objects.filter(requester=user).select_related("entity").order_by("-created_at")


def open_mine(user) -> QuerySet[ApprovalRequest]:
    """The user's own requests that are still moving (the home page's "My requests")."""
    return mine(user).filter(state__in=OPEN_STATES)


def for_entity(user, entity) -> QuerySet[ApprovalRequest]:
    return visible_requests(user).filter(entity=entity).select_related("requester").order_by("-created_at")


def queued_steps(req: ApprovalRequest) -> int:
    return OutboxMessage.objects.filter(request=req, sent_at__isnull=True).count()


def stages_with_votes(req: ApprovalRequest) -> list[dict]:
    stages = list(
        req.stages.prefetch_related("teams").annotate(
            approvals=Count("decisions", filter=Q(decisions__decision="approve"))
        )
    )
    return [{"stage": s, "teams": [t.name for t in s.teams.all()], "approvals": s.approvals} for s in stages]


def metrics_comparison(req: ApprovalRequest) -> dict:
    """Candidate metrics next to the current alias holder's, for the request page."""
    if req.action != "promote-model-version" or req.entity is None:
        return {}
    rows = {r.version: r for r in ModelVersion.objects.filter(entity=req.entity)}
    candidate = rows.get(str(req.params.get("version")))
    holder_version = (req.change or {}).get("from")
    holder = rows.get(str(holder_version)) if holder_version else None
    names = sorted(
        set((candidate.metrics if candidate else {}) or {}) | set((holder.metrics if holder else {}) or {})
    )
    table = []
    for name in names:
        new = (candidate.metrics or {}).get(name) if candidate else None
        old = (holder.metrics or {}).get(name) if holder else None
        delta = round(new - old, 4) if isinstance(new, int | float) and isinstance(old, int | float) else None
        table.append({"name": name, "candidate": new, "champion": old, "delta": delta,
                      "decimals": _decimals(new, old), "verdict": delta_verdict(name, delta),
                      "higher_is_better": higher_is_better(name)})
    return {"candidate": candidate, "champion": holder, "rows": table}


def _decimals(*values) -> int:
    """The places a metric's row is shown with: as many as its most precise value has, at most 4 (the
    compare view's precision), so 0.93 and 0.8744 do not sit in one table as "0.93" and "0.8744"."""
    places = 0
    for value in values:
        if isinstance(value, float):
            text = f"{value:.4f}".rstrip("0")
            places = max(places, len(text.split(".")[1]) if "." in text else 0)
    return places


def audit_events(user, params) -> tuple[QuerySet[AuditEvent], dict]:
    """Audit events matching `params`, oldest first, and the filter errors: the one read of the audit
    trail, shared by its page, its exports and the API (platform admins only: others get 403)."""
    if not permissions.may_read_audit(user):
        raise PermissionDenied("The audit trail is readable by platform admins.")
    qs = AuditEvent.objects.all().order_by("seq")
    errors = {}
    if params.get("actor"):
        qs = qs.filter(actor=params["actor"])
    if params.get("action"):
        qs = qs.filter(action__startswith=params["action"])
    if params.get("target"):
        qs = qs.filter(target=params["target"])
    if params.get("q"):
        qs = qs.filter(Q(target__icontains=params["q"]) | Q(action__icontains=params["q"]))
    for name, lookup in (("since", "created_at__gte"), ("until", "created_at__lt")):
        if params.get(name):
            moment = _moment(params[name])
            if moment is None:
                errors[name] = "an ISO date or time, e.g. 2026-11-26 or 2026-11-26T12:00:00Z"
            else:
                qs = _at_filter(qs, lookup, moment)
    if params.get("after"):
        try:
            qs = qs.filter(seq__gt=int(params["after"]))
        except ValueError:
            errors["after"] = "a sequence number"
    if params.get("request"):
        try:
            qs = qs.filter(target=f"approval-request:{int(params['request'])}")
        except ValueError:
            errors["request"] = "an approval request id"
    return qs, errors


# The query parameters audit_events filters by (an export records those it applied).
AUDIT_FILTERS = ("actor", "action", "target", "q", "since", "until", "after", "request")


def _at_filter(qs: QuerySet[AuditEvent], lookup: str, moment: datetime) -> QuerySet[AuditEvent]:
    """`created_at` is text (`2026-12-07T10:12:26.000000+00:00`): compared with the moment in the same
    UTC, microsecond format, as text it sorts as time does. A moment that UTC moves past year 9999 (or
    before year 1) is after (before) every event."""
    try:
        return qs.filter(**{lookup: audit.stored_time(moment)})
    except OverflowError:
        after_all = moment.year == datetime.max.year
        if after_all == (lookup == "created_at__gte"):
            return qs.none()
        return qs


def _moment(raw: str) -> datetime | None:
    """An ISO date or date-time (naive ones are UTC); None when it is not one."""
    try:
        moment = parse_datetime(raw)
        if moment is None:
            day = parse_date(raw)
            moment = datetime(day.year, day.month, day.day) if day else None
    except ValueError:  # well-formed but impossible, e.g. 2026-02-30
        return None
    if moment is not None and timezone.is_naive(moment):
        moment = timezone.make_aware(moment, UTC)
    return moment
