"""Reads for accounts."""

from __future__ import annotations

from django.db.models import Count, QuerySet

from .models import APIToken, Membership, Team


def teams_of(user) -> QuerySet[Membership]:
    return Membership.objects.filter(user=user).select_related("team").order_by("team__name")


def team_list() -> QuerySet[Team]:
    return Team.objects.annotate(member_count=Count("memberships")).order_by("name")


def team_members(team: Team) -> QuerySet[Membership]:
    return Membership.objects.filter(team=team).select_related("user").order_by("user__username")


def tokens_of(user) -> QuerySet[APIToken]:
    return APIToken.objects.filter(user=user).order_by("-created_at")


def token_of(user, pk: int) -> APIToken | None:
    """One of the user's own tokens (None for a missing one and for another user's: the caller 404s;
    `services.token_revoke` checks `permissions.may_manage_token` again)."""
    return APIToken.objects.select_related("user").filter(pk=pk, user_id=user.pk).first()
