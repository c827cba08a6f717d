"""What this app does when the catalog or governance tell it something (connected in apps.ready)."""

from __future__ import annotations

import logging

log = logging.getLogger("plinth.deployments")


def on_model_versions_synced(sender, entity_ids=(), **kwargs) -> None:
    """Inside the MLflow sync's transaction: aliases → deployments (and drift), committed with it."""
    from . import services

    services.deployments_from_aliases(model_ids=list(entity_ids))


def on_request_executed(sender, request_id=None, action="", entity_id=None, **kwargs) -> None:
    """After an executed request commits: a promotion may clear drift. A failure here is logged, not
    raised (the request is executed either way); the periodic pass (tasks.refresh_drift) catches up."""
    from portal.governance.models import ActionType

    from . import services

    if action != ActionType.PROMOTE_MODEL_VERSION or entity_id is None:
        return
    try:
        services.drift_refresh(model_ids=[entity_id])
    except Exception:
        log.exception("drift refresh after approval request %s failed; the periodic pass will retry", request_id)


def on_entities_changed(sender, changed=(), removed=(), **kwargs) -> None:
    """Sent on commit. A model left the catalog (its location was unregistered): its Deployment rows went
    with it (cascade); its Deployment entities go too, instead of lingering with a dangling model
    reference. A model changed: its deployments follow its owner and visibility (a model made private
    must not leave public Deployment entities and drift behind). A failure is logged, not raised (the
    catalog change has committed); the periodic pass (tasks.refresh_drift) catches up."""
    from catalog import services as catalog_services
    from catalog.models import Entity

    from . import services

    # A model a refresh keeps as an orphan is not removed (catalog.signals): its deployments stay.
    models = sorted(ref for ref in removed if ref.startswith("model:"))
    if models:
        refs = list(Entity.objects.filter(kind_key="deployment", location__isnull=True,
                                          source__startswith="deployments:", data__spec__model__in=models)
                    .values_list("ref", flat=True))
        if refs:
            catalog_services.entities_delete_generated(refs=refs, source_prefix="deployments:")
    models = [ref for ref in changed if ref.startswith("model:")]
    if models:
        try:
            services.deployments_follow_models(model_refs=models)
        except Exception:
            log.exception("deployments of %d changed models not brought in line; the periodic pass will",
                          len(models))
