"""Reads about deployments, always through the permission module."""

from __future__ import annotations

from django.db.models import QuerySet

from catalog.models import Entity
from portal.accounts import permissions

from . import conf
from .models import Deployment, DeploymentEvent, Drift, Status


def for_model(model: Entity) -> dict:
    """Everything the model page shows, in three queries whatever the number of deployments: the
    current deployments, the newest events (the timeline) and the open drift. The caller has already
    decided the user may see the model; deployments share its team and visibility."""
    deployments = list(Deployment.objects.filter(model=model).select_related("entity")
                       .order_by("-model_version__version_number", "-version", "environment"))
    events = list(DeploymentEvent.objects.filter(model=model).select_related("actor")
                  .order_by("-occurred_at", "-id")[: int(conf.get("TIMELINE_EVENTS"))])
    drifts = open_drifts(model)
    by_version: dict[str, list[Deployment]] = {}
    for dep in deployments:
        if dep.status != Status.RETIRED:
            by_version.setdefault(dep.version, []).append(dep)
    drifting = {(d.version, d.environment) for d in drifts}
    for dep in deployments:
        dep.drifting = (dep.version, dep.environment) in drifting
    return {"deployments": deployments, "serving": sorted(by_version.items(), key=lambda kv: -int(kv[0])),
            "events": events, "drifts": drifts}


def open_drifts(model: Entity) -> list[Drift]:
    """The model's open drift, read once per page: the header badge and the serving card both show it
    (kept on the entity object the page renders)."""
    cached = getattr(model, "_open_drifts", None)
    if cached is None:
        cached = list(Drift.objects.filter(model=model, cleared_at__isnull=True).order_by("environment", "version"))
        model._open_drifts = cached
    return cached


def drift_list(user, *, include_cleared: bool = False) -> QuerySet[Drift]:
    """Drift the user may see (models of their teams and internal ones), open first."""
    qs = permissions.filter_visible(Drift.objects.select_related("model", "deployment", "owner_team"), user)
    if not include_cleared:
        qs = qs.filter(cleared_at__isnull=True)
    return qs.order_by("-detected_at", "-id")
