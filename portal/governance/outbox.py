"""The transactional outbox: work to publish is a row written in the transaction that made it
necessary. After commit it is published at once (the fast path); if the broker is down the row stays
unsent, the request shows "queued", and `relay_outbox` (beat, every 5 s) publishes it later.

A row is claimed (conditional UPDATE) before publishing, so the fast path and the relay never both
send it; the tasks are idempotent anyway (keyed by request and step)."""

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


def _claim(pk: int) -> OutboxMessage | None:
    now = timezone.now()
    until = now + timedelta(seconds=int(conf.get("OUTBOX_CLAIM_SECONDS")))
    claimable = Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    if OutboxMessage.objects.filter(claimable, pk=pk, sent_at__isnull=True).update(claimed_until=until) != 1:
        return None
    return OutboxMessage.objects.get(pk=pk)


def publish(pk: int) -> bool:
    """Publish one row to the broker. False (and the row kept) when the broker does not answer."""
    from portal.celery import app

    message = _claim(pk)
    if message is None:
        return False
    try:
        # No publish retries here: the caller may be a web request; the relay retries instead.
        app.send_task(message.task, args=message.args, retry=False)
    except Exception as exc:
        OutboxMessage.objects.filter(pk=pk).update(
            claimed_until=None,
            attempts=message.attempts + 1,
            last_error=f"{type(exc).__name__}: {exc}"[:1000],
        )
        log.warning("outbox: publishing %s failed (%s); the relay will retry", message.key, exc)
        return False
    OutboxMessage.objects.filter(pk=pk).update(
        sent_at=timezone.now(), attempts=message.attempts + 1, last_error=""
    )
    return True


def relay(limit: int | None = None) -> dict:
    """Publish every unsent row, oldest first; stop at the first broker failure (it is down)."""
    limit = limit or int(conf.get("OUTBOX_BATCH"))
    now = timezone.now()
    pending = (
        OutboxMessage.objects.filter(
            Q(claimed_until__isnull=True) | Q(claimed_until__lt=now), sent_at__isnull=True
        )
        .order_by("id")
        .values_list("pk", flat=True)[:limit]
    )
    sent = failed = 0
    for pk in list(pending):
        if publish(pk):
            sent += 1
        else:
            failed += 1
            if OutboxMessage.objects.filter(pk=pk, sent_at__isnull=True, claimed_until__isnull=True).exists():
                break  # the broker refused: leave the rest for the next beat
    return {
        "sent": sent,
        "failed": failed,
        "queued": OutboxMessage.objects.filter(sent_at__isnull=True).count(),
    }


def queued_for(req: ApprovalRequest) -> int:
    return OutboxMessage.objects.filter(request=req, sent_at__isnull=True).count()
