"""Descriptors sent as content (`POST /api/v1/locations/upload`, `plinth catalog register ./folder`).

The CLI usually runs on a CI runner, where the server cannot read the files. An upload is a location
of its own type, `upload:<folder>` (one folder per `source` name), read like a folder location
(`catalog.services.location_upload`): the same reader, validation, size caps, ownership claims and
conflict rules as every other registration. Sending the same source again replaces the files and
re-reads them, like a refresh.

**The files live in the database** (`UploadBundle`, written in the registration's transaction), so
every web and worker node reads the same ones and a node keeps nothing of its own: each node copies a
bundle into its own `PLINTH_CATALOG_UPLOAD_ROOT/<folder>` when it first needs it (a refresh, a docs
build, a template run) and again when the bundle's digest changes — a cache, never a shared mount.
Sources are named `upload:<folder>/<path>` (the same on every node); `local_path` maps one to this
node's copy.

This module owns the files only: naming, checking the paths, packing, staging, swapping and the
per-node copies."""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import tempfile
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import orjson
from django.conf import settings
from django.core.exceptions import ValidationError

from .descriptors.errors import DescriptorError
from .ingest.reader import DESCRIPTOR_NAME
from .ingest.reader import UPLOAD_PREFIX as PREFIX

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


def folder_name(source: str) -> str:
    """The folder of one source: readable slug + hash (two sources never share a folder)."""
    slug = re.sub(r"[^a-z0-9]+", "-", source.lower()).strip("-")[:60] or "upload"
    digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    return f"{slug}-{digest}"


_NAME = re.compile(r"^[a-z0-9-]{1,60}-[0-9a-f]{16}$")


def folder_for(source: str) -> Path:
    """This node's copy of a source's files."""
    return root() / folder_name(source)


def target_for(source: str) -> str:
    """The location target of a source's upload: the same on every node."""
    return PREFIX + folder_name(source)


def folder_target(target: str) -> str:
    """`upload:<folder>` of an upload location's target (`upload:<folder>` or, when one descriptor of
    the folder is the location, `upload:<folder>/<path>`)."""
    return PREFIX + split(target.strip())[0]


def is_upload_target(target: str) -> bool:
    """Whether a location target is an upload (`upload:<folder>`), or a path in this node's copies
    (registered only through uploads)."""
    target = target.strip()
    if target.startswith(PREFIX):
        return True
    real = os.path.realpath(target or ".")
    base = str(root())
    return real == base or real.startswith(base + os.sep)


def split(name: str) -> tuple[str, str]:
    """`upload:<folder>[/<path>]` → (folder, path or ""), or DescriptorError."""
    if not name.startswith(PREFIX):
        raise DescriptorError("Not an uploaded folder (upload:<folder>).", source=name[:300], field="target")
    folder, _, rest = name[len(PREFIX):].partition("/")
    if not _NAME.match(folder):
        raise DescriptorError("No such uploaded folder.", source=name[:300], field="target")
    return folder, rest


def pack(files: list[tuple[PurePosixPath, str | bytes]]) -> tuple[bytes, str]:
    """The files as stored in `UploadBundle.files` (zlib of a JSON list of [path, text], or [path,
    base64, "base64"] for a file that is not text: an image of a published repository's docs) and their
    digest (SHA-256 of that JSON): the digest names a version of the folder on every node."""
    raw = orjson.dumps(sorted(
        [str(path), content] if isinstance(content, str) else [str(path), base64.b64encode(content).decode(), "base64"]
        for path, content in files))
    return zlib.compress(raw, 6), hashlib.sha256(raw).hexdigest()


def unpack(blob: bytes) -> list[tuple[PurePosixPath, str | bytes]]:
    return [(PurePosixPath(path), base64.b64decode(content) if encoding else content)
            for path, content, *encoding in orjson.loads(zlib.decompress(bytes(blob)))]


def save(*, source: str, blob: bytes, digest: str) -> None:
    """Store a source's files (inside the registration's transaction: both are stored, or neither)."""
    from .models import UploadBundle

    UploadBundle.objects.update_or_create(name=folder_name(source),
                                          defaults={"source": source, "files": blob, "digest": digest})


def _marker(folder: str) -> Path:
    return root() / ".digests" / folder


def _copy_digest(folder: str) -> str | None:
    try:
        return _marker(folder).read_text().strip() if (root() / folder).is_dir() else None
    except OSError:
        return None


def _mark(folder: str, digest: str | None) -> None:
    marker = _marker(folder)
    if digest is None:
        marker.unlink(missing_ok=True)
        return
    marker.parent.mkdir(exist_ok=True)
    partial = marker.with_name(f".{folder}.{uuid.uuid4().hex[:8]}")
    partial.write_text(digest)
    partial.replace(marker)


def materialise(folder: str) -> Path:
    """This node's copy of an uploaded folder, made or renewed from the database when its digest
    differs from the stored one (the stored version wins: an upload being written on another node is
    not seen until it commits). DescriptorError when the database holds no such upload."""
    from .models import UploadBundle

    digest = UploadBundle.objects.filter(name=folder).values_list("digest", flat=True).first()
    if digest is None:
        raise DescriptorError("The uploaded files of this location are not stored (send them again with "
                              "`plinth catalog register`).", source=PREFIX + folder, field="target")
    path = root() / folder
    if _copy_digest(folder) == digest:
        return path
    with locked(path):
        row = UploadBundle.objects.filter(name=folder).values_list("digest", "files").first()
        if row is None:
            raise DescriptorError("The uploaded files of this location are not stored.", source=PREFIX + folder,
                                  field="target")
        digest, blob = row
        if _copy_digest(folder) != digest:
            with swapped_in(stage(unpack(blob)), path, digest):
                pass
    return path


def file_path(source: str) -> str:
    """Where a stored source (an entity's, a location's target) is on this node: an uploaded file's copy
    (made if needed; DescriptorError when its upload is gone), any other path as it is."""
    return local_path(source) if source.startswith(PREFIX) else source


def local_path(name: str) -> str:
    """This node's path of `upload:<folder>/<path>` (the folder copied first if needed), kept inside
    the folder; DescriptorError otherwise."""
    folder, rest = split(name)
    base = materialise(folder).resolve()
    real = os.path.realpath(os.path.join(base, rest)) if rest else str(base)
    if real != str(base) and not real.startswith(str(base) + os.sep):
        raise DescriptorError("Path escapes the uploaded folder.", source=name[:300])
    return real


def check(source: str, files: list[tuple[str, str | bytes]],
          entry: str | None = None) -> list[tuple[PurePosixPath, str | bytes]]:
    """The files as safe relative paths, or a ValidationError naming the failing field
    (`source`, `files`, `files[3].path`). `entry`: the one descriptor that is the location (any name;
    it must be one of the files) instead of every catalog-info.yaml of the folder."""
    if not source.strip() or len(source) > MAX_SOURCE or not _SOURCE_OK.match(source):
        raise ValidationError({"source": [f"1–{MAX_SOURCE} printable ASCII characters, e.g. github.com/acme/fraud."]})
    if not files:
        raise ValidationError({"files": ["Send at least one file."]})
    if len(files) > MAX_FILES:
        raise ValidationError({"files": [f"At most {MAX_FILES} files per upload; got {len(files)}."]})
    seen: set[PurePosixPath] = set()
    folders: dict[PurePosixPath, str] = {}  # folder → a path sent inside it
    out = []
    for index, (raw, content) in enumerate(files):
        where = f"files[{index}].path"
        problem = _path_problem(raw)
        if problem:
            raise ValidationError({where: [problem]})
        path = PurePosixPath(raw)
        if path in seen:
            raise ValidationError({where: [f"'{raw}' is sent twice."]})
        if clash := _clash(path, seen, folders):
            raise ValidationError({where: [clash]})
        seen.add(path)
        for parent in path.parents[:-1]:  # not "."
            folders.setdefault(parent, raw)
        size = len(content) if isinstance(content, bytes) else len(content.encode("utf-8", "surrogatepass"))
        if size > settings.PLINTH_CATALOG_MAX_BYTES:
            raise ValidationError({f"files[{index}].content": [
                f"Over the catalog's limit of {settings.PLINTH_CATALOG_MAX_BYTES} bytes per file."]})
        out.append((path, content))
    if entry is not None:
        if _path_problem(entry) or PurePosixPath(entry) not in seen:
            raise ValidationError({"entry": [f"'{entry[:MAX_PATH]}' is not one of the files sent."]})
    elif not any(p.name == DESCRIPTOR_NAME for p in seen):
        raise ValidationError({"files": [f"No {DESCRIPTOR_NAME}: the folder's descriptors are read from files of "
                                         "that name (other files may be what their $text/$json/$yaml refer to)."]})
    return out


def _clash(path: PurePosixPath, files: set[PurePosixPath], folders: dict[PurePosixPath, str]) -> str | None:
    """Why `path` cannot sit beside the paths sent before it: a file and a folder of one name."""
    if path in folders:
        return f"'{path}' is sent as a file, and '{folders[path]}' puts a folder of that name in its place."
    for parent in path.parents[:-1]:
        if parent in files:
            return f"'{parent}' is sent as a file, and '{path}' puts a folder of that name in its place."
    return None


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


def stage(files: list[tuple[PurePosixPath, str | bytes]]) -> Path:
    """Write the files into a new folder next to the targets (same file system: renames are atomic).
    Nothing is left behind when a file cannot be written."""
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=root()))
    try:
        for path, content in files:
            dest = staging.joinpath(*path.parts)
            dest.parent.mkdir(parents=True, exist_ok=True)
            with open(dest, "xb") as handle:
                handle.write(content if isinstance(content, bytes) else content.encode("utf-8", "surrogatepass"))
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
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
def swapped_in(staging: Path, folder: Path, digest: str) -> Iterator[None]:
    """Put the staged files (of `digest`) in place of this node's copy; if the body raises, the old
    files and their digest come back."""
    backup, before = None, _copy_digest(folder.name)
    if folder.exists():
        backup = folder.with_name(f".old-{folder.name}-{uuid.uuid4().hex[:8]}")
        folder.rename(backup)
    staging.rename(folder)
    _mark(folder.name, digest)
    try:
        yield
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        if backup is not None:
            backup.rename(folder)
        _mark(folder.name, before if backup is not None else None)
        raise
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)


def remove(target: str) -> None:
    """Delete this node's copy of an unregistered upload (after its location's transaction committed;
    the stored files went with the location)."""
    if target.startswith(PREFIX):
        try:
            folder, _ = split(target)
        except DescriptorError:
            return
        shutil.rmtree(root() / folder, ignore_errors=True)
        _mark(folder, None)
    elif is_upload_target(target) and os.path.realpath(target) != str(root()):
        shutil.rmtree(target, ignore_errors=True)
