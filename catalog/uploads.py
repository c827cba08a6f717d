"""Descriptors sent as content (`POST /api/v1/locations/upload`, `plinth catalog register ./folder`).

The CLI usually runs on a CI runner, where the server cannot read the files. An upload is therefore
written to a folder of its own below `PLINTH_CATALOG_UPLOAD_ROOT` — one folder per `source` name — and
registered as an ordinary `dir` location (`catalog.services.location_upload`), so it goes through the
same reader, validation, size caps, ownership claims and conflict rules as every other registration.
Sending the same source again replaces the folder's files and re-reads it, like a refresh.

This module owns the files only: naming the folder, checking the paths, staging and swapping."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.core.exceptions import ValidationError

from .ingest.reader import DESCRIPTOR_NAME

MAX_FILES = 500
MAX_PATH = 300
MAX_DEPTH = 16
MAX_SEGMENT = 100  # bytes per folder or file name: well under the file systems' 255
MAX_SOURCE = 200
_SOURCE_OK = re.compile(r"^[\x20-\x7e]+$")


def root() -> Path:
    path = Path(settings.PLINTH_CATALOG_UPLOAD_ROOT)
    path.mkdir(parents=True, exist_ok=True)
    return path.resolve()


def folder_for(source: str) -> Path:
    """The folder of one source: readable slug + hash (two sources never share a folder)."""
    slug = re.sub(r"[^a-z0-9]+", "-", source.lower()).strip("-")[:60] or "upload"
    digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    return root() / f"{slug}-{digest}"


def is_upload_target(target: str) -> bool:
    """Whether a location target lies in the upload root (registered only through uploads)."""
    real = os.path.realpath(target.strip() or ".")
    base = str(root())
    return real == base or real.startswith(base + os.sep)


def check(source: str, files: list[tuple[str, str]]) -> list[tuple[PurePosixPath, str]]:
    """The files as safe relative paths, or a ValidationError naming the failing field
    (`source`, `files`, `files[3].path`)."""
    if not source.strip() or len(source) > MAX_SOURCE or not _SOURCE_OK.match(source):
        raise ValidationError({"source": [f"1–{MAX_SOURCE} printable ASCII characters, e.g. github.com/acme/fraud."]})
    if not files:
        raise ValidationError({"files": ["Send at least one file."]})
    if len(files) > MAX_FILES:
        raise ValidationError({"files": [f"At most {MAX_FILES} files per upload; got {len(files)}."]})
    seen: set[PurePosixPath] = set()
    out = []
    for index, (raw, content) in enumerate(files):
        where = f"files[{index}].path"
        problem = _path_problem(raw)
        if problem:
            raise ValidationError({where: [problem]})
        path = PurePosixPath(raw)
        if path in seen:
            raise ValidationError({where: [f"'{raw}' is sent twice."]})
        seen.add(path)
        if len(content.encode("utf-8", "surrogatepass")) > settings.PLINTH_CATALOG_MAX_BYTES:
            raise ValidationError({f"files[{index}].content": [
                f"Over the catalog's limit of {settings.PLINTH_CATALOG_MAX_BYTES} bytes per file."]})
        out.append((path, content))
    if not any(p.name == DESCRIPTOR_NAME for p in seen):
        raise ValidationError({"files": [f"No {DESCRIPTOR_NAME}: the folder's descriptors are read from files of "
                                         "that name (other files may be what their $text/$json/$yaml refer to)."]})
    return out


def _path_problem(raw: str) -> str | None:
    if not raw or len(raw) > MAX_PATH:
        return f"A relative path of 1–{MAX_PATH} characters."
    if "\\" in raw or raw.startswith("/") or any(ord(c) < 32 for c in raw):
        return "Use a relative path with forward slashes, e.g. models/churn/catalog-info.yaml."
    parts = raw.split("/")
    if len(parts) > MAX_DEPTH:
        return f"At most {MAX_DEPTH} folders deep."
    if any(p in {"", ".", ".."} or p.startswith(".") for p in parts):
        return "No empty, '.', '..' or hidden path segments."
    if any(len(p.encode("utf-8", "surrogatepass")) > MAX_SEGMENT for p in parts):
        return f"Each folder or file name at most {MAX_SEGMENT} bytes."
    return None


def stage(files: list[tuple[PurePosixPath, str]]) -> Path:
    """Write the files into a new folder next to the targets (same file system: renames are atomic)."""
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=root()))
    for path, content in files:
        dest = staging.joinpath(*path.parts)
        dest.parent.mkdir(parents=True, exist_ok=True)
        with open(dest, "x", encoding="utf-8", errors="surrogatepass") as handle:
            handle.write(content)
    return staging


@contextlib.contextmanager
def locked(folder: Path) -> Iterator[None]:
    """One upload of a source at a time (across processes)."""
    lock_dir = root() / ".locks"
    lock_dir.mkdir(exist_ok=True)
    with open(lock_dir / f"{folder.name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def swapped_in(staging: Path, folder: Path) -> Iterator[None]:
    """Put the staged files in place of the folder's; if the body raises, the old files come back."""
    backup = None
    if folder.exists():
        backup = folder.with_name(f".old-{folder.name}-{uuid.uuid4().hex[:8]}")
        folder.rename(backup)
    staging.rename(folder)
    try:
        yield
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        if backup is not None:
            backup.rename(folder)
        raise
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)


def remove(target: str) -> None:
    """Delete an unregistered upload's folder (after its location's transaction committed)."""
    if is_upload_target(target) and os.path.realpath(target) != str(root()):
        shutil.rmtree(target, ignore_errors=True)
