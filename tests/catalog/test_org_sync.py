"""Org sync (PLINTH_ORG_SYNC=catalog): Backstage's example organisation (acme, from ../shared/compat) becomes
teams and memberships; a user taken out of a Group loses the membership at the next refresh (audited), and
memberships given by hand stay. The shared folder is PLINTH_SHARED_DIR, by default ../shared beside the
repository."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from catalog import org_sync, services
from catalog.models import Location
from portal.accounts.models import Membership
from portal.core.audit import verify_database
from portal.core.models_audit import AuditEvent
from tests.factories import MembershipFactory, TeamFactory, UserFactory

ROOT = Path(__file__).resolve().parents[2]
ACME = Path(os.environ.get("PLINTH_SHARED_DIR") or ROOT.parent / "shared") / "compat" / "backstage" / "examples" / "acme"


@pytest.fixture
def acme(tmp_path, settings) -> Path:
    """A copy of the example org in a scratch folder the test may edit (never in the repository)."""
    if not ACME.is_dir():
        pytest.skip(f"Backstage's example org not found at {ACME} (set PLINTH_SHARED_DIR)")
    folder = tmp_path / "acme"
    shutil.copytree(ACME, folder)
    settings.PLINTH_CATALOG_FILE_ROOTS = [str(tmp_path)]
    settings.PLINTH_ORG_SYNC = "catalog"
    settings.PLINTH_ORG_SYNC_ROLE = "member"
    settings.PLINTH_ORG_SYNC_ROLES = {"team-a": "maintainer"}
    settings.PLINTH_ORG_SYNC_PARENT_ROLE = "viewer"
    plan = services.location_register(target=str(folder / "org.yaml"), actor=None, file_roots=None)
    assert not plan.errors, [str(e) for e in plan.errors]
    return folder


def memberships(username: str) -> dict[str, tuple[str, str]]:
    return {m.team.name: (m.role, m.source)
            for m in Membership.objects.filter(user__username=username).select_related("team")}


def sync_org() -> dict:
    from io import StringIO

    out = StringIO()
    call_command("catalog", "sync-org", stdout=out)
    return json.loads(out.getvalue())


@pytest.mark.django_db
def test_the_example_org_becomes_teams_and_memberships(acme):
    outcome = sync_org()
    assert outcome["usersCreated"] == 16  # every default-namespace User (guest of `development` is not a portal user)
    assert memberships("breanna.davison") == {
        "team-a": ("maintainer", "org-sync"),  # PLINTH_ORG_SYNC_ROLES
        "backstage": ("viewer", "org-sync"), "infrastructure": ("viewer", "org-sync"),  # ancestors (children/parent)
        "acme-corp": ("viewer", "org-sync"),
    }
    assert memberships("calum.leavy")["team-c"] == ("member", "org-sync")
    assert set(memberships("calum.leavy")) == {"team-c", "boxoffice", "infrastructure", "acme-corp"}
    created = AuditEvent.objects.get(action="user.create", target="user:janelle.dawe")
    assert created.actor == "org-sync"
    assert sync_org() == {"usersCreated": 0, "added": 0, "changed": 0, "removed": 0}, "a second run changes nothing"
    assert verify_database()[0]


@pytest.mark.django_db
def test_leaving_a_group_removes_the_membership_at_the_next_refresh(acme):
    sync_org()
    jenny = Membership.objects.get(user__username="jenny.doe", team__name="team-b").user
    MembershipFactory(user=jenny, team=TeamFactory(name="team-c"), role="reviewer")  # given by hand
    team_b = acme / "team-b-group.yaml"
    text = team_b.read_text()
    jenny_doc = text.index("name: jenny.doe")
    team_b.write_text(text[:jenny_doc] + text[jenny_doc:].replace("memberOf: [team-b]", "memberOf: []", 1))
    services.location_refresh(location=Location.objects.get(target=str(acme / "org.yaml")))
    outcome = sync_org()
    assert outcome["removed"] == 4  # team-b and its three ancestors
    assert memberships("jenny.doe") == {"team-c": ("reviewer", "manual")}, "the hand-given role stays"
    removed = AuditEvent.objects.filter(action="team.member.remove", target="team:team-b").get()
    assert removed.actor == "org-sync"
    assert json.loads(removed.payload)["before"] == {"user": "jenny.doe", "source": "org-sync"}
    assert memberships("amelia.park")["team-b"] == ("member", "org-sync"), "the others stay"


@pytest.mark.django_db
def test_a_user_or_group_kept_as_an_orphan_grants_nothing(acme, settings):
    """Under the default `keep` strategy, a User or Group gone from its file stays in the catalog,
    flagged orphan, with the relations its descriptor gave it. A leaver is taken out of the file: the
    memberships org sync gave them go at the next refresh, as the Group's do when a Group is."""
    from catalog.models import Entity

    settings.PLINTH_CATALOG_ORPHAN_STRATEGY = "keep"
    sync_org()
    assert set(memberships("jenny.doe")) == {"team-b", "backstage", "infrastructure", "acme-corp"}
    assert memberships("calum.leavy")["team-c"] == ("member", "org-sync")
    team_b = acme / "team-b-group.yaml"
    documents = team_b.read_text().split("\n---\n")
    team_b.write_text("\n---\n".join(d for d in documents if "name: jenny.doe" not in d))
    team_c = acme / "team-c-group.yaml"
    team_c.write_text("\n---\n".join(d for d in team_c.read_text().split("\n---\n") if "kind: Group" not in d))
    services.location_refresh(location=Location.objects.get(target=str(acme / "org.yaml")))
    assert Entity.objects.get(ref="user:default/jenny.doe").orphan
    assert Entity.objects.get(ref="group:default/team-c").orphan
    outcome = sync_org()
    assert memberships("jenny.doe") == {}, "a leaver keeps no membership org sync gave"
    assert memberships("calum.leavy") == {}, "an orphaned Group's members lose it (and its ancestors, theirs by it)"
    team_c_members = ["calum.leavy", "frank.tiernan", "peadar.macmahon", "sarah.gilroy", "tara.macgovern"]
    assert all(memberships(name) == {} for name in team_c_members)
    assert outcome["removed"] == 4 + 5 * 4  # jenny: team-b and 3 ancestors; team-c's 5 members: it and 3 ancestors
    assert memberships("amelia.park")["team-b"] == ("member", "org-sync"), "the others stay"


@pytest.mark.django_db
def test_a_hand_given_role_is_not_taken_over_and_sign_in_accounts_are_linked(acme):
    nigel = UserFactory(username="nigel.manning")
    MembershipFactory(user=nigel, team=TeamFactory(name="team-a"), role="admin")
    sync_org()
    assert memberships("nigel.manning")["team-a"] == ("admin", "manual")
    assert memberships("nigel.manning")["backstage"] == ("viewer", "org-sync")
    created = Membership.objects.get(user__username="janelle.dawe", team__name="team-a").user
    assert not created.has_usable_password(), "org sync creates accounts for single sign-on, without a password"
    assert (created.email, created.first_name) == ("janelle-dawe@example.com", "Janelle Dawe")


@pytest.mark.django_db
def test_org_sync_off_changes_nothing(acme, settings):
    settings.PLINTH_ORG_SYNC = "off"
    assert org_sync.sync() is None
    with pytest.raises(CommandError, match="PLINTH_ORG_SYNC=catalog"):
        call_command("catalog", "sync-org")
    assert not Membership.objects.filter(source="org-sync").exists()


@pytest.mark.django_db
def test_query_count_does_not_grow_with_unchanged_users(acme, django_assert_max_num_queries):
    sync_org()
    with django_assert_max_num_queries(9):  # 9 on PostgreSQL: its advisory lock; however many users
        assert org_sync.sync().as_dict() == {"usersCreated": 0, "added": 0, "changed": 0, "removed": 0}


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_refresh_queues_the_sync_on_a_real_worker(acme, redis_url):
    """The catalog change (a User leaving a Group) reaches a real Celery worker through the broker: the
    refresh's commit queues `catalog.tasks.sync_org`, and the worker removes the membership."""
    from tests.conftest import start_celery_worker
    from tests.governance.conftest import wait_for

    worker = start_celery_worker(redis_url, env={
        "PLINTH_ORG_SYNC": "catalog", "PLINTH_ORG_SYNC_ROLES": "team-a=maintainer",
        "PLINTH_ORG_SYNC_PARENT_ROLE": "viewer"})
    try:
        from catalog import tasks

        tasks.sync_org.delay()  # the registration (before the worker was there) queued one too
        wait_for(lambda: Membership.objects.filter(user__username="jenny.doe", team__name="team-b").exists(),
                 what="the worker's first sync")
        team_b = acme / "team-b-group.yaml"
        text = team_b.read_text()
        at = text.index("name: jenny.doe")
        team_b.write_text(text[:at] + text[at:].replace("memberOf: [team-b]", "memberOf: []", 1))
        services.location_refresh(location=Location.objects.get(target=str(acme / "org.yaml")))
        wait_for(lambda: not Membership.objects.filter(user__username="jenny.doe").exists(),
                 what="the worker's sync after the refresh")
        assert AuditEvent.objects.filter(action="team.member.remove", target="team:team-b", actor="org-sync").exists()
    finally:
        worker.stop()
