"""Relations never tell the reader that another team's private entity exists: in API bodies (by name,
lists, `fields=relations`), the relations endpoint and the pages, a private target a visible entity's own
descriptor names is shown as its descriptor names it, like a ref that names no entity (flagged missing),
and the rows a private entity's descriptor stated (`ownerOf`, `featuresConsumedBy`… on the other side)
are dropped. tests/catalog/test_relation_private_as_missing.py compares it with the entity deleted."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from catalog import services
from catalog.models import Entity
from portal.accounts.models import Role, Team
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db

ORG = """apiVersion: backstage.io/v1alpha1
kind: Group
metadata: {name: fraud-ml}
spec: {type: team, children: []}
---
apiVersion: backstage.io/v1alpha1
kind: Group
metadata: {name: risk}
spec: {type: team, children: []}
"""
ASSETS = """apiVersion: plinth.dev/v1alpha1
kind: FeatureSet
metadata: {name: card-features}
spec: {type: batch, lifecycle: production, owner: fraud-ml}
---
apiVersion: plinth.dev/v1alpha1
kind: Dataset
metadata:
  name: secret-ledger
  annotations: {plinth.dev/visibility: private}
spec: {type: table, lifecycle: production, owner: fraud-ml}
---
apiVersion: plinth.dev/v1alpha1
kind: Model
metadata:
  name: hidden-model
  annotations: {plinth.dev/visibility: private}
spec:
  type: classifier
  lifecycle: production
  owner: fraud-ml
  consumesFeatures: [featureset:card-features]
  trainedOn: [dataset:secret-ledger]
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: public-api}
spec: {type: service, lifecycle: production, owner: fraud-ml, dependsOn: ["model:hidden-model", "component:not-registered"]}
"""
PRIVATE = {"model:default/hidden-model", "dataset:default/secret-ledger"}
# What public-api's own descriptor names: both stay, the private one exactly as the unregistered one.
DECLARED = {"model:default/hidden-model", "component:default/not-registered"}


@pytest.fixture
def catalog(write_tree):
    root = write_tree({"org/catalog-info.yaml": ORG, "assets/catalog-info.yaml": ASSETS})
    plan = services.location_register(target=str(root), actor=None, file_roots=None)
    assert not plan.errors, plan.errors
    outsider = MembershipFactory(team=Team.objects.get(name="risk"), role=Role.MEMBER).user
    insider = MembershipFactory(team=Team.objects.get(name="fraud-ml"), role=Role.VIEWER).user
    assert Entity.objects.filter(ref__in=PRIVATE).count() == 2
    return outsider, insider


def _api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _targets(body: dict) -> set[str]:
    return {r["targetRef"] for r in body.get("relations", [])}


@pytest.mark.parametrize("path", ["group/default/fraud-ml", "featureset/default/card-features",
                                  "component/default/public-api"])
def test_by_name_relations_hide_private_targets(catalog, path):
    outsider, insider = catalog
    hidden = _targets(_api(outsider).get(f"/api/v1/entities/by-name/{path}").json())
    shown = _targets(_api(insider).get(f"/api/v1/entities/by-name/{path}").json())
    assert shown & PRIVATE  # the same relation exists: the team sees it
    if path.startswith("component"):
        # Its own descriptor's refs stay, the private one like the dangling one (was: dropped).
        assert hidden == shown and hidden >= DECLARED
    else:  # stated by the private model's descriptor (ownerOf, featuresConsumedBy): dropped
        assert not hidden & PRIVATE


@pytest.mark.parametrize("query", ["", "?fields=relations", "?fields=metadata.name,relations",
                                   "?filter=kind=group&fields=relations"])
def test_entity_list_relations_hide_private_targets(catalog, query):
    outsider, insider = catalog
    items = _api(outsider).get(f"/api/v1/entities{query}").json()["items"]
    named = [(r["type"], r["targetRef"]) for i in items for r in i.get("relations", []) if r["targetRef"] in PRIVATE]
    # public-api's own dependsOn (when public-api is listed), nothing else
    assert items and named == ([] if "kind=group" in query else [("dependsOn", "model:default/hidden-model")])
    items = _api(insider).get(f"/api/v1/entities{query}").json()["items"]
    assert set().union(*(_targets(i) for i in items)) >= PRIVATE


def test_private_entity_answers_like_a_missing_one(catalog):
    outsider, _ = catalog
    client = _api(outsider)
    private = client.get("/api/v1/entities/by-name/model/default/hidden-model")
    Entity.objects.filter(ref="model:default/hidden-model").delete()
    missing = client.get("/api/v1/entities/by-name/model/default/hidden-model")
    assert private.status_code == missing.status_code == 404
    assert private.content == missing.content


def test_relations_endpoint_and_pages_agree(catalog, client):
    outsider, _ = catalog
    graph = _api(outsider).get("/api/v1/entities/by-name/group/default/fraud-ml/relations?depth=2").json()
    # Reached through public-api's dependsOn (was: dropped), as a node that names no entity.
    private = [n for n in graph["nodes"] if n["ref"] in PRIVATE]
    assert private == [{"ref": "model:default/hidden-model", "level": 2, "exists": False, "kind": "model",
                        "name": "hidden-model", "url": None}]
    client.force_login(outsider)
    for url in ("/catalog/group/default/fraud-ml/", "/catalog/group/default/fraud-ml/relations/",
                "/catalog/featureset/default/card-features/"):
        html = client.get(url).content.decode()
        assert "hidden-model" not in html and "secret-ledger" not in html, url
    for url in ("/catalog/component/default/public-api/", "/catalog/component/default/public-api/relations/"):
        html = client.get(url).content.decode()
        assert "model:default/hidden-model" in html and "secret-ledger" not in html, url
        assert "/catalog/model/default/hidden-model/" not in html, url  # named, never linked
