"""`manage.py teams` and friends: clear errors, nothing changed on bad input."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from portal.accounts.models import Membership, Team
from portal.core.models import AuditEvent
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_create_team_and_add_member(capsys):
    UserFactory(username="zoe")
    call_command("teams", "create", "fraud-ml", "--title", "Fraud ML")
    call_command("teams", "add", "zoe", "fraud-ml", "--role", "maintainer")
    assert Membership.objects.get(user__username="zoe", team__name="fraud-ml").role == "maintainer"
    call_command("teams", "add", "zoe", "fraud-ml", "--role", "reviewer")
    assert Membership.objects.get(user__username="zoe").role == "reviewer"
    assert AuditEvent.objects.filter(action="team.member.set").count() == 2
    call_command("teams", "list")
    assert "zoe\treviewer" in capsys.readouterr().out


@pytest.mark.parametrize("argv,message", [
    (["add", "zoe", "nope", "--role", "member"], "Unknown team 'nope'"),
    (["add", "ghost", "core", "--role", "member"], "Unknown user 'ghost'"),
    (["add", "zoe", "core", "--role", "overlord"], "Unknown role 'overlord'"),
    (["create", "Bad Name!"], "name: Team names are lowercase"),
    (["create", "core"], "already exists"),
    (["create", "x" * 64], "name:"),
    (["create", "ok-team", "--title", "t" * 201], "too long"),
])
def test_bad_input_is_a_clear_error_and_changes_nothing(argv, message):
    UserFactory(username="zoe")
    call_command("teams", "create", "core")
    before = (Team.objects.count(), Membership.objects.count(), AuditEvent.objects.count())
    with pytest.raises(CommandError, match=message):
        call_command("teams", *argv)
    assert (Team.objects.count(), Membership.objects.count(), AuditEvent.objects.count()) == before
