"""The transactional outbox: work to publish is a row written in the transaction that made it
necessary. After commit it is published at once (the fast path); if the broker is down the row stays
unsent, the request shows "queued", and `relay_outbox` (beat, every 5 s) publishes it later.

A row is claimed (conditional UPDATE) before publishing, so the fast path and the relay never both
send it; the tasks are idempotent anyway (keyed by request and step).

A published message can still be lost: Redis restarted without persistence drops its queues, and a
worker killed whole keeps its unacknowledged messages until the visibility timeout. So each message
carries its row's id (header `plinth_outbox`), the worker marks the row done when the task succeeds
(`mark_done`, from `task_postrun`), and the relay publishes rows sent long ago but never done again,
a bounded number of times; then it gives up and says so in `last_error`."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from . import conf
from .models import ApprovalRequest, OutboxMessage

log = logging.getLogger("plinth.governance")


def enqueue(req: ApprovalRequest | None, step: str, task: str, args: list) -> OutboxMessage:
    """Write the row (must be inside the caller's transaction) and publish it after commit."""
    key = f"req:{req.pk}:{step}" if req is not None else step
    message, created = OutboxMessage.objects.get_or_create(
        key=key[:120], defaults={"task": task, "args": args, "request": req}
    )
    if created:
        transaction.on_commit(lambda: publish(message.pk))
    return message


HEADER = "plinth_outbox"


def _claim(pk: int, *, now=None, redeliver_before=None) -> OutboxMessage | None:
    now = now or timezone.now()
    until = now + timedelta(seconds=int(conf.get("OUTBOX_CLAIM_SECONDS")))
    claimable = Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    due = Q(sent_at__isnull=True)
    if redeliver_before is not None:
        due |= Q(sent_at__lt=redeliver_before, done_at__isnull=True)
    if OutboxMessage.objects.filter(claimable, due, pk=pk).update(claimed_until=until) != 1:
        return None
    return OutboxMessage.objects.get(pk=pk)


def publish(pk: int, *, now=None, redeliver_before=None) -> bool:
    """Publish one row to the broker. False (and the row kept) when the broker does not answer."""
    from portal.celery import app

    message = _claim(pk, now=now, redeliver_before=redeliver_before)
    if message is None:
        return False
    try:
        # No publish retries here: the caller may be a web request; the relay retries instead.
        app.send_task(message.task, args=message.args, retry=False, headers={HEADER: message.pk})
    except Exception as exc:
        OutboxMessage.objects.filter(pk=pk).update(
            claimed_until=None,
            attempts=message.attempts + 1,
            last_error=f"{type(exc).__name__}: {exc}"[:1000],
        )
        log.warning("outbox: publishing %s failed (%s); the relay will retry", message.key, exc)
        return False
    OutboxMessage.objects.filter(pk=pk).update(
        sent_at=timezone.now(), attempts=message.attempts + 1, last_error="", claimed_until=None
    )
    return True


def mark_done(pk) -> None:
    """The task of row `pk` finished (called in the worker after it succeeded)."""
    OutboxMessage.objects.filter(pk=pk, done_at__isnull=True).update(done_at=timezone.now(), last_error="")


def mark_failed(pk, error: str) -> None:
    """The task of row `pk` failed or is retrying: keep why, for the request page and the logs."""
    OutboxMessage.objects.filter(pk=pk, done_at__isnull=True).update(last_error=error[:1000])


def relay(limit: int | None = None, *, now=None) -> dict:
    """Publish every unsent row, oldest first, and again every row whose message was lost (sent more
    than OUTBOX_REDELIVER_SECONDS ago, not done); stop at the first broker failure (it is down)."""
    limit = limit or int(conf.get("OUTBOX_BATCH"))
    now = now or timezone.now()
    redeliver_before = now - timedelta(seconds=int(conf.get("OUTBOX_REDELIVER_SECONDS")))
    max_deliveries = int(conf.get("OUTBOX_MAX_DELIVERIES"))
    claimable = Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    lost = OutboxMessage.objects.filter(claimable, sent_at__lt=redeliver_before, done_at__isnull=True)
    gave_up = lost.filter(attempts__gte=max_deliveries).exclude(last_error__startswith="given up")
    for message in gave_up:
        OutboxMessage.objects.filter(pk=message.pk).update(
            last_error=f"given up: the task was published {message.attempts} times and never finished"
        )
        log.error("outbox: %s published %s times and never finished; giving up", message.key, message.attempts)
    pending = (
        OutboxMessage.objects.filter(
            claimable,
            Q(sent_at__isnull=True) | Q(sent_at__lt=redeliver_before, done_at__isnull=True, attempts__lt=max_deliveries),
        )
        .order_by("id")
        .values_list("pk", "sent_at")[:limit]
    )
    sent = failed = redelivered = 0
    for pk, sent_at in list(pending):
        if publish(pk, now=now, redeliver_before=redeliver_before):
            sent += 1
            redelivered += sent_at is not None
            if sent_at is not None:
                log.warning("outbox: row %s was sent at %s and never finished; published again", pk, sent_at)
        else:
            failed += 1
            if OutboxMessage.objects.filter(pk=pk, claimed_until__isnull=True, done_at__isnull=True).exists():
                break  # the broker refused: leave the rest for the next beat
    return {
        "sent": sent,
        "failed": failed,
        "redelivered": redelivered,
        "queued": OutboxMessage.objects.filter(sent_at__isnull=True).count(),
    }


def queued_for(req: ApprovalRequest) -> int:
    return OutboxMessage.objects.filter(request=req, sent_at__isnull=True).count()
