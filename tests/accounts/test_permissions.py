"""The permission matrix: every role × action on internal/private objects of own and other teams."""

import pytest
from django.core.exceptions import PermissionDenied
from django.http import Http404

from catalog.models import Entity
from portal.accounts import permissions
from portal.accounts.models import Role
from portal.accounts.permissions import Action
from tests.factories import EntityFactory, MembershipFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db

# role -> actions allowed on an object of one's own team (visibility does not matter there)
OWN_TEAM = {
    Role.VIEWER: {Action.VIEW},
    Role.MEMBER: {Action.VIEW, Action.EDIT, Action.REQUEST},
    Role.MAINTAINER: {Action.VIEW, Action.EDIT, Action.DELETE, Action.REQUEST},
    Role.REVIEWER: {Action.VIEW, Action.REVIEW},
    Role.ADMIN: set(Action),
}


@pytest.fixture
def world():
    own, other = TeamFactory(name="own"), TeamFactory(name="other")
    objects = {
        ("own", "internal"): EntityFactory(name="own-internal", owner_team=own, visibility="internal"),
        ("own", "private"): EntityFactory(name="own-private", owner_team=own, visibility="private"),
        ("other", "internal"): EntityFactory(name="other-internal", owner_team=other, visibility="internal"),
        ("other", "private"): EntityFactory(name="other-private", owner_team=other, visibility="private"),
    }
    return own, other, objects


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("action", list(Action))
@pytest.mark.parametrize("team,visibility", [("own", "internal"), ("own", "private"),
                                             ("other", "internal"), ("other", "private")])
def test_role_action_matrix(world, role, action, team, visibility):
    """A role grants its actions on its own team's objects; on another team's, only reading internal ones."""
    own, _other, objects = world
    user = MembershipFactory(team=own, role=role).user
    obj = objects[(team, visibility)]
    if team == "own":
        expected = action in OWN_TEAM[role]
    else:
        expected = action == Action.VIEW and visibility == "internal"
    assert permissions.can(user, action, obj) is expected


@pytest.mark.parametrize("action", list(Action))
def test_platform_admin_may_do_everything(world, action):
    admin = UserFactory(is_superuser=True)
    for obj in world[2].values():
        assert permissions.can(admin, action, obj)


def test_anonymous_and_inactive_users_see_nothing(world):
    from django.contrib.auth.models import AnonymousUser

    inactive = MembershipFactory(team=world[0], role=Role.ADMIN, user__is_active=False).user
    for user in (AnonymousUser(), inactive):
        assert not any(permissions.can(user, Action.VIEW, obj) for obj in world[2].values())
        assert permissions.filter_visible(Entity.objects.all(), user).count() == 0


def test_user_without_team_sees_internal_only(world):
    loner = UserFactory()
    visible = set(permissions.filter_visible(Entity.objects.all(), loner).values_list("name", flat=True))
    assert visible == {"own-internal", "other-internal"}


def test_visible_queryset_agrees_with_can(world):
    """The queryset filter and the per-object check give the same answer for every role."""
    own = world[0]
    for role in Role:
        user = MembershipFactory(team=own, role=role).user
        by_query = set(permissions.filter_visible(Entity.objects.all(), user).values_list("pk", flat=True))
        by_object = {o.pk for o in Entity.objects.all() if permissions.can(user, Action.VIEW, o)}
        assert by_query == by_object, role


def test_require_hides_private_objects_of_other_teams_as_404(world):
    user = MembershipFactory(team=world[0], role=Role.ADMIN).user
    with pytest.raises(Http404):
        permissions.require(user, Action.VIEW, world[2][("other", "private")])
    with pytest.raises(PermissionDenied):
        permissions.require(user, Action.EDIT, world[2][("other", "internal")])
    permissions.require(user, Action.DELETE, world[2][("own", "private")])


def _normalised(response) -> str:
    """The page without what differs on every request (request id, masked CSRF token)."""
    import re

    text = response.content.decode().replace(response["X-Request-ID"], "")
    text = re.sub(r'"X-CSRFToken": "[^"]+"', "", text)
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", text)


def test_private_entity_of_other_team_is_404_in_browser_and_api(client, world):
    """A private object of another team looks exactly like a missing one, on pages and in the API."""
    user = MembershipFactory(team=world[0], role=Role.MEMBER).user
    client.force_login(user)
    hidden = client.get("/catalog/component/default/other-private/")
    missing = client.get("/catalog/component/default/does-not-exist/")
    assert hidden.status_code == missing.status_code == 404
    assert _normalised(hidden) == _normalised(missing)
    api_hidden = client.get("/api/v1/entities/by-name/component/default/other-private")
    api_missing = client.get("/api/v1/entities/by-name/component/default/nope")
    assert api_hidden.status_code == api_missing.status_code == 404
    assert client.get("/catalog/component/default/own-private/").status_code == 200
    names = {i["metadata"]["name"] for i in client.get("/api/v1/entities").json()["items"]}
    assert names == {"own-internal", "own-private", "other-internal"}
