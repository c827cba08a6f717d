"""Backstage's own example catalog, unmodified, ingests with the relations Backstage derives."""

import pytest

from catalog import services
from catalog.models import Entity, Relation

pytestmark = pytest.mark.django_db


def register(path):
    return services.location_register(target=str(path), actor=None, file_roots=None)


def test_all_yaml_ingests_every_valid_entity(backstage_examples):
    plan = register(backstage_examples / "all.yaml")
    kinds = {}
    for kind in Entity.objects.values_list("kind", flat=True):
        kinds[kind] = kinds.get(kind, 0) + 1
    # 39 documents: 7 Locations + 32 others. Three APIs reference $text files on github.com that this
    # machine cannot fetch: they are reported, not stored.
    remote = [e for e in plan.errors if "github" in str(e)]
    assert len(remote) == 3, [str(e) for e in plan.errors]
    assert len(plan.errors) == len(remote), [str(e) for e in plan.errors]
    assert kinds == {"Location": 7, "Component": 13, "API": 7, "Domain": 3, "System": 3, "Resource": 1,
                     "AiResource": 2}
    rels = set(Relation.objects.values_list("source_ref", "type", "target_ref"))
    assert ("component:default/artist-lookup", "partOf", "system:default/artist-engagement-portal") in rels
    assert ("system:default/artist-engagement-portal", "hasPart", "component:default/artist-lookup") in rels
    assert ("system:default/artist-engagement-portal", "partOf", "domain:default/artists") in rels
    assert any(t == "providesApi" for _, t, _ in rels) and any(t == "apiProvidedBy" for _, t, _ in rels)
    assert any(t == "dependsOn" for _, t, _ in rels) and any(t == "dependencyOf" for _, t, _ in rels)
    webhook = Entity.objects.get(ref="api:default/petstore-webhook")
    assert "openapi" in webhook.spec["definition"], "local $text resolved"


def test_acme_corp_ingests_groups_users_and_membership(backstage_examples):
    plan = register(backstage_examples / "acme-corp.yaml")
    assert not plan.errors, [str(e) for e in plan.errors]
    assert Entity.objects.filter(kind="Group").count() == 8
    assert Entity.objects.filter(kind="User").count() == 17
    rels = set(Relation.objects.values_list("source_ref", "type", "target_ref"))
    assert ("group:default/team-a", "childOf", "group:default/backstage") in rels
    assert ("group:default/backstage", "parentOf", "group:default/team-a") in rels
    assert ("user:development/guest", "memberOf", "group:default/team-a") in rels
    assert ("group:default/team-a", "hasMember", "user:development/guest") in rels


def test_intentionally_invalid_component_is_rejected_clearly(backstage_examples, tmp_path):
    plan = register(backstage_examples / "components" / "invalid-component.yaml")
    fields = {e.field for e in plan.errors}
    assert "metadata.name" in fields
    assert any(f.startswith("metadata.tags") for f in fields)
    assert not Entity.objects.exists()


def test_dangling_owner_is_kept_and_flagged(backstage_examples, client, django_user_model):
    register(backstage_examples / "all.yaml")
    order = Entity.objects.get(ref="component:default/playback-order")
    assert order.owner_ref == "group:default/guest" and order.owner_team is None
    client.force_login(django_user_model.objects.create(username="viewer"))
    html = client.get(order.get_absolute_url()).content.decode()
    assert "group:default/guest" in html and "not found" in html
