"""Celery tasks: read and evaluate changed entities' SLOs (queued on commit), and every SLO periodically."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="portal.slo.tasks.evaluate_entities", autoretry_for=(Exception,), retry_backoff=5,
             max_retries=3)
def evaluate_entities(entity_ids: list[int]) -> dict:
    """Idempotent: a second run reads the same file and adds one more point to the history."""
    from . import services

    return services.evaluate_entities(entity_ids=entity_ids)


@shared_task(name="portal.slo.tasks.evaluate_all", autoretry_for=(Exception,), retry_backoff=30, max_retries=2)
def evaluate_all() -> dict:
    from . import services

    return services.evaluate_entities()
