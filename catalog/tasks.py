"""Catalog background work: location refresh (beat) and the MLflow sync. Thin and idempotent."""

from __future__ import annotations

import contextlib
import logging

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from . import facets, mlflow_sync, org_sync, services
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


@shared_task(acks_late=True, max_retries=0)
def prune_scan_files() -> int:
    """Expired files of stopped discovery scans (catalog.models.ScanFile), whatever their target."""
    return services.scan_files_prune()


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


@shared_task(acks_late=True, bind=True, max_retries=3)
def sync_org(self) -> dict | None:
    """Teams and memberships from the catalog's Users and Groups (a no-op unless PLINTH_ORG_SYNC=catalog).
    Idempotent: a second run finds nothing to change."""
    try:
        outcome = org_sync.sync()
    except Exception as exc:
        log.exception("org sync failed")
        raise self.retry(exc=exc, countdown=5 * 2**self.request.retries) from exc
    return outcome.as_dict() if outcome else None


@shared_task(acks_late=True, bind=True, max_retries=4)
def sync_mlflow(self, names: list[str] | None = None) -> dict:
    """Every registered model (beat, start-up), or `names` only (a webhook delivery)."""
    try:
        return mlflow_sync.sync(names)
    except Exception as exc:
        # Bounded retries with exponential backoff; the page shows "MLflow data as of <time>".
        raise self.retry(exc=exc, countdown=min(300, 10 * 2 ** self.request.retries)) from exc


@shared_task(acks_late=True, max_retries=0)
def sync_mlflow_job(job_id: int) -> dict | None:
    """A "Sync now" from a model page. No retries: the page shows the failure and the person may press
    again; the scheduled sync retries on its own."""
    job = services.mlflow_sync_job_start(job_id=job_id)
    if job is None:
        return None
    try:
        result = mlflow_sync.sync([mlflow_sync.model_name(job.entity)])
    except Exception as exc:
        log.warning("MLflow sync of %s failed: %s", job.entity.ref, exc)
        services.mlflow_sync_job_finish(job_id=job_id, error=_describe(exc))
        return None
    services.mlflow_sync_job_finish(job_id=job_id, versions=result["versions"])
    return result


@shared_task(acks_late=True, max_retries=0, ignore_result=True)
def warm_facet_cube() -> int:
    """Count the facet cube of the current catalog version (seconds at 250k entities) before a
    list page needs it. Writes roll the cube forward from then on. Returns its row count."""
    return facets.warm()


@worker_ready.connect
def _warm_on_start(sender=None, **kwargs) -> None:
    try:
        warm_facet_cube.delay()
        if settings.PLINTH_MLFLOW_SYNC_ON_START:
            # Pages show MLflow data minutes before the first scheduled sync would have run. Only the
            # worker does this (not every web process that imports the tasks); two workers starting
            # together sync twice, which is harmless (the sync is idempotent).
            sync_mlflow.delay()
    except Exception:  # a broker hiccup at start must not stop the worker
        log.exception("could not queue the start-up work")
