"""Approval requests and everything hanging off them: stages, decisions, policy results, comments,
notifications, access grants and the transactional outbox.

Models keep invariants only; every write goes through `services.py`."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse

from portal.accounts.models import Team
from portal.accounts.permissions import Visibility


class ActionType(models.TextChoices):
    PROMOTE_MODEL_VERSION = "promote-model-version", "Promote a model version"
    MARK_PRODUCTION = "mark-production", "Mark as production"
    GRANT_ACCESS = "grant-access", "Grant a team access"
    DEPRECATE = "deprecate", "Deprecate"
    RETIRE = "retire", "Retire"


class State(models.TextChoices):
    DRAFT = "draft", "Draft"
    PENDING = "pending", "Pending (gates running)"
    IN_REVIEW = "in-review", "In review"
    APPROVED = "approved", "Approved"
    EXECUTING = "executing", "Executing"
    EXECUTED = "executed", "Executed"
    REJECTED = "rejected", "Rejected"
    CHANGES_REQUESTED = "changes-requested", "Changes requested"
    BLOCKED = "blocked", "Blocked by policy"
    EXPIRED = "expired", "Expired"
    WITHDRAWN = "withdrawn", "Withdrawn"
    EXECUTION_FAILED = "execution-failed", "Execution failed (retryable)"


OPEN_STATES = frozenset(
    {State.DRAFT, State.PENDING, State.IN_REVIEW, State.APPROVED, State.EXECUTING, State.EXECUTION_FAILED}
)
CLOSED_STATES = frozenset(set(State) - OPEN_STATES)


class DecisionKind(models.TextChoices):
    APPROVE = "approve", "Approve"
    REJECT = "reject", "Reject"
    REQUEST_CHANGES = "request-changes", "Request changes"


class ApprovalRequest(models.Model):
    """One request to change something that needs approval. Who may see it follows its target's owner and
    visibility as they are now; `owner_team` and `visibility` are their copies from the time of the
    request, which decide once the target has left the catalog (`permissions.visible_requests_q`)."""

    action = models.CharField(max_length=40, choices=ActionType.choices)
    target_ref = models.CharField(max_length=200, db_index=True)
    entity = models.ForeignKey(
        "catalog.Entity", null=True, blank=True, on_delete=models.SET_NULL, related_name="approval_requests"
    )
    owner_team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    visibility = models.CharField(max_length=10, default=Visibility.INTERNAL)
    params = models.JSONField(default=dict)
    justification = models.TextField(blank=True)
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="approval_requests"
    )
    state = models.CharField(max_length=20, choices=State.choices, default=State.DRAFT, db_index=True)
    # Bumped by every transition; an update that does not find the version it read is a lost race.
    version = models.PositiveIntegerField(default=0)
    workflow_name = models.CharField(max_length=100)
    workflow_version = models.PositiveIntegerField(default=1)
    workflow = models.JSONField(default=dict)  # the resolved definition, frozen at submission
    risk_tier = models.PositiveSmallIntegerField(null=True, blank=True)
    current_stage = models.PositiveSmallIntegerField(default=0)
    change = models.JSONField(
        default=dict
    )  # what will change, e.g. {"alias": "champion", "from": "2", "to": "3"}
    policy_hash = models.CharField(max_length=64, blank=True)
    gate_error = models.TextField(blank=True)
    execution_attempts = models.PositiveIntegerField(default=0)
    execution_task_id = models.CharField(max_length=64, blank=True)
    execution_claimed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    # SLA of the current stage.
    stage_started_at = models.DateTimeField(null=True, blank=True)
    remind_at = models.DateTimeField(null=True, blank=True)
    escalate_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    reminded = models.BooleanField(default=False)
    escalated = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["state", "expires_at"], name="approval_state_expiry"),
            models.Index(fields=["requester", "state"], name="approval_requester_state"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.action} {self.target_ref}"

    def get_absolute_url(self) -> str:
        return reverse("governance:request-detail", args=[self.pk])

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    @property
    def audit_target(self) -> str:
        return f"approval-request:{self.pk}"

    @property
    def stage_count(self) -> int:
        return len(self.workflow.get("stages", []))


class StageState(models.TextChoices):
    WAITING = "waiting", "Waiting"
    ACTIVE = "active", "Active"
    APPROVED = "approved", "Approved"
    CLOSED = "closed", "Closed"


class Stage(models.Model):
    request = models.ForeignKey(ApprovalRequest, on_delete=models.CASCADE, related_name="stages")
    index = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=200)
    teams = models.ManyToManyField(Team, related_name="review_stages")
    quorum = models.PositiveSmallIntegerField(default=1)
    state = models.CharField(max_length=10, choices=StageState.choices, default=StageState.WAITING)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["request", "index"]
        constraints = [models.UniqueConstraint(fields=["request", "index"], name="one_stage_per_index")]
        indexes = [models.Index(fields=["state", "request"], name="stage_state_request")]

    def __str__(self) -> str:
        return f"{self.request_id}/{self.index} {self.name}"


class Decision(models.Model):
    request = models.ForeignKey(ApprovalRequest, on_delete=models.CASCADE, related_name="decisions")
    stage = models.ForeignKey(Stage, on_delete=models.CASCADE, related_name="decisions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decision = models.CharField(max_length=20, choices=DecisionKind.choices)
    comment = models.TextField(blank=True)
    policy_hash = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        # Separation of duties, second line of defence: one vote per person per request.
        constraints = [models.UniqueConstraint(fields=["request", "user"], name="one_vote_per_person")]

    def __str__(self) -> str:
        return f"{self.user} {self.decision} #{self.request_id}"


class PolicyResult(models.Model):
    """One gate's evaluation: every rule with pass/fail and a human message, and the policy file's hash."""

    request = models.ForeignKey(ApprovalRequest, on_delete=models.CASCADE, related_name="policy_results")
    gate = models.CharField(max_length=100)
    title = models.CharField(max_length=200, blank=True)
    policy_file = models.CharField(max_length=300)
    policy_hash = models.CharField(max_length=64)
    enforcement = models.CharField(max_length=5, default="block")  # block | warn
    passed = models.BooleanField()
    rules = models.JSONField(default=list)  # [{"rule", "pass", "message"}]
    error = models.TextField(blank=True)
    duration_ms = models.FloatField(default=0)
    evaluated_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["request", "id"]
        constraints = [models.UniqueConstraint(fields=["request", "gate"], name="one_result_per_gate")]

    def __str__(self) -> str:
        return f"{self.gate}: {'pass' if self.passed else 'fail'}"

    @property
    def blocking(self) -> bool:
        from .policy import blocks

        return blocks(passed=self.passed, enforcement=self.enforcement, rules=self.rules, error=self.error)


class Comment(models.Model):
    request = models.ForeignKey(ApprovalRequest, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.author} on #{self.request_id}"


class Notification(models.Model):
    """The in-app inbox. `key` makes a notification idempotent: a task run twice notifies once."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="governance_notifications"
    )
    # Null for notifications about something other than a request (feedback); `url` then says where to go.
    request = models.ForeignKey(ApprovalRequest, null=True, blank=True, on_delete=models.CASCADE,
                                related_name="notifications")
    url = models.CharField(max_length=500, blank=True)
    key = models.CharField(max_length=120)
    kind = models.CharField(max_length=30)
    message = models.CharField(max_length=500)
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)
    emailed = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="one_notification_per_key")]

    def __str__(self) -> str:
        return f"{self.user}: {self.message}"

    @property
    def target_url(self) -> str:
        return self.url or (self.request.get_absolute_url() if self.request_id else "")


class AccessGrant(models.Model):
    """Written by an executed grant-access request: the team may use the target (e.g. PII data)."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="access_grants")
    target_ref = models.CharField(max_length=200)
    purpose = models.CharField(max_length=500, blank=True)
    request = models.ForeignKey(ApprovalRequest, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "target_ref"], name="one_grant_per_team_target")
        ]

    def __str__(self) -> str:
        return f"{self.team} → {self.target_ref}"


class OutboxMessage(models.Model):
    """A task to publish, written in the transaction that made it necessary. `relay_outbox` publishes
    rows whose immediate publish failed (broker down); `key` (request + step) makes publishing idempotent."""

    key = models.CharField(max_length=120, unique=True)
    task = models.CharField(max_length=200)
    args = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # Set when a worker finished the task. A row sent long ago and not done lost its message (a broker
    # restarted without persistence, a worker killed with it): the relay publishes it again.
    done_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    request = models.ForeignKey(
        ApprovalRequest, null=True, blank=True, on_delete=models.CASCADE, related_name="outbox"
    )

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.key} ({'sent' if self.sent_at else 'queued'})"


class RequestImpact(models.Model):
    """What depended on a deprecate/retire request's target when its gates ran: the lineage graph's
    downstream list, kept so reviewers see what it was at decision time. `items` holds every downstream
    asset whoever may see it (each with the owner team and visibility that decide who may read its
    name); pages show each reader what they may see and count the rest (`impact.for_viewer`)."""

    request = models.OneToOneField(ApprovalRequest, on_delete=models.CASCADE, related_name="impact")
    root = models.CharField(max_length=500, blank=True)  # the graph node id of the target
    hops = models.PositiveSmallIntegerField(default=10)
    total = models.PositiveIntegerField(default=0)
    critical = models.PositiveIntegerField(default=0)  # production models and live deployments
    # [{"id", "type", "kind", "name", "title", "ref", "url", "team", "team_id", "visibility", "lifecycle",
    #   "distance", "critical", "reason"}], critical first
    items = models.JSONField(default=list)
    error = models.TextField(blank=True)  # why it could not be computed (the gate then fails closed)
    computed_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"impact of #{self.request_id}: {self.total} downstream"
