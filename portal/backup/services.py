"""Backups of a whole portal and their restore (`manage.py backup create|check|restore`).

A backup is one uncompressed tar file:

    database.sqlite3 | database.pgdump    the database snapshot (engines.py)
    files/<tree>/…                        local file state the database refers to (FILE_TREES)
    manifest.json                         last: format, engine, audit chain head, SHA-256 of every member

It is written to a temporary file beside the destination and renamed into place at the end, so a
destination path holds either nothing or a whole backup. Restore reads the archive into a staging folder
first and checks everything (manifest, every checksum, member paths, the database file itself) before
anything is changed; then it copies the file trees into hidden folders inside their targets, swaps them in
by renames (undone if anything after fails), replaces the database last — the one step that cannot be
undone — and finishes with the migrations check and `audit verify`.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.storage import FileSystemStorage, storages
from django.db import connections
from django.db.migrations.executor import MigrationExecutor

from catalog.models import Entity, Location
from portal.accounts.models import Team
from portal.core import audit
from portal.core.models import AuditEvent
from portal.scaffolder import conf as scaffolder_conf

from . import engines
from .engines import BackupError

FORMAT = "plinth-backup"
VERSION = 1
MANIFEST = "manifest.json"
DB_MEMBER = {"sqlite": "database.sqlite3", "postgresql": "database.pgdump"}
CHUNK = 1024 * 1024


def file_trees() -> dict[str, Path]:
    """Local folders whose files the database refers to, by their name in the archive.

    Left out on purpose: scaffolder workspaces (a run's scratch folder, removed when it ends) and secret
    files (per run, deleted when it ends, useless without SECRET_KEY), the cache, collected static files,
    the embedded broker's queue and beat's schedule (rebuilt or re-sent), the demo Prometheus data."""
    trees = {
        "catalog-uploads": Path(settings.PLINTH_CATALOG_UPLOAD_ROOT),
        "scaffolder-published": scaffolder_conf.publish_root(),
    }
    # The shared storage (run downloads, cost imports in flight) when it is a folder; object storage
    # (PLINTH_S3_BUCKET) is backed up by the bucket's own tooling (versioning, replication).
    storage = storages["default"]
    if isinstance(storage, FileSystemStorage):
        trees["storage"] = Path(storage.location)
    return trees


def data_tables() -> list[str]:
    """The tables whose rows make a database "not empty" (a freshly migrated one has none)."""
    return [m._meta.db_table for m in (get_user_model(), Team, Location, Entity, AuditEvent)]


@dataclass
class Summary:
    path: Path
    engine: str
    created_at: str
    bytes: int
    database_bytes: int
    files: dict[str, int]
    audit_head: dict
    rows: dict[str, int]


@dataclass
class RestoreResult:
    summary: Summary
    moved_roots: dict[str, tuple[str, str]] = field(default_factory=dict)
    pending_migrations: list[str] = field(default_factory=list)
    audit_ok: bool = False
    audit_message: str = ""


# -- create -------------------------------------------------------------------------------------------

class _HashingReader:
    def __init__(self, fh, digest) -> None:
        self.fh, self.digest = fh, digest

    def read(self, size: int = -1) -> bytes:
        data = self.fh.read(size)
        self.digest.update(data)
        return data


def _add_file(tar: tarfile.TarFile, path: Path, arcname: str, checksums: dict[str, str]) -> int:
    with path.open("rb") as fh:
        info = tar.gettarinfo(arcname=arcname, fileobj=fh)
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        digest = hashlib.sha256()
        tar.addfile(info, _HashingReader(fh, digest))
    checksums[arcname] = digest.hexdigest()
    return info.size


def _add_tree(tar: tarfile.TarFile, root: Path, name: str, checksums: dict[str, str]) -> int:
    """Regular files below root (symbolic links and special files are not followed or kept)."""
    count = 0
    if not root.is_dir():
        return 0
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for filename in sorted(files):
            path = Path(folder) / filename
            if path.is_symlink() or not path.is_file():
                continue
            rel = path.relative_to(root).as_posix()
            with contextlib.suppress(FileNotFoundError):  # removed while we walked: not part of the backup
                _add_file(tar, path, f"files/{name}/{rel}", checksums)
                count += 1
    return count


@contextlib.contextmanager
def _atomic_output(destination: Path) -> Iterator[Path]:
    """A temporary file beside the destination, renamed over it only when the block succeeds."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.", suffix=".partial")
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, destination)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _sqlite_manifest_facts(path: Path) -> tuple[dict, dict[str, int]]:
    conn = sqlite3.connect(engines.read_only_uri(path), uri=True)
    try:
        row = conn.execute("SELECT seq, last_hash FROM core_auditchainhead WHERE id = 1").fetchone()
    finally:
        conn.close()
    head = {"seq": row[0], "hash": row[1]} if row else {"seq": 0, "hash": audit.GENESIS}
    return head, engines.sqlite_counts(path, data_tables())


def _check_destination(destination: Path) -> None:
    """Refuse a destination the backup could not be renamed to, before the work of writing it."""
    if destination.is_dir():
        raise BackupError(f"{destination} is a folder: name the backup file to write inside it "
                          f"(e.g. {destination / 'plinth.tar'})")
    if destination.exists() and not destination.is_file():
        raise BackupError(f"{destination} exists and is not a regular file: name another backup file")
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BackupError(f"cannot create the folder for {destination}: {exc}") from exc
    if not os.access(destination.parent, os.W_OK | os.X_OK):
        raise BackupError(f"cannot write {destination}: its folder {destination.parent} is not writable")


def backup_create(*, destination: Path, alias: str = "default") -> Summary:
    """Write a backup of the database and FILE_TREES to `destination` (replaced only when complete)."""
    engine = engines.engine_of(alias)
    destination = Path(destination)
    _check_destination(destination)
    try:
        return _write_backup(destination, engine, alias)
    except OSError as exc:
        raise BackupError(f"writing the backup {destination} failed, nothing was written there: {exc}") from exc


def _write_backup(destination: Path, engine: str, alias: str) -> Summary:
    checksums: dict[str, str] = {}
    with tempfile.TemporaryDirectory(dir=destination.parent, prefix=".plinth-backup-") as staging:
        snapshot = Path(staging) / DB_MEMBER[engine]
        if engine == "sqlite":
            engines.sqlite_snapshot(engines.sqlite_path(alias), snapshot)
            engines.sqlite_check(snapshot)
            head, rows = _sqlite_manifest_facts(snapshot)
        else:
            # The dump is one snapshot of its own; these figures are read just before it (informative).
            head, rows = audit.chain_head(), engines.pg_counts(data_tables(), alias)
            engines.pg_dump(snapshot, alias)
        with _atomic_output(destination) as tmp, tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
            database_bytes = _add_file(tar, snapshot, DB_MEMBER[engine], checksums)
            files = {name: _add_tree(tar, root, name, checksums) for name, root in file_trees().items()}
            manifest = {
                "format": FORMAT, "version": VERSION, "engine": engine,
                "createdAt": datetime.now(UTC).isoformat(timespec="seconds"),
                "database": DB_MEMBER[engine], "databaseBytes": database_bytes,
                "files": files, "roots": {name: str(root) for name, root in file_trees().items()},
                "auditHead": head, "rows": rows, "sha256": checksums,
            }
            body = json.dumps(manifest, indent=1, sort_keys=True).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mode, info.mtime = len(body), 0o600, int(datetime.now(UTC).timestamp())
            tar.addfile(info, io.BytesIO(body))
    return _summary(destination, manifest)


def _summary(path: Path, manifest: dict) -> Summary:
    return Summary(path=path, engine=manifest["engine"], created_at=manifest["createdAt"],
                   bytes=path.stat().st_size, database_bytes=manifest["databaseBytes"], files=manifest["files"],
                   audit_head=manifest["auditHead"], rows=manifest["rows"])


# -- check --------------------------------------------------------------------------------------------

def _safe_member_path(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise BackupError(f"not a Plinth backup: member {name!r} points outside the archive")
    return path


def _unpack(source: Path, staging: Path) -> dict:
    """Extract every member into staging while hashing it, then hold it against the manifest."""
    found: dict[str, str] = {}
    manifest = None
    try:
        with tarfile.open(source, "r:") as tar:
            for member in tar:
                path = _safe_member_path(member.name)
                if member.isdir():
                    continue
                if not member.isfile():
                    raise BackupError(f"not a Plinth backup: member {member.name!r} is not a regular file")
                fh = tar.extractfile(member)
                if member.name == MANIFEST:
                    manifest = json.loads(fh.read())
                    continue
                out = staging / path
                out.parent.mkdir(parents=True, exist_ok=True)
                digest = hashlib.sha256()
                with out.open("wb") as dst:
                    while chunk := fh.read(CHUNK):
                        digest.update(chunk)
                        dst.write(chunk)
                found[member.name] = digest.hexdigest()
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise BackupError(f"not a Plinth backup, or a damaged one ({exc.__class__.__name__}: {exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError("not a Plinth backup: it has no manifest (truncated, or another kind of file)")
    if manifest.get("version") != VERSION:
        raise BackupError(f"this backup has format version {manifest.get('version')}; this release reads {VERSION}")
    _check_manifest(manifest)
    expected = manifest["sha256"]
    for name, digest in expected.items():
        if name not in found:
            raise BackupError(f"the backup is incomplete: {name} is missing")
        if found[name] != digest:
            raise BackupError(f"the backup is damaged or was altered: {name} does not match its SHA-256")
    extra = sorted(set(found) - set(expected))
    if extra:
        raise BackupError(f"the backup was altered: {extra[0]} is not in its manifest")
    return manifest


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_map(value, check) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) and check(v) for k, v in value.items())


# Every manifest field the check, the restore and their summaries read, with its shape: checked before
# anything is restored, so a manifest altered by hand is refused whole rather than failing after the swap.
_MANIFEST_SHAPE = {
    "engine": lambda v: isinstance(v, str), "createdAt": lambda v: isinstance(v, str),
    "database": lambda v: isinstance(v, str), "databaseBytes": _is_int,
    "files": lambda v: _is_map(v, _is_int), "rows": lambda v: _is_map(v, _is_int),
    "sha256": lambda v: _is_map(v, lambda d: isinstance(d, str)),
    "auditHead": lambda v: isinstance(v, dict) and _is_int(v.get("seq")) and isinstance(v.get("hash"), str),
}


def _check_manifest(manifest: dict) -> None:
    for key, fits in _MANIFEST_SHAPE.items():
        if key not in manifest or not fits(manifest[key]):
            raise BackupError(f"the backup's manifest is damaged or was altered: {key!r} is "
                              f"{'missing' if key not in manifest else 'not what a backup writes'}")
    roots = manifest.get("roots")
    if roots is not None and not _is_map(roots, lambda v: isinstance(v, str)):
        raise BackupError("the backup's manifest is damaged or was altered: 'roots' is not what a backup writes")


def _check_into(source: Path, staging: Path, engine: str | None) -> dict:
    source = Path(source)
    if not source.is_file():
        raise BackupError(f"{source}: no such backup file")
    manifest = _unpack(source, staging)
    if engine and manifest.get("engine") != engine:
        raise BackupError(f"this is a backup of a {manifest.get('engine')} database; this portal runs on "
                          f"{engine} (restore it into a portal configured like the one it came from)")
    if manifest.get("database") != DB_MEMBER.get(manifest.get("engine")):
        raise BackupError(f"the backup's manifest is inconsistent (a {manifest.get('engine')} backup holding "
                          f"{manifest.get('database')}): it was altered")
    database = staging / manifest["database"]
    if manifest["engine"] == "sqlite":
        engines.sqlite_check(database)
    else:
        engines.pg_check(database)
    return manifest


def backup_check(*, source: Path) -> Summary:
    """Everything restore checks before it changes anything; raises BackupError naming the problem."""
    with tempfile.TemporaryDirectory(prefix=".plinth-check-") as staging:
        manifest = _check_into(Path(source), Path(staging), engine=None)
    return _summary(Path(source), manifest)


# -- restore ------------------------------------------------------------------------------------------

def database_rows(alias: str = "default") -> dict[str, int]:
    if engines.engine_of(alias) == "sqlite":
        return engines.sqlite_counts(engines.sqlite_path(alias), data_tables())
    return engines.pg_counts(data_tables(), alias)


# Hidden folders a restore makes inside each file tree (removed when it ends; a leftover one from a restore
# that was killed is replaced with the rest of the tree's old files by the next restore).
RESTORING, REPLACED = ".plinth-restoring-", ".plinth-replaced-"


@dataclass
class _TreeSwap:
    """One file tree's restore. The backup's files are copied into a hidden folder inside the tree and
    swapped in entry by entry, so every move is a rename within the tree's own file system: the folder
    itself may be a mount point (a shared volume, which cannot be renamed: EBUSY) or a symbolic link
    (which stays), and the swap can be undone until the database is replaced."""

    target: Path
    new: Path
    old: Path
    moved_out: list[str] = field(default_factory=list)
    moved_in: list[str] = field(default_factory=list)


def _stage_tree(staged: Path, target: Path) -> _TreeSwap:
    try:
        target.mkdir(parents=True, exist_ok=True)
        mounted = [p for p in sorted(target.iterdir()) if p.is_dir() and not p.is_symlink() and os.path.ismount(p)]
        if mounted:
            raise BackupError(f"{mounted[0]} is a mount point inside {target}, which restore cannot replace "
                              f"(mount the volume at {target} itself); nothing was changed")
        swap = _TreeSwap(target=target, new=Path(tempfile.mkdtemp(dir=target, prefix=RESTORING)),
                         old=Path(tempfile.mkdtemp(dir=target, prefix=REPLACED)))
    except OSError as exc:
        raise BackupError(f"cannot restore files into {target} ({exc}); nothing was changed") from exc
    try:
        if staged.is_dir():
            shutil.copytree(staged, swap.new, dirs_exist_ok=True)
    except OSError as exc:
        _discard(swap)
        raise BackupError(f"cannot copy the backup's files into {target} ({exc}); nothing was changed") from exc
    return swap


def _swap_in(swap: _TreeSwap) -> None:
    try:
        for name in sorted(os.listdir(swap.target)):
            if name not in (swap.new.name, swap.old.name):
                os.rename(swap.target / name, swap.old / name)
                swap.moved_out.append(name)
        for name in sorted(os.listdir(swap.new)):
            os.rename(swap.new / name, swap.target / name)
            swap.moved_in.append(name)
    except OSError as exc:
        raise BackupError(f"cannot swap the backup's files into {swap.target} ({exc}); nothing was changed") from exc


def _swap_back(swap: _TreeSwap) -> None:
    for name in reversed(swap.moved_in):
        os.rename(swap.target / name, swap.new / name)
    swap.moved_in.clear()
    for name in reversed(swap.moved_out):
        os.rename(swap.old / name, swap.target / name)
    swap.moved_out.clear()


def _discard(swap: _TreeSwap) -> None:
    """Remove the hidden folders: the backup's files when not swapped in, the replaced ones when they were."""
    shutil.rmtree(swap.new, ignore_errors=True)
    shutil.rmtree(swap.old, ignore_errors=True)


def _undo(swaps: list[_TreeSwap]) -> list[str]:
    """Put every tree's own files back; returns what could not be put back (its files are kept aside)."""
    problems = []
    for swap in reversed(swaps):
        try:
            _swap_back(swap)
        except OSError as exc:
            problems.append(f"{swap.target}: {exc} (its files are in {swap.old} and {swap.new})")
            continue
        _discard(swap)
    return problems


def pending_migrations(alias: str = "default") -> list[str]:
    connection = connections[alias]
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    return [f"{m.app_label}.{m.name}" for m, _backwards in plan]


def backup_restore(*, source: Path, force: bool = False, alias: str = "default") -> RestoreResult:
    """Replace the configured database and file trees with the backup's, then verify the result."""
    engine = engines.engine_of(alias)
    trees = file_trees()
    # Staged beside the database (SQLite) or in PLINTH_VAR_DIR: room for the whole backup is needed there.
    staging_parent = engines.sqlite_path(alias).parent if engine == "sqlite" else Path(settings.VAR_DIR)
    staging_parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=staging_parent, prefix=".plinth-restore-") as staging_dir:
        staging = Path(staging_dir)
        manifest = _check_into(Path(source), staging, engine)
        rows = database_rows(alias)
        if any(rows.values()) and not force:
            held = ", ".join(f"{n} {t}" for t, n in rows.items() if n)
            raise BackupError(f"the target database is not empty ({held}); restore with --force to replace it")
        # Files first, by renames that can be undone; the database last: it cannot be.
        replace = engine == "postgresql" and bool(connections[alias].introspection.table_names())
        swaps: list[_TreeSwap] = []
        try:
            for name, root in trees.items():
                swaps.append(_stage_tree(staging / "files" / name, root))
            for swap in swaps:
                _swap_in(swap)
            connections[alias].close()
            if engine == "sqlite":
                engines.sqlite_restore(staging / manifest["database"], engines.sqlite_path(alias))
            else:
                engines.pg_restore(staging / manifest["database"], replace=replace, alias=alias)
        except BaseException as exc:
            problems = _undo(swaps)
            if problems:
                raise BackupError(f"{exc}; and putting the files back failed: {'; '.join(problems)}") from exc
            raise
        for swap in swaps:
            _discard(swap)
    connections[alias].close()
    result = RestoreResult(summary=_summary(Path(source), manifest))
    # Locations store absolute paths: a file tree restored to another folder is still named by its old one.
    result.moved_roots = {name: (old, str(trees[name])) for name, old in (manifest.get("roots") or {}).items()
                          if name in trees and old != str(trees[name]) and manifest["files"].get(name)}
    result.pending_migrations = pending_migrations(alias)
    ok, message, _count = audit.verify_database()
    missing = audit.guard_installed(connections[alias])
    if missing:
        ok, message = False, f"{message}; append-only triggers missing: {', '.join(missing)}"
    result.audit_ok, result.audit_message = ok, message
    return result
