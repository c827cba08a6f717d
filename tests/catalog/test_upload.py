"""`POST /api/v1/locations/upload`: descriptors sent as content are registered like a folder location —
the same validation, ownership claims, conflict rules and refresh rule — and a failure changes
nothing, on disk or in the catalog."""

from __future__ import annotations

import pytest
from django.test import Client

from catalog import uploads
from catalog.models import Entity, Location
from portal.accounts import services as account_services

pytestmark = pytest.mark.django_db


def component(name: str, owner: str = "fraud-ml", extra: str = "") -> str:
    return (f"apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\n{extra}"
            f"spec:\n  type: service\n  lifecycle: production\n  owner: {owner}\n")


@pytest.fixture
def upload_root(settings, tmp_path):
    settings.PLINTH_CATALOG_UPLOAD_ROOT = tmp_path / "uploads"
    return settings.PLINTH_CATALOG_UPLOAD_ROOT


@pytest.fixture
def api(demo_org, upload_root):
    def as_user(username: str) -> Client:
        _, raw = account_services.token_create(user=demo_org["users"][username], name="tests")
        return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")

    return as_user


def uploaded() -> list[Location]:
    return [loc for loc in Location.objects.all() if uploads.is_upload_target(loc.target)]


def post(client: Client, source: str, files: dict[str, str], dry_run: bool = False):
    body = {"source": source, "files": [{"path": p, "content": c} for p, c in files.items()], "dryRun": dry_run}
    return client.post("/api/v1/locations/upload", body, content_type="application/json")


def test_upload_registers_a_folder_with_text_substitution_and_replaces_it_on_the_next_upload(api):
    alice = api("alice")
    files = {"catalog-info.yaml": component("up-one", extra="  description:\n    $text: ./README.md\n"),
             "README.md": "Scores uploads.", "sub/catalog-info.yaml": component("up-two")}
    response = post(alice, "github.com/acme/up", files)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert sorted(body["added"]) == ["component:default/up-one", "component:default/up-two"]
    assert Entity.objects.get(ref="component:default/up-one").data["metadata"]["description"] == "Scores uploads."
    location = Location.objects.get(pk=body["location"]["id"])
    assert location.target == str(uploads.folder_for("github.com/acme/up"))

    again = post(alice, "github.com/acme/up", {"catalog-info.yaml": component("up-one")})
    assert again.status_code == 200
    assert again.json()["removed"] == ["component:default/up-two"]
    assert Location.objects.filter(target=location.target).count() == 1


def test_a_dry_run_plans_and_stores_nothing(api, upload_root):
    response = post(api("alice"), "dry", {"catalog-info.yaml": component("up-dry")}, dry_run=True)
    assert response.status_code == 200 and response.json()["dryRun"] is True
    assert response.json()["added"] == ["component:default/up-dry"]
    assert not Entity.objects.filter(ref="component:default/up-dry").exists()
    assert not uploads.folder_for("dry").exists()
    assert [p.name for p in upload_root.iterdir() if not p.name.startswith(".locks")] == []


@pytest.mark.parametrize("files,field", [
    ({"../catalog-info.yaml": "x"}, "files[0].path"),
    ({"/etc/catalog-info.yaml": "x"}, "files[0].path"),
    ({"a\\catalog-info.yaml": "x"}, "files[0].path"),
    ({".git/catalog-info.yaml": "x"}, "files[0].path"),
    ({"catalog-info.yaml": "x", "a" * 260 + "/x.md": "x"}, "files[1].path"),
    ({"README.md": "no descriptor"}, "files"),
])
def test_unsafe_paths_and_a_missing_descriptor_are_400_naming_the_field(api, files, field):
    response = post(api("alice"), "bad", files)
    assert response.status_code == 400
    error = response.json()["error"]
    assert field in error["details"], error
    assert not uploaded()


def test_invalid_descriptors_are_reported_like_a_folder_registration(api):
    response = post(api("alice"), "invalid", {"catalog-info.yaml": "apiVersion: backstage.io/v1alpha1\nkind: Component\n"
                                                                 "metadata:\n  name: Bad Name!\n"})
    assert response.status_code == 201
    errors = response.json()["errors"]
    assert errors and errors[0]["field"] == "metadata.name"


def test_ownership_claims_hold_a_viewer_may_not_register_and_a_foreign_owner_is_refused(api):
    assert post(api("heidi"), "viewer", {"catalog-info.yaml": component("up-viewer")}).status_code == 403
    refused = post(api("alice"), "foreign", {"catalog-info.yaml": component("up-foreign", owner="recsys")})
    assert refused.status_code == 403 and refused.json()["error"]["details"]["refused"]
    assert not uploaded()
    assert not uploads.folder_for("foreign").exists()


def test_another_team_may_not_replace_an_upload_and_the_files_stay(api):
    assert post(api("alice"), "shared-name", {"catalog-info.yaml": component("up-keep")}).status_code == 201
    folder = uploads.folder_for("shared-name")
    before = (folder / "catalog-info.yaml").read_text()
    response = post(api("carol"), "shared-name", {"catalog-info.yaml": component("up-steal", owner="recsys")})
    assert response.status_code == 403
    assert (folder / "catalog-info.yaml").read_text() == before
    assert Entity.objects.filter(ref="component:default/up-keep").exists()


def test_the_location_api_refuses_the_upload_folder_and_unregistering_removes_it(api):
    alice = api("alice")
    body = post(alice, "gone", {"catalog-info.yaml": component("up-gone")}).json()
    folder = uploads.folder_for("gone")
    direct = alice.post("/api/v1/locations", {"target": str(folder / "catalog-info.yaml")},
                        content_type="application/json")
    assert direct.status_code == 400 and "upload" in direct.json()["error"]["message"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("django.db.transaction.on_commit", lambda fn, using=None, robust=False: fn())
        assert alice.delete(f"/api/v1/locations/{body['location']['id']}").status_code == 204
    assert not folder.exists()
