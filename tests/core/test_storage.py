"""The shared storage (docs/deployment.md#no-state-on-a-nodes-disk): a folder by default, S3 when a
bucket is configured; and the scaffolder's download archives go through it."""

from pathlib import Path

import pytest

from portal.settings.base import shared_storage
from portal.settings.env import read


def test_the_default_storage_is_a_folder_under_var_or_plinth_storage_root(monkeypatch, tmp_path):
    monkeypatch.delenv("PLINTH_S3_BUCKET", raising=False)
    monkeypatch.setenv("PLINTH_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("PLINTH_STORAGE_ROOT", raising=False)
    assert shared_storage(read()) == {"BACKEND": "django.core.files.storage.FileSystemStorage",
                                      "OPTIONS": {"location": str(tmp_path / "var" / "storage"), "base_url": None}}
    monkeypatch.setenv("PLINTH_STORAGE_ROOT", str(tmp_path / "shared"))
    assert shared_storage(read())["OPTIONS"]["location"] == str(tmp_path / "shared")


def test_a_bucket_makes_it_django_storages_s3_without_touching_the_network(monkeypatch):
    monkeypatch.setenv("PLINTH_S3_BUCKET", "plinth-prod")
    monkeypatch.setenv("PLINTH_S3_PREFIX", "/portal/")
    monkeypatch.setenv("PLINTH_S3_REGION", "eu-west-1")
    monkeypatch.setenv("PLINTH_S3_ENDPOINT_URL", "https://minio.internal:9000")
    config = shared_storage(read())
    assert config["BACKEND"] == "storages.backends.s3.S3Storage"
    assert config["OPTIONS"] == {"bucket_name": "plinth-prod", "location": "portal", "default_acl": None,
                                 "file_overwrite": True, "querystring_auth": True,
                                 "endpoint_url": "https://minio.internal:9000", "region_name": "eu-west-1"}
    from storages.backends.s3 import S3Storage  # the locked dependency imports and takes these options

    storage = S3Storage(**config["OPTIONS"])
    assert (storage.bucket_name, storage.location, storage.endpoint_url) == (
        "plinth-prod", "portal", "https://minio.internal:9000")


def test_download_names_come_from_the_run_uid_only():
    from portal.scaffolder import downloads

    assert downloads.name("0b7e5a52-6a3c-4e0e-9a51-8f1e2d3c4b5a") == \
        "scaffolder/downloads/0b7e5a52-6a3c-4e0e-9a51-8f1e2d3c4b5a.zip"
    with pytest.raises(ValueError):
        downloads.name("../../etc/passwd")


def test_an_archive_is_stored_replacing_an_earlier_attempts(settings, tmp_path):
    from portal.scaffolder import downloads

    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path / "store")}}}
    uid = "0b7e5a52-6a3c-4e0e-9a51-8f1e2d3c4b5a"
    for content in (b"first", b"second"):
        local = tmp_path / "local.zip"
        local.write_bytes(content)
        downloads.save(uid, local)
    with downloads.open_(uid) as fh:
        assert fh.read() == b"second"
    assert sorted(p.name for p in Path(tmp_path / "store" / "scaffolder" / "downloads").iterdir()) == [f"{uid}.zip"]
    downloads.delete(uid)
    assert not downloads.exists(uid)


def test_the_upload_root_can_be_one_shared_mount(monkeypatch, tmp_path):
    """Uploaded descriptor folders are not moved to the storage yet: several machines share a mount."""
    monkeypatch.delenv("PLINTH_CATALOG_UPLOAD_ROOT", raising=False)
    assert read().catalog_upload_root is None  # base.py then uses VAR_DIR/catalog-uploads
    monkeypatch.setenv("PLINTH_CATALOG_UPLOAD_ROOT", str(tmp_path / "uploads"))
    assert read().catalog_upload_root == tmp_path / "uploads"
