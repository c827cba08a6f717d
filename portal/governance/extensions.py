"""The governance parts of entity pages: an "Approvals" tab and a "Request promotion…" action."""

from __future__ import annotations

from catalog import extensions
from portal.accounts import extensions as account_extensions
from portal.accounts import permissions


def _history(request, entity) -> dict:
    from . import selectors

    return {"approval_requests": selectors.for_entity(request.user, entity)[:50]}


def _action(request, entity) -> dict:
    return {
        "can_request": permissions.can(request.user, permissions.Action.REQUEST, entity),
        "target": entity.short_ref,
    }


def _team_delete_blockers(team) -> list[str]:
    """An open request the team owns, or one waiting for its review, would lose its owner or reviewers."""
    from django.db.models import Q

    from portal.accounts.extensions import counted

    from .models import OPEN_STATES, ApprovalRequest

    requests = (ApprovalRequest.objects.filter(Q(owner_team=team) | Q(stages__teams=team), state__in=OPEN_STATES)
                .values("pk").distinct().count())
    if not requests:
        return []
    one = requests == 1
    return [f"{counted(requests, 'open approval request', 'open approval requests')} "
            f"{'is' if one else 'are'} for it or {'waits' if one else 'wait'} for its review (let "
            f"{'it' if one else 'them'} be decided, withdrawn or expire)"]


def register() -> None:
    account_extensions.register_delete_blocker("governance", _team_delete_blockers)
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
