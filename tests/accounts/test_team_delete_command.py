"""`manage.py teams delete TEAM --actor ADMIN [--yes]` goes through `services.team_delete`, as the admin site:
platform admins only (deny by default), refused with each reason on its own line while anything depends
on the team — also when that appears between the command's own check and the service's, which checks
again under a row lock — asks on a terminal and refuses elsewhere without --yes; a refusal or bad input
changes nothing. Also the admin site's race: a blocker that appears after the confirmation page."""

from __future__ import annotations

import os

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.utils import timezone

from portal.accounts.models import Membership, Team
from portal.core.models import AuditEvent
from portal.governance.models import ApprovalRequest
from portal.incidents.models import Incident
from tests.factories import EntityFactory, UserFactory

from .test_team_admin import _events, _last_seq

pytestmark = pytest.mark.django_db

TEAMS = "/admin/accounts/team/"


@pytest.fixture
def root():
    return UserFactory(username="root", is_staff=True, is_superuser=True)


class Terminal:
    """A real pseudo-terminal as the command's stdin; `answer` is what the person types. `meanwhile` runs
    while the prompt waits, as another admin acting between the command's check and its delete."""

    def __init__(self, answer: str, meanwhile=None):
        self._master, slave = os.openpty()
        self._stdin = os.fdopen(slave, "r")
        os.write(self._master, f"{answer}\n".encode())
        self._meanwhile = meanwhile

    def isatty(self) -> bool:
        return self._stdin.isatty()

    def readline(self) -> str:
        if self._meanwhile:
            self._meanwhile()
        return self._stdin.readline()

    def close(self) -> None:
        self._stdin.close()
        os.close(self._master)


@pytest.fixture
def terminal():
    opened = []

    def make(answer: str, meanwhile=None) -> Terminal:
        opened.append(Terminal(answer, meanwhile))
        return opened[-1]

    yield make
    for t in opened:
        t.close()


def _state(team: Team):
    return (Team.objects.filter(pk=team.pk).exists(), Membership.objects.filter(team=team).count(),
            AuditEvent.objects.count())


def test_delete_with_yes_removes_the_team_and_writes_one_event(root, team, capsys):
    incident = Incident.objects.create(title="Old", severity="sev3", status="resolved", owner_team=team,
                                       opened_at=timezone.now(), opened_by_label="bob")
    start = _last_seq()
    call_command("teams", "delete", "fraud-ml", "--actor", "root", "--yes")
    out = capsys.readouterr().out
    assert "Deleted team fraud-ml (audited as team.delete by root)" in out
    assert "members removed: 2 (bob maintainer, eve viewer)" in out
    assert "unowned: incidents.Incident 1" in out
    assert not Team.objects.filter(name="fraud-ml").exists() and not Membership.objects.exists()
    assert _events(start) == [(
        "team.delete", "root", "team:fraud-ml",
        {"title": "Fraud ML", "description": "Detects fraud.",
         "members": [{"user": "bob", "role": "maintainer"}, {"user": "eve", "role": "viewer", "source": "oidc"}]},
        {"unowned": {"incidents.Incident": 1}})]
    incident.refresh_from_db()
    assert incident.owner_team is None


def test_a_refusal_lists_each_reason_and_changes_nothing(root, team):
    scorer = EntityFactory(name="scorer", owner_team=team)
    Incident.objects.create(title="Down", severity="sev2", status="acknowledged", owner_team=team,
                            opened_at=timezone.now(), opened_by_label="bob")
    before = _state(team)
    with pytest.raises(CommandError) as refused:
        call_command("teams", "delete", "fraud-ml", "--actor", "root", "--yes")
    lines = str(refused.value).splitlines()
    assert lines[0] == "Team 'fraud-ml' cannot be deleted yet; nothing was deleted:"
    assert lines[1].startswith("  - it owns 1 catalog entity")
    assert lines[2].startswith("  - it responds to 1 unresolved incident")
    assert len(lines) == 3
    assert _state(team) == before
    scorer.refresh_from_db()
    assert scorer.owner_team_id == team.pk


@pytest.mark.parametrize("argv,message", [
    (["nope", "--actor", "root", "--yes"], "Unknown team 'nope'"),
    (["fraud-ml", "--actor", "ghost", "--yes"], "Unknown user 'ghost'"),
    (["fraud-ml", "--actor", "staff", "--yes"], "--actor 'staff' is not a platform admin"),
    (["fraud-ml", "--actor", "retired", "--yes"], "--actor 'retired' is not a platform admin"),
    (["fraud-ml", "--yes"], "the following arguments are required: --actor"),
])
def test_bad_input_or_a_non_admin_actor_is_a_clear_error_and_changes_nothing(root, team, argv, message):
    UserFactory(username="staff", is_staff=True)
    UserFactory(username="retired", is_staff=True, is_superuser=True, is_active=False)
    before = _state(team)
    with pytest.raises(CommandError, match=message):
        call_command("teams", "delete", *argv)
    assert _state(team) == before


def test_without_yes_and_no_terminal_it_refuses(root, team, tmp_path):
    before = _state(team)
    with open(tmp_path / "answers", "w+") as piped:  # a script's stdin: not a terminal
        piped.write("fraud-ml\n")
        piped.seek(0)
        with pytest.raises(CommandError, match="stdin is not a terminal, so pass --yes; nothing was deleted"):
            call_command("teams", "delete", "fraud-ml", "--actor", "root", stdin=piped)
    assert _state(team) == before


def test_on_a_terminal_it_asks_and_deletes_only_when_the_name_is_typed(root, team, terminal, capsys):
    before = _state(team)
    with pytest.raises(CommandError, match="Not confirmed: team 'fraud-ml' was not deleted"):
        call_command("teams", "delete", "fraud-ml", "--actor", "root", stdin=terminal("y"))
    assert "Delete team 'fraud-ml' and its 2 memberships?" in capsys.readouterr().out
    assert _state(team) == before
    call_command("teams", "delete", "fraud-ml", "--actor", "root", stdin=terminal("fraud-ml"))
    assert not Team.objects.filter(name="fraud-ml").exists()
    assert AuditEvent.objects.filter(action="team.delete", target="team:fraud-ml").count() == 1


def test_a_blocker_that_appears_while_the_prompt_waits_refuses_the_delete(root, team, terminal):
    """The command's check passed before it asked; an entity then became the team's. `team_delete` checks
    again under the team's row lock, so the delete is refused with the reason and nothing changes."""
    made = []
    before = _state(team)
    with pytest.raises(CommandError) as refused:
        call_command("teams", "delete", "fraud-ml", "--actor", "root",
                     stdin=terminal("fraud-ml", meanwhile=lambda: made.append(EntityFactory(owner_team=team))))
    assert str(refused.value).splitlines()[1].startswith("  - it owns 1 catalog entity")
    assert _state(team) == before
    made[0].refresh_from_db()
    assert made[0].owner_team_id == team.pk


@pytest.mark.parametrize("blocker", ["entity", "request"])
def test_the_admin_refuses_a_delete_confirmed_before_a_blocker_appeared(root, team, blocker):
    """The confirmation page showed no blocker (a Delete button); then the team came to own an entity or
    an open approval request; the confirming POST refuses with the reason and deletes nothing."""
    client = Client()
    client.force_login(root)
    page = client.get(f"{TEAMS}{team.pk}/delete/")
    assert page.status_code == 200 and "Yes, I’m sure" in page.content.decode()
    if blocker == "entity":
        EntityFactory(name="scorer", owner_team=team)
        reason = "it owns 1 catalog entity"
    else:
        ApprovalRequest.objects.create(action="deprecate", target_ref="dataset:default/x", requester=root,
                                       owner_team=team, state="in-review")
        reason = "1 open approval request is for it"
    before = _state(team)
    response = client.post(f"{TEAMS}{team.pk}/delete/", {"post": "yes"}, follow=True)
    assert response.status_code == 200
    shown = " ".join(str(m) for m in response.context["messages"])
    assert f"Team 'fraud-ml' cannot be deleted yet: {reason}" in shown
    assert "Yes, I’m sure" not in response.content.decode()
    assert _state(team) == before


def test_the_admin_shows_the_services_refusal_when_a_blocker_appears_during_the_post(root, team, monkeypatch):
    """The narrower window: the POST's own check (the confirmation list) passed, then the team came to own
    an entity before `team_delete` ran. The service's check under the row lock refuses; the admin shows
    the reason on the team's page, and nothing is written — not even Django's deletion log entry."""
    from django.contrib.admin.models import LogEntry

    from portal.accounts.admin import TeamAdmin

    checked = TeamAdmin.get_deleted_objects

    def check_then_someone_else_acts(self, objs, request):
        found = checked(self, objs, request)
        if request.method == "POST":
            EntityFactory(name="scorer", owner_team=team)
        return found

    monkeypatch.setattr(TeamAdmin, "get_deleted_objects", check_then_someone_else_acts)
    client = Client()
    client.force_login(root)
    before, logged = _state(team), LogEntry.objects.count()
    response = client.post(f"{TEAMS}{team.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302 and response["Location"] == f"{TEAMS}{team.pk}/change/"
    shown = " ".join(str(m) for m in client.get(response["Location"]).context["messages"])
    assert "Team 'fraud-ml' cannot be deleted yet: it owns 1 catalog entity" in shown
    assert _state(team) == before and LogEntry.objects.count() == logged
