"""Writes for accounts: teams, memberships, tokens, sign-in throttle. Each writes its audit event."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404
from django.utils import timezone

from portal.core.audit import audit_record

from . import permissions, signals, tokens
from .models import APIToken, LoginFailure, Membership, Role, Team

User = get_user_model()


@transaction.atomic
def team_create(*, name: str, title: str = "", description: str = "", actor=None) -> Team:
    if Team.objects.filter(name=name).exists():
        raise ValidationError({"name": f"A team named '{name}' already exists."})
    team = Team(name=name, title=title, description=description)
    team.full_clean()
    team.save()
    audit_record(actor=actor, action="team.create", target=f"team:{name}", after={"title": title})
    signals.team_created.send(sender=Team, team=team)  # the catalog gives it the entities naming it
    return team


@transaction.atomic
def team_ensure(*, name: str, title: str = "") -> Team:
    """Create the team for a Group entity if it does not exist yet (catalog ingestion)."""
    team, created = Team.objects.get_or_create(name=name, defaults={"title": title})
    if created:
        team.full_clean()
        audit_record(actor=None, action="team.create", target=f"team:{name}", after={"title": title})
    return team


@transaction.atomic
def membership_set(*, user, team: Team, role: str, actor=None) -> Membership:
    if role not in Role.values:
        raise ValidationError({"role": f"Unknown role '{role}'. Roles: {', '.join(Role.values)}."})
    membership = Membership.objects.filter(user=user, team=team).first()
    before = {"role": membership.role} if membership else None
    if membership is None:
        membership = Membership.objects.create(user=user, team=team, role=role)
    else:
        membership.role = role
        membership.save(update_fields=["role"])
    audit_record(
        actor=actor,
        action="team.member.set",
        target=f"team:{team.name}",
        before=before,
        after={"user": user.get_username(), "role": role},
    )
    return membership


@transaction.atomic
def membership_remove(*, user, team: Team, actor=None) -> None:
    deleted, _ = Membership.objects.filter(user=user, team=team).delete()
    if deleted:
        audit_record(
            actor=actor, action="team.member.remove", target=f"team:{team.name}",
            before={"user": user.get_username()},
        )


@transaction.atomic
def token_create(*, user, name: str, expires_in_days: int | None = None) -> tuple[APIToken, str]:
    """Create a token; returns (row, secret). The secret is never stored."""
    name = name.strip()
    if not name or len(name) > 100:
        raise ValidationError({"name": "A token name is required (at most 100 characters)."})
    raw, prefix, digest = tokens.generate()
    expires_at = timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None
    token = APIToken.objects.create(user=user, name=name, prefix=prefix, key_hash=digest, expires_at=expires_at)
    audit_record(actor=user, action="token.create", target=f"user:{user.get_username()}",
                 after={"token": prefix, "name": name})
    return token, raw


@transaction.atomic
def token_revoke(*, token: APIToken, actor) -> APIToken:
    """Revoke a personal token. Another user's token answers like a missing one."""
    if not permissions.may_manage_token(actor, token):
        raise Http404("No such token")
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit_record(actor=actor, action="token.revoke", target=f"user:{token.user.get_username()}",
                     after={"token": token.prefix})
    return token


def login_is_locked(username: str) -> bool:
    window = timezone.now() - timedelta(seconds=settings.PLINTH_LOGIN_WINDOW_SECONDS)
    recent = LoginFailure.objects.filter(username=username.lower()[:150], created_at__gte=window).count()
    return recent >= settings.PLINTH_LOGIN_MAX_FAILURES


def login_failed(username: str, remote_addr: str | None) -> None:
    LoginFailure.objects.create(username=username.lower()[:150], remote_addr=remote_addr)


def login_succeeded(username: str) -> None:
    LoginFailure.objects.filter(username=username.lower()[:150]).delete()
