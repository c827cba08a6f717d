"""Celery tasks: run a queued import, recompute the allocation, pick up the scheduled location's files,
check budgets. Thin and idempotent (a finished import is not run again; allocation replaces months)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="portal.costs.tasks.run_import", acks_late=True, reject_on_worker_lost=True)
def run_import(import_id: int) -> dict:
    from . import services

    imp = services.run_import(import_id)
    return {"import": imp.pk, "status": imp.status, "rows": imp.rows}


@shared_task(name="portal.costs.tasks.allocate", autoretry_for=(Exception,), retry_backoff=5, max_retries=3)
def allocate(months: list[str] | None = None) -> dict:
    from . import allocation

    return allocation.allocate(months)


@shared_task(name="portal.costs.tasks.scan_drop_dir")
def scan_drop_dir() -> list[int]:
    from . import services

    return services.scan_drop_dir()


@shared_task(name="portal.costs.tasks.check_budgets", autoretry_for=(Exception,), retry_backoff=30, max_retries=2)
def check_budgets() -> int:
    from . import services

    return services.check_budgets()
