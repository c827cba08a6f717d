"""The one place that answers "may user U do action A on object O?".

Objects that belong to a team carry `owner_team` (a Team or None) and `visibility`
(internal: every signed-in user may read it; private: only its team). Reads go through
`visible_q`/`filter_visible`; writes through `can`/`require`. A private object of another
team is reported exactly like a missing one (`Http404`), never as 403.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Any, Protocol

from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import Http404

from .models import Membership, Role


class Visibility(StrEnum):
    INTERNAL = "internal"
    PRIVATE = "private"


class Action(StrEnum):
    VIEW = "view"
    EDIT = "edit"  # register, refresh, change descriptors, star is not an edit
    DELETE = "delete"  # unregister, delete
    REQUEST = "request"  # start an approval request about the object
    REVIEW = "review"  # decide on approval requests routed to the team
    MANAGE_TEAM = "manage_team"  # add/remove members of the team


# What each team role allows on objects owned by that team.
ROLE_ACTIONS: dict[str, frozenset[Action]] = {
    Role.VIEWER: frozenset({Action.VIEW}),
    Role.MEMBER: frozenset({Action.VIEW, Action.EDIT, Action.REQUEST}),
    Role.MAINTAINER: frozenset({Action.VIEW, Action.EDIT, Action.DELETE, Action.REQUEST}),
    Role.REVIEWER: frozenset({Action.VIEW, Action.REVIEW}),
    Role.ADMIN: frozenset(set(Action)),
}


class Owned(Protocol):
    owner_team_id: int | None
    visibility: str


def is_platform_admin(user: Any) -> bool:
    return bool(user and user.is_authenticated and user.is_active and user.is_superuser)


def team_roles(user: Any) -> dict[int, str]:
    """Team id → role for the user, computed once per request object."""
    if not (user and user.is_authenticated and user.is_active):
        return {}
    cached = getattr(user, "_plinth_team_roles", None)
    if cached is None:
        cached = dict(Membership.objects.filter(user=user).values_list("team_id", "role"))
        user._plinth_team_roles = cached
    return cached


def forget_roles(user: Any) -> None:
    if hasattr(user, "_plinth_team_roles"):
        del user._plinth_team_roles


def team_ids(user: Any, roles: Iterable[str] | None = None) -> list[int]:
    wanted = set(roles) if roles is not None else None
    return [tid for tid, role in team_roles(user).items() if wanted is None or role in wanted]


def visible_q(user: Any, prefix: str = "") -> Q:
    """A Q filter for the objects the user may see (deny by default)."""
    if not (user and user.is_authenticated and user.is_active):
        return Q(pk__in=[])
    if is_platform_admin(user):
        return Q()
    own = team_ids(user)
    return Q(**{f"{prefix}visibility": Visibility.INTERNAL}) | Q(**{f"{prefix}owner_team_id__in": own})


def filter_visible(queryset: QuerySet, user: Any, prefix: str = "") -> QuerySet:
    return queryset.filter(visible_q(user, prefix))


def can(user: Any, action: Action | str, obj: Owned) -> bool:
    action = Action(action)
    if not (user and user.is_authenticated and user.is_active):
        return False
    if is_platform_admin(user):
        return True
    role = team_roles(user).get(obj.owner_team_id) if obj.owner_team_id else None
    if action == Action.VIEW:
        return obj.visibility == Visibility.INTERNAL or role is not None
    return role is not None and action in ROLE_ACTIONS[role]


def can_on_team(user: Any, action: Action | str, team_id: int) -> bool:
    """Team-level actions (review for a team, manage its members)."""
    action = Action(action)
    if is_platform_admin(user):
        return True
    role = team_roles(user).get(team_id)
    return role is not None and action in ROLE_ACTIONS[role]


def require(user: Any, action: Action | str, obj: Owned) -> None:
    """Raise 404 when the object is not visible, 403 when visible but the action is not allowed."""
    if not can(user, Action.VIEW, obj):
        raise Http404("No such object")
    if Action(action) != Action.VIEW and not can(user, action, obj):
        raise PermissionDenied(f"You may not {Action(action).value} this object")
