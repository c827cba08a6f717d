"""Teams are the tenants; a user belongs to teams with one role in each."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.urls import reverse

TEAM_NAME_VALIDATOR = RegexValidator(
    r"^[a-z0-9]+(?:[-_.][a-z0-9]+)*$",
    "Team names are lowercase letters and digits joined by single '-', '_' or '.' (at most 63).",
)


class Role(models.TextChoices):
    VIEWER = "viewer", "Viewer"
    MEMBER = "member", "Member"
    MAINTAINER = "maintainer", "Maintainer"
    REVIEWER = "reviewer", "Reviewer"
    ADMIN = "admin", "Admin"


class Team(models.Model):
    """A tenant. Mirrors a catalog Group entity of the same name in the default namespace."""

    name = models.CharField(max_length=63, unique=True, validators=[TEAM_NAME_VALIDATOR])
    title = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True, max_length=2000)
    created_at = models.DateTimeField(auto_now_add=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, through="Membership", related_name="teams")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("accounts:team-detail", args=[self.name])

    @property
    def display_name(self) -> str:
        return self.title or self.name


class MembershipSource(models.TextChoices):
    """Who keeps a membership. Each automatic source adds, changes and removes only its own rows, so a
    membership given by hand is never taken away by a sign-in or a sync (docs/identity.md)."""

    MANUAL = "manual", "Given by hand"
    OIDC = "oidc", "Identity provider's groups claim"
    ORG_SYNC = "org-sync", "Catalog org sync"


class Membership(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.MEMBER)
    source = models.CharField(max_length=20, choices=MembershipSource.choices, default=MembershipSource.MANUAL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "team"], name="one_membership_per_team")]
        ordering = ["team__name"]

    def __str__(self) -> str:
        return f"{self.user} in {self.team} as {self.role}"


class OIDCIdentity(models.Model):
    """The OpenID Connect account (issuer + subject) a portal user signs in with. The subject is the
    provider's stable id; names and e-mail addresses may change or be reused, so they never link."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="oidc_identities")
    issuer = models.CharField(max_length=255)
    subject = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)
    last_sign_in_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["issuer", "subject"], name="one_user_per_oidc_subject")]
        verbose_name = "OpenID Connect identity"

    def __str__(self) -> str:
        return f"{self.subject} at {self.issuer}"


class APIToken(models.Model):
    """A personal API token. Only a SHA-256 of the secret is stored; the secret is shown once."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=8, db_index=True)
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Set once, by a conditional UPDATE, so that exactly one request writes the "first use" audit event.
    first_used_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # The token whose request created this one (a CI job rotating its secret): this one expires no later,
    # and revoking that one revokes this one too (services.token_create / token_revoke).
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        from django.utils import timezone

        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > timezone.now()


class LoginFailure(models.Model):
    """A sign-in attempt that counts as failed, for the throttles (shared by all processes).

    The row is written before the password is checked and removed if the attempt succeeds or was
    refused by a lock, so that parallel guesses are counted before any of them finishes."""

    username = models.CharField(max_length=150)
    remote_addr = models.GenericIPAddressField(null=True, blank=True)
    # What the per-address limit counts: the address, or its /64 for IPv6.
    address_key = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        indexes = [
            models.Index(fields=["username", "created_at"], name="loginfailure_account"),
            models.Index(fields=["address_key", "created_at"], name="loginfailure_address"),
        ]

    def __str__(self) -> str:
        return f"{self.username} at {self.created_at:%Y-%m-%d %H:%M:%S}"
