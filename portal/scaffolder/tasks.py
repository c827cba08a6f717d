"""Scaffolder background work: executing runs, and reaping runs whose worker was lost. Thin."""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import InterfaceError, OperationalError

from . import services

log = logging.getLogger("plinth.scaffolder")


@shared_task(name=services.EXECUTE_RUN_TASK, acks_late=True, bind=True, max_retries=6)
def execute_run(self, run_id: int) -> str | None:
    """Safe to deliver twice: only a queued run, a running one with a stale heartbeat, or one this same
    message was running when its worker process died, is claimed. When the database goes away mid-run
    the task retries, as the same task: it takes the run over again and resumes it (steps that
    published are not repeated). A cancelled run is never claimed (run_claim takes queued or running runs
    only), so a run cancelled while its message waited in the queue never starts."""
    from .executor import execute

    try:
        run = services.run_claim(run_id, self.request.id or "")
        if run is None:
            log.info("run %s: not claimed (finished, cancelled or taken by another worker)", run_id)
            return None
        return execute(run).status
    except (OperationalError, InterfaceError) as exc:
        log.warning("run %s: the database failed (%s); retrying", run_id, exc)
        raise self.retry(exc=exc, countdown=min(60, 2 * 2**self.request.retries)) from exc


@shared_task(acks_late=True, max_retries=0)
def reap_stale_runs() -> dict:
    result = services.runs_reap()
    if result["resumed"] or result["failed"] or result.get("cancelled"):
        log.warning("scaffolder reaper: %s", result)
    return result
