"""The admin site changes tokens and memberships only through the services: a platform admin's Revoke
takes the tokens made with the token along and audits each, tokens cannot be added, edited or deleted
there, and every membership change in a team's page writes its audit event with the admin as actor."""

import json

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from portal.accounts import services
from portal.accounts.models import APIToken, Membership, Team
from portal.core.models import AuditEvent
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

TOKENS = "/admin/accounts/apitoken/"


def bearer(raw: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


def made_with(raw: str, name: str) -> tuple[APIToken, str]:
    body = bearer(raw).post("/api/v1/tokens", {"name": name}, content_type="application/json").json()
    return APIToken.objects.get(pk=body["id"]), body["secret"]


@pytest.fixture
def root() -> Client:
    admin = UserFactory(username="root", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(admin)
    return client


@pytest.fixture
def chain():
    """alice's token A, B made with A, C made with B, and her unrelated token D: (tokens, secrets)."""
    alice = UserFactory(username="alice")
    a, raw_a = services.token_create(user=alice, name="ci")
    b, raw_b = made_with(raw_a, "rotated")
    c, raw_c = made_with(raw_b, "rotated-again")
    d, raw_d = services.token_create(user=alice, name="laptop")
    return (a, b, c, d), (raw_a, raw_b, raw_c, raw_d)


def revokes() -> list[dict]:
    return [{"actor": e.actor, **json.loads(e.payload)["after"]}
            for e in AuditEvent.objects.filter(action="token.revoke").order_by("seq")]


def test_the_revoke_action_revokes_the_tokens_made_with_it_and_audits_each(root, chain):
    (a, b, c, d), (raw_a, raw_b, raw_c, raw_d) = chain
    response = root.post(TOKENS, {"action": "revoke", "_selected_action": [str(b.pk), str(a.pk)]}, follow=True)
    assert response.status_code == 200
    assert "Revoked ci (" in response.content.decode() and "of alice and 2 made with it" in response.content.decode()
    for raw in (raw_a, raw_b, raw_c):
        assert bearer(raw).get("/api/v1/me").status_code == 401
    assert bearer(raw_d).get("/api/v1/me").status_code == 200
    # One event per token, the admin as actor; B was selected too but went with A: not revoked twice.
    assert [(e["actor"], e["token"], e.get("with")) for e in revokes()] == [
        ("root", a.prefix, None), ("root", b.prefix, a.prefix), ("root", c.prefix, a.prefix)]
    again = root.post(TOKENS, {"action": "revoke", "_selected_action": [str(a.pk)]}, follow=True)
    assert "Nothing to revoke" in again.content.decode() and len(revokes()) == 3


def test_tokens_cannot_be_added_edited_or_deleted_in_the_admin(root, chain):
    (a, b, c, d), (raw_a, raw_b, raw_c, raw_d) = chain
    assert root.get(f"{TOKENS}add/").status_code == 403
    assert root.post(f"{TOKENS}add/", {"user": a.user_id, "name": "no secret"}).status_code == 403
    assert APIToken.objects.count() == 4
    page = root.get(f"{TOKENS}{a.pk}/change/")
    assert page.status_code == 200 and not page.context["adminform"].form.fields  # shown, nothing to edit
    edited = root.post(f"{TOKENS}{a.pk}/change/", {"name": "ci", "revoked_at_0": "2020-01-01",
                                                   "revoked_at_1": "00:00:00", "parent": ""})
    assert edited.status_code == 403
    assert root.post(f"{TOKENS}{a.pk}/delete/", {"post": "yes"}).status_code == 403
    listing = root.get(TOKENS)
    assert [name for name, _ in listing.context["action_form"].fields["action"].choices if name] == ["revoke"]
    root.post(TOKENS, {"action": "delete_selected", "_selected_action": [str(a.pk)], "post": "yes"})
    a.refresh_from_db()
    b.refresh_from_db()
    assert APIToken.objects.count() == 4 and a.revoked_at is None and b.parent_id == a.pk
    assert all(bearer(raw).get("/api/v1/me").status_code == 200 for raw in (raw_a, raw_b, raw_c, raw_d))
    assert not revokes()


def test_only_platform_admins_get_the_revoke_action(chain):
    (a, *_), (raw_a, *_) = chain
    staff = UserFactory(username="helpdesk", is_staff=True)
    staff.user_permissions.add(*Permission.objects.filter(codename__endswith="_apitoken"))
    client = Client()
    client.force_login(staff)
    listing = client.get(TOKENS)
    assert listing.status_code == 200 and listing.context["action_form"] is None
    client.post(TOKENS, {"action": "revoke", "_selected_action": [str(a.pk)]})
    assert bearer(raw_a).get("/api/v1/me").status_code == 200 and not revokes()


def _team_form(team: Team, rows: list[dict], initial: int) -> dict:
    data = {"name": team.name, "title": team.title, "description": team.description,
            "memberships-TOTAL_FORMS": str(len(rows)), "memberships-INITIAL_FORMS": str(initial),
            "memberships-MIN_NUM_FORMS": "0", "memberships-MAX_NUM_FORMS": "1000"}
    for n, row in enumerate(rows):
        data.update({f"memberships-{n}-{key}": str(value) for key, value in row.items()})
        data[f"memberships-{n}-team"] = str(team.pk)
    return data


def _members(team: Team) -> dict[str, tuple[str, str]]:
    return {m.user.username: (m.role, m.source) for m in Membership.objects.filter(team=team).select_related("user")}


def _events(since: int) -> list[tuple[str, str, dict]]:
    return [(e.action, e.actor, json.loads(e.payload).get("after") or json.loads(e.payload).get("before"))
            for e in AuditEvent.objects.filter(seq__gt=since).order_by("seq")]


def test_membership_changes_in_the_team_admin_go_through_the_services(root):
    bob, cara, dan = (UserFactory(username=name) for name in ("bob", "cara", "dan"))
    team = services.team_create(name="fraud-ml")
    m_bob = services.membership_set(user=bob, team=team, role="viewer", source="oidc")
    m_cara = services.membership_set(user=cara, team=team, role="member")
    url = f"/admin/accounts/team/{team.pk}/change/"

    start = AuditEvent.objects.order_by("-seq").first().seq
    rows = [{"id": m_bob.pk, "user": bob.pk, "role": "admin"}, {"id": m_cara.pk, "user": cara.pk, "role": "member"},
            {"user": dan.pk, "role": "reviewer"}]
    assert root.post(url, _team_form(team, rows, initial=2)).status_code == 302
    # bob's role changed by hand (his single sign-on row becomes a manual one), dan added, cara untouched.
    assert _members(team) == {"bob": ("admin", "manual"), "cara": ("member", "manual"), "dan": ("reviewer", "manual")}
    assert _events(start) == [("team.member.set", "root", {"user": "bob", "role": "admin"}),
                              ("team.member.set", "root", {"user": "dan", "role": "reviewer"})]

    start = AuditEvent.objects.order_by("-seq").first().seq
    m_dan = Membership.objects.get(user=dan)
    # cara's row deleted; bob's and dan's rows swap users (each keeps the role typed in its row).
    rows = [{"id": m_bob.pk, "user": dan.pk, "role": "admin"}, {"id": m_cara.pk, "user": cara.pk, "role": "member",
                                                               "DELETE": "on"},
            {"id": m_dan.pk, "user": bob.pk, "role": "reviewer"}]
    response = root.post(url, _team_form(team, rows, initial=3))
    assert response.status_code == 302, response.context and response.context["errors"]
    assert _members(team) == {"dan": ("admin", "manual"), "bob": ("reviewer", "manual")}
    assert _events(start) == [  # the removals first, so that the swap keeps both
        ("team.member.remove", "root", {"user": "cara"}), ("team.member.remove", "root", {"user": "bob"}),
        ("team.member.remove", "root", {"user": "dan"}), ("team.member.set", "root", {"user": "dan", "role": "admin"}),
        ("team.member.set", "root", {"user": "bob", "role": "reviewer"})]
