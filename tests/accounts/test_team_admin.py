"""A team added on the admin site is made by `team_create` (its `team.create` audit event with the admin as
actor, and the catalog's entities already naming it become its own), a changed title or description by
`team_update` (a `team.update` event with what changed, none when nothing did), and the name is read-only
once the team exists, with the reason beside it: it is the key descriptors, the Group entity, the group
map and the audit trail name the team by, so a rename would half-rename."""

import json

import pytest
from django.test import Client

from catalog.models import Entity
from portal.accounts import services
from portal.accounts.models import Membership, Team
from portal.core.models import AuditEvent
from tests.factories import EntityFactory, UserFactory

pytestmark = pytest.mark.django_db

TEAMS = "/admin/accounts/team/"


@pytest.fixture
def root() -> Client:
    admin = UserFactory(username="root", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(admin)
    return client


def _form(name: str, title: str = "", description: str = "", rows: tuple[dict, ...] = (), initial: int = 0,
          team: Team | None = None) -> dict:
    data = {"name": name, "title": title, "description": description,
            "memberships-TOTAL_FORMS": str(len(rows)), "memberships-INITIAL_FORMS": str(initial),
            "memberships-MIN_NUM_FORMS": "0", "memberships-MAX_NUM_FORMS": "1000"}
    for n, row in enumerate(rows):
        data.update({f"memberships-{n}-{key}": str(value) for key, value in row.items()})
        data[f"memberships-{n}-team"] = str(team.pk) if team else ""
    return data


def _last_seq() -> int:
    last = AuditEvent.objects.order_by("-seq").first()
    return last.seq if last else 0


def _events(since: int) -> list[tuple[str, str, str, dict | None, dict | None]]:
    return [(e.action, e.actor, e.target, json.loads(e.payload)["before"], json.loads(e.payload)["after"])
            for e in AuditEvent.objects.filter(seq__gt=since).order_by("seq")]


def test_a_team_added_in_the_admin_is_made_by_team_create(root):
    bob = UserFactory(username="bob")
    named = EntityFactory(name="scorer", owner_ref="group:default/fraud-ml")  # ingested before the team
    start = _last_seq()
    response = root.post(f"{TEAMS}add/", _form("fraud-ml", "Fraud ML", "Detects fraud.",
                                              rows=({"user": bob.pk, "role": "maintainer"},)))
    assert response.status_code == 302, response.context and response.context["errors"]
    team = Team.objects.get(name="fraud-ml")
    assert (team.title, team.description) == ("Fraud ML", "Detects fraud.")
    assert response["Location"] == TEAMS  # the admin's log and redirect used the row the service made
    assert Membership.objects.get(team=team).user == bob
    assert _events(start) == [("team.create", "root", "team:fraud-ml", None, {"title": "Fraud ML"}),
                              ("team.member.set", "root", "team:fraud-ml", None, {"user": "bob", "role": "maintainer"})]
    assert Entity.objects.get(pk=named.pk).owner_team == team  # what team_created gives the catalog


def test_a_team_the_admin_cannot_add_writes_nothing(root):
    services.team_create(name="fraud-ml")
    start, teams = _last_seq(), Team.objects.count()
    for data in (_form("fraud-ml", "again"), _form("Not A Slug"), _form("ok", "t" * 201)):
        response = root.post(f"{TEAMS}add/", data)
        assert response.status_code == 200 and response.context["errors"], data
    assert Team.objects.count() == teams and _events(start) == []


def test_a_changed_title_or_description_is_audited_and_an_unchanged_save_is_not(root):
    team = services.team_create(name="fraud-ml", title="Fraud", description="old")
    url = f"{TEAMS}{team.pk}/change/"
    start = _last_seq()
    assert root.post(url, _form("fraud-ml", "Fraud ML", "old")).status_code == 302
    assert root.post(url, _form("fraud-ml", "Fraud ML", "Detects fraud.")).status_code == 302
    assert root.post(url, _form("fraud-ml", "Fraud ML", "Detects fraud.")).status_code == 302  # no change
    team.refresh_from_db()
    assert (team.title, team.description) == ("Fraud ML", "Detects fraud.")
    assert _events(start) == [
        ("team.update", "root", "team:fraud-ml", {"title": "Fraud"}, {"title": "Fraud ML"}),
        ("team.update", "root", "team:fraud-ml", {"description": "old"}, {"description": "Detects fraud."})]


def test_the_name_is_read_only_once_the_team_exists_and_says_why(root):
    team = services.team_create(name="fraud-ml", title="Fraud")
    owned = EntityFactory(name="scorer", owner_team=team)
    url = f"{TEAMS}{team.pk}/change/"
    page = root.get(url)
    field = page.context["adminform"].form.fields["name"]
    assert field.disabled and field.help_text == services.TEAM_NAME_FIXED
    assert "It cannot be changed once the team exists" in page.content.decode()
    add_page = root.get(f"{TEAMS}add/")
    assert not add_page.context["adminform"].form.fields["name"].disabled  # typed once, when adding

    start = _last_seq()
    response = root.post(url, _form("renamed", "Fraud ML"))
    assert response.status_code == 302
    team.refresh_from_db()
    assert (team.name, team.title) == ("fraud-ml", "Fraud ML")  # the posted name is ignored, the title kept
    assert Entity.objects.get(pk=owned.pk).owner_ref == "group:default/fraud-ml"
    assert _events(start) == [("team.update", "root", "team:fraud-ml", {"title": "Fraud"}, {"title": "Fraud ML"})]


def test_team_update_refuses_a_title_over_the_limit_and_writes_nothing():
    team = services.team_create(name="fraud-ml", title="Fraud")
    start = _last_seq()
    with pytest.raises(services.ValidationError):
        services.team_update(team=team, title="t" * 201, description="", actor=None)
    team.refresh_from_db()
    assert team.title == "Fraud" and _events(start) == []
