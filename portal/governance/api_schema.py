"""The shapes the governance API answers with, as the OpenAPI schema documents them (never used to
serialise: `api.py` builds its bodies itself; the fuzz run in tests/api checks that the two agree)."""

from __future__ import annotations

from rest_framework import serializers

from portal.core.api import PageInfoSerializer

from .models import ActionType, DecisionKind, StageState, State


class ApprovalRequestSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.CharField(help_text="The request's page in the portal.")
    action = serializers.ChoiceField(choices=ActionType.choices)
    target = serializers.CharField(help_text="Entity reference.")
    params = serializers.DictField()
    justification = serializers.CharField(allow_blank=True)
    requester = serializers.CharField()
    state = serializers.ChoiceField(choices=State.choices)
    stateLabel = serializers.CharField()
    currentStage = serializers.IntegerField()
    stageCount = serializers.IntegerField()
    change = serializers.DictField(help_text="What executing the request changes, e.g. `{alias, from, to, model}`.")
    workflow = serializers.CharField(help_text="`name@version` of the workflow that routes it.")
    riskTier = serializers.IntegerField(allow_null=True)
    policyHash = serializers.CharField(allow_blank=True)
    createdAt = serializers.DateTimeField(allow_null=True)
    updatedAt = serializers.DateTimeField(allow_null=True)
    expiresAt = serializers.DateTimeField(allow_null=True)


class StageSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    name = serializers.CharField()
    teams = serializers.ListField(child=serializers.CharField())
    quorum = serializers.IntegerField()
    approvals = serializers.IntegerField()
    state = serializers.ChoiceField(choices=StageState.choices)


class PolicyResultSerializer(serializers.Serializer):
    gate = serializers.CharField()
    title = serializers.CharField(allow_blank=True)
    passed = serializers.BooleanField()
    enforcement = serializers.CharField()
    policyFile = serializers.CharField()
    policyHash = serializers.CharField()
    error = serializers.CharField(allow_blank=True)
    rules = serializers.ListField(
        child=serializers.DictField(),
        help_text="`[{rule, pass, message}]`; `severity: warn` on a rule whose failure never blocks",
    )
    blocking = serializers.BooleanField(help_text="This result stops the request (a failed rule that is not a warning "
                                        "under block enforcement, or an error).")


class ImpactItemSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="The lineage graph's node id")
    type = serializers.CharField()
    kind = serializers.CharField()
    name = serializers.CharField()
    title = serializers.CharField(allow_blank=True)
    ref = serializers.CharField(allow_blank=True)
    url = serializers.CharField(allow_blank=True)
    team = serializers.CharField(allow_blank=True)
    lifecycle = serializers.CharField(allow_blank=True)
    distance = serializers.IntegerField(help_text="Hops downstream of the target")
    critical = serializers.BooleanField(help_text="A production model or a live deployment")
    reason = serializers.CharField(allow_blank=True, help_text="production model | live deployment | empty")


class RequestImpactSerializer(serializers.Serializer):
    computedAt = serializers.DateTimeField(help_text="When the gates ran: the list as it was then")
    hops = serializers.IntegerField()
    total = serializers.IntegerField(help_text="Every downstream asset, including those hidden from the reader")
    hidden = serializers.IntegerField(help_text="Downstream assets the reader may not see (never named)")
    hiddenCritical = serializers.ListField(child=serializers.CharField(), help_text='e.g. ["1 production model"]')
    error = serializers.CharField(allow_blank=True, help_text="Why it could not be computed (the gate then blocks)")
    items = ImpactItemSerializer(many=True, help_text="What the reader may see, critical first")


class DecisionRecordSerializer(serializers.Serializer):
    user = serializers.CharField()
    decision = serializers.ChoiceField(choices=DecisionKind.choices)
    comment = serializers.CharField(allow_blank=True)
    stage = serializers.IntegerField()
    policyHash = serializers.CharField(allow_blank=True)
    at = serializers.DateTimeField()


class CommentRecordSerializer(serializers.Serializer):
    author = serializers.CharField()
    body = serializers.CharField()
    at = serializers.DateTimeField()


class ApprovalRequestDetailSerializer(ApprovalRequestSerializer):
    queued = serializers.IntegerField(help_text="Steps (gates, execution) queued and not yet picked up.")
    gateError = serializers.CharField(allow_blank=True)
    lastError = serializers.CharField(allow_blank=True)
    stages = StageSerializer(many=True)
    policyResults = PolicyResultSerializer(many=True)
    decisions = DecisionRecordSerializer(many=True)
    comments = CommentRecordSerializer(many=True)
    impact = RequestImpactSerializer(allow_null=True, help_text="deprecate/retire: what depended on the target "
                                     "when the gates ran (null for other actions)")


class ApprovalRequestPageSerializer(serializers.Serializer):
    items = ApprovalRequestSerializer(many=True)
    totalItems = serializers.IntegerField()
    pageInfo = PageInfoSerializer()


class CommentCreatedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    body = serializers.CharField()


class AuditEventSerializer(serializers.Serializer):
    seq = serializers.IntegerField()
    at = serializers.DateTimeField()
    actor = serializers.CharField(allow_blank=True)
    action = serializers.CharField()
    target = serializers.CharField(allow_blank=True)
    outcome = serializers.CharField(allow_null=True)
    remoteAddr = serializers.CharField(allow_null=True)
    requestId = serializers.CharField(allow_null=True)
    policyHash = serializers.CharField(allow_null=True)
    approvalRequestId = serializers.IntegerField(allow_null=True)
    before = serializers.JSONField(allow_null=True)
    after = serializers.JSONField(allow_null=True)
    payload = serializers.CharField(help_text="The hashed JSON text, byte for byte.")
    prevHash = serializers.CharField()
    hash = serializers.CharField()


class ChainHeadSerializer(serializers.Serializer):
    seq = serializers.IntegerField()
    hash = serializers.CharField()


class AuditEventPageSerializer(serializers.Serializer):
    items = AuditEventSerializer(many=True)
    chainHead = ChainHeadSerializer()
    nextAfter = serializers.IntegerField(allow_null=True, help_text="Pass as `after` for the next page.")
