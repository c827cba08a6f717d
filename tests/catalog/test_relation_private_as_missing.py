"""Another team's private entity reads exactly as a missing one in every relation list: what an outsider
sees with it private (API bodies by name, the list, the export stream, the relations endpoint at every
depth, the page's relations list and graph, and how many statements each took) is what they see once it
is deleted. A visible entity's own descriptor naming it keeps the row, flagged missing; the rows its own
descriptor stated (`dependencyOf`, `ownerOf`, `featuresConsumedBy` on the other side) are dropped, as
deleting it drops them."""

from __future__ import annotations

import json
import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from catalog import services
from catalog.models import Entity
from portal.accounts.models import Role, Team
from tests.catalog.test_relation_visibility import ASSETS, ORG
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db

HIDDEN = "model:default/hidden-model"
# A public model the private one depends on: walking the graph through the private one (shown as missing)
# must not reach it by the private descriptor's own rows.
EXTRA = """---
apiVersion: plinth.dev/v1alpha1
kind: Model
metadata:
  name: hidden-model-2
  annotations: {plinth.dev/visibility: private}
spec: {type: classifier, lifecycle: production, owner: fraud-ml, dependsOn: ["model:hidden-model"]}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: downstream}
spec: {type: service, lifecycle: production, owner: fraud-ml, dependsOn: ["component:public-api"]}
"""
ROOTS = ["component/default/public-api", "group/default/fraud-ml", "featureset/default/card-features",
         "component/default/downstream"]
SECTION = re.compile(r"<h2>Relations</h2>.*?</section>|<svg class=\"graph\".*?</svg>", re.S)


@pytest.fixture
def people(write_tree):
    root = write_tree({"org/catalog-info.yaml": ORG, "assets/catalog-info.yaml": ASSETS + EXTRA})
    plan = services.location_register(target=str(root), actor=None, file_roots=None)
    assert not plan.errors, plan.errors
    outsider = MembershipFactory(team=Team.objects.get(name="risk"), role=Role.MEMBER).user
    insider = MembershipFactory(team=Team.objects.get(name="fraud-ml"), role=Role.VIEWER).user
    return outsider, insider


def _counted(get, url: str):
    with CaptureQueriesContext(connection) as ctx:
        response = get(url)
    assert response.status_code == 200, (url, response.status_code)
    return response, len(ctx.captured_queries)


def snapshot(user) -> dict:
    """Everything relation-shaped the user is shown, with the statements each relation read took."""
    user = type(user).objects.get(pk=user.pk)  # its memberships read afresh, as by a new request
    api = APIClient()
    api.force_authenticate(user)
    page = Client()
    page.force_login(user)
    seen: dict = {}
    for root in ROOTS:
        body, queries = _counted(api.get, f"/api/v1/entities/by-name/{root}")
        seen[f"by-name {root}"] = (body.json()["relations"], queries)
        for depth in (1, 2, 3, 4):
            graph, queries = _counted(api.get, f"/api/v1/entities/by-name/{root}/relations?depth={depth}")
            seen[f"graph {root} {depth}"] = (graph.json(), queries)
        for suffix in ("", "relations/?depth=3"):
            html = page.get(f"/catalog/{root}/{suffix}").content.decode()
            seen[f"page {root} {suffix}"] = SECTION.findall(html)
    items = api.get("/api/v1/entities?limit=500&fields=metadata.name,relations").json()["items"]
    seen["list"] = sorted(json.dumps(i, sort_keys=True) for i in items)
    stream = b"".join(api.get("/api/v1/entities/export").streaming_content).decode().splitlines()
    seen["export"] = sorted(json.dumps(json.loads(line).get("relations"), sort_keys=True) for line in stream)
    return seen


def test_an_outsider_sees_a_private_target_exactly_as_a_deleted_one(people):
    outsider, insider = people
    private = snapshot(outsider)
    # Not vacuous: the outsider is shown the ref (public-api's own dependsOn), never linked nor titled.
    public_api = private["by-name component/default/public-api"][0]
    assert {"type": "dependsOn", "targetRef": HIDDEN} in public_api
    nodes = {n["ref"]: n for n in private["graph component/default/public-api 2"][0]["nodes"]}
    assert nodes[HIDDEN] == {"ref": HIDDEN, "level": 1, "exists": False, "kind": "model", "name": "hidden-model",
                             "url": None}
    assert "model:default/hidden-model-2" not in json.dumps(private)  # stated only by private descriptors
    assert "secret-ledger" not in json.dumps(private)
    assert '<code>model:default/hidden-model</code> <span class="badge badge-warn"' in \
        "".join(private["page component/default/public-api "])
    # The team sees the entity itself (a link, its own relations): the rule is about who may see it.
    shown = snapshot(insider)
    assert shown != private
    assert {n["ref"]: n for n in shown["graph component/default/public-api 2"][0]["nodes"]}[HIDDEN]["exists"]

    Entity.objects.filter(ref=HIDDEN).delete()  # takes the rows its descriptor stated with it
    missing = snapshot(outsider)
    assert private.keys() == missing.keys()
    for key in private:
        assert private[key] == missing[key], key
