"""The demo organisation's people: teams and users with realistic roles and the demo password.

Loaded by `manage.py demo load` (make run), the benchmarks and the tests; the demo catalog is
`catalog/demo/`."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction

from .models import Membership, Role, Team

DEMO_PASSWORD = "plinth-demo"  # noqa: S105 (dev-only demo password, printed by `demo credentials` when DEBUG is on)

TEAMS = {
    "fraud-ml": "Fraud ML",
    "recsys": "Recommender Systems",
    "risk-governance": "Model Risk & Governance",
    "platform": "ML Platform",
}
# username: (full name, [(team, role)], platform admin?, what they do)
USERS = {
    "alice": ("Alice Moreau", [("fraud-ml", Role.MAINTAINER)], False, "data scientist, fraud-ml maintainer"),
    "bob": ("Bob Okafor", [("fraud-ml", Role.MEMBER)], False, "ML engineer in fraud-ml"),
    "heidi": ("Heidi Schulz", [("fraud-ml", Role.VIEWER)], False, "analyst, read-only in fraud-ml"),
    "carol": ("Carol Lindqvist", [("recsys", Role.MAINTAINER)], False, "recsys tech lead"),
    "dan": ("Dan Nakamura", [("recsys", Role.MEMBER)], False, "data scientist in recsys"),
    "erin": ("Erin Walsh", [("risk-governance", Role.REVIEWER)], False, "model risk reviewer"),
    "frank": ("Frank Adeyemi", [("risk-governance", Role.ADMIN), ("fraud-ml", Role.REVIEWER)], False,
              "head of model risk"),
    "grace": ("Grace Hopper-Li", [("platform", Role.ADMIN)], True, "platform admin"),
}


@transaction.atomic
def load_org(password: str = DEMO_PASSWORD) -> dict[str, object]:
    User = get_user_model()
    teams = {}
    for name, title in TEAMS.items():
        teams[name], _ = Team.objects.update_or_create(name=name, defaults={"title": title})
    users = {}
    for username, (full_name, memberships, admin, _) in USERS.items():
        first, _, last = full_name.partition(" ")
        user, created = User.objects.get_or_create(username=username, defaults={
            "first_name": first, "last_name": last, "email": f"{username}@example.com"})
        if created or not user.has_usable_password():
            user.set_password(password)
        user.is_superuser = user.is_staff = admin
        user.save()
        for team, role in memberships:
            Membership.objects.update_or_create(user=user, team=teams[team], defaults={"role": role})
        users[username] = user
    return {"teams": teams, "users": users}
