"""Celery tasks of the lineage app (thin: they call a service)."""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(name="portal.lineage.tasks.prune_runs", ignore_result=True)
def prune_runs() -> int:
    """Beat: delete runs older than PLINTH_LINEAGE_RUN_RETENTION_DAYS (idempotent)."""
    return services.runs_prune()
