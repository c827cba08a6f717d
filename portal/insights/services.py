"""Writes of the insights app: opting out of and back into per-user analytics, retention, and
draining the Redis capture buffer into the Event table."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction

from portal.core.audit import audit_record

from . import capture, partitions
from .models import ActiveUserDay, AnalyticsOptOut, Event, FirstActiveDay, TeamMilestone

log = logging.getLogger("plinth.insights")


@transaction.atomic
def analytics_opt_out(*, user) -> None:
    """From now on the user's events are stored without them; what already names them loses the name
    (their counts stay in the team totals)."""
    _, created = AnalyticsOptOut.objects.get_or_create(user=user)
    if not created:
        return
    Event.objects.filter(user=user).update(user=None)
    ActiveUserDay.objects.filter(user=user).delete()
    FirstActiveDay.objects.filter(user=user).delete()
    TeamMilestone.objects.filter(user=user).update(user=None)
    audit_record(actor=user, action="insights.opt_out", target=f"user:{user.pk}")


@transaction.atomic
def analytics_opt_in(*, user) -> None:
    deleted, _ = AnalyticsOptOut.objects.filter(user=user).delete()
    if deleted:
        audit_record(actor=user, action="insights.opt_in", target=f"user:{user.pk}")


def events_expire(*, now: datetime | None = None) -> dict:
    """Delete raw events older than PLINTH_ANALYTICS_RETENTION_DAYS (rollups stay). On PostgreSQL
    whole monthly partitions are dropped first."""
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(days=settings.PLINTH_ANALYTICS_RETENTION_DAYS)
    dropped = partitions.drop_before(cutoff)
    deleted, _ = Event.objects.filter(occurred_at__lt=cutoff).delete()
    return {"cutoff": cutoff.isoformat(), "partitions_dropped": dropped, "deleted": deleted}


def drain_redis(*, max_batches: int = 100) -> int:
    """Move buffered events from Redis into Event, a batch at a time: read a batch, insert it, then trim
    it off the list — a crash between the two leaves the batch in Redis for the next run. One drainer
    at a time (a Redis lock), so no batch is inserted twice by overlapping beats."""
    url = getattr(settings, "PLINTH_ANALYTICS_REDIS_URL", None)
    if not url:
        return capture.flush_now()
    import redis

    client = redis.Redis.from_url(url, socket_timeout=5)
    key = capture.redis_key()
    lock = client.lock(f"{key}:drain", timeout=300)
    if not lock.acquire(blocking=False):
        return 0
    written = 0
    try:
        for _ in range(max_batches):
            raw = client.lrange(key, 0, capture.BATCH - 1)
            if not raw:
                break
            items = []
            for blob in raw:
                try:
                    items.append(json.loads(blob))
                except ValueError:
                    capture.COUNTERS.drop()
            with transaction.atomic():
                written += capture.write_batch(items)
            client.ltrim(key, len(raw), -1)
    finally:
        lock.release()
    capture.flush_now()  # this process's dropped count
    return written
