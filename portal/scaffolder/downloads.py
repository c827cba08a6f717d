"""The zip archives `publish:zip` makes and the git bundles of the repositories `publish:git` makes,
kept in the shared storage (Django's `storages["default"]`: a folder on one machine, object storage
across several) so that the worker that packed a run and the web node that serves its download need
share nothing but that storage. Names are derived from a run's or a repository row's uid only: nothing
a user typed reaches a storage path."""

from __future__ import annotations

import uuid
from pathlib import Path

from django.core.files import File
from django.core.files.storage import storages


def _storage():
    return storages["default"]


def name(run_uid) -> str:
    return f"scaffolder/downloads/{uuid.UUID(str(run_uid))}.zip"


def save(run_uid, path: Path) -> str:
    """Store the archive at `path` (a node-local file) as the run's download, replacing an earlier
    attempt's; the file is left where it is."""
    return _put(name(run_uid), path)


def _put(key: str, path: Path) -> str:
    storage = _storage()
    storage.delete(key)  # FileSystemStorage would pick another name rather than overwrite
    with path.open("rb") as fh:
        saved = storage.save(key, File(fh, name=path.name))
    if saved != key:  # a concurrent attempt stored it between the delete and the save
        storage.delete(saved)
    return key


def exists(run_uid) -> bool:
    return _storage().exists(name(run_uid))


def open_(run_uid):
    return _storage().open(name(run_uid), "rb")


def delete(run_uid) -> None:
    _storage().delete(name(run_uid))


def bundle_name(repository) -> str:
    """The git bundle of a published repository, by its row's uid: nothing typed reaches the path, and
    no other row's bundle is ever met (ids are reused after a delete or a restore; uids are not)."""
    return f"scaffolder/repositories/{uuid.UUID(str(repository.uid))}.bundle"


def save_bundle(repository, path: Path) -> None:
    _put(bundle_name(repository), path)


def open_bundle(repository):
    return _storage().open(bundle_name(repository), "rb")


def bundle_exists(repository) -> bool:
    return _storage().exists(bundle_name(repository))


def delete_bundle(repository) -> None:
    _storage().delete(bundle_name(repository))
