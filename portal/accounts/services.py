"""Writes for accounts: teams, memberships, tokens, sign-in and its throttle. Each writes its audit event."""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.http import Http404
from django.utils import timezone

from portal.core.audit import audit_record
from portal.core.client_address import throttle_key

from . import permissions, selectors, signals, tokens
from .models import APIToken, LoginFailure, Membership, MembershipSource, OIDCIdentity, Role, Team

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


# What a team's name is besides its key here: `group:default/<name>` owner refs in descriptors (and the
# catalog Group entity of that name, whose ingestion makes the team again when it is missing), the
# single sign-on group map, the org sync, links to /teams/<name>/ and the audit trail's `team:<name>`.
TEAM_NAME_FIXED = ("The team's key: descriptors name it as owner (group:default/<name>), as do the Group "
                   "entity, the single sign-on group map and the audit trail. It cannot be changed once the "
                   "team exists; change the title instead.")


@transaction.atomic
def team_update(*, team: Team, title: str, description: str, actor=None) -> Team:
    """Change a team's title and description, audited with the fields that changed (nothing is written
    when none did). Not its name: see TEAM_NAME_FIXED — a rename here would leave every reference to
    the old name pointing at no team, so there is no rename."""
    current = Team.objects.select_for_update().get(pk=team.pk)
    wanted = {"title": title, "description": description}
    changed = [key for key, value in wanted.items() if getattr(current, key) != value]
    if not changed:
        return current
    before = {key: getattr(current, key) for key in changed}
    for key in changed:
        setattr(current, key, wanted[key])
    current.full_clean()
    current.save(update_fields=changed)
    audit_record(actor=actor, action="team.update", target=f"team:{current.name}", before=before,
                 after={key: wanted[key] for key in changed})
    for key in changed:
        setattr(team, key, wanted[key])
    return current


class TeamInUse(ValidationError):
    """A team that something still depends on: the message names what, how many, and what to do first;
    `reasons` keeps them one by one (`manage.py teams delete` prints each on its own line)."""

    def __init__(self, message, *, reasons: list[str] = ()):
        super().__init__(message)
        self.reasons = list(reasons)


@transaction.atomic
def team_delete(*, team: Team, actor) -> dict:
    """Delete a team (platform admins: `permissions.may_delete_team`), refused with `TeamInUse` while
    anything still depends on it (`selectors.team_delete_blockers`: catalog entities, open requests,
    unresolved incidents, its Group entity, the single sign-on group map). One `team.delete` event holds
    the members removed with it and what else lost it (`selectors.team_dependents`), so nothing changes
    without a trace. Returns the event's `before` and `after`."""
    if not permissions.may_delete_team(actor):
        raise PermissionDenied("Only platform admins delete teams.")
    current = Team.objects.select_for_update().filter(pk=team.pk).first()
    if current is None:
        raise ValidationError(f"Team '{team.name}' no longer exists: nothing was deleted.")
    blockers = selectors.team_delete_blockers(current)
    if blockers:
        raise TeamInUse(f"Team '{current.name}' cannot be deleted yet: {'; '.join(blockers)}.",
                        reasons=blockers)
    members = [{"user": m.user.get_username(), "role": m.role,
                **({"source": m.source} if m.source != MembershipSource.MANUAL else {})}
               for m in selectors.team_members(current)]
    before = {"title": current.title, "description": current.description, "members": members}
    after = selectors.team_dependents(current)
    current.delete()
    audit_record(actor=actor, action="team.delete", target=f"team:{current.name}", before=before,
                 after=after or None)
    return {"before": before, "after": after}


@transaction.atomic
def team_ensure(*, name: str, title: str = "") -> Team:
    """Create the team for a Group entity if it does not exist yet (catalog ingestion)."""
    team, created = Team.objects.get_or_create(name=name, defaults={"title": title})
    if created:
        team.full_clean()
        audit_record(actor=None, action="team.create", target=f"team:{name}", after={"title": title})
    return team


@transaction.atomic
def membership_set(*, user, team: Team, role: str, actor=None,
                   source: str = MembershipSource.MANUAL) -> Membership:
    """Give `user` `role` in `team`. A membership set by hand (the default source) takes over one an
    automatic source kept; an automatic source (`oidc`, `org-sync`) passes its name and is audited as
    the actor when there is no person."""
    if role not in Role.values:
        raise ValidationError({"role": f"Unknown role '{role}'. Roles: {', '.join(Role.values)}."})
    membership = Membership.objects.filter(user=user, team=team).first()
    before = {"role": membership.role, "source": membership.source} if membership else None
    if membership is None:
        membership = Membership.objects.create(user=user, team=team, role=role, source=source)
    else:
        membership.role, membership.source = role, source
        membership.save(update_fields=["role", "source"])
    after = {"user": user.get_username(), "role": role}
    if source != MembershipSource.MANUAL:
        after["source"] = source
    audit_record(actor=actor, actor_label=_label(source), action="team.member.set",
                 target=f"team:{team.name}", before=before, after=after)
    return membership


@transaction.atomic
def membership_remove(*, user, team: Team, actor=None, source: str | None = None) -> bool:
    """Remove the membership; with `source`, only if that source keeps it. False: there was none to
    remove (nothing is written)."""
    rows = Membership.objects.filter(user=user, team=team)
    if source is not None:
        rows = rows.filter(source=source)
    deleted, _ = rows.delete()
    if deleted:
        before = {"user": user.get_username()}
        if source not in (None, MembershipSource.MANUAL):
            before["source"] = source
        audit_record(actor=actor, actor_label=_label(source), action="team.member.remove",
                     target=f"team:{team.name}", before=before)
    return bool(deleted)


def _label(source: str | None) -> str:
    """The audit actor of an automatic change that no person made."""
    return source if source in (MembershipSource.OIDC, MembershipSource.ORG_SYNC) else "system"


# Which of two roles a person keeps when several groups give them one team (docs/identity.md).
ROLE_RANK = {Role.VIEWER: 1, Role.REVIEWER: 2, Role.MEMBER: 3, Role.MAINTAINER: 4, Role.ADMIN: 5}


def memberships_reconcile(*, user, wanted: dict[str, str], source: str) -> dict[str, list]:
    """Make the memberships that `source` keeps for `user` equal `wanted` ({team name: role}): add,
    change the role of and remove only rows of that source; a row another source keeps (say, one given
    by hand) is left alone. Missing teams are created. Each change is audited. Call inside a transaction.

    Returns {"added": [...], "changed": [...], "removed": [...]} (team names)."""
    current = {m.team.name: m for m in Membership.objects.filter(user=user).select_related("team")}
    teams = {t.name: t for t in Team.objects.filter(name__in=list(wanted))}
    outcome: dict[str, list] = {"added": [], "changed": [], "removed": []}
    for name, role in sorted(wanted.items()):
        membership = current.get(name)
        if membership is not None and membership.source != source:
            continue  # kept by hand or by another source
        if membership is not None and membership.role == role:
            continue
        team = teams.get(name) or team_ensure(name=name)
        membership_set(user=user, team=team, role=role, source=source)
        outcome["changed" if membership else "added"].append(name)
    for name, membership in sorted(current.items()):
        if membership.source == source and name not in wanted:
            membership_remove(user=user, team=membership.team, source=source)
            outcome["removed"].append(name)
    return outcome


@transaction.atomic
def token_create(*, user, name: str, expires_in_days: int | None = None, parent: APIToken | None = None,
                 address: str | None = None) -> tuple[APIToken, str]:
    """Create a token; returns (row, secret). The secret is never stored. Made by a request that a token
    authenticated (`parent`), it expires no later than that token and is revoked with it: a leaked
    short-lived token cannot mint itself lasting access."""
    name = name.strip()
    if not name or len(name) > 100:
        raise ValidationError({"name": "A token name is required (at most 100 characters)."})
    raw, prefix, digest = tokens.generate()
    expires_at = timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None
    if parent is not None and parent.expires_at is not None:
        expires_at = min(expires_at or parent.expires_at, parent.expires_at)
    token = APIToken.objects.create(user=user, name=name, prefix=prefix, key_hash=digest, expires_at=expires_at,
                                    parent=parent)
    audit_record(actor=user, action="token.create", target=f"user:{user.get_username()}",
                 after={"token": prefix, "name": name, **({"parent": parent.prefix} if parent else {})},
                 remote_addr=address)
    return token, raw


@transaction.atomic
def token_revoke(*, token: APIToken, actor, address: str | None = None, by_admin: bool = False) -> list[APIToken]:
    """Revoke a personal token, and the tokens it made (and theirs); returns those it revoked. Another
    user's token answers like a missing one, except `by_admin` (the admin site's revoke action): a
    platform admin may revoke anyone's, audited with the admin as the actor."""
    if by_admin and not permissions.may_revoke_token_as_admin(actor):
        raise PermissionDenied("Only platform admins revoke other users' tokens.")
    if not by_admin and not permissions.may_manage_token(actor, token):
        raise Http404("No such token")
    now, level, revoked, seen = timezone.now(), [token], [], {token.pk}
    while level:  # down the tree the token made: short in practice, and it ends (a token is made once)
        revoked += [t for t in level if t.revoked_at is None]
        level = [t for t in APIToken.objects.filter(parent__in=level) if t.pk not in seen]
        seen.update(t.pk for t in level)
    APIToken.objects.filter(pk__in=[t.pk for t in revoked]).update(revoked_at=now)
    for t in revoked:
        t.revoked_at = now
        audit_record(actor=actor, action="token.revoke", target=f"user:{token.user.get_username()}",
                     after={"token": t.prefix, "name": t.name, **({"with": token.prefix} if t is not token else {})},
                     remote_addr=address)
    return revoked


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


# -- OpenID Connect sign-in ------------------------------------------------------------------------


class SignInRefused(Exception):
    """The provider vouched for the person, but the portal will not sign them in (the view answers
    with `status` and `message`)."""

    def __init__(self, message: str, *, reason: str, status: int = 403) -> None:
        super().__init__(message)
        self.message, self.reason, self.status = message, reason, status


USERNAME_RE = r"^[\w.@+-]{1,150}$"  # Django's username validator


@transaction.atomic
def oidc_sign_in(*, issuer: str, claims: dict, address: str | None):
    """The user for verified ID token claims: found by (issuer, subject), else created just in time
    (or, once, linked to an account that exists without a password: one org sync created). Profile,
    team memberships from the groups claim and platform-admin status follow the claims at every
    sign-in. Audited: `user.create`, the membership changes, `auth.sign-in` (method oidc)."""
    subject = str(claims.get("sub") or "")[:255]
    if not subject:
        raise SignInRefused("The ID token names no subject.", reason="token-subject", status=401)
    if _has_control(subject):
        raise SignInRefused("The ID token's subject contains control characters.", reason="token-subject",
                            status=401)
    identity = OIDCIdentity.objects.select_related("user").filter(issuer=issuer, subject=subject).first()
    created = False
    if identity is None:
        username = _claimed_username(claims)
        if not re.match(USERNAME_RE, username):
            raise SignInRefused(
                f"The identity provider's {settings.PLINTH_OIDC_USERNAME_CLAIM!r} claim ({username[:60]!r}) "
                "is not a valid user name here (letters, digits and @ . + - _, at most 150). Ask the "
                "platform team to set PLINTH_OIDC_USERNAME_CLAIM.", reason="username-invalid", status=403)
        # Names are compared without case: a local `Admin` is the account a provider's `admin` would name
        # (the catalog's user refs are lower case, so both would claim `user:default/admin`).
        user = User.objects.filter(username__iexact=username).order_by("pk").first()
        if user is not None and not user.is_active:
            raise SignInRefused("This account is deactivated in the portal.", reason="inactive", status=403)
        if user is not None and (user.has_usable_password() or user.oidc_identities.exists()):
            # A password account (the break-glass admin, a local user) or another identity's account:
            # never taken over by a name the provider sends.
            raise SignInRefused(
                f"An account named {username!r} already exists and belongs to someone else or signs in "
                "with a password. A platform admin must link it before single sign-on can use it.",
                reason="username-taken", status=409)
        if user is None:
            user = User(username=username)
            user.set_unusable_password()
            created = True
        _profile(user, claims)
        user.save()
        identity = OIDCIdentity.objects.create(user=user, issuer=issuer, subject=subject)
        if created:
            audit_record(actor=None, actor_label="oidc", action="user.create", target=f"user:{username}",
                         after={"issuer": issuer, "subject": subject}, remote_addr=address)
    else:
        user = identity.user
        if not user.is_active:
            raise SignInRefused("This account is deactivated in the portal.", reason="inactive", status=403)
        if _profile(user, claims):
            user.save(update_fields=["email", "first_name", "last_name", "is_staff", "is_superuser"])
    identity.last_sign_in_at = timezone.now()
    identity.save(update_fields=["last_sign_in_at"])
    memberships = memberships_reconcile(user=user, wanted=oidc_teams(claims), source=MembershipSource.OIDC)
    audit_record(actor=user, action="auth.sign-in", target=f"user:{user.get_username()}", remote_addr=address,
                 after={"method": "oidc", "issuer": issuer, "created": created,
                        **{k: v for k, v in memberships.items() if v}})
    return user


def _claimed_username(claims: dict) -> str:
    """The username claim, else the e-mail — only one the provider says it verified, since the name may
    link an existing account (a password-less one an org sync created)."""
    value = claims.get(settings.PLINTH_OIDC_USERNAME_CLAIM)
    if not isinstance(value, str) or not value.strip():
        value = _email(claims, verified_only=True)
    return unicodedata.normalize("NFKC", value.strip()).lower()


def _has_control(text: str) -> bool:
    return any(unicodedata.category(c) == "Cc" for c in text)


def _email(claims: dict, *, verified_only: bool) -> str:
    """The e-mail claim, or "": none, not text, with control characters, or not verified. `email_verified`
    true (a boolean, or the text "true" some providers send) verifies it; absent, it counts as verified
    for the profile (providers that never send it) but not for `verified_only`."""
    email, verified = claims.get("email"), claims.get("email_verified")
    if not isinstance(email, str) or _has_control(email):
        return ""
    if verified is True or (isinstance(verified, str) and verified.strip().lower() == "true"):
        return email
    return email if verified is None and not verified_only else ""


def _name(value) -> str:
    """A name claim as text without control characters (which PostgreSQL's text cannot even hold, NUL)."""
    return "".join(c for c in value if unicodedata.category(c) != "Cc")[:150] if isinstance(value, str) else ""


def _profile(user, claims: dict) -> bool:
    """Copy e-mail, names and platform-admin status from the claims; True if anything changed."""
    before = (user.email, user.first_name, user.last_name, user.is_staff, user.is_superuser)
    if email := _email(claims, verified_only=False):
        user.email = email[:254]
    given, family = claims.get("given_name"), claims.get("family_name")
    if isinstance(given, str) or isinstance(family, str):
        user.first_name, user.last_name = _name(given), _name(family)
    elif isinstance(claims.get("name"), str):
        user.first_name, user.last_name = _name(claims["name"]), ""
    admin_groups = set(settings.PLINTH_OIDC_ADMIN_GROUPS)
    if admin_groups:
        is_admin = bool(admin_groups & set(claimed_groups(claims)))
        user.is_staff = user.is_superuser = is_admin
    return before != (user.email, user.first_name, user.last_name, user.is_staff, user.is_superuser)


def claimed_groups(claims: dict) -> list[str]:
    """The groups claim as a list of strings (a single string is one group; anything else none)."""
    value = claims.get(settings.PLINTH_OIDC_GROUPS_CLAIM)
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, str) and len(item) <= 1024]


def oidc_teams(claims: dict) -> dict[str, str]:
    """{team: role} that the groups claim grants through PLINTH_OIDC_GROUP_MAP. Only mapped groups
    count, so a claim of thousands of groups costs one pass and stores nothing more."""
    mapping = settings.PLINTH_OIDC_GROUP_MAP
    wanted: dict[str, str] = {}
    for group in set(claimed_groups(claims)) & set(mapping):
        team, role = mapping[group]
        if team not in wanted or ROLE_RANK[Role(role)] > ROLE_RANK[Role(wanted[team])]:
            wanted[team] = role
    return wanted


@transaction.atomic
def oidc_sign_in_refused(*, reason: str, address: str | None, subject: str = "") -> None:
    """A refused single sign-on (a bad token, a bad state, a taken name): audited, without the token."""
    audit_record(actor=None, actor_label="anonymous", action="auth.sign-in", outcome="failure",
                 target=f"oidc:{subject[:100]}" if subject else "oidc", remote_addr=address,
                 after={"method": "oidc", "reason": reason[:100]})


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
