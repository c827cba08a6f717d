"""Org sync: the catalog's User and Group entities become the portal's teams and memberships
(PLINTH_ORG_SYNC=catalog; docs/identity.md).

The org chart is read from what ingestion already derived: `memberOf` relations (from a User's
`spec.memberOf` and a Group's `spec.members`, both directions are stored) and `childOf` relations (from
`spec.parent` and `spec.children`). Teams mirror Groups of the default namespace, as ingestion does;
Users of the default namespace are portal users of the same name, compared without case as at sign-in
(created without a password when missing, so single sign-on can link them at their first sign-in:
docs/identity.md).

Roles: a direct member gets PLINTH_ORG_SYNC_ROLES[team] or PLINTH_ORG_SYNC_ROLE; with
PLINTH_ORG_SYNC_PARENT_ROLE set, every ancestor group of theirs too (the stronger role wins). Only
memberships kept by org sync are added, changed or removed (`Membership.source`), so a role given by
hand or by the identity provider is never taken away. Every change is audited by the accounts services
(actor `org-sync`). Runs in one transaction, one sync at a time.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models.functions import Lower

from portal.accounts import services as accounts
from portal.accounts.models import Membership, MembershipSource, Role

from .models import Entity, Relation

log = logging.getLogger("plinth.catalog")
ADVISORY_ORG_SYNC = 0x504C10  # one org sync at a time on PostgreSQL ("PL" + 16)
USER_PREFIX, GROUP_PREFIX = "user:default/", "group:default/"


def enabled() -> bool:
    return settings.PLINTH_ORG_SYNC == "catalog"


@dataclass
class Outcome:
    users_created: list[str] = field(default_factory=list)
    added: int = 0
    changed: int = 0
    removed: int = 0

    def as_dict(self) -> dict:
        return {"usersCreated": len(self.users_created), "added": self.added, "changed": self.changed,
                "removed": self.removed}


def wanted_memberships() -> tuple[dict[str, dict[str, str]], dict[str, dict]]:
    """({username: {team: role}}, {username: User entity data}) from the catalog as it is now."""
    # Orphans (gone from their files, kept under PLINTH_CATALOG_ORPHAN_STRATEGY=keep) grant nothing: a
    # leaver taken out of the org file loses what org sync gave, and so do the members of a Group
    # taken out. Nor do the relations their descriptors gave count (a Group's `members`, `parent`).
    live = Entity.objects.filter(namespace="default", orphan=False)
    users = {name: data for name, data in live.filter(kind_key="user").values_list("name_key", "data")}
    groups = set(live.filter(kind_key="group").values_list("name_key", flat=True))
    relations = Relation.objects.filter(origin__orphan=False)
    parents: dict[str, set[str]] = defaultdict(set)
    for child, parent in relations.filter(type="childOf", source_ref__startswith=GROUP_PREFIX,
                                          target_ref__startswith=GROUP_PREFIX).values_list("source_ref", "target_ref"):
        parents[child.removeprefix(GROUP_PREFIX)].add(parent.removeprefix(GROUP_PREFIX))
    direct: dict[str, set[str]] = defaultdict(set)
    for user_ref, group_ref in relations.filter(type="memberOf", source_ref__startswith=USER_PREFIX,
                                                target_ref__startswith=GROUP_PREFIX).values_list(
                                                    "source_ref", "target_ref"):
        user, group = user_ref.removeprefix(USER_PREFIX), group_ref.removeprefix(GROUP_PREFIX)
        if user in users and group in groups:  # a relation to an entity not (yet) in the catalog: nothing
            direct[user].add(group)
    default_role, per_team = settings.PLINTH_ORG_SYNC_ROLE, settings.PLINTH_ORG_SYNC_ROLES
    parent_role = settings.PLINTH_ORG_SYNC_PARENT_ROLE
    wanted: dict[str, dict[str, str]] = {}
    for user in users:
        roles: dict[str, str] = {}
        for group in direct.get(user, ()):
            roles[group] = per_team.get(group, default_role)
        if parent_role:
            for ancestor in _ancestors(direct.get(user, set()), parents) & groups:
                if ancestor not in roles or _rank(parent_role) > _rank(roles[ancestor]):
                    roles[ancestor] = parent_role
        wanted[user] = roles
    return wanted, users


def _ancestors(groups: set[str], parents: dict[str, set[str]]) -> set[str]:
    seen: set[str] = set()
    todo = [p for g in groups for p in parents.get(g, ())]
    while todo:  # a cycle in the org chart ends here: each group is visited once
        group = todo.pop()
        if group not in seen:
            seen.add(group)
            todo.extend(parents.get(group, ()))
    return seen


def _rank(role: str) -> int:
    return accounts.ROLE_RANK[Role(role)]


@transaction.atomic
def sync() -> Outcome | None:
    """Bring the teams and org-sync memberships in line with the catalog. None when org sync is off."""
    if not enabled():
        return None
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ADVISORY_ORG_SYNC])
    wanted, profiles = wanted_memberships()
    outcome = Outcome()
    User = get_user_model()
    # User names match without case, as at single sign-on (accounts.services): the catalog's `zed`
    # (entity names are keyed lower-case) is the portal's `Zed`; of several such accounts, the oldest.
    existing: dict[str, Any] = {}
    for user in User.objects.annotate(username_key=Lower("username")).filter(
            username_key__in=list(wanted)).order_by("pk"):
        existing.setdefault(user.username_key, user)
    kept: dict[int, dict[str, str]] = defaultdict(dict)
    for user_id, team, role in Membership.objects.filter(source=MembershipSource.ORG_SYNC).values_list(
            "user_id", "team__name", "role"):
        kept[user_id][team] = role
    for username in sorted(wanted):
        want, user = wanted[username], existing.get(username)
        if (want == kept.get(user.pk, {})) if user is not None else not want:
            continue  # nothing to do for this user: no query
        if user is None:
            user = _create_user(username, profiles.get(username) or {})
            outcome.users_created.append(username)
        _reconcile(user, want, outcome)
    # What org sync gave accounts no catalog User names any more (a leaver; another case of a name).
    chosen = {user.pk for user in existing.values()}
    for user in User.objects.filter(pk__in=[pk for pk in kept if pk not in chosen]).order_by("pk"):
        _reconcile(user, {}, outcome)
    if outcome.users_created or outcome.added or outcome.changed or outcome.removed:
        log.info("org sync: %s", outcome.as_dict())
    return outcome


def _reconcile(user, want: dict[str, str], outcome: Outcome) -> None:
    change = accounts.memberships_reconcile(user=user, wanted=want, source=MembershipSource.ORG_SYNC)
    outcome.added += len(change["added"])
    outcome.changed += len(change["changed"])
    outcome.removed += len(change["removed"])


def _create_user(username: str, data: dict):
    """A portal user for a catalog User: no password (single sign-on links it at the first sign-in)."""
    from portal.core.audit import audit_record

    User = get_user_model()
    profile = (data.get("spec") or {}).get("profile") or {}
    user = User(username=username, email=str(profile.get("email") or "")[:254],
                first_name=str(profile.get("displayName") or "")[:150])
    user.set_unusable_password()
    user.save()
    audit_record(actor=None, actor_label="org-sync", action="user.create", target=f"user:{username}",
                 after={"source": "org-sync", "entity": f"{USER_PREFIX}{username}"})
    return user
