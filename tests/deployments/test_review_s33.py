"""Deployments follow their model after the fact: a model made private (or given to another team) takes
its Deployment entities, rows and drift with it; long model names sharing a prefix keep their
deployments apart; a lone surrogate in a report is a 400 naming the field, not a 500."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from catalog import services as catalog_services
from catalog.models import Entity, Location, ModelVersion
from portal.deployments import receivers, selectors, services
from portal.deployments.models import Deployment, Drift
from tests.factories import write_files

from .conftest import event
from .test_api import URL, counts, post

pytestmark = pytest.mark.django_db

STEALTH = ("apiVersion: plinth.dev/v1alpha1\nkind: Model\nmetadata:\n  name: stealth-model\n  title: Stealth model\n"
           "{annotations}spec:\n  owner: {owner}\n")
PRIVATE = "  annotations:\n    plinth.dev/visibility: private\n"


def browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def stealth(demo_org, tmp_path, django_capture_on_commit_callbacks):
    """An internal fraud-ml model, registered from a file, reported live in prod (so it drifts) and in dev;
    `rewrite(...)` changes its descriptor and refreshes the location (signals run as on commit)."""
    path = tmp_path / "catalog-info.yaml"

    def rewrite(*, annotations: str = "", owner: str = "fraud-ml") -> Entity:
        write_files(tmp_path, {"catalog-info.yaml": STEALTH.format(annotations=annotations, owner=owner)})
        with django_capture_on_commit_callbacks(execute=True):
            location = Location.objects.filter(target=str(path)).first()
            if location is None:
                catalog_services.location_register(target=str(path), actor=None, file_roots=None)
            else:
                catalog_services.location_refresh(location=location)
        return Entity.objects.get(ref="model:default/stealth-model")

    model = rewrite()
    ModelVersion.objects.create(entity=model, version="1", version_number=1)
    with django_capture_on_commit_callbacks(execute=True):
        for env in ("prod", "dev"):
            services.deployment_report(actor=demo_org["users"]["bob"], body=event(
                model=model.ref, version="1", environment=env,
                endpoint="https://stealth.internal.example.com/predict"))
    assert Drift.objects.filter(model=model).count() == 1
    return rewrite


def visibilities(model: Entity) -> set[tuple[str, str, str | None]]:
    rows = {("entity", e.visibility, e.owner_team.name if e.owner_team else None)
            for e in Entity.objects.filter(kind_key="deployment", data__spec__model=model.ref).select_related("owner_team")}
    rows |= {("row", d.visibility, d.owner_team.name if d.owner_team else None)
             for d in Deployment.objects.filter(model=model).select_related("owner_team")}
    rows |= {("drift", d.visibility, d.owner_team.name if d.owner_team else None)
             for d in Drift.objects.filter(model=model).select_related("owner_team")}
    return rows


def test_a_model_made_private_takes_its_deployments_and_drift_along_and_back(stealth, demo_org):
    """carol (recsys) saw the internal model's deployments; once the model is private, its Deployment
    entities, rows and drift are too: 404 like the model, gone from her search. Made internal again,
    they come back."""
    carol, bob = browser(demo_org["users"]["carol"]), browser(demo_org["users"]["bob"])
    page = "/catalog/deployment/default/stealth-model-v1-prod/"
    assert carol.get(page).status_code == 200
    assert selectors.drift_list(demo_org["users"]["carol"]).filter(model__name="stealth-model").exists()

    model = stealth(annotations=PRIVATE)
    assert model.visibility == "private"
    assert visibilities(model) == {("entity", "private", "fraud-ml"), ("row", "private", "fraud-ml"),
                                   ("drift", "private", "fraud-ml")}
    assert carol.get(model.get_absolute_url()).status_code == 404
    assert carol.get(page).status_code == 404
    assert "stealth" not in json.dumps(carol.get("/api/v1/search", {"q": "stealth"}).json()["items"])
    assert not selectors.drift_list(demo_org["users"]["carol"]).filter(model=model).exists()
    assert bob.get(page).status_code == 200, "the owning team still sees it"
    assert "stealth-model-v1-prod" in json.dumps(bob.get("/api/v1/search", {"q": "stealth"}).json()["items"])

    model = stealth()
    assert visibilities(model) == {("entity", "internal", "fraud-ml"), ("row", "internal", "fraud-ml"),
                                   ("drift", "internal", "fraud-ml")}
    assert carol.get(page).status_code == 200
    assert "stealth-model-v1-prod" in json.dumps(carol.get("/api/v1/search", {"q": "stealth"}).json()["items"])


def test_a_model_given_to_another_team_takes_its_deployments_along(stealth, demo_org):
    model = stealth(annotations=PRIVATE, owner="recsys")
    assert visibilities(model) == {("entity", "private", "recsys"), ("row", "private", "recsys"),
                                   ("drift", "private", "recsys")}
    assert browser(demo_org["users"]["bob"]).get("/catalog/deployment/default/stealth-model-v1-prod/").status_code == 404
    assert browser(demo_org["users"]["carol"]).get("/catalog/deployment/default/stealth-model-v1-prod/").status_code == 200


def test_following_the_model_reads_once_whatever_the_number_of_deployments(detector, demo_org):
    """A changed model whose deployments already match it costs one query, however many it has."""
    def cost() -> int:
        with CaptureQueriesContext(connection) as queries:
            receivers.on_entities_changed(sender=Entity, changed=[detector.ref, "component:default/x"], removed=[])
        return len(queries)

    bob = demo_org["users"]["bob"]
    services.deployment_report(actor=bob, body=event(environment="dev"))
    one = cost()
    for version in ("1", "2"):
        for env in ("staging", "prod"):
            services.deployment_report(actor=bob, body=event(version=version, environment=env))
    assert Deployment.objects.filter(model=detector).count() == 5
    assert cost() == one == 1


# -- names ------------------------------------------------------------------------------------------

LONG = "m" * 55


@pytest.fixture
def long_models(demo_org, tmp_path, django_capture_on_commit_callbacks):
    """Two models whose names share their first 55 characters: fraud-ml's private alpha, recsys's bravo."""
    write_files(tmp_path, {"catalog-info.yaml": (
        f"apiVersion: plinth.dev/v1alpha1\nkind: Model\nmetadata:\n  name: {LONG}-alpha\n{PRIVATE}spec:\n"
        f"  owner: fraud-ml\n---\napiVersion: plinth.dev/v1alpha1\nkind: Model\nmetadata:\n  name: {LONG}-bravo\n"
        f"spec:\n  owner: recsys\n")})
    with django_capture_on_commit_callbacks(execute=True):
        catalog_services.location_register(target=str(tmp_path / "catalog-info.yaml"), actor=None, file_roots=None)
    models = {n: Entity.objects.get(ref=f"model:default/{LONG}-{n}") for n in ("alpha", "bravo")}
    for model in models.values():
        ModelVersion.objects.create(entity=model, version="1", version_number=1, aliases=["production"])
    return models


def check_apart(models) -> None:
    deps = {d.model.name[-5:]: d for d in Deployment.objects.select_related("model", "entity")}
    assert set(deps) == {"alpha", "bravo"}
    for n, dep in deps.items():
        assert dep.entity.spec["model"] == models[n].ref
        assert dep.entity.visibility == ("private" if n == "alpha" else "internal")
        assert len(dep.entity.name) <= 63 and dep.entity.name.endswith("-v1-prod")
    assert deps["alpha"].entity.ref != deps["bravo"].entity.ref
    assert deps["alpha"].entity.name == services.deployment_entity_name(models["alpha"], "1", "prod")


def test_long_model_names_sharing_a_prefix_keep_their_deployments_apart(long_models, api_as):
    for user, n in (("bob", "alpha"), ("dan", "bravo")):
        response = post(api_as(user), event(model=long_models[n].ref, version="1"))
        assert response.status_code == 201, response.content
    check_apart(long_models)
    assert services.deployment_entity_name(Entity(name="fraud-detector", ref="model:default/fraud-detector"),
                                           "3", "prod") == "fraud-detector-v3-prod", "short names are unchanged"


def test_alias_deployments_of_long_names_sharing_a_prefix_keep_apart(long_models, settings):
    settings.PLINTH_DEPLOYMENT_ALIASES = {"production": "prod"}
    assert services.deployments_from_aliases(model_ids=[m.pk for m in long_models.values()]) == 2
    check_apart(long_models)


def test_a_deployment_keeps_the_entity_it_was_created_with(detector, demo_org):
    """An existing deployment's entity is updated in place, whatever name the current rule would give."""
    bob = demo_org["users"]["bob"]
    dep = Deployment.objects.get(pk=services.deployment_report(actor=bob, body=event())[0].deployment_id)
    Entity.objects.filter(pk=dep.entity_id).update(name="fraud-detector-v3-prd",
                                                   ref="deployment:default/fraud-detector-v3-prd")
    services.deployment_report(actor=bob, body=event(status="failed"))
    dep.refresh_from_db()
    assert dep.entity.ref == "deployment:default/fraud-detector-v3-prd" and dep.entity.spec["status"] == "failed"
    assert Entity.objects.filter(kind_key="deployment").count() == 1


# -- lone surrogates --------------------------------------------------------------------------------


@pytest.mark.parametrize(("field", "value"), [
    ("idempotencyKey", "k\ud800"),
    ("endpoint", "https://h.example.com/\ud800"),
    ("model", "model:default/fraud-detector\ud800"),
    ("servedBy", "component:default/x\ud800"),
    ("platform", "kserve\ud800"),
    ("environment", "prod\ud800"),
    ("status", "live\ud800"),
    ("version", "3\ud800"),
    ("time", "2026-12-01T10:00:00Z\ud800"),
])
def test_a_lone_surrogate_is_a_400_naming_the_field(detector, api_as, field, value):
    client = api_as("bob")
    before = counts()
    body = json.dumps(event(**{field: value.replace("\ud800", "SURROGATE")})).replace("SURROGATE", "\\ud800")
    response = client.post(URL, data=body, content_type="application/json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert field in error["details"] and error["message"].startswith(f"{field}:"), error
    assert counts() == before


def test_a_lone_surrogate_in_an_unknown_field_name_is_a_400(detector, api_as):
    body = json.dumps({**event(), "surpriseSURROGATE": 1}).replace("SURROGATE", "\\ud800")
    response = api_as("bob").post(URL, data=body, content_type="application/json")
    assert response.status_code == 400, response.content
    assert "surprise" in response.json()["error"]["message"]
