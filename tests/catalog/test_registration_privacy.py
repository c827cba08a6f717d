"""Registering or refreshing a location tells an outsider nothing about another team's private entity
or location beyond what the name they typed already implies: entity refs and location targets are
unique, so "taken" cannot be hidden, but where, whose and how it is held can. Each test compares what
an outsider (Alice, fraud-ml) is told with the private thing held one way, held another way, and absent
— over the API (dry run and real run), the register page, uploads and refreshes — and checks that its
own team (Carol, recsys) and platform admins (Grace) are still told where."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from catalog import services
from catalog.models import Entity, Location, ProcessingError
from portal.accounts import services as account_services

pytestmark = pytest.mark.django_db

REF = {"Component": "component:default/secret-svc", "Deployment": "deployment:default/secret-svc"}
GENERIC = "Entity {ref} exists already elsewhere in the catalog; rejected from '{target}'."


def descriptor(kind: str, owner: str, *, private: bool = False) -> str:
    annotations = "  annotations: {plinth.dev/visibility: private}\n" if private else ""
    if kind == "Deployment":
        return (f"apiVersion: plinth.dev/v1alpha1\nkind: Deployment\nmetadata:\n  name: secret-svc\n{annotations}"
                f"spec:\n  model: model:default/product-ranker\n  version: '3'\n  environment: prod\n"
                f"  owner: {owner}\n")
    return (f"apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: secret-svc\n{annotations}"
            f"spec:\n  type: service\n  lifecycle: production\n  owner: {owner}\n")


def generated(kind: str) -> dict:
    """The private entity as the portal writes it itself, with no location (a deployment event; an
    entity known from MLflow or an orphan is held the same way)."""
    spec = ({"model": "model:default/product-ranker", "version": "3", "environment": "prod"} if kind == "Deployment"
            else {"type": "service", "lifecycle": "production"})
    return {"apiVersion": "plinth.dev/v1alpha1" if kind == "Deployment" else "backstage.io/v1alpha1", "kind": kind,
            "metadata": {"name": "secret-svc", "annotations": {"plinth.dev/visibility": "private"}},
            "spec": {**spec, "owner": "group:default/recsys"}}


@pytest.fixture
def api(demo_org, settings, tmp_path):
    settings.PLINTH_CATALOG_UPLOAD_ROOT = tmp_path / "uploads"

    def as_user(username: str) -> Client:
        _, raw = account_services.token_create(user=demo_org["users"][username], name="tests")
        return Client(HTTP_AUTHORIZATION=f"Bearer {raw}", raise_request_exception=False)

    return as_user


@pytest.fixture
def page(demo_org):
    def as_user(username: str) -> Client:
        client = Client(raise_request_exception=False)
        client.force_login(demo_org["users"][username])
        return client

    return as_user


def register(client: Client, target: str, *, dry_run: bool):
    return client.post(f"/api/v1/locations?dryRun={'true' if dry_run else 'false'}", {"target": target},
                       content_type="application/json")


def told(response) -> tuple[int, dict]:
    """Status and body of a registration answer, without what differs from one run to the next (the
    new location's id and time)."""
    body = response.json()
    if "location" in body:
        body["location"] = {k: v for k, v in body["location"].items() if k not in ("id", "refreshedAt")}
    return response.status_code, body


def page_errors(response) -> str:
    """The register page's dry-run section (the rest of the page has per-request tokens)."""
    text = response.content.decode()
    start = text.find('data-testid="dry-run"')
    return text[start:text.find("</section>", start)] if start >= 0 else ""


# -- 1. an entity ref that another team's private entity holds ---------------------------------------------


@pytest.mark.parametrize("kind", ["Component", "Deployment"])
def test_a_clash_with_a_private_entity_reads_the_same_wherever_it_is_held(demo_org, write_tree, api, page, kind):
    """Held by one private location of recsys, by another, or by no location at all (a deployment event,
    MLflow, an orphan): Alice's dry run, real run, page and stored error read alike, say only that the
    name is taken, and never name the holder. Carol and Grace are still told where."""
    users = demo_org["users"]
    ref = REF[kind]
    mine = write_tree({"catalog-info.yaml": descriptor(kind, "fraud-ml")}, folder="alice")
    target = str(mine)
    first = write_tree({"catalog-info.yaml": descriptor(kind, "recsys", private=True)}, folder="recsys-one")
    second = write_tree({"catalog-info.yaml": descriptor(kind, "recsys", private=True)}, folder="recsys-two")
    alice = api("alice")

    def hold(how: str):
        if how == "absent":
            return
        if how == "no location":
            services.entity_put_generated(data=generated(kind), source="deployments:api")
        else:
            services.location_register(target=str(first if how == "location one" else second),
                                       actor=users["carol"], file_roots=None)
        assert Entity.objects.get(ref=ref).visibility == "private"
        assert alice.get(f"/api/v1/entities/by-name/{ref.replace(':', '/')}").status_code == 404

    def release():
        for location in Location.objects.filter(target__in=[str(first), str(second), target]):
            services.location_unregister(location=location, actor=None)
        Entity.objects.filter(ref=ref).delete()

    seen = {}
    for how in ("location one", "location two", "no location", "absent"):
        hold(how)
        dry = told(register(alice, target, dry_run=True))
        if how == "location one":
            # Its own team and platform admins may see the entity: they are told where.
            for who in ("carol", "grace"):
                named = told(register(api(who), target, dry_run=True))[1]["errors"][0]["message"]
                assert named == (f"Entity {ref} is already registered by location '{first}'; "
                                 f"rejected from '{target}'."), named
        form = page("alice").post("/catalog/register/", {"target": target})
        real = told(register(alice, target, dry_run=False))
        stored = list(ProcessingError.objects.filter(location__target=target).values_list("message", flat=True))
        seen[how] = (dry, form.status_code, page_errors(form), real, stored)
        release()

    held = [seen[how] for how in ("location one", "location two", "no location")]
    assert held[0] == held[1] == held[2], json.dumps(seen, indent=1, default=str)
    (dry_status, dry), form_status, form, (real_status, real), stored = held[0]
    generic = GENERIC.format(ref=ref, target=target)
    assert dry_status == 200 and [e["message"] for e in dry["errors"]] == [generic]
    assert real_status == 201 and [e["message"] for e in real["errors"]] == [generic]
    assert stored == [generic]
    assert form_status == 200 and "exists already elsewhere in the catalog" in form
    for text in (json.dumps(seen[how], default=str) for how in ("location one", "location two", "no location")):
        assert "recsys-one" not in text and "recsys-two" not in text and "MLflow" not in text
    # Absent, the same descriptor is simply added: the clash is the one thing a holder changes.
    (_, absent_dry), _, _, (absent_status, _), absent_stored = seen["absent"]
    assert absent_status == 201 and absent_dry["added"] == [ref] and absent_stored == []
    assert {**dry, "errors": [], "added": [ref]} == absent_dry


def test_the_stored_error_names_no_private_holder_after_a_scheduled_refresh(demo_org, write_tree, api):
    """The error is stored on Alice's location, which others read; the beat's refresh (no actor) judges
    with her sight, as it stores with her claims: it does not start naming Carol's location."""
    users = demo_org["users"]
    theirs = write_tree({"catalog-info.yaml": descriptor("Component", "recsys", private=True)}, folder="recsys-one")
    services.location_register(target=str(theirs), actor=users["carol"], file_roots=None)
    mine = write_tree({"catalog-info.yaml": descriptor("Component", "fraud-ml")}, folder="alice")
    services.location_register(target=str(mine), actor=users["alice"], file_roots=None)
    location = Location.objects.get(target=str(mine))
    generic = [GENERIC.format(ref=REF["Component"], target=str(mine))]
    assert list(location.errors.values_list("message", flat=True)) == generic

    def edited(path, text: str) -> None:  # a file read again (an unchanged one keeps its errors)
        path.joinpath("catalog-info.yaml").write_text(text.replace("type: service", "type: website"))

    edited(mine, descriptor("Component", "fraud-ml"))
    services.location_refresh(location=location)  # catalog.tasks' scheduled refresh
    assert list(location.errors.values_list("message", flat=True)) == generic
    body = api("grace").get(f"/api/v1/locations/{location.pk}").json()
    assert [e["message"] for e in body["errors"]] == generic
    # Carol's location made internal: everyone may see it, and the stored error names it.
    edited(theirs, descriptor("Component", "recsys"))
    services.location_refresh(location=Location.objects.get(target=str(theirs)))
    mine.joinpath("catalog-info.yaml").write_text(descriptor("Component", "fraud-ml"))
    services.location_refresh(location=location)
    assert list(location.errors.values_list("message", flat=True)) == [
        f"Entity {REF['Component']} is already registered by location '{theirs}'; rejected from '{mine}'."]


# -- 2. a location target that another team's private location holds -----------------------------------------


def test_a_private_locations_target_is_taken_however_it_is_spelt(demo_org, write_tree, api, page):
    """`/x/repo/`, `/x/repo/.` and `/x/./repo` are the location `/x/repo`: registering any spelling of
    Carol's private location (dry run or not, API or page) is the refresh rule's 403, word for word what
    the exact target gets apart from the target typed — not a plan of her entities, not a 500."""
    theirs = write_tree({"catalog-info.yaml": descriptor("Component", "recsys", private=True)}, folder="recsys-one")
    services.location_register(target=str(theirs), actor=demo_org["users"]["carol"], file_roots=None)
    alice = api("alice")
    exact = str(theirs)
    spellings = [exact, exact + "/", exact + "/.", exact.replace("/recsys-one", "/./recsys-one")]
    for dry_run in (True, False):
        answers = []
        for spelt in spellings:
            response = register(alice, spelt, dry_run=dry_run)
            answers.append((response.status_code, response.content.decode().replace(json.dumps(spelt)[1:-1], "T")))
            form = page("alice").post("/catalog/register/", {"target": spelt, **({} if dry_run else {"confirm": "1"})})
            assert form.status_code == 403 and b"secret-svc" not in form.content
        assert all(answer == answers[0] for answer in answers), answers
        assert answers[0][0] == 403 and "secret-svc" not in answers[0][1] and "recsys" not in answers[0][1]
    assert not Location.objects.filter(target__startswith=exact).exclude(target=exact).exists()


def upload(client: Client, source: str, *, dry_run: bool = False):
    body = {"source": source, "files": [{"path": "catalog-info.yaml", "content": descriptor("Component", "fraud-ml")}],
            "dryRun": dry_run}
    return client.post("/api/v1/locations/upload", body, content_type="application/json")


@pytest.mark.parametrize("dry_run", [False, True])
def test_an_upload_over_a_private_uploads_source_does_not_name_its_location(demo_org, api, dry_run):
    """Carol published one file of source S as its location (`upload:<folder>/<entry>`): Alice sending S
    is told S is taken, in the same words whichever file Carol's location is; Carol is told which."""
    carol = demo_org["users"]["carol"]
    answers = []
    for entry in ("models/ranker.yaml", "services/secret.yaml"):
        services.location_upload(source="github.com/acme/recsys-private", actor=carol, entry=entry,
                                 files=[(entry, descriptor("Component", "recsys", private=True))])
        response = upload(api("alice"), "github.com/acme/recsys-private", dry_run=dry_run)
        answers.append((response.status_code, response.content))
        assert response.status_code == 400 and entry.encode() not in response.content
        own = upload(api("carol"), "github.com/acme/recsys-private", dry_run=dry_run)
        assert own.status_code == 400 and entry.encode() in own.content
        services.location_unregister(location=Location.objects.get(target__endswith=entry), actor=None)
    assert answers[0] == answers[1]


# -- 3. counts in a refresh or dry run --------------------------------------------------------------------------


def test_a_refresh_counts_no_private_entity_of_another_team_as_unchanged(demo_org, write_tree, api):
    """A location of the system holds Alice's component, and (or not) a private recsys one: Alice may
    refresh it, and its `unchanged` count is the same either way."""
    mine = descriptor("Component", "fraud-ml").replace("secret-svc", "alice-svc")
    answers = []
    for extra in ("---\n" + descriptor("Component", "recsys", private=True), ""):
        root = write_tree({"catalog-info.yaml": mine + extra}, folder="shared")
        services.location_register(target=str(root), actor=None, file_roots=None)
        alice = api("alice")
        dry = register(alice, str(root), dry_run=True)
        refreshed = alice.post("/api/v1/refresh", {"entityRef": "component:default/alice-svc"},
                               content_type="application/json")
        answers.append((dry.status_code, dry.json(), refreshed.status_code, refreshed.json()))
        services.location_unregister(location=Location.objects.get(target=str(root)), actor=None)
    assert answers[0] == answers[1], answers
    assert answers[0][1]["unchanged"] == 1


# -- 4. a deployment event whose entity name a private location-defined Deployment holds ------------------------


def test_a_deployment_event_reads_the_same_whether_a_private_deployment_holds_its_name(demo_org, write_tree, api):
    from catalog.models import ModelVersion

    detector = Entity.objects.get(ref="model:default/fraud-detector")
    ModelVersion.objects.update_or_create(entity=detector, version="3", defaults={"version_number": 3})
    name = descriptor("Deployment", "recsys", private=True).replace("secret-svc", "fraud-detector-v3-prod")
    root = write_tree({"catalog-info.yaml": name}, folder="recsys-deployments")
    alice = api("alice")
    answers = []
    for held in (True, False):
        if held:
            services.location_register(target=str(root), actor=demo_org["users"]["carol"], file_roots=None)
        response = alice.post("/api/v1/deployments/events", {
            "model": "model:default/fraud-detector", "version": "3", "environment": "prod", "status": "live",
            "platform": "kserve", "endpoint": "https://fraud.prod.example.com/v1/predict"},
            content_type="application/json")
        answers.append(response.status_code)
        for location in Location.objects.filter(target=str(root)):
            services.location_unregister(location=location, actor=None)
        Entity.objects.filter(kind_key="deployment").delete()
    assert answers == [201, 201], answers  # held: stored under the hashed name, as if nothing held it
    assert Entity.objects.filter(ref="deployment:default/fraud-detector-v3-prod").count() == 0


def test_a_deployment_event_is_refused_when_a_descriptor_it_may_see_holds_its_name(demo_org, write_tree, api):
    """The documented rule stands for an entity the reporter may see: an event does not overwrite what
    a registered location defines (400 naming metadata.name), and the descriptor is left as it was."""
    from catalog.models import ModelVersion

    detector = Entity.objects.get(ref="model:default/fraud-detector")
    ModelVersion.objects.update_or_create(entity=detector, version="3", defaults={"version_number": 3})
    name = descriptor("Deployment", "fraud-ml").replace("secret-svc", "fraud-detector-v3-prod")
    root = write_tree({"catalog-info.yaml": name}, folder="fraud-deployments")
    services.location_register(target=str(root), actor=demo_org["users"]["alice"], file_roots=None)
    held = Entity.objects.get(ref="deployment:default/fraud-detector-v3-prod")
    response = api("alice").post("/api/v1/deployments/events", {
        "model": "model:default/fraud-detector", "version": "3", "environment": "prod", "status": "live",
        "platform": "kserve", "endpoint": "https://fraud.prod.example.com/v1/predict"}, content_type="application/json")
    assert response.status_code == 400, response.content
    assert "metadata.name" in response.content.decode()
    assert Entity.objects.get(pk=held.pk).content_hash == held.content_hash
