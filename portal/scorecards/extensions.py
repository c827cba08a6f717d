"""The scorecard parts of entity pages: a "Scorecards" tab and a level badge in the header."""

from __future__ import annotations

from catalog import extensions
from portal.accounts import extensions as account_extensions
from portal.accounts import permissions

KINDS = {"model", "component", "api", "pipeline", "dataset", "featureset"}


def _tab(request, entity) -> dict:
    from . import selectors

    return {"scorecards": selectors.entity_scorecards(entity),
            "can_answer": permissions.can(request.user, permissions.Action.EDIT, entity)}


def _badge(request, entity) -> dict:
    from . import definitions, selectors

    titles = {c.name: c.title for c in definitions.load_all()}
    return {"scorecard_results": [(titles.get(r.scorecard, r.scorecard), r) for r in selectors.badges_for(entity)],
            "entity": entity}


def _team_section(request, team) -> dict:
    from . import operations

    return operations.team_operations(request.user, team)


def _group_panel(request, entity) -> dict:
    """The rollup on a Group entity's Overview when the group is a Plinth team (one query to find it)."""
    from portal.accounts.models import Team

    from . import operations

    team = Team.objects.filter(name=entity.name).first()
    return {"section": operations.team_operations(request.user, team) if team else None}


def register() -> None:
    account_extensions.register_section(account_extensions.TeamSection(
        key="operations", template="scorecards/inc/team_operations.html", context=_team_section))
    extensions.register_panel(extensions.EntityPanel(
        template="scorecards/inc/group_operations.html", where="overview",
        applies=lambda entity: entity.kind_key == "group", context=_group_panel))
    extensions.register_tab(
        extensions.EntityTab(key="scorecards", label="Scorecards", template="scorecards/inc/entity_tab.html",
                             applies=lambda entity: entity.kind_key in KINDS, context=_tab, order=85)
    )
    extensions.register_panel(
        extensions.EntityPanel(template="scorecards/inc/badge.html", where="actions",
                               applies=lambda entity: entity.kind_key in KINDS, context=_badge)
    )
