"""Deleting a team goes through `services.team_delete`, on the admin site too (its delete view and the
*Delete selected* action): platform admins only; refused, with what and how many on the confirmation
page (never a server error), while anything still depends on the team — catalog entities it owns, its
Group entity, open approval requests for it or waiting for its review, unresolved incidents, the single
sign-on group map; otherwise one `team.delete` event lists the members removed and what else lost the
team, and nothing else is written."""


import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import PermissionDenied
from django.test import Client
from django.utils import timezone

from portal.accounts import services
from portal.accounts.models import Membership, Team
from portal.governance.models import AccessGrant, ApprovalRequest, Stage
from portal.incidents.models import Incident
from tests.factories import EntityFactory, UserFactory

from .test_team_admin import _events, _last_seq

pytestmark = pytest.mark.django_db

TEAMS = "/admin/accounts/team/"


@pytest.fixture
def root() -> Client:
    client = Client()
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


def _request(team: Team, requester, state: str) -> ApprovalRequest:
    return ApprovalRequest.objects.create(action="deprecate", target_ref="dataset:default/x", requester=requester,
                                          owner_team=team, state=state)


def _delete_selected(client: Client, *teams: Team, confirm: bool):
    data = {"action": "delete_selected", "_selected_action": [str(t.pk) for t in teams]}
    if confirm:
        data["post"] = "yes"
    return client.post(TEAMS, data, follow=not confirm)


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_the_admin_deletes_an_unused_team_with_one_audited_event(root, team):
    """The members go with the team in one `team.delete` event (no `team.member.remove` each), which also
    counts what lost the team: a closed request and a resolved incident keep going without an owner,
    the team's access grant is deleted with it."""
    closed = _request(team, UserFactory(username="carol"), state="executed")
    AccessGrant.objects.create(team=team, target_ref="dataset:default/pii", request=closed)
    Incident.objects.create(title="Old", severity="sev3", status="resolved", owner_team=team,
                            opened_at=timezone.now(), opened_by_label="bob")
    start = _last_seq()
    page = root.get(f"{TEAMS}{team.pk}/delete/")
    assert page.status_code == 200 and "Yes, I’m sure" in page.content.decode()  # nothing refuses: a Delete button
    response = root.post(f"{TEAMS}{team.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302 and response["Location"] == TEAMS
    assert not Team.objects.filter(name="fraud-ml").exists() and not Membership.objects.exists()
    assert _events(start) == [(
        "team.delete", "root", "team:fraud-ml",
        {"title": "Fraud ML", "description": "Detects fraud.",
         "members": [{"user": "bob", "role": "maintainer"}, {"user": "eve", "role": "viewer", "source": "oidc"}]},
        {"unowned": {"governance.ApprovalRequest": 1, "incidents.Incident": 1},
         "deleted": {"governance.AccessGrant": 1}})]
    closed.refresh_from_db()
    assert closed.owner_team is None


def test_a_team_that_owns_entities_is_refused_on_the_confirmation_page_and_kept(root, team):
    """The refusal names the count and what to do, as an error message; the Delete button is gone, and a
    confirming POST anyway deletes and writes nothing."""
    owned = [EntityFactory(name=f"scorer-{n}", owner_team=team) for n in range(2)]
    start = _last_seq()
    page = root.get(f"{TEAMS}{team.pk}/delete/")
    assert page.status_code == 200
    assert page.context["protected"] and "Yes, I’m sure" not in page.content.decode()
    [message] = _messages(page)
    assert message.startswith("Team 'fraud-ml' cannot be deleted yet: it owns 2 catalog entities")
    response = root.post(f"{TEAMS}{team.pk}/delete/", {"post": "yes"})
    assert response.status_code == 200 and "it owns 2 catalog entities" in " ".join(_messages(response))
    assert Team.objects.filter(pk=team.pk).exists() and Membership.objects.filter(team=team).count() == 2
    assert all(e.owner_team_id == team.pk for e in type(owned[0]).objects.filter(pk__in=[o.pk for o in owned]))
    assert _events(start) == []


def test_the_delete_selected_action_refuses_all_when_one_team_is_in_use(root, team):
    """Of two selected teams one is still reviewing an open request: the confirmation page says so and
    a confirming POST deletes neither."""
    idle = services.team_create(name="idle")
    request = _request(None, UserFactory(username="carol"), state="in-review")
    Stage.objects.create(request=request, index=0, name="Review").teams.add(team)
    start = _last_seq()
    page = _delete_selected(root, team, idle, confirm=False)
    assert page.status_code == 200 and page.context["protected"]
    assert ("Team 'fraud-ml' cannot be deleted yet: 1 open approval request is for it or waits for its review"
            in " ".join(_messages(page)))
    response = _delete_selected(root, team, idle, confirm=True)
    assert response.status_code == 200
    assert Team.objects.filter(name__in=["fraud-ml", "idle"]).count() == 2 and _events(start) == []


def test_the_delete_selected_action_deletes_unused_teams_through_the_service(root, team):
    idle = services.team_create(name="idle")
    start = _last_seq()
    response = _delete_selected(root, team, idle, confirm=True)
    assert response.status_code == 302
    assert not Team.objects.filter(name__in=["fraud-ml", "idle"]).exists()
    assert [(action, target) for action, _actor, target, _b, _a in _events(start)] == [
        ("team.delete", "team:fraud-ml"), ("team.delete", "team:idle")]


@pytest.mark.parametrize("depends", ["entity", "group-entity", "request", "incident", "group-map"])
def test_team_delete_refuses_while_something_depends_on_the_team(team, depends, settings):
    admin = UserFactory(username="root", is_staff=True, is_superuser=True)
    expected = {
        "entity": "it owns 1 catalog entity",
        "group-entity": "the catalog's Group entity group:default/fraud-ml defines it",
        "request": "1 open approval request is for it",
        "incident": "it responds to 1 unresolved incident",
        "group-map": "PLINTH_OIDC_GROUP_MAP maps the single sign-on group plinth-fraud-ml to it",
    }[depends]
    if depends == "entity":
        EntityFactory(name="scorer", owner_ref="group:default/fraud-ml", owner_team=team)
    elif depends == "group-entity":
        EntityFactory(kind="Group", name="fraud-ml")
    elif depends == "request":
        _request(team, admin, state="draft")
    elif depends == "incident":
        Incident.objects.create(title="Down", severity="sev2", status="acknowledged", owner_team=team,
                                opened_at=timezone.now(), opened_by_label="bob")
    else:
        settings.PLINTH_OIDC_GROUP_MAP = {"plinth-fraud-ml": ("fraud-ml", "member"), "other": ("x", "member")}
    start = _last_seq()
    with pytest.raises(services.TeamInUse) as refused:
        services.team_delete(team=team, actor=admin)
    assert expected in refused.value.messages[0]
    assert Team.objects.filter(pk=team.pk).exists() and _events(start) == []


def test_only_platform_admins_delete_teams(team):
    """A staff account given Django's delete permission on teams still gets no delete (the view is
    forbidden and the action is not offered), and the service refuses too."""
    staff = UserFactory(username="staff", is_staff=True)
    staff.user_permissions.add(*Permission.objects.filter(codename__in=["view_team", "delete_team"]))
    client = Client()
    client.force_login(staff)
    assert client.get(f"{TEAMS}{team.pk}/delete/").status_code == 403
    assert client.post(f"{TEAMS}{team.pk}/delete/", {"post": "yes"}).status_code == 403
    assert "delete_selected" not in client.get(TEAMS).content.decode()
    with pytest.raises(PermissionDenied):
        services.team_delete(team=team, actor=staff)
    assert Team.objects.filter(pk=team.pk).exists()
