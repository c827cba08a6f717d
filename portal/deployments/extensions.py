"""The deployments part of model pages: "Where each version serves", the timeline and the drift flag."""

from __future__ import annotations

from catalog import extensions


def _panel(request, entity) -> dict:
    from . import selectors

    return selectors.for_model(entity)


def _badge(request, entity) -> dict:
    from . import selectors

    return {"drift_count": len(selectors.open_drifts(entity)), "href": entity.get_absolute_url()}


def register() -> None:
    extensions.register_panel(
        extensions.EntityPanel(
            template="deployments/inc/drift_badge.html",
            where="actions",
            applies=lambda entity: entity.kind_key == "model",
            context=_badge,
        )
    )
    extensions.register_panel(
        extensions.EntityPanel(
            template="deployments/inc/model_serving.html",
            where="overview",
            applies=lambda entity: entity.kind_key == "model",
            context=_panel,
        )
    )
