"""Beat tasks of the insights app: thin, idempotent, each calling one service."""

from __future__ import annotations

from celery import shared_task

from . import partitions, rollup, services


@shared_task(acks_late=True, max_retries=0, ignore_result=False)
def flush_events() -> int:
    return services.drain_redis()


@shared_task(acks_late=True, max_retries=0, ignore_result=False)
def rollup_recent() -> dict:
    services.drain_redis()
    return rollup.rollup_recent()


@shared_task(acks_late=True, max_retries=0)
def maintenance() -> dict:
    created = partitions.ensure_partitions()
    return {"partitions_created": created, **services.events_expire()}
