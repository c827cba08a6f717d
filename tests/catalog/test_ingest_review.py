"""Catalog ingestion under review: a dry run is held to the refresh rule and plans name no entity the
caller may not see; a location's errors are those of its latest read; a target that is gone is an error
on the location, not a 500; clashing upload paths are a 400 that leaves nothing on disk; two
registrations of one new target at once both succeed; the location list's query count is constant."""

from __future__ import annotations

import shutil
import threading

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from catalog import services
from catalog.models import Entity, Location, ProcessingError
from portal.accounts import services as account_services

pytestmark = pytest.mark.django_db


def component(name: str, owner: str = "fraud-ml", *, private: bool = False, lifecycle: str = "production") -> str:
    annotations = "  annotations: {plinth.dev/visibility: private}\n" if private else ""
    life = f"  lifecycle: {lifecycle}\n" if lifecycle else ""
    return (f"apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\n{annotations}"
            f"spec:\n  type: service\n{life}  owner: {owner}\n")


LOCATION_OF_MISSING = ("apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata: {name: more}\n"
                       "spec: {targets: [./missing/catalog-info.yaml]}\n")


@pytest.fixture
def api(demo_org, settings, tmp_path):
    settings.PLINTH_CATALOG_UPLOAD_ROOT = tmp_path / "uploads"

    def as_user(username: str) -> Client:
        _, raw = account_services.token_create(user=demo_org["users"][username], name="tests")
        return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")

    return as_user


def upload(client: Client, source: str, files: list[tuple[str, str]], *, dry_run: bool = False):
    body = {"source": source, "files": [{"path": p, "content": c} for p, c in files], "dryRun": dry_run}
    return client.post("/api/v1/locations/upload", body, content_type="application/json")


def errors_of(location: Location) -> list[tuple[str, str]]:
    return list(ProcessingError.objects.filter(location=location).values_list("source", "message"))


# -- 1. dry runs and plan summaries -------------------------------------------------------------------


def test_a_dry_run_upload_over_another_teams_source_is_refused_like_the_real_one(api, demo_org):
    """Carol's upload holds a private recsys entity; Alice's dry run of the same source would have
    listed it as removed. She may not refresh that location, so the dry run gets the real run's 403."""
    services.location_upload(source="github.com/acme/recsys-private",
                             files=[("catalog-info.yaml", component("secret-ranker", "recsys", private=True))],
                             actor=demo_org["users"]["carol"])
    alice = api("alice")
    assert alice.get("/api/v1/entities/by-name/component/default/secret-ranker").status_code == 404
    for dry_run in (True, False):
        response = upload(alice, "github.com/acme/recsys-private", [("catalog-info.yaml", component("harmless"))],
                          dry_run=dry_run)
        assert response.status_code == 403, response.content
        assert b"secret-ranker" not in response.content
    assert Entity.objects.filter(ref="component:default/secret-ranker").exists()


def test_a_dry_run_registration_of_a_location_one_may_not_refresh_is_refused(api, demo_org, write_tree):
    root = write_tree({"catalog-info.yaml": component("secret-scorer", "recsys", private=True)})
    target = str(root / "catalog-info.yaml")
    services.location_register(target=target, actor=demo_org["users"]["carol"], file_roots=None)
    response = api("alice").post("/api/v1/locations?dryRun=true", {"target": target}, content_type="application/json")
    assert response.status_code == 403
    assert b"secret-scorer" not in response.content
    # The page's Analyse runs the same service: the same refusal.
    client = Client()
    client.force_login(demo_org["users"]["alice"])
    page = client.post("/catalog/register/", {"target": target})
    assert page.status_code == 403 and b"secret-scorer" not in page.content


def test_refresh_and_dry_run_plans_leave_out_entities_the_caller_may_not_see(api, demo_org, write_tree):
    """A location of the system holds Alice's component and a private recsys one: Alice may refresh
    it (her team owns one of its entities), and its plans name only what she may see."""
    root = write_tree({"catalog-info.yaml": component("alice-svc") + "---\n"
                       + component("recsys-hidden", "recsys", private=True)})
    target = str(root / "catalog-info.yaml")
    services.location_register(target=target, actor=None, file_roots=None)
    alice, grace = api("alice"), api("grace")
    (root / "catalog-info.yaml").write_text(component("alice-svc", lifecycle="experimental") + "---\n"
                                            + component("recsys-hidden", "recsys", private=True,
                                                        lifecycle="experimental"))

    dry = alice.post("/api/v1/locations?dryRun=true", {"target": target}, content_type="application/json")
    assert dry.status_code == 200 and dry.json()["changed"] == ["component:default/alice-svc"]
    assert sorted(grace.post("/api/v1/locations?dryRun=true", {"target": target},
                             content_type="application/json").json()["changed"]) == [
        "component:default/alice-svc", "component:default/recsys-hidden"]

    refreshed = alice.post("/api/v1/refresh", {"entityRef": "component:default/alice-svc"},
                           content_type="application/json")
    assert refreshed.status_code == 200 and refreshed.json()["changed"] == ["component:default/alice-svc"]

    (root / "catalog-info.yaml").write_text(component("alice-svc"))
    dry = alice.post("/api/v1/locations?dryRun=true", {"target": target}, content_type="application/json")
    assert dry.json()["removed"] == [] and b"recsys-hidden" not in dry.content
    refreshed = alice.post("/api/v1/refresh", {"entityRef": "component:default/alice-svc"},
                           content_type="application/json")
    assert refreshed.status_code == 200, refreshed.content
    assert refreshed.json()["removed"] == [] and b"recsys-hidden" not in refreshed.content
    assert Entity.objects.get(ref="component:default/recsys-hidden").location_id is None  # gone all the same


# -- 2. errors are those of the latest read ------------------------------------------------------------


def test_the_errors_of_a_deleted_file_go_with_it(write_tree):
    root = write_tree({"a/catalog-info.yaml": component("good"),
                       "b/catalog-info.yaml": component("bad", lifecycle="")})
    location = services.location_register(target=str(root), actor=None, file_roots=None).location
    assert [source.split("/")[-2] for source, _ in errors_of(location)] == ["b"]
    shutil.rmtree(root / "b")
    services.location_refresh(location=location)
    location.refresh_from_db()
    assert errors_of(location) == [] and location.error_count == 0 and location.status == "ok"


@pytest.mark.parametrize("changed", [True, False], ids=["file-changed", "file-unchanged"])
def test_a_missing_file_is_one_error_however_often_it_is_refreshed(write_tree, changed):
    root = write_tree({"catalog-info.yaml": component("good") + "---\n" + LOCATION_OF_MISSING})
    location = services.location_register(target=str(root / "catalog-info.yaml"), actor=None,
                                          file_roots=None).location
    for round_ in range(3):
        if changed:
            (root / "catalog-info.yaml").write_text(component("good") + f"# {round_}\n---\n" + LOCATION_OF_MISSING)
        services.location_refresh(location=location)
    location.refresh_from_db()
    assert [(source.split("/")[-2], message) for source, message in errors_of(location)] == [
        ("missing", "No such file.")]
    assert location.error_count == 1 and location.status == "error"


def test_an_unchanged_invalid_file_keeps_its_error_and_the_location_says_so(write_tree):
    root = write_tree({"a/catalog-info.yaml": component("good"),
                       "b/catalog-info.yaml": component("bad", lifecycle="")})
    location = services.location_register(target=str(root), actor=None, file_roots=None).location
    services.location_refresh(location=location)  # b is skipped as unchanged: its error still stands
    location.refresh_from_db()
    assert len(errors_of(location)) == 1 and location.error_count == 1 and location.status == "error"


# -- 3. a target that is gone ----------------------------------------------------------------------------


def test_refreshing_a_location_whose_file_is_gone_records_the_error(demo_org, write_tree, api):
    alice = demo_org["users"]["alice"]
    root = write_tree({"catalog-info.yaml": component("gone-svc")})
    target = str(root / "catalog-info.yaml")
    location = services.location_register(target=target, actor=alice, file_roots=None).location
    (root / "catalog-info.yaml").unlink()

    page = Client()
    page.force_login(alice)
    response = page.post(f"/catalog/locations/{location.pk}/refresh/")
    assert response.status_code == 302
    response = api("alice").post("/api/v1/refresh", {"entityRef": "component:default/gone-svc"},
                                 content_type="application/json")
    assert response.status_code == 200, response.content
    assert [(e["source"], e["field"]) for e in response.json()["errors"]] == [(target, "target")]

    location.refresh_from_db()
    assert location.status == "error" and location.error_count == 1
    assert errors_of(location) == [(target, "No such file or directory.")]  # once, after two refreshes
    entity = Entity.objects.get(ref="component:default/gone-svc")
    assert entity.error_count == 1 and entity.location_id == location.pk  # kept, flagged

    (root / "catalog-info.yaml").write_text(component("gone-svc"))
    services.location_refresh(location=location)
    location.refresh_from_db()
    assert location.status == "ok" and errors_of(location) == []


def test_a_scheduled_refresh_of_a_gone_folder_records_the_error_without_retrying(write_tree):
    from catalog import tasks

    root = write_tree({"catalog-info.yaml": component("gone-folder-svc")})
    location = services.location_register(target=str(root), actor=None, file_roots=None).location
    shutil.rmtree(root)
    assert tasks.refresh_location.apply(args=[location.pk]).successful()
    location.refresh_from_db()
    assert location.status == "error" and errors_of(location) == [(str(root), "No such file or directory.")]


# -- 4. an upload with a file and a folder of one name ------------------------------------------------------


@pytest.mark.parametrize("files", [
    [("a", "x"), ("a/catalog-info.yaml", component("clash"))],
    [("a/catalog-info.yaml", component("clash")), ("a", "x")],
    [("catalog-info.yaml", component("clash")), ("a/b", "x"), ("a/b/c/d.md", "x")],
], ids=["file-first", "folder-first", "deeper"])
def test_a_file_and_a_folder_of_one_name_are_refused_naming_both(api, settings, files):
    response = upload(api("alice"), "clash", files)
    assert response.status_code == 400, response.content
    detail = response.json()["error"]["details"]
    field = f"files[{len(files) - 1}].path"
    message = detail[field][0]
    clashing = [p for p, _ in files if f"'{p}'" in message]
    assert len(clashing) == 2, message
    assert not Location.objects.filter(target__startswith="upload:").exists()
    root = settings.PLINTH_CATALOG_UPLOAD_ROOT
    assert not root.exists() or [p.name for p in root.iterdir() if p.name.startswith(".staging")] == []


# -- 5. one new target registered twice at once ---------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_registrations_of_one_new_target_at_once_both_succeed(write_tree, monkeypatch):
    """Both look the target up before either stores it; the second to store finds it taken and reads
    it again as a registration of an existing target would (no IntegrityError)."""
    root = write_tree({"catalog-info.yaml": component("race-svc")})
    barrier = threading.Barrier(2, timeout=20)
    check = services._check_register

    def both_looked_up(actor, existing, *rest):
        if existing is None:
            barrier.wait()
        return check(actor, existing, *rest)

    monkeypatch.setattr(services, "_check_register", both_looked_up)
    outcomes: list = []

    def register():
        try:
            outcomes.append(services.location_register(target=str(root), actor=None, file_roots=None).created)
        except Exception as exc:
            outcomes.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=register) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes, key=repr) == [False, True], outcomes
    assert Location.objects.filter(target=str(root)).count() == 1
    assert Entity.objects.filter(ref="component:default/race-svc").count() == 1


# -- 6. the location list ---------------------------------------------------------------------------------------


def test_the_location_list_costs_the_same_queries_for_4_or_24_locations(api):
    grace = api("grace")

    def queries() -> tuple[int, int]:
        with CaptureQueriesContext(connection) as ctx:
            response = grace.get("/api/v1/locations?limit=500")
        assert response.status_code == 200
        return len(response.json()["items"]), len(ctx.captured_queries)

    grace.get("/api/v1/me")  # the token's first use writes its last-used time
    few, few_queries = queries()
    for i in range(20):
        location = Location.objects.create(target=f"/nowhere/{i}", type="file")
        ProcessingError.objects.bulk_create(ProcessingError(location=location, source=f"/nowhere/{i}", message=m)
                                            for m in ("one", "two"))
    many, many_queries = queries()
    assert many == few + 20
    assert many_queries == few_queries
    body = grace.get("/api/v1/locations?limit=500").json()
    assert [e["message"] for e in body["items"][-1]["errors"]] == ["one", "two"]
