"""Reads for accounts."""

from __future__ import annotations

from django.db import router
from django.db.models import Count, F, Func, IntegerField, QuerySet

from portal.core.db import PreparedRow

from .models import APIToken, Membership, Team

_BY_HASH = PreparedRow(lambda key_hash: APIToken.objects.select_related("user").filter(key_hash=key_hash))


def token_by_hash(key_hash: str) -> APIToken | None:
    """The token with this hash and its user (one statement the ORM built once: every API request
    authenticated by a token makes this read)."""
    return _BY_HASH.first(key_hash, alias=router.db_for_read(APIToken))


def teams_of(user) -> QuerySet[Membership]:
    return Membership.objects.filter(user=user).select_related("team").order_by("team__name")


def team_list() -> QuerySet[Team]:
    return Team.objects.annotate(member_count=Count("memberships")).order_by("name")


def team_members(team: Team) -> QuerySet[Membership]:
    return Membership.objects.filter(team=team).select_related("user").order_by("user__username")


class _Revokes(Func):
    """How many unrevoked tokens revoking this one also revokes: all those made with it, with those, and
    so on down (`services.token_revoke` walks the same tree). One correlated recursive subquery, so the
    page stays one query however deep the chains; UNION (not UNION ALL) ends the walk even on a cycle."""

    template = (
        "(WITH RECURSIVE tree(id, revoked_at) AS ("
        " SELECT c.id, c.revoked_at FROM accounts_apitoken c WHERE c.parent_id = %(expressions)s"
        " UNION SELECT c.id, c.revoked_at FROM accounts_apitoken c JOIN tree ON c.parent_id = tree.id"
        ") SELECT COUNT(*) FROM tree WHERE tree.revoked_at IS NULL)"
    )
    output_field = IntegerField()


def tokens_of(user) -> QuerySet[APIToken]:
    """The user's tokens, each with its `parent` (the token it was made with) and `made`: how many
    unrevoked tokens revoking it revokes too (made with it, or with those, down the tree)."""
    return (APIToken.objects.filter(user=user).select_related("parent")
            .annotate(made=_Revokes(F("pk"))).order_by("-created_at"))


def token_unrevoked(pk: int) -> APIToken | None:
    """Any user's token, with its user, unless it is revoked (now: an earlier token of the admin's
    revoke action may have revoked it with itself)."""
    return APIToken.objects.select_related("user").filter(pk=pk, revoked_at__isnull=True).first()


def token_of(user, pk: int) -> APIToken | None:
    """One of the user's own tokens (None for a missing one and for another user's: the caller 404s;
    `services.token_revoke` checks `permissions.may_manage_token` again)."""
    return APIToken.objects.select_related("user").filter(pk=pk, user_id=user.pk).first()


def team_delete_blockers(team: Team) -> list[str]:
    """Why `team` may not be deleted yet, each naming how many and what to do first (empty: it may be).
    Deleting it would otherwise change them silently: the apps built on accounts say what depends on the
    team (`extensions.register_delete_blocker`: the catalog its entities and Group entity, governance its
    open requests and reviews, incidents the unresolved ones), and the single sign-on group map would make
    the team again at the next sign-in. Platform admins alone ask, so counts name nothing hidden from them."""
    from django.conf import settings

    from . import extensions

    reasons = extensions.delete_blockers(team)
    groups = sorted(group for group, (name, _role) in settings.PLINTH_OIDC_GROUP_MAP.items() if name == team.name)
    if groups:
        reasons.append(f"PLINTH_OIDC_GROUP_MAP maps the single sign-on group{'s' if len(groups) > 1 else ''} "
                       f"{', '.join(groups)} to it, and the next sign-in would make the team again (remove "
                       "them from the map)")
    return reasons


def team_dependents(team: Team) -> dict[str, dict[str, int]]:
    """What deleting `team` does to the rows that point at it, other than its memberships, for the audit
    event: {"unowned": rows kept without the team, "deleted": the team's own rows deleted with it,
    "unlinked": rows that lose it from a list}, each {model: count}, counts of zero left out. Read from
    the models' relations, so a new one is reported without a change here."""
    outcome: dict[str, dict[str, int]] = {"unowned": {}, "deleted": {}, "unlinked": {}}
    for rel in Team._meta.get_fields(include_hidden=True):
        if not (rel.is_relation and rel.auto_created and not rel.concrete):
            continue
        model = rel.related_model
        if model is Membership or model._meta.auto_created:  # members are listed apart; M2M link rows
            continue
        count = model._base_manager.filter(**{rel.field.name: team}).count()
        if not count:
            continue
        if rel.many_to_many:
            group = "unlinked"
        else:
            group = "unowned" if rel.on_delete.__name__ == "SET_NULL" else "deleted"
        outcome[group][model._meta.label] = count
    return {group: counts for group, counts in outcome.items() if counts}
