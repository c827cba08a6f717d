"""The incident parts of entity pages: an "Incidents" tab and an "open incident" badge in the header
(one query; catalog/extensions.py)."""

from __future__ import annotations

from catalog import extensions
from portal.accounts import permissions

NOT_FOR = {"group", "user", "location", "template"}  # the organisation and the catalog's own machinery


def applies(entity) -> bool:
    return entity.kind_key not in NOT_FOR


def _tab(request, entity) -> dict:
    from . import selectors
    from .models import Severity

    return {"incidents": selectors.for_entity(request.user, entity),
            "may_open": permissions.may_open_incident(request.user), "severities": Severity.choices}


def _badge(request, entity) -> dict:
    from . import selectors

    return {**selectors.open_badge(request.user, entity), "entity": entity}


def register() -> None:
    extensions.register_tab(
        extensions.EntityTab(key="incidents", label="Incidents", template="incidents/inc/entity_tab.html",
                             applies=applies, context=_tab, order=88)
    )
    extensions.register_panel(
        extensions.EntityPanel(template="incidents/inc/badge.html", where="actions", applies=applies, context=_badge)
    )
