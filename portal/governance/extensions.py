"""The governance parts of entity pages: an "Approvals" tab and a "Request promotion…" action."""

from __future__ import annotations

from catalog import extensions
from portal.accounts import permissions


def _history(request, entity) -> dict:
    from . import selectors

    return {"approval_requests": selectors.for_entity(request.user, entity)[:50]}


def _action(request, entity) -> dict:
    return {
        "can_request": permissions.can(request.user, permissions.Action.REQUEST, entity),
        "target": entity.short_ref,
    }


def register() -> None:
    extensions.register_tab(
        extensions.EntityTab(
            key="approvals",
            label="Approvals",
            template="governance/inc/entity_approvals.html",
            applies=lambda entity: (
                entity.kind_key in {"model", "pipeline", "dataset", "featureset", "component", "api"}
            ),
            context=_history,
            order=80,
        )
    )
    extensions.register_panel(
        extensions.EntityPanel(
            template="governance/inc/request_action.html",
            where="actions",
            applies=lambda entity: entity.kind_key == "model",
            context=_action,
        )
    )
