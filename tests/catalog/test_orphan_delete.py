"""Deleting an orphan: an entity gone from its location and kept, flagged, by the default `keep` strategy
(Backstage's "delete entity" on an orphan). The entity page says it is an orphan and offers the deletion
to those who may; a confirmation page lists who still names it; the page and the API delete it, audited,
and search, facets and the graph follow. A private orphan of another team is a 404; a non-orphan a 409;
nothing changes on a refusal."""

from __future__ import annotations

import pytest
from django.test import Client

from catalog import services
from catalog.models import Entity, Location
from portal.accounts import services as account_services
from portal.core.models_audit import AuditEvent
from portal.search import selectors as search

pytestmark = pytest.mark.django_db

MODEL = ("apiVersion: plinth.dev/v1alpha1\nkind: Model\nmetadata: {{name: {name}, title: Okapi scorer}}\n"
         "spec: {{type: classifier, lifecycle: production, owner: {owner}}}\n")
SERVICE = ("apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {{name: {name}}}\n"
           "spec: {{type: service, lifecycle: production, owner: {owner}, dependsOn: [model:{model}]}}\n")
PRIVATE = "apiVersion: plinth.dev/v1alpha1\nkind: Model\nmetadata: {name: tapir-secret, annotations: {plinth.dev/visibility: private}}\nspec: {type: classifier, lifecycle: production, owner: fraud-ml}\n"


@pytest.fixture
def orphans(tmp_path, settings, django_capture_on_commit_callbacks):
    """okapi-scorer (fraud-ml) and tapir-secret (private, fraud-ml) orphaned; okapi-api names the scorer."""
    settings.PLINTH_CATALOG_ORPHAN_STRATEGY = "keep"
    path = tmp_path / "catalog-info.yaml"
    service = SERVICE.format(name="okapi-api", owner="fraud-ml", model="okapi-scorer")
    path.write_text("---\n".join([MODEL.format(name="okapi-scorer", owner="fraud-ml"), service, PRIVATE,
                                  MODEL.format(name="still-here", owner="fraud-ml")]))
    with django_capture_on_commit_callbacks(execute=True):
        assert not services.location_register(target=str(path), actor=None, file_roots=None).errors
    path.write_text("---\n".join([service, MODEL.format(name="still-here", owner="fraud-ml")]))
    with django_capture_on_commit_callbacks(execute=True):
        services.location_refresh(location=Location.objects.get(target=str(path)))
    assert Entity.objects.get(ref="model:default/okapi-scorer").orphan
    return path


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


URL = "/catalog/model/default/{}/delete-orphan/"


def test_the_entity_page_offers_the_deletion_to_those_who_may(demo_org, orphans):
    users = demo_org["users"]
    page = _client(users["alice"]).get("/catalog/model/default/okapi-scorer/")
    assert "receives no updates" in page.content.decode() and URL.format("okapi-scorer") in page.content.decode()
    for name in ("bob", "carol"):  # a member of the team, another team's maintainer
        body = _client(users[name]).get("/catalog/model/default/okapi-scorer/").content.decode()
        assert "receives no updates" in body and "delete-orphan" not in body
    assert "receives no updates" not in _client(users["alice"]).get("/catalog/model/default/still-here/").content.decode()


def test_confirm_then_delete_audited_and_everything_follows(demo_org, orphans, django_capture_on_commit_callbacks):
    alice = demo_org["users"]["alice"]
    client = _client(alice)
    confirm = client.get(URL.format("okapi-scorer"))
    assert confirm.status_code == 200
    assert "okapi-api" in confirm.content.decode(), "the page lists who still names it"
    assert "model:default/okapi-scorer" in [h.key for h in search.search(alice, "okapi").hits]
    models_before = _model_count(client)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(URL.format("okapi-scorer"))
    assert response.status_code == 302 and response["Location"] == "/catalog/"
    assert not Entity.objects.filter(ref="model:default/okapi-scorer").exists()
    event = AuditEvent.objects.get(action="catalog.entity.delete_orphan")
    assert (event.actor, event.target) == ("alice", "model:default/okapi-scorer")
    assert "model:default/okapi-scorer" not in [h.key for h in search.search(alice, "okapi").hits]
    assert Entity.objects.filter(ref="component:default/okapi-api").exists(), "its referrer stays"
    assert _model_count(client) == models_before - 1, "the facet counts follow"
    assert client.get(URL.format("okapi-scorer")).status_code == 404


def _model_count(client) -> int:
    facets = client.get("/api/v1/entity-facets?facet=kind").json()["facets"]["kind"]
    return next(f["count"] for f in facets if f["value"].lower() == "model")


def test_refusals_change_nothing(demo_org, orphans):
    users = demo_org["users"]
    assert _client(users["bob"]).post(URL.format("okapi-scorer")).status_code == 403  # member: no delete right
    assert _client(users["carol"]).post(URL.format("okapi-scorer")).status_code == 403  # another team
    # Another team's private orphan is exactly a missing one.
    missing = _client(users["carol"]).post(URL.format("no-such-model"))
    hidden = _client(users["carol"]).post(URL.format("tapir-secret"))
    assert hidden.status_code == missing.status_code == 404
    # A non-orphan: 409 on the page and the form, nothing deleted.
    alice = _client(users["alice"])
    page = alice.get(URL.format("still-here"))
    assert page.status_code == 409 and "is not an orphan" in page.content.decode()
    assert alice.post(URL.format("still-here")).status_code == 409
    assert Entity.objects.filter(ref__in=["model:default/okapi-scorer", "model:default/tapir-secret",
                                          "model:default/still-here"]).count() == 3
    assert not AuditEvent.objects.filter(action="catalog.entity.delete_orphan").exists()


def test_the_api_deletes_an_orphan_and_refuses_the_rest(demo_org, orphans):
    users = demo_org["users"]

    def delete(user, name):
        _, raw = account_services.token_create(user=users[user], name="tests")
        return Client(HTTP_AUTHORIZATION=f"Bearer {raw}").delete(f"/api/v1/entities/by-name/model/default/{name}")

    conflict = delete("alice", "still-here")
    assert conflict.status_code == 409
    assert conflict.json()["error"]["orphan"] is False and "not an orphan" in conflict.json()["error"]["message"]
    assert delete("bob", "okapi-scorer").status_code == 403
    assert delete("carol", "tapir-secret").status_code == delete("carol", "no-such-model").status_code == 404
    assert Entity.objects.filter(ref="model:default/okapi-scorer").exists()
    assert delete("grace", "tapir-secret").status_code == 204  # platform admin
    assert delete("alice", "okapi-scorer").status_code == 204
    assert delete("alice", "okapi-scorer").status_code == 404
    assert not Entity.objects.filter(ref__in=["model:default/okapi-scorer", "model:default/tapir-secret"]).exists()


def test_the_confirmation_counts_referrers_it_may_not_name_in_a_fixed_number_of_queries(
        demo_org, orphans, tmp_path, django_assert_max_num_queries, django_capture_on_commit_callbacks):
    """Another team's private entity naming the orphan is counted, never named; the page's queries do not
    grow with the number of referrers."""
    def name_it(name: str, visibility: str) -> None:
        path = tmp_path / f"{name}.yaml"
        path.write_text(SERVICE.format(name=name, owner="recsys", model="okapi-scorer").replace(
            "metadata: {name: " + name + "}",
            "metadata: {name: " + name + ", annotations: {plinth.dev/visibility: " + visibility + "}}"))
        with django_capture_on_commit_callbacks(execute=True):
            assert not services.location_register(target=str(path), actor=None, file_roots=None).errors

    name_it("lynx-private", "private")
    client = _client(demo_org["users"]["alice"])
    client.get(URL.format("okapi-scorer"))  # warm the per-user caches the first request fills
    with django_assert_max_num_queries(40) as first:
        body = client.get(URL.format("okapi-scorer")).content.decode()
    assert "(1 + 1 you may not see)" in body and "okapi-api" in body and "lynx-private" not in body
    for i in range(3):
        name_it(f"lynx-{i}", "internal")
    with django_assert_max_num_queries(len(first.captured_queries)):
        body = client.get(URL.format("okapi-scorer")).content.decode()
    assert "(4 + 1 you may not see)" in body and "lynx-2" in body and "lynx-private" not in body
