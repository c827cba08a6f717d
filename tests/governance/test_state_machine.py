"""A hypothesis stateful test of the approval state machine, driven through the services with random
requesters, reviewers, decisions, withdrawals, expiry, MLflow outages and retries."""

from __future__ import annotations

import contextlib
from collections import Counter
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from portal.core.models import AuditEvent
from portal.governance import executors, services
from portal.governance.models import CLOSED_STATES, ApprovalRequest, Decision, State

from .conftest import drain

pytestmark = pytest.mark.django_db

# Direct transitions; between two observations several may happen (e.g. approved → executing → executed).
EDGES = {
    State.PENDING: {State.IN_REVIEW, State.BLOCKED, State.WITHDRAWN},
    State.IN_REVIEW: {
        State.IN_REVIEW,
        State.APPROVED,
        State.REJECTED,
        State.CHANGES_REQUESTED,
        State.EXPIRED,
        State.WITHDRAWN,
    },
    State.APPROVED: {State.EXECUTING},
    State.EXECUTING: {State.EXECUTED, State.EXECUTION_FAILED},
    State.EXECUTION_FAILED: {State.APPROVED, State.WITHDRAWN},
}


def reachable(start: str) -> set[str]:
    seen, todo = {start}, [start]
    while todo:
        for nxt in EDGES.get(todo.pop(), set()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


class ApprovalMachine(RuleBasedStateMachine):
    users: dict = {}
    reached: set = set()  # every state seen across all examples: the run must not be vacuous

    def __init__(self) -> None:
        super().__init__()
        self.savepoint = transaction.savepoint()
        self.ids: list[int] = []
        self.seen: dict[int, str] = {}
        self.mlflow_up = True
        self.successful_executions: Counter = Counter()
        machine = self

        def fake_promote(req):
            if not machine.mlflow_up:
                raise executors.ExecutionError("MLflow unavailable")
            machine.successful_executions[req.pk] += 1
            return {"alias_changed": True}

        self._original = executors.promote_model_version
        executors.promote_model_version = fake_promote

    def teardown(self) -> None:
        executors.promote_model_version = self._original
        transaction.savepoint_rollback(self.savepoint)

    @rule(
        requester=st.sampled_from(["alice", "bob", "grace", "heidi"]),
        version=st.sampled_from(["1", "3"]),
        alias=st.sampled_from(["champion", "challenger", "shadow"]),
    )
    def submit(self, requester, version, alias):
        try:
            req = services.request_create(
                actor=self.users[requester],
                action="promote-model-version",
                target="model:default/fraud-detector",
                params={"version": version, "alias": alias},
            )
        except (services.GovernanceError, PermissionDenied):
            return
        self.ids.append(req.pk)

    @rule(requester=st.sampled_from(["alice", "bob", "grace"]), alias=st.sampled_from(["champion", "shadow"]))
    def submit_and_run_gates(self, requester, alias):
        self.submit(requester, "3", alias)
        drain()

    @rule()
    def work(self):
        drain()

    @precondition(lambda self: self.ids)
    @rule(
        data=st.data(),
        who=st.sampled_from(["erin", "frank", "alice", "grace", "carol"]),
        decision=st.sampled_from(["approve", "approve", "reject", "request-changes"]),
        comment=st.sampled_from(["", "looks fine", "looks fine"]),
    )
    def decide(self, data, who, decision, comment):
        pk = data.draw(st.sampled_from(self.ids))
        with contextlib.suppress(services.GovernanceError, PermissionDenied):
            services.request_decide(actor=self.users[who], request_id=pk, decision=decision, comment=comment)

    @precondition(lambda self: self.ids)
    @rule(who=st.sampled_from(["erin", "frank"]))
    def approve_everything_waiting(self, who):
        for pk in ApprovalRequest.objects.filter(pk__in=self.ids, state=State.IN_REVIEW).values_list(
            "pk", flat=True
        ):
            with contextlib.suppress(services.GovernanceError, PermissionDenied):
                services.request_decide(actor=self.users[who], request_id=pk, decision="approve")
        drain()

    @precondition(lambda self: self.ids)
    @rule(data=st.data(), who=st.sampled_from(["alice", "bob", "grace"]))
    def withdraw(self, data, who):
        with contextlib.suppress(services.GovernanceError, PermissionDenied):
            services.request_withdraw(actor=self.users[who], request_id=data.draw(st.sampled_from(self.ids)))

    @precondition(lambda self: len(self.ids) >= 2)
    @rule()
    def time_passes(self):
        services.sla_sweep(now=timezone.now() + timedelta(days=8))

    @rule()
    def mlflow_flaps(self):
        self.mlflow_up = not self.mlflow_up

    @precondition(lambda self: self.ids)
    @rule(data=st.data())
    def retry(self, data):
        with contextlib.suppress(services.GovernanceError, PermissionDenied):
            services.request_retry_execution(
                actor=self.users["alice"], request_id=data.draw(st.sampled_from(self.ids))
            )

    @invariant()
    def transitions_follow_the_state_machine(self):
        for pk, state in ApprovalRequest.objects.filter(pk__in=self.ids).values_list("pk", "state"):
            previous = self.seen.get(pk, State.PENDING)
            assert state in reachable(previous), f"#{pk}: {previous} → {state}"
            if previous in CLOSED_STATES:
                assert state == previous, f"#{pk} left the closed state {previous}"
            self.seen[pk] = state
            ApprovalMachine.reached.add(state)

    @invariant()
    def executed_at_most_once_and_only_when_approved(self):
        for pk, count in self.successful_executions.items():
            assert count <= 1, f"#{pk} executed {count} times"
        for req in ApprovalRequest.objects.filter(pk__in=self.ids, state=State.EXECUTED):
            assert self.successful_executions[req.pk] == 1
            for stage in req.stages.all():
                assert stage.decisions.filter(decision="approve").count() >= stage.quorum
            executed = AuditEvent.objects.filter(
                target=req.audit_target,
                action="governance.request.execute",
                payload__contains='"outcome":"success"',
            )
            assert executed.count() == 1

    @invariant()
    def separation_of_duties_and_one_vote(self):
        for req in ApprovalRequest.objects.filter(pk__in=self.ids):
            voters = list(Decision.objects.filter(request=req).values_list("user_id", flat=True))
            assert req.requester_id not in voters
            assert len(voters) == len(set(voters))


def test_approval_state_machine(fraud_versions, users):
    ApprovalMachine.users = users
    run_state_machine_as_test(
        ApprovalMachine,
        settings=settings(
            max_examples=75,
            stateful_step_count=30,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
    assert {
        State.IN_REVIEW,
        State.EXECUTED,
        State.REJECTED,
        State.WITHDRAWN,
        State.EXPIRED,
        State.EXECUTION_FAILED,
    } <= ApprovalMachine.reached, ApprovalMachine.reached
