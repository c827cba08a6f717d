"""Search background work: thin and idempotent."""

from __future__ import annotations

from celery import shared_task

from . import index


@shared_task(acks_late=True, max_retries=0, ignore_result=True)
def refresh_popularity() -> int:
    """Recompute each document's popularity share from the clicked results of recent searches (decayed
    with time, see scoring.HALF_LIFE_DAYS). Returns how many documents changed."""
    return index.refresh_popularity()


@shared_task(acks_late=True, max_retries=0, ignore_result=True)
def repair_index() -> dict:
    """Index what has no document and drop documents of what is gone (`index.repair`): safe to run twice."""
    return index.repair()
