"""Scaffolder background work: executing runs, and reaping runs whose worker was lost. Thin."""

from __future__ import annotations

import logging

from celery import shared_task

from . import services

log = logging.getLogger("plinth.scaffolder")


@shared_task(acks_late=True, max_retries=0)
def execute_run(run_id: int) -> str | None:
    """Safe to deliver twice: only a queued run, or a running one with a stale heartbeat, is claimed."""
    from .executor import execute

    run = services.run_claim(run_id)
    if run is None:
        return None
    return execute(run).status


@shared_task(acks_late=True, max_retries=0)
def reap_stale_runs() -> dict:
    result = services.runs_reap()
    if result["resumed"] or result["failed"]:
        log.warning("scaffolder reaper: %s", result)
    return result
