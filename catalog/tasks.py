"""Catalog background work: location refresh (beat) and the MLflow sync. Thin and idempotent."""

from __future__ import annotations

import contextlib
import logging

from celery import shared_task
from celery.signals import worker_ready
from django.db.models import Q
from django.utils import timezone

from . import facets, mlflow_sync, services
from .models import Location

log = logging.getLogger("plinth.catalog")


@shared_task(acks_late=True, max_retries=0)
def refresh_due_locations(limit: int = 50) -> int:
    due = Location.objects.filter(Q(next_refresh_at__isnull=True) | Q(next_refresh_at__lte=timezone.now()))
    count = 0
    for pk in due.order_by("next_refresh_at").values_list("pk", flat=True)[:limit]:
        refresh_location.delay(pk)
        count += 1
    return count


@shared_task(acks_late=True, bind=True, max_retries=3)
def refresh_location(self, location_id: int) -> dict | None:
    location = Location.objects.filter(pk=location_id).first()
    if location is None:
        return None
    try:
        plan = services.location_refresh(location=location)
    except Exception as exc:
        log.exception("refresh of location %s failed", location_id)
        final = self.request.retries >= self.max_retries
        with contextlib.suppress(Exception):  # the database may be what failed; the retry says it again
            services.location_refresh_failed(location_id=location_id, error=_describe(exc), final=final)
        raise self.retry(exc=exc, countdown=5 * 2**self.request.retries) from exc
    return {"added": len(plan.added), "changed": len(plan.changed), "removed": len(plan.removed)}


def _describe(exc: Exception) -> str:
    """An infrastructure failure in one line a person can act on."""
    text = " ".join(str(exc).split())[:600]
    if "No space left on device" in text or "could not extend file" in text:
        return f"the database's disk is full ({text})"
    return f"{type(exc).__name__}: {text}"


@shared_task(acks_late=True, bind=True, max_retries=4)
def sync_mlflow(self) -> dict:
    try:
        return mlflow_sync.sync()
    except Exception as exc:
        # Bounded retries with exponential backoff; the page shows "MLflow data as of <time>".
        raise self.retry(exc=exc, countdown=min(300, 10 * 2 ** self.request.retries)) from exc


@shared_task(acks_late=True, max_retries=0, ignore_result=True)
def warm_facet_cube() -> int:
    """Count the facet cube of the current catalog version (seconds at 250k entities) before a
    list page needs it. Writes roll the cube forward from then on. Returns its row count."""
    return facets.warm()


@worker_ready.connect
def _warm_on_start(sender=None, **kwargs) -> None:
    try:
        warm_facet_cube.delay()
    except Exception:  # a broker hiccup at start must not stop the worker
        log.exception("could not queue the facet cube warm-up")
