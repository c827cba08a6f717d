"""Celery tasks: the periodic drift pass (a changed Rego rule or a missed signal is caught here, including
a model change whose deployments did not follow its owner or visibility)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="portal.deployments.tasks.refresh_drift", autoretry_for=(Exception,), retry_backoff=10,
             max_retries=3)
def refresh_drift() -> dict:
    from . import services

    followed = services.deployments_follow_models(model_refs=None)
    return {**services.drift_refresh(model_ids=None), "followed": followed}
