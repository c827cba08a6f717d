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
    assert location.target == uploads.target_for("github.com/acme/up") and location.type == "upload"

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


# -- the files live in the database: every node reads the same ones ----------------------------------

DOCUMENTED = ("apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\n"
              "  description:\n    $text: ./README.md\n  annotations:\n    backstage.io/techdocs-ref: dir:.\n"
              "spec:\n  type: service\n  lifecycle: production\n  owner: fraud-ml\n")


def test_the_files_are_stored_with_the_registration_and_another_node_reads_them_from_there(api, settings, tmp_path):
    from catalog import services
    from catalog.models import LocationSource, UploadBundle
    from portal.techdocs import builder

    files = {"catalog-info.yaml": DOCUMENTED.format(name="up-node"), "README.md": "Read on every node.",
             "docs/index.md": "# Node\n", "sub/catalog-info.yaml": component("up-node-two")}
    body = post(api("alice"), "github.com/acme/nodes", files).json()
    target = uploads.target_for("github.com/acme/nodes")
    name = target.removeprefix("upload:")
    bundle = UploadBundle.objects.get(name=name)
    assert bundle.source == "github.com/acme/nodes"
    assert {str(p): c for p, c in uploads.unpack(bundle.files)} == files
    entity = Entity.objects.get(ref="component:default/up-node")
    # Sources are named after the upload, the same on every node: no node's path is stored.
    assert entity.source == f"{target}/catalog-info.yaml"
    assert sorted(LocationSource.objects.filter(location_id=body["location"]["id"]).values_list("source", flat=True)) == [
        f"{target}/catalog-info.yaml", f"{target}/sub/catalog-info.yaml"]

    # Another node: its own, empty upload folder. Its refresh reads the stored files (nothing changes),
    # and its docs build finds the docs folder in its own copy.
    settings.PLINTH_CATALOG_UPLOAD_ROOT = tmp_path / "node-b"
    location = Location.objects.get(pk=body["location"]["id"])
    plan = services.location_refresh(location=location)
    assert (plan.added, plan.changed, plan.removed) == ([], [], [])
    assert sorted(plan.unchanged) == ["component:default/up-node", "component:default/up-node-two"]
    copy = tmp_path / "node-b" / name
    assert (copy / "README.md").read_text() == "Read on every node."
    assert builder.docs_dir_for(entity) == str(copy.resolve())

    # An upload taken by node b renews node b's copy; node a's old copy is renewed when it next reads.
    post(api("alice"), "github.com/acme/nodes", {**files, "README.md": "Second version."})
    assert Entity.objects.get(ref="component:default/up-node").data["metadata"]["description"] == "Second version."
    settings.PLINTH_CATALOG_UPLOAD_ROOT = tmp_path / "uploads"
    old_copy = tmp_path / "uploads" / name / "README.md"
    assert old_copy.read_text() == "Read on every node."
    services.location_refresh(location=location)
    assert old_copy.read_text() == "Second version."


def test_a_registration_that_fails_while_storing_keeps_neither_files_nor_entities(api, monkeypatch):
    from catalog.models import UploadBundle

    alice = api("alice")
    assert post(alice, "atomic", {"catalog-info.yaml": component("up-atomic-1")}).status_code == 201
    folder = uploads.folder_for("atomic")
    before = (UploadBundle.objects.get(name=folder.name).digest, (folder / "catalog-info.yaml").read_text())

    def broken(**kwargs):
        raise RuntimeError("storage failed")

    monkeypatch.setattr(uploads, "save", broken)
    client = Client(raise_request_exception=False, HTTP_AUTHORIZATION=alice.defaults["HTTP_AUTHORIZATION"])
    response = post(client, "atomic", {"catalog-info.yaml": component("up-atomic-2")})
    assert response.status_code == 500
    assert (UploadBundle.objects.get(name=folder.name).digest, (folder / "catalog-info.yaml").read_text()) == before
    assert Entity.objects.filter(ref="component:default/up-atomic-1").exists()
    assert not Entity.objects.filter(ref="component:default/up-atomic-2").exists()


def test_an_upload_target_cannot_be_registered_directly_and_unregistering_deletes_the_stored_files(api):
    from catalog.models import UploadBundle

    alice = api("alice")
    body = post(alice, "gone-too", {"catalog-info.yaml": component("up-gone-too")}).json()
    target = uploads.target_for("gone-too")
    direct = alice.post("/api/v1/locations", {"target": target}, content_type="application/json")
    assert direct.status_code == 400 and "upload" in direct.json()["error"]["message"]
    assert UploadBundle.objects.filter(name=target.removeprefix("upload:")).exists()
    assert alice.delete(f"/api/v1/locations/{body['location']['id']}").status_code == 204
    assert not UploadBundle.objects.exists()


@pytest.mark.parametrize("name", ["upload:../../etc", "upload:x/../../etc/passwd", "upload:nope-0123456789abcdef/a"])
def test_a_node_path_is_never_made_from_a_name_that_is_not_a_stored_upload(upload_root, name):
    from catalog.descriptors.errors import DescriptorError

    with pytest.raises(DescriptorError):
        uploads.local_path(name)


def test_the_migration_moves_an_upload_folder_of_the_old_layout_into_the_database(demo_org, upload_root):
    import importlib

    from django.apps import apps

    from catalog.models import LocationSource, ProcessingError, UploadBundle

    folder = upload_root / "old-upload-0123456789abcdef"
    (folder / "sub").mkdir(parents=True)
    (folder / "catalog-info.yaml").write_text(component("up-old"))
    (folder / "sub" / "catalog-info.yaml").write_text(component("up-old-two"))
    old = str(folder)
    location = Location.objects.create(type="dir", target=old)
    LocationSource.objects.create(location=location, source=f"{old}/catalog-info.yaml", content_hash="x",
                                  children=[f"{old}/sub/catalog-info.yaml"])
    Entity.objects.create(ref="component:default/up-old", kind="Component", kind_key="component",
                          namespace="default", name="up-old", location=location, source=f"{old}/catalog-info.yaml",
                          data={})
    ProcessingError.objects.create(location=location, source=f"{old}/sub/catalog-info.yaml", message="m")
    other = Location.objects.create(type="dir", target=str(upload_root.parent))  # not an upload: untouched
    migration = importlib.import_module("catalog.migrations.0012_upload_bundles")
    migration.forwards(apps, None)

    location.refresh_from_db()
    assert (location.type, location.target) == ("upload", "upload:old-upload-0123456789abcdef")
    source = LocationSource.objects.get(location=location)
    assert source.source == "upload:old-upload-0123456789abcdef/catalog-info.yaml"
    assert source.children == ["upload:old-upload-0123456789abcdef/sub/catalog-info.yaml"]
    assert Entity.objects.get(ref="component:default/up-old").source == "upload:old-upload-0123456789abcdef/catalog-info.yaml"
    assert ProcessingError.objects.get(location=location).source == "upload:old-upload-0123456789abcdef/sub/catalog-info.yaml"
    files = {str(p): c for p, c in uploads.unpack(UploadBundle.objects.get(name=folder.name).files)}
    assert files == {"catalog-info.yaml": component("up-old"), "sub/catalog-info.yaml": component("up-old-two")}
    other.refresh_from_db()
    assert (other.type, other.target) == ("dir", str(upload_root.parent))


def test_two_nodes_registering_the_same_new_source_at_once_end_with_one_location_and_the_last_files(
        api, demo_org, settings, tmp_path, monkeypatch):
    """Node b registers the source between node a's look-up and its write (forced here by running node
    b's upload inside node a's staging): node a's write meets the stored location and replaces it under
    the replacing rules, instead of failing."""
    from catalog import services
    from catalog.models import UploadBundle

    alice = demo_org["users"]["alice"]
    original_stage, ran = uploads.stage, []

    def stage_after_node_b(files):
        if not ran:
            ran.append(True)
            node_a_root = settings.PLINTH_CATALOG_UPLOAD_ROOT
            settings.PLINTH_CATALOG_UPLOAD_ROOT = tmp_path / "node-b"
            try:
                services.location_upload(source="raced", files=[("catalog-info.yaml", component("up-node-b"))],
                                         actor=alice)
            finally:
                settings.PLINTH_CATALOG_UPLOAD_ROOT = node_a_root
        return original_stage(files)

    monkeypatch.setattr(uploads, "stage", stage_after_node_b)
    plan = services.location_upload(source="raced", files=[("catalog-info.yaml", component("up-node-a"))], actor=alice)
    assert [c.ref for c in plan.added] == ["component:default/up-node-a"]
    assert [ref for _, ref in plan.removed] == ["component:default/up-node-b"]
    assert Location.objects.filter(target=uploads.target_for("raced")).count() == 1
    bundle = UploadBundle.objects.get(name=uploads.folder_name("raced"))
    assert uploads.unpack(bundle.files)[0][1] == component("up-node-a")


def test_one_descriptor_of_an_upload_can_be_the_location_and_one_source_is_one_location(demo_org, upload_root):
    """`entry` (what the scaffolder's catalog:register uses): that descriptor and what it refers to are
    read, not the folder's other catalog-info.yaml files; a source registered one way cannot also be
    registered the other way (they would share one stored folder)."""
    from django.core.exceptions import ValidationError

    from catalog import services
    from catalog.models import UploadBundle

    alice = demo_org["users"]["alice"]
    files = [("deploy/service.yaml", component("up-entry", extra="  description:\n    $text: ../README.md\n")),
             ("README.md", "Read through the entry."), ("sub/catalog-info.yaml", component("up-not-read"))]
    plan = services.location_upload(source="entry-src", files=files, actor=alice, entry="deploy/service.yaml")
    assert [c.ref for c in plan.added] == ["component:default/up-entry"]
    entity = Entity.objects.get(ref="component:default/up-entry")
    target = uploads.target_for("entry-src")
    assert entity.location.target == f"{target}/deploy/service.yaml" == entity.source
    assert entity.description == "Read through the entry."
    refreshed = services.location_refresh(location=entity.location)
    assert list(refreshed.unchanged) == ["component:default/up-entry"] and not refreshed.errors

    for entry, field in ((None, "source"), ("sub/catalog-info.yaml", "source"), ("missing.yaml", "entry"),
                         ("../x.yaml", "entry")):
        with pytest.raises(ValidationError) as caught:
            services.location_upload(source="entry-src", files=files, actor=alice, entry=entry)
        assert field in caught.value.message_dict, (entry, caught.value.message_dict)
    assert Location.objects.filter(target__startswith=target).count() == 1
    assert not Entity.objects.filter(name="up-not-read").exists()
    assert UploadBundle.objects.filter(name=uploads.folder_name("entry-src")).count() == 1


def test_a_bundle_holds_bytes_next_to_text_and_reads_bundles_of_text_only(upload_root):
    """Text is stored as text; other files (a published repository's docs images) as base64 marked so;
    bundles written before bytes were allowed ([path, text] pairs) read as they were."""
    import hashlib
    import zlib
    from pathlib import PurePosixPath

    import orjson

    files = [(PurePosixPath("catalog-info.yaml"), component("bytes")), (PurePosixPath("docs/a.png"), b"\x89PNG\xff\x00")]
    blob, digest = uploads.pack(files)
    assert uploads.unpack(blob) == files
    assert [len(e) for e in orjson.loads(zlib.decompress(blob))] == [2, 3]
    staged = uploads.stage(uploads.unpack(blob))
    assert (staged / "docs" / "a.png").read_bytes() == b"\x89PNG\xff\x00"
    old_raw = orjson.dumps([["catalog-info.yaml", "x: 1\n"]])
    assert uploads.unpack(zlib.compress(old_raw)) == [(PurePosixPath("catalog-info.yaml"), "x: 1\n")]
    # ... with the same digest, so the nodes' copies of text-only uploads stay current.
    assert uploads.pack(uploads.unpack(zlib.compress(old_raw)))[1] == hashlib.sha256(old_raw).hexdigest()
