"""Celery tasks: evaluate changed entities (queued on commit by receivers) and the nightly pass."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="portal.scorecards.tasks.evaluate_refs", autoretry_for=(Exception,), retry_backoff=5,
             max_retries=3)
def evaluate_refs(refs: list[str]) -> dict:
    """Idempotent: evaluating twice writes the same results (and no second level change)."""
    from catalog.models import Entity

    from . import services

    ids = list(Entity.objects.filter(ref__in=refs).values_list("id", flat=True))
    return services.evaluate_entities(entity_ids=ids) if ids else {"entities": 0, "written": 0, "changes": 0}


@shared_task(name="portal.scorecards.tasks.evaluate_all", autoretry_for=(Exception,), retry_backoff=60,
             max_retries=2)
def evaluate_all() -> dict:
    from . import services

    stats = services.evaluate_entities()  # and today's counts (rollup_rows)
    stats["notified"] = services.notify_campaigns()
    return stats


@shared_task(name="portal.scorecards.tasks.refresh_rollup", autoretry_for=(Exception,), retry_backoff=5,
             max_retries=3)
def refresh_rollup() -> int:
    """Today's counts after the evaluations of changed entities (queued by services.refresh_soon)."""
    from . import services

    return services.rollup_today()
