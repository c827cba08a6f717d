"""Scaffolder background work: executing runs, and reaping runs whose worker was lost. Thin."""

from __future__ import annotations

import logging

from celery import shared_task

from . import services

log = logging.getLogger("plinth.scaffolder")


@shared_task(acks_late=True, bind=True, max_retries=0)
def execute_run(self, run_id: int) -> str | None:
    """Safe to deliver twice: only a queued run, a running one with a stale heartbeat, or one this same
    message was running when its worker process died, is claimed."""
    from .executor import execute

    run = services.run_claim(run_id, self.request.id or "")
    if run is None:
        return None
    return execute(run).status


@shared_task(acks_late=True, max_retries=0)
def reap_stale_runs() -> dict:
    result = services.runs_reap()
    if result["resumed"] or result["failed"]:
        log.warning("scaffolder reaper: %s", result)
    return result
