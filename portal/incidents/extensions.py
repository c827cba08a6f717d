"""The incident parts of entity pages: an "Incidents" tab and an "open incident" badge in the header
(one query; catalog/extensions.py)."""

from __future__ import annotations

from catalog import extensions
from portal.accounts import extensions as account_extensions
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


def _team_delete_blockers(team) -> list[str]:
    """An unresolved incident the team responds to would lose its responders."""
    from portal.accounts.extensions import counted

    from .models import ACTIVE, Incident

    incidents = Incident.objects.filter(owner_team=team, status__in=ACTIVE).count()
    return [f"it responds to {counted(incidents, 'unresolved incident', 'unresolved incidents')} (resolve them)"] \
        if incidents else []


def register() -> None:
    account_extensions.register_delete_blocker("incidents", _team_delete_blockers)
    extensions.register_tab(
        extensions.EntityTab(key="incidents", label="Incidents", template="incidents/inc/entity_tab.html",
                             applies=applies, context=_tab, order=88)
    )
    extensions.register_panel(
        extensions.EntityPanel(template="incidents/inc/badge.html", where="actions", applies=applies, context=_badge)
    )
