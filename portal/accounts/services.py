"""Writes for accounts: teams, memberships, tokens, sign-in and its throttle. Each writes its audit event."""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.http import Http404
from django.utils import timezone

from portal.core.audit import audit_record
from portal.core.client_address import throttle_key

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
def token_create(*, user, name: str, expires_in_days: int | None = None,
                 address: str | None = None) -> tuple[APIToken, str]:
    """Create a token; returns (row, secret). The secret is never stored."""
    name = name.strip()
    if not name or len(name) > 100:
        raise ValidationError({"name": "A token name is required (at most 100 characters)."})
    raw, prefix, digest = tokens.generate()
    expires_at = timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None
    token = APIToken.objects.create(user=user, name=name, prefix=prefix, key_hash=digest, expires_at=expires_at)
    audit_record(actor=user, action="token.create", target=f"user:{user.get_username()}",
                 after={"token": prefix, "name": name}, remote_addr=address)
    return token, raw


@transaction.atomic
def token_revoke(*, token: APIToken, actor, address: str | None = None) -> APIToken:
    """Revoke a personal token. Another user's token answers like a missing one."""
    if not permissions.may_manage_token(actor, token):
        raise Http404("No such token")
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit_record(actor=actor, action="token.revoke", target=f"user:{token.user.get_username()}",
                     after={"token": token.prefix, "name": token.name}, remote_addr=address)
    return token


LAST_USED_RESOLUTION = timedelta(seconds=60)


def token_used(*, token: APIToken, address: str | None) -> None:
    """Note a request authenticated by `token`: its first use once (audited), then `last_used_at`
    at most once a minute. The first use is claimed by a conditional UPDATE, so of several
    processes using a new token at once exactly one writes the event."""
    now = timezone.now()
    if token.first_used_at is None:
        with transaction.atomic():
            claimed = APIToken.objects.filter(pk=token.pk, first_used_at__isnull=True).update(
                first_used_at=now, last_used_at=now)
            if claimed:
                audit_record(actor=token.user, action="token.first-use",
                             target=f"user:{token.user.get_username()}",
                             after={"token": token.prefix, "name": token.name}, remote_addr=address)
                return
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        APIToken.objects.filter(pk=token.pk).update(last_used_at=now)


# -- sign-in -------------------------------------------------------------------------------------
# Failures are counted per account name and per client address over a sliding window
# (docs/security.md). A lock answers with its reason and how long until the next try: locks apply
# to any name typed, existing or not, so the message reveals nothing about which accounts exist.


# Key spaces of the PostgreSQL advisory locks that serialise attempts ("PL" + 1 / 2).
ADVISORY_ACCOUNT, ADVISORY_ADDRESS = 0x504C01, 0x504C02


@dataclass(frozen=True)
class SignInLock:
    scope: str  # "account" or "address"
    until: datetime
    failures: int

    def retry_after(self, now: datetime | None = None) -> int:
        """Whole seconds until the next attempt may be made (at least 1)."""
        return max(1, math.ceil((self.until - (now or timezone.now())).total_seconds()))

    @property
    def message(self) -> str:
        seconds = self.retry_after()
        wait = _plural(seconds, "second") if seconds < 60 else _plural(math.ceil(seconds / 60), "minute")
        whom = "this account" if self.scope == "account" else "your network address"
        return f"Too many failed sign-ins for {whom}. Try again in {wait}."


@dataclass(frozen=True)
class SignInAttempt:
    username: str
    address: str | None
    failure_id: int | None = None
    lock: SignInLock | None = None


def account_key(username: str) -> str:
    """The name the account limit counts: "Ann", "ANN" and its full-width twin are one account."""
    return unicodedata.normalize("NFKC", username).casefold()[:150]


def sign_in_begin(*, username: str, address: str | None) -> SignInAttempt:
    """Count an attempt as failed before its password is checked, or refuse it while a lock is in
    force. Attempts on one account or address are serialised here (see `_serialise`), so of a burst
    of parallel guesses exactly the limit gets a password check."""
    name, key, now = account_key(username), throttle_key(address), timezone.now()
    with transaction.atomic():
        _serialise(name, key)
        # Rows older than the window count for nothing; pruning here keeps the table small without a task.
        LoginFailure.objects.filter(created_at__lt=now - _window()).delete()
        locks = _locks(name, key, before_id=None, now=now)
        if locks:
            # A refused attempt checks no password: it neither counts nor extends the lock.
            return SignInAttempt(username=name, address=address, lock=max(locks, key=lambda lock: lock.until))
        row = LoginFailure.objects.create(username=name, remote_addr=address, address_key=key)
    return SignInAttempt(username=name, address=address, failure_id=row.pk)


def _serialise(name: str, key: str) -> None:
    """Hold the next attempt on the same account or address until this transaction ends, so it sees
    this one's row. SQLite: the IMMEDIATE transaction already holds the database's write lock.
    PostgreSQL: one advisory lock per account and per address (account first, in their own key
    spaces, so two attempts never wait for each other in a cycle)."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [ADVISORY_ACCOUNT, name])
        cursor.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [ADVISORY_ADDRESS, key])


@transaction.atomic
def sign_in_failed(*, attempt: SignInAttempt) -> SignInLock | None:
    """The password was wrong: the attempt stays counted. Returns the lock it started, if any."""
    name, address = attempt.username, attempt.address
    audit_record(actor=None, actor_label="anonymous", action="auth.sign-in", target=f"user:{name}",
                 outcome="failure", remote_addr=address, after={"username": name})
    locks = _locks(name, throttle_key(address), before_id=(attempt.failure_id or 0) + 1, now=timezone.now())
    for lock in locks:
        target = f"user:{name}" if lock.scope == "account" else f"address:{throttle_key(address)}"
        audit_record(actor=None, actor_label="anonymous", action="auth.lockout", target=target,
                     outcome="failure", remote_addr=address,
                     after={"scope": lock.scope, "username": name, "failures": lock.failures,
                            "windowSeconds": int(_window().total_seconds()), "until": lock.until.isoformat()})
    return max(locks, key=lambda lock: lock.until) if locks else None


@transaction.atomic
def sign_in_succeeded(*, user, attempt: SignInAttempt) -> None:
    """Clears the account's failures (not other accounts' failures from the same address)."""
    LoginFailure.objects.filter(username=attempt.username).delete()
    audit_record(actor=user, action="auth.sign-in", target=f"user:{user.get_username()}",
                 remote_addr=attempt.address)


@transaction.atomic
def sign_out(*, user, address: str | None) -> None:
    """Records the sign-out; the view ends the session."""
    if user is not None and user.is_authenticated:
        audit_record(actor=user, action="auth.sign-out", target=f"user:{user.get_username()}",
                     remote_addr=address)


def _plural(count: int, unit: str) -> str:
    return f"{count} {unit}" if count == 1 else f"{count} {unit}s"


def _window() -> timedelta:
    return timedelta(seconds=settings.PLINTH_LOGIN_WINDOW_SECONDS)


def _locks(name: str, key: str, *, before_id: int | None, now: datetime) -> list[SignInLock]:
    """The locks in force from the failures in the window (those written before row `before_id`)."""
    since = now - _window()
    found = []
    for scope, field, value, limit in (
        ("account", "username", name, settings.PLINTH_LOGIN_MAX_FAILURES),
        ("address", "address_key", key, settings.PLINTH_LOGIN_MAX_FAILURES_PER_ADDRESS),
    ):
        rows = LoginFailure.objects.filter(**{field: value}, created_at__gte=since)
        if before_id is not None:
            rows = rows.filter(pk__lt=before_id)
        recent = list(rows.order_by("-created_at").values_list("created_at", flat=True)[:limit])
        if len(recent) >= limit:
            # Locked until the limit-th newest failure leaves the window (then fewer than `limit` remain).
            found.append(SignInLock(scope=scope, until=recent[limit - 1] + _window(), failures=len(recent)))
    return found
