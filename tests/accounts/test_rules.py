"""Each named rule of the permission module, through the service that enforces it."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.http import Http404

from portal.accounts import permissions, services
from portal.accounts.models import Role
from portal.governance import selectors as governance_selectors
from tests.factories import MembershipFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_roles_allowing_follow_the_role_table():
    assert set(permissions.roles_allowing("edit")) == {Role.MEMBER, Role.MAINTAINER, Role.ADMIN}
    assert set(permissions.roles_allowing("review")) == {Role.REVIEWER, Role.ADMIN} == set(permissions.REVIEW_ROLES)
    assert set(permissions.roles_allowing("delete")) == {Role.MAINTAINER, Role.ADMIN}


def test_tokens_are_personal():
    owner, other = UserFactory(), UserFactory()
    token, _ = services.token_create(user=owner, name="ci")
    with pytest.raises(Http404):
        services.token_revoke(token=token, actor=other)
    token.refresh_from_db()
    assert token.revoked_at is None
    services.token_revoke(token=token, actor=owner)
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_other_users_token_revoke_page_is_a_404(client):
    owner, other = UserFactory(), UserFactory()
    token, _ = services.token_create(user=owner, name="ci")
    client.force_login(other)
    assert client.post(f"/accounts/tokens/{token.pk}/revoke/").status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


def test_audit_trail_is_read_by_platform_admins_only():
    member = MembershipFactory(role=Role.ADMIN).user  # a team admin is not a platform admin
    with pytest.raises(PermissionDenied):
        governance_selectors.audit_events(member, {})
    events, errors = governance_selectors.audit_events(UserFactory(is_superuser=True), {})
    assert errors == {} and events.model.__name__ == "AuditEvent"


def test_scaffolder_runs_for_a_team_need_its_edit_right(db):
    from types import SimpleNamespace

    from portal.scaffolder import services as scaffolder_services

    team = TeamFactory()
    viewer = MembershipFactory(team=team, role=Role.VIEWER).user
    template = SimpleNamespace(ref="template:default/x", title="X", steps=[])
    with pytest.raises(PermissionDenied, match="member, maintainer or admin"):
        scaffolder_services.run_create(template=template, entity=SimpleNamespace(source="", data={}), actor=viewer,
                                       parameters={}, secret_values={}, dry_run=True, owner_team=team)


def test_owner_claims_of_a_member():
    team, other = TeamFactory(), TeamFactory()
    user = MembershipFactory(team=team, role=Role.MEMBER, user__username="Dana").user
    claims = permissions.owner_claims(user)
    assert not claims.org_wide and claims.user_ref == "user:default/dana"
    assert claims.refusal("component", f"group:default/{team.name}", team.pk) is None
    assert claims.refusal("component", "user:default/dana", None) is None
    assert "may only register" in claims.refusal("component", f"group:default/{other.name}", other.pk)
    assert "not a portal team" in claims.refusal("component", "group:default/nobody", None)
    assert "only platform admins" in claims.refusal("group", "", None)
    assert permissions.owner_claims(UserFactory(is_superuser=True)).org_wide
    assert permissions.owner_claims(None).org_wide  # the system
