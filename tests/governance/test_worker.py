"""The workflow on a real Celery worker and Redis: concurrent approvals, a worker killed mid-execution,
the broker down at submit time. MLflow is the real tracking server (behind a proxy where needed)."""

from __future__ import annotations

import os
import signal
import threading
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from portal.core.models import AuditEvent
from portal.governance import conf, outbox, services
from portal.governance.models import ApprovalRequest, Decision, Notification, OutboxMessage, State
from tests.conftest import start_celery_worker, use_broker
from tests.faults import HoldingProxy, pool_pids
from tests.services import free_port

from .conftest import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

PROMOTE = {
    "action": "promote-model-version",
    "target": "model:default/fraud-detector",
    "params": {"version": "3", "alias": "champion"},
}
ALIAS_POST = b"POST /api/2.0/mlflow/registered-models/alias"


def state_of(pk: int) -> str:
    return ApprovalRequest.objects.values_list("state", flat=True).get(pk=pk)


def submit_and_review(users) -> ApprovalRequest:
    req = services.request_create(actor=users["alice"], **PROMOTE)
    wait_for(lambda: state_of(req.pk) == State.IN_REVIEW, what="gates on the worker")
    return req


def test_concurrent_approvals_give_one_transition_and_one_execution(worker_env, users, redis_url):
    worker = start_celery_worker(redis_url)
    try:
        req = submit_and_review(users)
        wait_for(
            lambda: Notification.objects.filter(request=req, kind="review").count() == 2,
            what="reviewers notified",
        )
        alice = users["alice"]
        assert alice.get_full_name()  # the notification names her so, and the model by its title
        assert {n.message for n in Notification.objects.filter(request=req, kind="review")} == {
            f"{alice.get_full_name()} asks you to review: #{req.pk} promote Fraud detector v3 to champion"}
        barrier = threading.Barrier(2)
        outcomes: dict[str, str] = {}

        def decide(name: str) -> None:
            barrier.wait()
            try:
                services.request_decide(actor=users[name], request_id=req.pk, decision="approve")
                outcomes[name] = "ok"
            except services.Conflict as exc:
                outcomes[name] = f"409 {exc.extra.get('state')}"
            finally:
                connection.close()

        threads = [threading.Thread(target=decide, args=(n,)) for n in ("erin", "frank")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # The loser waits for the winner's commit; by the time it reads the state, the worker may have
        # started (or finished) the execution already: any state past the decision is a correct 409.
        loser = sorted(outcomes.values())
        assert loser[1] == "ok" and loser[0] in {"409 approved", "409 executing", "409 executed"}, outcomes
        wait_for(lambda: state_of(req.pk) == State.EXECUTED, what="execution")
        assert Decision.objects.filter(request=req).count() == 1
        assert OutboxMessage.objects.filter(request=req, key__contains=":execute:").count() == 1
        assert (
            AuditEvent.objects.filter(target=req.audit_target, action="governance.request.execute").count()
            == 1
        )
        assert worker_env.get_model_version_by_alias("fraud-detector", "champion").version == "3"
    finally:
        worker.stop()


@pytest.fixture
def proxy(mlflow_url):
    p = HoldingProxy(mlflow_url, ALIAS_POST)
    yield p
    p.close()


def _approve_with_held_execution(users, proxy) -> ApprovalRequest:
    req = submit_and_review(users)
    services.request_decide(actor=users["erin"], request_id=req.pk, decision="approve")
    assert proxy.held.wait(60), "the execution never reached MLflow's set-alias call"
    assert state_of(req.pk) == State.EXECUTING
    return req


def _assert_executed_once(req, worker_env, proxy) -> None:
    wait_for(lambda: state_of(req.pk) == State.EXECUTED, timeout=90, what="execution after the kill")
    assert proxy.forwarded == 1
    assert worker_env.get_model_version_by_alias("fraud-detector", "champion").version == "3"
    tags = worker_env.get_model_version("fraud-detector", "3").tags
    assert tags["plinth.approval_request"] == str(req.pk)
    assert (
        AuditEvent.objects.filter(target=req.audit_target, action="governance.request.execute").count() == 1
    )
    call_command("audit", "verify")


def test_pool_process_killed_mid_execution_is_redelivered_and_alias_moves_once(
    worker_env, users, redis_url, proxy, monkeypatch
):
    """kill -9 of the process running the task: Celery (acks_late + reject_on_worker_lost) redelivers it,
    and the replacement pool processes can run it (they are never forked in the middle of a heartbeat:
    see docs/governance.md, "Known issues", and test_heartbeat_fork.py)."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", proxy.url)
    worker = start_celery_worker(redis_url)
    try:
        req = _approve_with_held_execution(users, proxy)
        for child in pool_pids(worker.pid):
            os.kill(child, signal.SIGKILL)
        time.sleep(1)
        proxy.release.set()
        try:
            _assert_executed_once(req, worker_env, proxy)
        except AssertionError as exc:
            raise AssertionError(
                f"{exc}\n--- worker log ---\n" + "\n".join(worker.log.splitlines()[-60:])
            ) from exc
        assert "WorkerLostError" in worker.log or "exited with 'signal 9" in worker.log
    finally:
        worker.stop()


def test_whole_worker_killed_mid_execution_is_dispatched_again(
    worker_env, users, redis_url, proxy, monkeypatch
):
    """kill -9 of the whole worker: the task waits in Redis until its visibility timeout; meanwhile
    check_slas finds the execution lease expired and dispatches it again to the next worker."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", proxy.url)
    worker = start_celery_worker(redis_url)
    second = None
    try:
        req = _approve_with_held_execution(users, proxy)
        worker.kill()
        proxy.release.set()
        second = start_celery_worker(redis_url)
        lease = int(conf.get("EXECUTION_LEASE_SECONDS"))
        counts = services.sla_sweep(now=timezone.now() + timedelta(seconds=lease + 1))
        assert counts["redispatched"] == 1
        _assert_executed_once(req, worker_env, proxy)
    finally:
        worker.stop()
        if second:
            second.stop()


def test_broker_down_at_submit_then_up_completes(worker_env, users, redis_url, as_user):
    from portal.celery import app

    worker = start_celery_worker(redis_url)
    live_broker = app.conf.broker_url
    try:
        use_broker(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens: the broker is "down"
        client = as_user(users["alice"])
        response = client.post("/api/v1/approval-requests", data=PROMOTE, content_type="application/json")
        assert response.status_code == 201
        pk = response.json()["id"]
        assert response.json()["queued"] == 1
        page = client.get(f"/reviews/requests/{pk}/").content.decode()
        assert 'data-testid="queued"' in page
        time.sleep(1)
        assert state_of(pk) == State.PENDING  # kept, not lost, not run
        assert outbox.relay()["sent"] == 0  # still down: the relay keeps it
        use_broker(live_broker)  # the broker is back
        assert outbox.relay()["sent"] == 1
        wait_for(lambda: state_of(pk) == State.IN_REVIEW, what="gates after the broker came back")
        wait_for(
            lambda: Notification.objects.filter(request_id=pk, kind="review").count() == 2,
            what="reviewers notified",
        )
        assert OutboxMessage.objects.filter(sent_at__isnull=True).count() == 0
    finally:
        use_broker(live_broker)
        worker.stop()
