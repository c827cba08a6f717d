"""The rules that used to be composed beside their callers, now named in the permission module: revoking
another user's token as an admin (`accounts.services.token_revoke`), the Dataset a Feast feature view may
name as its input (`catalog.feast_sync`), publishing into a repository namespace (the scaffolder's
publish:git step), and deleting a team (`accounts.services.team_delete`). Each is asked directly, for the
users and objects on both sides of its line, and through its caller where that is cheap."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied

from catalog import experiments, feast_sync
from portal.accounts import permissions, services
from tests.factories import MembershipFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


@dataclass
class _Dataset:
    owner_team_id: int | None
    visibility: str


@pytest.fixture
def org():
    fraud, risk = TeamFactory(name="fraud-ml"), TeamFactory(name="model-risk")
    users = {
        "admin": UserFactory(username="admin", is_staff=True, is_superuser=True),
        "gone-admin": UserFactory(username="gone-admin", is_staff=True, is_superuser=True, is_active=False),
        "staff": UserFactory(username="staff", is_staff=True),
        "member": UserFactory(username="member"),
        "viewer": UserFactory(username="viewer"),
        "nobody": UserFactory(username="nobody"),
    }
    MembershipFactory(user=users["member"], team=fraud, role="member")
    MembershipFactory(user=users["viewer"], team=fraud, role="viewer")
    return {"fraud": fraud, "risk": risk, **users}


def test_only_active_platform_admins_revoke_other_users_tokens(org):
    allowed = {name for name in ("admin", "gone-admin", "staff", "member", "viewer")
               if permissions.may_revoke_token_as_admin(org[name])}
    assert allowed == {"admin"}
    assert not permissions.may_revoke_token_as_admin(AnonymousUser())
    token, _ = services.token_create(user=org["member"], name="ci")
    with pytest.raises(PermissionDenied):
        services.token_revoke(token=token, actor=org["staff"], by_admin=True)
    token.refresh_from_db()
    assert token.revoked_at is None
    assert [t.pk for t in services.token_revoke(token=token, actor=org["admin"], by_admin=True)] == [token.pk]


def test_a_feature_view_links_an_internal_dataset_or_its_own_teams_private_one(org):
    fraud, risk = org["fraud"].pk, org["risk"].pk
    assert permissions.may_link_feast_dataset(_Dataset(risk, "internal"), fraud)
    assert permissions.may_link_feast_dataset(_Dataset(None, "internal"), None)
    assert permissions.may_link_feast_dataset(_Dataset(fraud, "private"), fraud)
    assert not permissions.may_link_feast_dataset(_Dataset(risk, "private"), fraud)
    assert not permissions.may_link_feast_dataset(_Dataset(None, "private"), None)  # no team owns either
    assert not permissions.may_link_feast_dataset(_Dataset(risk, "private"), None)


def test_the_feast_sync_takes_the_first_dataset_the_rule_allows(org):
    fraud, risk = org["fraud"].pk, org["risk"].pk
    hidden = experiments.DatasetClaim(pk=1, ref="dataset:default/risk-private", visibility="private",
                                      owner_team_id=risk)
    own = experiments.DatasetClaim(pk=2, ref="dataset:default/fraud-private", visibility="private",
                                   owner_team_id=fraud)
    assert feast_sync._linkable([hidden, own], fraud) == "dataset:default/fraud-private"
    assert feast_sync._linkable([hidden], fraud) is None


def test_publishing_into_a_teams_namespace_needs_its_edit_right_and_elsewhere_some_edit_right(org):
    fraud, risk = org["fraud"].pk, org["risk"].pk
    may = permissions.may_publish_repository
    assert may(org["member"], fraud) and not may(org["member"], risk)
    assert not may(org["viewer"], fraud) and not may(org["nobody"], fraud)
    assert may(org["member"], None)  # `local` or a git host's organisation: the edit right somewhere
    assert not may(org["viewer"], None) and not may(org["nobody"], None)
    assert may(org["admin"], risk) and may(org["admin"], None)
    assert not may(org["gone-admin"], None) and not may(AnonymousUser(), None)


def test_only_active_platform_admins_delete_teams(org):
    allowed = {name for name in ("admin", "gone-admin", "staff", "member", "viewer")
               if permissions.may_delete_team(org[name])}
    assert allowed == {"admin"}
