"""The one place that answers "may user U do action A on object O?".

Objects that belong to a team carry `owner_team` (a Team or None) and `visibility`
(internal: every signed-in user may read it; private: only its team). Reads go through
`visible_q`/`filter_visible`; writes through `can`/`require`. A private object of another
team is reported exactly like a missing one (`Http404`), never as 403.

Every other rule of the portal is a named function below, grouped by the app whose service calls
it (catalog, governance, scaffolder, accounts, admin-only reads). Services call them, so views,
the API, management commands and tasks cannot disagree; pages call the same functions only to
decide what to offer. docs/security.md lists each rule with the service that enforces it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from django.core.exceptions import EmptyResultSet, FullResultSet, PermissionDenied
from django.db import connection, connections, router
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


class _System:
    """The platform itself, for evaluations that must count what no person may see: the
    downstream_impact gate counts another team's private production model without naming it to the
    requester. Reads only; never a page's or an API call's user; a member of no team."""

    pk = id = None
    is_authenticated = is_active = is_superuser = True
    is_anonymous = False

    def __init__(self) -> None:
        self._plinth_team_roles: dict[int, str] = {}

    def get_username(self) -> str:
        return "plinth"

    def __str__(self) -> str:
        return "plinth (system)"


SYSTEM = _System()


def may_see_owned(user: Any, owner_team_id: int | None, visibility: str) -> bool:
    """The read rule for something known only by its owner team and visibility (a stored snapshot of
    an entity): the same answer `can(user, VIEW, obj)` gives for the object itself."""
    return can(user, Action.VIEW, _Facts(owner_team_id, visibility))


class _Facts:
    def __init__(self, owner_team_id: int | None, visibility: str) -> None:
        self.owner_team_id = owner_team_id
        self.visibility = visibility


def is_platform_admin(user: Any) -> bool:
    return bool(user and user.is_authenticated and user.is_active and user.is_superuser)


def team_roles(user: Any) -> dict[int, str]:
    """Team id → role for the user, read once per request object."""
    if not (user and user.is_authenticated and user.is_active):
        return {}
    cached = getattr(user, "_plinth_team_roles", None)
    if cached is None:
        cached = _read_roles(user.pk)
        user._plinth_team_roles = cached
    return cached


_ROLES_SQL = "SELECT team_id, role FROM {table} WHERE user_id = %s"


def _read_roles(user_id: int) -> dict[int, str]:
    """The first decision of every request reads the user's memberships. A plain cursor on the indexed
    column: the ORM's query building cost ten times the read itself (0.3 ms against 0.03 ms, measured
    by the authorization matrix, tests/security)."""
    with connections[router.db_for_read(Membership)].cursor() as cursor:
        cursor.execute(_ROLES_SQL.format(table=Membership._meta.db_table), [user_id])
        return dict(cursor.fetchall())


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


_COMPILED: dict = {}  # (model, database, the rule's Q) → its SQL: users of the same teams share one entry


def visible_sql(model, user: Any) -> tuple[str, list] | None:
    """`visible_q` compiled to a SQL condition over `model`'s table, for raw queries (search's ranking,
    the lineage graph's walk). None: the user sees nothing; "": no restriction (platform admins).

    The rule is asked for on every call; only its compilation is remembered, keyed by the rule itself
    (a Q compares by value: its fields, lookups and team ids)."""
    rule = visible_q(user)
    key = (model._meta.label, connection.alias, connection.vendor, rule)
    try:
        compiled = _COMPILED.get(key)
    except TypeError:  # an unhashable value in the rule: compile every time
        key, compiled = None, None
    if compiled is None:
        qs = model.objects.filter(rule)
        try:
            sql, params = qs.query.get_compiler(connection=connection).compile(qs.query.where)
            compiled = (sql, tuple(params))
        except EmptyResultSet:
            compiled = ()
        except FullResultSet:
            compiled = ("", ())
        if key is not None:
            if len(_COMPILED) > 1000:
                _COMPILED.clear()
            _COMPILED[key] = compiled
    return (compiled[0], list(compiled[1])) if compiled else None


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


def roles_allowing(action: Action | str) -> tuple[str, ...]:
    """The team roles whose rights include the action (e.g. who reviews, who may edit)."""
    action = Action(action)
    return tuple(role for role, actions in ROLE_ACTIONS.items() if action in actions)


def _active(user: Any) -> bool:
    return bool(user and user.is_authenticated and user.is_active)


# -- catalog: locations and ownership claims ---------------------------------------------------


def may_register_locations(user: Any) -> bool:
    """Register a location at all: the edit right in at least one team (what each entity may claim
    as its owner is checked per entity, by `OwnerClaims`)."""
    return is_platform_admin(user) or bool(team_ids(user, roles=roles_allowing(Action.EDIT)))


def may_refresh_location(user: Any, location: Any, owner_team_ids: Iterable[int | None]) -> bool:
    """Refresh now: its registrant, a platform admin, or anyone with the edit right on a team that
    owns one of its entities (`owner_team_ids`). A refresh reads the registered target again with
    the registrant's claims, so it can only ever restore what the registrant may claim."""
    if not _active(user):
        return False
    if is_platform_admin(user) or location.created_by_id == user.pk:
        return True
    return any(tid and can_on_team(user, Action.EDIT, tid) for tid in owner_team_ids)


def may_unregister_location(user: Any, location: Any, owner_team_ids: Iterable[int | None]) -> bool:
    """Unregister (which deletes its entities): its registrant, a platform admin, or someone with the
    delete right (maintainer, admin) on every team that owns its entities."""
    if not _active(user):
        return False
    if is_platform_admin(user) or location.created_by_id == user.pk:
        return True
    owners = set(owner_team_ids)
    return bool(owners) and None not in owners and all(can_on_team(user, Action.DELETE, t) for t in owners)


def may_sync_mlflow_model(user: Any, entity: Any) -> bool:
    """"Sync from MLflow now" on a model page: a platform admin, or someone with the edit right on the team that owns
    the model (member, maintainer, admin). A model nobody owns (found in MLflow only): admins alone. The
    sync only reads MLflow; the rule keeps a page full of viewers from queueing work at will."""
    if not _active(user):
        return False
    if is_platform_admin(user):
        return True
    return bool(entity.owner_team_id) and can_on_team(user, Action.EDIT, entity.owner_team_id)


def visible_locations_q(user: Any) -> Q:
    """A Q filter (over locations) for the locations the user may see: those they registered and those
    defining an entity they may see; platform admins see all. A location of another team's private
    entities answers 404 like a missing one: its target and processing errors name a private repository
    and its files. (Joins the entities: filter by `pk__in` of it, as `catalog.selectors` does.)"""
    if not _active(user):
        return Q(pk__in=[])
    if is_platform_admin(user):
        return Q()
    return Q(created_by=user) | visible_q(user, prefix="entities__")


ORG_KINDS = frozenset({"group", "user"})  # descriptors that shape the organisation (teams, members)


@dataclass(frozen=True)
class OwnerClaims:
    """What one registration or refresh may store, decided once for the whole read.

    `org_wide`: anything (a platform admin, the system — management commands, the demo loader, org
    sync — or a location recorded as org-wide). Otherwise an entity's owner must be a team in
    `team_ids` (where the claimant has the edit right) or the claimant themselves, and Group and
    User descriptors are refused: a Group creates a portal team."""

    org_wide: bool
    team_ids: frozenset[int] = frozenset()
    user_ref: str = ""

    def refusal(self, kind_key: str, owner_ref: str, owner_team_id: int | None) -> str | None:
        """Why this descriptor may not be stored, or None."""
        if self.org_wide:
            return None
        if kind_key in ORG_KINDS:
            return (f"{kind_key.capitalize()} descriptors shape the organisation (a Group creates a team): "
                    "only platform admins and org sync may register them")
        if not owner_ref or (owner_team_id is not None and owner_team_id in self.team_ids):
            return None
        if owner_ref == self.user_ref:
            return None
        if owner_team_id is None and not owner_ref.startswith("user:"):
            return (f"owner '{owner_ref}' is not a portal team; ask a platform admin to create the team, "
                    "or name a team in which you are a member, maintainer or admin")
        return (f"owner '{owner_ref}': you may only register entities owned by a team in which you are "
                "a member, maintainer or admin (or by yourself)")

    def may_take_over(self, owner_team_id: int | None) -> bool:
        """Adopt an entity that exists without a location (known from MLflow, or an orphan)."""
        return self.org_wide or owner_team_id is None or owner_team_id in self.team_ids


def owner_claims(user: Any, *, org_wide: bool = False) -> OwnerClaims:
    """The claims of a registration by `user` (None: the system). `org_wide` for a location recorded
    as org-wide (see `location_is_org_wide`)."""
    if org_wide or user is None or is_platform_admin(user):
        return OwnerClaims(org_wide=True)
    if not _active(user):
        return OwnerClaims(org_wide=False)
    return OwnerClaims(org_wide=False, team_ids=frozenset(team_ids(user, roles=roles_allowing(Action.EDIT))),
                       user_ref=f"user:default/{user.get_username().lower()}")


def location_is_org_wide(registrant: Any) -> bool:
    """Whether a new location is org-wide: registered by the system, or by a platform admin while
    `PLINTH_CATALOG_ADMIN_LOCATIONS_ORG_WIDE` is on. Its refreshes then store whatever owners its
    descriptors name (an org's central catalog repository); other locations are refreshed with
    their registrant's current claims."""
    from django.conf import settings

    if registrant is None:
        return True
    return is_platform_admin(registrant) and settings.PLINTH_CATALOG_ADMIN_LOCATIONS_ORG_WIDE


def editable_team_ids(user: Any) -> list[int] | None:
    """Teams the user may create or register things for (None: every team, for platform admins)."""
    if is_platform_admin(user):
        return None
    return team_ids(user, roles=roles_allowing(Action.EDIT))


def may_create_for_team(user: Any, team_id: int | None) -> bool:
    """Scaffolder runs and other creations on behalf of a team (None: on the user's own behalf)."""
    if not _active(user):
        return False
    return team_id is None or can_on_team(user, Action.EDIT, team_id)


def may_link_feast_dataset(dataset: Owned, view_team_id: int | None) -> bool:
    """Whether a Feast feature view owned by team `view_team_id` (None: no portal team) may name
    `dataset` (a Dataset entity, or its owner and visibility) as its input: one everybody may see, or
    one the view's own team owns. The feature set is read by everyone its visibility allows and whoever
    registers the repository chooses the source path, so naming another team's private Dataset would
    tell them it exists, its name and the path it claims."""
    if dataset.visibility == Visibility.INTERNAL:
        return True
    return view_team_id is not None and dataset.owner_team_id == view_team_id


# -- lineage --------------------------------------------------------------------------------------


def may_post_lineage(user: Any) -> bool:
    """Send OpenLineage events (`POST /api/v1/lineage`): the edit right in at least one team, or a
    platform admin. Events create observed catalog entities, so a viewer-only token may not send them;
    an ownership facet gives an observed entity an owner only where `lineage_owner_claims` allows."""
    return may_register_locations(user)


def lineage_owner_claims(user: Any) -> OwnerClaims:
    """Which teams an event sent by `user` may name as the owner of an observed entity: as for a
    registration (teams where the sender may edit; anything for platform admins)."""
    return owner_claims(user)


def may_delete_orphan(user: Any, entity: Any) -> bool:
    """Delete an orphan (an entity its location no longer defines, kept by the `keep` strategy): a
    platform admin, or someone with the delete right (maintainer, admin) on the team that owns it. An
    orphan nobody owns: admins alone."""
    if not _active(user):
        return False
    if is_platform_admin(user):
        return True
    return bool(entity.owner_team_id) and can_on_team(user, Action.DELETE, entity.owner_team_id)


def may_claim_unowned(user: Any) -> bool:
    """Assign an owner team to an unowned asset (observed, or known from MLflow only): platform admins."""
    return is_platform_admin(user)


# -- governance ---------------------------------------------------------------------------------

REVIEW_ROLES = roles_allowing(Action.REVIEW)


def review_team_ids(user: Any) -> list[int]:
    return team_ids(user, roles=REVIEW_ROLES)


def visible_requests_q(user: Any) -> Q:
    """Approval requests the user may see: those whose target the user may see, their own, and those
    routed to a team in which they review. The target as it is now (made private since the request: the
    request goes with it); the owner and visibility copied onto the request only once the target has
    left the catalog."""
    if is_platform_admin(user):
        return Q()
    if not _active(user):
        return Q(pk__in=[])
    target = (Q(entity__isnull=False) & visible_q(user, "entity__")) | (Q(entity__isnull=True) & visible_q(user))
    return target | Q(requester=user) | Q(stages__teams__in=review_team_ids(user))


def may_review_for(user: Any, stage_team_ids: Iterable[int]) -> bool:
    """Decide on a stage routed to these teams (separation of duties is checked apart)."""
    return _active(user) and any(can_on_team(user, Action.REVIEW, tid) for tid in stage_team_ids)


def separation_of_duties_forbids(user: Any, request: Any) -> bool:
    """Nobody decides on their own request; binds platform admins too."""
    return request.requester_id == user.pk


def may_request_for_team(user: Any, team_id: int) -> bool:
    """Ask for something on behalf of a team (e.g. access to a dataset for it)."""
    return _active(user) and can_on_team(user, Action.REQUEST, team_id)


def may_withdraw_request(user: Any, request: Any) -> bool:
    return _active(user) and request.requester_id == user.pk


def may_retry_execution(user: Any, request: Any, *, reviews_it: bool) -> bool:
    return _active(user) and (request.requester_id == user.pk or reviews_it or is_platform_admin(user))


# -- deployments --------------------------------------------------------------------------------


def may_report_deployment(user: Any, model: Any) -> bool:
    """Report where a version of `model` serves (a CD pipeline's token, `POST /api/v1/deployments/events`):
    the edit right on the team that owns the model (member, maintainer, admin), or a platform admin. A
    model nobody owns (known from MLflow only): platform admins alone. Whoever may not see the model
    is answered as if it did not exist (the service checks `can(VIEW)` first)."""
    if not _active(user):
        return False
    if is_platform_admin(user):
        return True
    return bool(model.owner_team_id) and can_on_team(user, Action.EDIT, model.owner_team_id)


def may_see_drift_list(user: Any) -> bool:
    """The compliance drift list under /reviews/: reviewers (reviewer or admin in some team) and platform
    admins. Its rows are further limited to models the user may see (`visible_q`)."""
    return _active(user) and (is_platform_admin(user) or bool(review_team_ids(user)))


# -- incidents ----------------------------------------------------------------------------------

# Who responds to a team's incidents (acknowledge, resolve, reopen, notes, postmortem): who may edit
# what the team owns.
INCIDENT_RESPONDER_ROLES = roles_allowing(Action.EDIT)


def may_open_incident(user: Any) -> bool:
    """Open an incident (by hand, the API, or Alertmanager's webhook with a service account's token): the
    edit right in some team (member, maintainer, admin), or a platform admin. A viewer-only account may
    not: an incident notifies its owning team. The entities it names must be visible to the opener
    (hidden ones are missing: 404 by hand, "not linked" from Alertmanager)."""
    return _active(user) and (is_platform_admin(user) or bool(team_ids(user, roles=INCIDENT_RESPONDER_ROLES)))


def may_open_incident_for_team(user: Any, team_id: int) -> bool:
    """Choose the owning team of an incident by hand: a team where the user has the edit right."""
    return _active(user) and can_on_team(user, Action.EDIT, team_id)


def may_respond_incident(user: Any, incident: Any) -> bool:
    """Acknowledge, resolve, reopen, add notes, link the postmortem: members, maintainers and admins of the
    owning team, and platform admins (alone for an incident no team owns). Whoever may not see the
    incident is answered as if it did not exist (the service checks visibility first)."""
    if not _active(user):
        return False
    if is_platform_admin(user):
        return True
    return incident.owner_team_id is not None and team_roles(user).get(incident.owner_team_id) in INCIDENT_RESPONDER_ROLES


# -- scaffolder ---------------------------------------------------------------------------------


def visible_runs_q(user: Any) -> Q:
    """A run is private: its creator, the team it was created for, and platform admins."""
    if not _active(user):
        return Q(pk__in=[])
    if is_platform_admin(user):
        return Q()
    return Q(created_by=user) | visible_q(user)


def may_retry_run(user: Any, run: Any) -> bool:
    """Run a failed run again: its creator, someone who may create runs for its team, platform admins."""
    if not _active(user):
        return False
    if is_platform_admin(user) or run.created_by_id == user.pk:
        return True
    return run.owner_team_id is not None and may_create_for_team(user, run.owner_team_id)


def may_publish_repository(user: Any, team_id: int | None) -> bool:
    """A run's publish:git step, into a repository namespace: one that names a portal team (`team_id`)
    is that team's (its edit right: member, maintainer, admin; platform admins); any other (`local`, a
    git host's organisation) needs the edit right in some team, as registering does. A viewer publishes
    nowhere."""
    if team_id is not None:
        return may_create_for_team(user, team_id)
    return may_register_locations(user)


def may_cancel_run(user: Any, run: Any) -> bool:
    """Cancel a queued or running run: its creator and platform admins only. Narrower than retry: a
    teammate's run is theirs to stop (it may be about to publish in their name)."""
    if not _active(user):
        return False
    return is_platform_admin(user) or run.created_by_id == user.pk


# -- feedback -----------------------------------------------------------------------------------

# Who answers feedback for a team (status and answer): those who maintain what the team owns.
FEEDBACK_ANSWER_ROLES = (Role.MAINTAINER, Role.ADMIN)


def visible_feedback_q(user: Any) -> Q:
    """Feedback items the user may read: those about the portal or a removed template's run (no entity:
    everyone), those whose entity the user may see — a run's feedback carries its template — (live: an
    entity made private later takes its feedback with it), and their own. Another team's private entity's
    feedback answers 404."""
    if not _active(user):
        return Q(pk__in=[])
    if is_platform_admin(user):
        return Q()
    return Q(entity__isnull=True) | visible_q(user, prefix="entity__") | Q(author=user)


def feedback_answer_team_ids(user: Any) -> list[int] | None:
    """Teams whose feedback the user answers (None: every team, for platform admins). Lists decide once
    per request with this, never per row."""
    if is_platform_admin(user):
        return None
    if not _active(user):
        return []
    return team_ids(user, roles=FEEDBACK_ANSWER_ROLES)


def may_answer_feedback(user: Any, item: Any) -> bool:
    """Set the status of a feedback item and answer it: a maintainer or admin of its owning team, or a
    platform admin (who also answers items no team owns). Authorship neither grants nor removes the
    right: an author who maintains the owning team answers as its maintainer (feedback is advice, not
    a control that separation of duties guards), and an author outside it never answers their own."""
    if not _active(user):
        return False
    if is_platform_admin(user):
        return True
    return item.owner_team_id is not None and team_roles(user).get(item.owner_team_id) in FEEDBACK_ANSWER_ROLES


def may_vote_feedback(user: Any, item: Any) -> bool:
    """Vote for an item: anyone who may read it, except its author (who asked already: the roadmap
    counts the author's teams as asking)."""
    return _active(user) and item.author_id != user.pk


# -- accounts -----------------------------------------------------------------------------------


def may_manage_token(user: Any, token: Any) -> bool:
    """Tokens are personal: only their owner lists or revokes them (admins revoke through the admin
    site, which is audited separately)."""
    return _active(user) and token.user_id == user.pk


def may_revoke_token_as_admin(user: Any) -> bool:
    """Revoke another user's token (and the tokens made with it): platform admins, through the admin
    site's Revoke action, audited with the admin as the actor. Owners revoke their own under
    `may_manage_token`."""
    return is_platform_admin(user)


def may_delete_team(user: Any) -> bool:
    """Delete a team (the admin site): platform admins. `accounts.services.team_delete` also refuses
    while the team still owns or is asked for anything (`accounts.selectors.team_delete_blockers`)."""
    return is_platform_admin(user)


# -- admin-only reads ---------------------------------------------------------------------------


def may_read_audit(user: Any) -> bool:
    """The audit trail (pages, API, exports) is for platform admins."""
    return is_platform_admin(user)


def may_see_analytics(user: Any) -> bool:
    """Per-user analytics (search queries, usage): platform admins only."""
    return is_platform_admin(user)


def may_see_insights(user: Any) -> bool:
    """The Insights dashboards: platform admins (the whole organisation) and anyone with a role in a
    team (that team's aggregates). Per-user rows stay behind `may_see_analytics`."""
    return is_platform_admin(user) or bool(team_roles(user))


def insights_team_ids(user: Any) -> list[int] | None:
    """Teams whose aggregates the user may see on Insights: None for every team and the organisation as
    a whole (platform admins), else the teams in which they have any role. A team outside this list is
    reported like a missing one, so the pages never confirm which teams exist beyond the user's own."""
    if is_platform_admin(user):
        return None
    return sorted(team_ids(user))


def may_see_canvas(user: Any) -> bool:
    """The capability canvas (page and PDF): platform admins and team admins — the people who answer
    for a team in a leadership review. It shows organisation-wide aggregates only, never a user's
    own rows (those stay with `may_see_analytics`)."""
    return is_platform_admin(user) or bool(team_ids(user, roles=(Role.ADMIN,)))


def may_see_canvas_problems(user: Any) -> bool:
    """Why the canvas file does not load (its lines and paths): platform admins, who maintain it."""
    return is_platform_admin(user)


def may_explain_search(user: Any) -> bool:
    """The score components behind a search ranking (`?explain=1`): platform admins only. They see
    every document anyway, and the components say how the index describes each one."""
    return is_platform_admin(user)
