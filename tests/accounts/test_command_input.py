"""`manage.py teams remove` and `create_token` on input that changes nothing: a clear error and a non-zero
exit, never a false "removed" or a traceback."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from portal.accounts import services
from portal.accounts.models import APIToken, Membership
from portal.core.models import AuditEvent
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_removing_someone_who_is_not_a_member_says_so(capsys):
    UserFactory(username="zoe")
    team = services.team_create(name="core")
    before = AuditEvent.objects.count()
    with pytest.raises(CommandError, match="zoe is not a member of core: nothing removed"):
        call_command("teams", "remove", "zoe", "core")
    assert "removed from" not in capsys.readouterr().out and AuditEvent.objects.count() == before
    call_command("teams", "add", "zoe", "core")
    call_command("teams", "remove", "zoe", "core")
    assert "zoe removed from core" in capsys.readouterr().out
    assert not Membership.objects.filter(team=team).exists()
    assert AuditEvent.objects.filter(action="team.member.remove").count() == 1


@pytest.mark.parametrize("days", ["99999999", "0", "-3", "366"])
def test_an_expiry_out_of_range_is_refused_with_the_range(days):
    UserFactory(username="zoe")
    with pytest.raises(CommandError, match=rf"--expires-in-days must be from 1 to 365 \(as the API allows\), not {days}"):
        call_command("create_token", "zoe", "--expires-in-days", days)
    assert not APIToken.objects.exists()


def test_the_longest_expiry_and_a_bad_name(capsys):
    UserFactory(username="zoe")
    call_command("create_token", "zoe", "--expires-in-days", "365")
    assert capsys.readouterr().out.startswith("plinth_") and APIToken.objects.get().expires_at is not None
    for name in (" ", "n" * 101):
        with pytest.raises(CommandError, match=r"--name: A token name is required \(at most 100 characters\)"):
            call_command("create_token", "zoe", "--name", name)
    assert APIToken.objects.count() == 1
