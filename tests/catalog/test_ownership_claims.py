"""Ownership claims: a registration stores only what its registrant may claim, through every door
(service, page, API, scaffolder), and refreshes keep to the registrant's claims."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from rest_framework.test import APIClient

from catalog import services
from catalog.models import Entity, Location
from portal.accounts.models import Role, Team
from portal.core.models import AuditEvent
from tests.factories import MembershipFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db

COMPONENT = """apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {{name: {name}}}
spec: {{type: service, lifecycle: production, owner: {owner}}}
"""
GROUP = """apiVersion: backstage.io/v1alpha1
kind: Group
metadata: {name: new-team}
spec: {type: team, children: []}
"""


@pytest.fixture
def org():
    fraud, risk = TeamFactory(name="fraud-ml"), TeamFactory(name="risk")
    alice = MembershipFactory(team=fraud, role=Role.MEMBER, user__username="alice").user
    vic = MembershipFactory(team=fraud, role=Role.VIEWER, user__username="vic").user
    rita = MembershipFactory(team=risk, role=Role.MAINTAINER, user__username="rita").user
    admin = UserFactory(username="grace", is_superuser=True)
    return {"fraud": fraud, "risk": risk, "alice": alice, "vic": vic, "rita": rita, "admin": admin}


def _tree(write_tree, **files):
    return write_tree({f"{name}/catalog-info.yaml": text for name, text in files.items()})


def test_member_registers_entities_of_own_team(org, write_tree):
    root = _tree(write_tree, svc=COMPONENT.format(name="scorer", owner="fraud-ml"))
    plan = services.location_register(target=str(root), actor=org["alice"], file_roots=None)
    assert [c.ref for c in plan.added] == ["component:default/scorer"]
    assert Entity.objects.get(ref="component:default/scorer").owner_team == org["fraud"]
    assert not Location.objects.get().org_wide


def test_new_location_claiming_another_team_stores_nothing(org, write_tree):
    """One refused descriptor refuses the whole new location: nothing stored, every refusal named."""
    root = _tree(write_tree, ok=COMPONENT.format(name="mine", owner="fraud-ml"),
                 bad=COMPONENT.format(name="theirs", owner="risk"))
    events = AuditEvent.objects.count()
    with pytest.raises(services.OwnershipRefused) as refused:
        services.location_register(target=str(root), actor=org["alice"], file_roots=None)
    [error] = refused.value.errors
    assert error.field == "spec.owner" and "group:default/risk" in error.message and error.source.endswith("bad/catalog-info.yaml")
    assert not Entity.objects.exists() and not Location.objects.exists()
    assert AuditEvent.objects.count() == events


def test_dry_run_lists_refusals_without_storing(org, write_tree):
    root = _tree(write_tree, bad=COMPONENT.format(name="theirs", owner="risk"))
    plan = services.location_register(target=str(root), actor=org["alice"], file_roots=None, dry_run=True)
    assert [e.field for e in plan.refused] == ["spec.owner"] and not plan.added
    assert not Location.objects.exists()


@pytest.mark.parametrize("owner,allowed", [
    ("user:default/alice", True),       # the registrant themselves
    ("user:default/bob", False),        # someone else
    ("group:default/ghosts", False),    # not a portal team: an admin creates it first
])
def test_owners_that_are_not_teams(org, write_tree, owner, allowed):
    root = _tree(write_tree, svc=COMPONENT.format(name="svc", owner=owner))
    if allowed:
        services.location_register(target=str(root), actor=org["alice"], file_roots=None)
        assert Entity.objects.filter(ref="component:default/svc").exists()
    else:
        with pytest.raises(services.OwnershipRefused, match=owner.split(":")[1].split("/")[1]):
            services.location_register(target=str(root), actor=org["alice"], file_roots=None)


def test_viewer_may_not_register_at_all(org, write_tree):
    root = _tree(write_tree, svc=COMPONENT.format(name="svc", owner="fraud-ml"))
    with pytest.raises(PermissionDenied, match="member role"):
        services.location_register(target=str(root), actor=org["vic"], file_roots=None)


def test_group_descriptors_create_teams_only_for_admins(org, write_tree):
    root = _tree(write_tree, group=GROUP)
    with pytest.raises(services.OwnershipRefused, match="only platform admins"):
        services.location_register(target=str(root), actor=org["alice"], file_roots=None)
    assert not Team.objects.filter(name="new-team").exists()
    services.location_register(target=str(root), actor=org["admin"], file_roots=None)
    assert Team.objects.filter(name="new-team").exists()
    assert Location.objects.get().org_wide


def test_system_registrations_are_org_wide(org, write_tree):
    root = _tree(write_tree, group=GROUP, svc=COMPONENT.format(name="svc", owner="risk"))
    services.location_register(target=str(root), actor=None, file_roots=None)
    assert Location.objects.get().org_wide and Team.objects.filter(name="new-team").exists()


def test_refresh_keeps_to_the_registrants_claims(org, write_tree):
    """A descriptor edited to claim another team is refused on refresh; the stored version stays."""
    root = _tree(write_tree, svc=COMPONENT.format(name="svc", owner="fraud-ml"))
    services.location_register(target=str(root), actor=org["alice"], file_roots=None)
    (root / "svc" / "catalog-info.yaml").write_text(COMPONENT.format(name="svc", owner="risk"))
    plan = services.location_refresh(location=Location.objects.get())  # the scheduled refresh: no actor
    assert [e.field for e in plan.refused] == ["spec.owner"] and not plan.changed and not plan.removed
    entity = Entity.objects.get(ref="component:default/svc")
    assert entity.owner_team == org["fraud"] and entity.owner_ref == "group:default/fraud-ml"
    assert Location.objects.get().status == "error"


def test_refresh_after_leaving_the_team(org, write_tree):
    root = _tree(write_tree, svc=COMPONENT.format(name="svc", owner="fraud-ml"))
    services.location_register(target=str(root), actor=org["alice"], file_roots=None)
    org["alice"].memberships.all().delete()
    (root / "svc" / "catalog-info.yaml").write_text(COMPONENT.format(name="svc", owner="fraud-ml").replace("production", "deprecated"))
    plan = services.location_refresh(location=Location.objects.get())
    assert plan.refused and Entity.objects.get(ref="component:default/svc").lifecycle == "production"


def test_admin_locations_org_wide_setting(org, write_tree, settings):
    settings.PLINTH_CATALOG_ADMIN_LOCATIONS_ORG_WIDE = False
    root = _tree(write_tree, svc=COMPONENT.format(name="svc", owner="risk"))
    services.location_register(target=str(root), actor=org["admin"], file_roots=None)
    assert not Location.objects.get().org_wide  # refreshed with the admin's (unlimited) claims while admin


def test_mlflow_only_entity_of_another_team_is_not_adopted(org, write_tree):
    Entity.objects.create(kind="Model", kind_key="model", namespace="default", name="m", name_key="m",
                          ref="model:default/m", api_version="plinth.dev/v1alpha1", owner_team=org["risk"],
                          owner_ref="group:default/risk", data={}, content_hash="x")
    text = COMPONENT.format(name="m", owner="fraud-ml").replace("Component", "Model").replace(
        "backstage.io/v1alpha1", "plinth.dev/v1alpha1").replace("type: service", "type: classifier")
    root = _tree(write_tree, m=text)
    with pytest.raises(services.OwnershipRefused, match="exists already"):
        services.location_register(target=str(root), actor=org["alice"], file_roots=None)
    assert Entity.objects.get(ref="model:default/m").owner_team == org["risk"]


def test_refresh_and_unregister_rights(org, write_tree):
    root = _tree(write_tree, svc=COMPONENT.format(name="svc", owner="risk"))
    services.location_register(target=str(root), actor=org["rita"], file_roots=None)
    location = Location.objects.get()
    with pytest.raises(PermissionDenied):
        services.location_refresh(location=location, actor=org["alice"])
    with pytest.raises(PermissionDenied):
        services.location_unregister(location=location, actor=org["alice"])
    other_risk_member = MembershipFactory(team=org["risk"], role=Role.MEMBER).user
    services.location_refresh(location=location, actor=other_risk_member)  # edits the team's entities
    with pytest.raises(PermissionDenied):
        services.location_unregister(location=location, actor=other_risk_member)  # deleting needs maintainer
    risk_maintainer = MembershipFactory(team=org["risk"], role=Role.MAINTAINER).user
    services.location_unregister(location=location, actor=risk_maintainer)
    assert not Location.objects.exists()


def test_api_refuses_with_403_and_the_list(org, write_tree):
    root = _tree(write_tree, bad=COMPONENT.format(name="theirs", owner="risk"))
    client = APIClient()
    client.force_authenticate(org["alice"])
    response = client.post("/api/v1/locations", {"target": str(root)}, format="json")
    assert response.status_code == 403
    body = response.json()["error"]
    assert body["status"] == 403 and "may not claim" in body["message"]
    assert body["details"]["refused"][0]["field"] == "spec.owner"
    assert not Location.objects.exists()


def test_register_page_explains_and_disables(org, write_tree, client):
    root = _tree(write_tree, bad=COMPONENT.format(name="theirs", owner="risk"))
    client.force_login(org["alice"])
    page = client.post("/catalog/register/", {"target": str(root)})
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-testid="refused-note"' in html and "group:default/risk" in html
    forced = client.post("/catalog/register/", {"target": str(root), "confirm": "1"})
    assert forced.status_code == 403 and not Location.objects.exists()
