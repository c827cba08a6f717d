"""Governance background work. Tasks take ids, call a service, own their retries, and are safe to
run twice (acks_late + reject_on_worker_lost are on globally: a killed worker's task comes back)."""

from __future__ import annotations

import logging

from celery import shared_task, states
from celery.signals import task_failure, task_postrun, task_retry
from django.db import InterfaceError, OperationalError

from . import conf, executors, impact, notifications, outbox, services
from .models import ApprovalRequest, RequestImpact, Stage, State

log = logging.getLogger("plinth.governance")


@task_postrun.connect
def _outbox_done(sender=None, task=None, state=None, **kwargs) -> None:
    """A task published from the outbox finished: its row need not be published again."""
    pk = getattr(getattr(task, "request", None), outbox.HEADER, None)
    if pk is None or state != states.SUCCESS:
        return
    try:
        outbox.mark_done(pk)
    except Exception:  # the database is unreachable: the relay publishes it once more; tasks are idempotent
        log.exception("could not mark outbox row %s done", pk)


@task_retry.connect
def _outbox_retry(sender=None, request=None, reason=None, **kwargs) -> None:
    _outbox_failed(request, f"retrying: {reason}")


@task_failure.connect
def _outbox_failure(sender=None, task_id=None, exception=None, **kwargs) -> None:
    _outbox_failed(getattr(sender, "request", None), f"failed: {type(exception).__name__}: {exception}")


def _outbox_failed(request, error: str) -> None:
    """Say on the outbox row why its task did not finish (the relay publishes it again later)."""
    pk = getattr(request, outbox.HEADER, None)
    if pk is None:
        return
    try:
        outbox.mark_failed(pk, " ".join(error.split()))
    except Exception:  # the database may be what failed
        log.exception("could not record the failure of outbox row %s", pk)


@shared_task(acks_late=True, max_retries=0)
def relay_outbox() -> dict:
    """Beat, every 5 s: publish outbox rows the broker refused earlier."""
    return outbox.relay()


@shared_task(acks_late=True, max_retries=0)
def check_slas() -> dict:
    """Beat, every 60 s: reminders, escalations, expiry, and executions whose worker died."""
    return services.sla_sweep()


@shared_task(acks_late=True, bind=True, max_retries=5)
def evaluate_gates(self, request_id: int) -> str | None:
    try:
        req = services.request_evaluate_gates(request_id=request_id)
    except OperationalError as exc:  # e.g. SQLite busy: try again rather than lose the step
        raise self.retry(exc=exc, countdown=2 * 2**self.request.retries) from exc
    return req.state if req else None


@shared_task(acks_late=True, bind=True, max_retries=None)
def execute_request(self, request_id: int) -> str | None:
    """Carry out an approved request. MLflow failures retry with exponential backoff, then end in the
    visible, retryable `execution-failed` state."""
    task_id = self.request.id or f"local-{request_id}"
    try:
        req = services.execution_claim(request_id=request_id, task_id=task_id)
    except OperationalError as exc:  # e.g. SQLite busy: try again rather than lose the execution
        raise self.retry(exc=exc, countdown=2 * 2**self.request.retries, max_retries=8) from exc
    if req is None:
        return None
    try:
        result = executors.run(req)
    except executors.ExecutionError as exc:
        max_retries = int(conf.get("EXECUTION_MAX_RETRIES"))
        final = self.request.retries >= max_retries or self.request.called_directly
        services.execution_failed(request_id=request_id, error=str(exc), final=final)
        if final:
            return State.EXECUTION_FAILED
        countdown = min(300, int(conf.get("EXECUTION_BACKOFF_SECONDS")) * 2**self.request.retries)
        raise self.retry(exc=exc, countdown=countdown, max_retries=max_retries) from exc
    try:
        done = services.execution_complete(request_id=request_id, task_id=task_id, result=result)
    except OperationalError as exc:  # the change is made and idempotent: finishing again is safe
        raise self.retry(exc=exc, countdown=2 * 2**self.request.retries, max_retries=8) from exc
    return done.state if done else None


KIND_MESSAGES = {
    "review": "{requester} asks you to review: {summary}",
    "reminder": "Reminder: {summary} waits for your review",
    "escalation": "Escalated: {summary} is overdue at stage {stage}",
    "blocked": "Your request {summary} was blocked by policy",
    "approved": "Your request {summary} was approved",
    "rejected": "Your request {summary} was rejected",
    "changes-requested": "Changes were requested on {summary}",
    "executed": "Done: {summary}",
    "execution-failed": "Execution failed: {summary} (retry from the request page)",
    "expired": "Your request {summary} expired without a decision",
}


def summary(req: ApprovalRequest) -> str:
    """`#8 promote Fraud Detector v3 to champion`: the target by its title (its ref when it has none, or
    is gone)."""
    change = req.change or {}
    # One line: a title may hold line breaks, which an e-mail subject must not (BadHeaderError).
    target = " ".join((req.entity.title if req.entity_id and req.entity else "").split()) or req.target_ref
    if req.action == "promote-model-version":
        return f"#{req.pk} promote {target} v{change.get('to')} to {change.get('alias')}"
    return f"#{req.pk} {req.action} {target}"


@shared_task(
    acks_late=True, bind=True, max_retries=3,
    # The database restarting under it: try again shortly (every write below is idempotent).
    autoretry_for=(OperationalError, InterfaceError), retry_backoff=2, retry_backoff_max=60, retry_jitter=False,
)
def notify(self, request_id: int, kind: str, stage_index: int = 0) -> int:
    """In-app notifications (idempotent by key) and one e-mail for each not yet e-mailed. Delivered
    again (a worker died mid-way), it writes no second notification and sends only the e-mails that
    were not sent: `emailed` is set right after the server accepted each one."""
    req = ApprovalRequest.objects.select_related("requester", "entity").filter(pk=request_id).first()
    if req is None:
        return 0
    if kind == "impact":
        return _notify_impact(self, req)
    recipients = _recipients(req, kind, stage_index)
    text = KIND_MESSAGES.get(kind, "{summary}: " + kind).format(
        requester=" ".join(req.requester.get_full_name().split()) or req.requester.get_username(), summary=summary(req), stage=stage_index + 1
    )
    notes, created = notifications.write(recipients, key=f"{kind}:{req.pk}:{stage_index}", kind=kind,
                                         message=text, request=req)
    if not notifications.email(notes, text, req.get_absolute_url()):
        # The in-app notifications stand; the e-mails that failed are sent by the retry.
        raise self.retry(countdown=5 * 2**self.request.retries)
    return created


def _notify_impact(task, req: ApprovalRequest) -> int:
    """The owners of what depends on a deprecate/retire target: one notification per person and request
    (key `impact:<id>`), each naming only their own team's assets."""
    snapshot = RequestImpact.objects.filter(request=req).first()
    if snapshot is None:
        return 0
    created, ok = 0, True
    for user, items in impact.owners_to_notify(req, snapshot):
        text = impact.owner_message(summary(req), items)
        notes, new = notifications.write([user], key=f"impact:{req.pk}", kind="impact", message=text, request=req)
        created += new
        ok = notifications.email(notes, text, req.get_absolute_url()) and ok
    if not ok:
        raise task.retry(countdown=5 * 2**task.request.retries)
    return created


def _recipients(req: ApprovalRequest, kind: str, stage_index: int):
    if kind in {"review", "reminder", "escalation"}:
        stage = Stage.objects.filter(request=req, index=stage_index).first()
        if stage is None or req.state != State.IN_REVIEW or req.current_stage != stage_index:
            return []
        voted = set(req.decisions.values_list("user_id", flat=True)) | {req.requester_id}
        if kind == "escalation":
            from django.contrib.auth import get_user_model

            from portal.accounts.models import Membership, Role

            admins = Membership.objects.filter(team__in=stage.teams.all(), role=Role.ADMIN).values("user_id")
            return list(
                get_user_model().objects.filter(pk__in=admins, is_active=True).exclude(pk=req.requester_id)
            )
        return list(services.eligible_reviewers(stage, voted))
    return [req.requester]
