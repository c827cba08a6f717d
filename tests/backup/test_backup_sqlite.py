"""Backup and restore on the embedded default (SQLite): `manage.py backup create|check|restore`.

A backup taken while another thread keeps writing audit events is one consistent snapshot; restored into
a fresh PLINTH_VAR_DIR by the real command in another process it gives a portal whose catalog, uploaded
descriptor files and audit chain are all there and verify. Missing, truncated, altered, foreign and
other-engine files are refused with a clear message before anything changes."""

from __future__ import annotations

import io
import json
import os
import re
import sqlite3
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.core.management import CommandError, call_command
from django.db import connection, transaction

from catalog import services as catalog_services
from catalog.models import Entity
from portal.backup import services
from portal.backup.engines import BackupError
from portal.core import audit
from portal.core.models import AuditEvent
from tests.factories import TeamFactory, write_files

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db(transaction=True)

DATASET = """apiVersion: plinth.dev/v1alpha1
kind: Dataset
metadata: {{name: {name}, tags: [backup]}}
spec: {{owner: backup-team, classification: internal}}
"""


STORED = "scaffolder/downloads/00000000-0000-4000-8000-00000000b0b0.zip"


@pytest.fixture
def populated(tmp_path, settings):
    """Entities from a folder location and from an upload (files under the upload root), and audit events."""
    settings.PLINTH_CATALOG_UPLOAD_ROOT = tmp_path / "var" / "catalog-uploads"
    settings.PLINTH_SCAFFOLDER_ROOT = str(tmp_path / "var" / "scaffolder")
    TeamFactory(name="backup-team")
    folder = write_files(tmp_path / "repo", {f"d{i}/catalog-info.yaml": DATASET.format(name=f"ds-{i}")
                                             for i in range(5)})
    catalog_services.location_register(target=str(folder), actor=None, file_roots=None)
    catalog_services.location_upload(source="ci-upload", files=[("catalog-info.yaml", DATASET.format(name="up-1"))],
                                     actor=None)
    storages["default"].save(STORED, ContentFile(b"a run's download archive"))
    for i in range(3):
        with transaction.atomic():
            audit.audit_record(actor=None, action="backup.test", target=f"test:{i}")
    refs = set(Entity.objects.values_list("ref", flat=True))
    assert {"dataset:default/ds-0", "dataset:default/up-1"} <= refs
    return refs


def _run_manage(var_dir: Path, *args: str) -> subprocess.CompletedProcess:
    """manage.py in its own process on a fresh embedded-default portal under var_dir."""
    env = {k: v for k, v in os.environ.items()
           if k not in {"DATABASE_URL", "PLINTH_SCAFFOLDER_ROOT", "DJANGO_SETTINGS_MODULE"}}
    env.update(PLINTH_VAR_DIR=str(var_dir), DJANGO_SETTINGS_MODULE="portal.settings.dev")
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env,  # noqa: S603
                          capture_output=True, text=True, timeout=180)


class Writer(threading.Thread):
    """Keeps appending audit events (one transaction each) until stopped."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.written = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                with transaction.atomic():
                    audit.audit_record(actor=None, action="backup.writer", target=f"test:w{self.written}")
                self.written += 1
        except BaseException as exc:  # noqa: BLE001 — reported by the test
            self.error = exc
        finally:
            connection.close()


def test_a_backup_taken_while_writing_restores_into_a_fresh_var_dir_and_audit_verify_passes(populated, tmp_path):
    writer = Writer()
    writer.start()
    while writer.written < 20:
        time.sleep(0.01)
    before = writer.written
    summary = services.backup_create(destination=tmp_path / "out" / "plinth.tar")
    during = writer.written
    while writer.written < during + 20:
        time.sleep(0.01)
    writer.stop.set()
    writer.join(30)
    assert writer.error is None, writer.error
    assert during > before, "the writer kept committing while the backup ran"
    assert list((tmp_path / "out").iterdir()) == [tmp_path / "out" / "plinth.tar"], "no temporary file left"

    # The snapshot holds a prefix of the chain: every event up to its head, none after.
    head = summary.audit_head["seq"]
    assert 3 + before <= head < AuditEvent.objects.count()

    fresh = tmp_path / "fresh-var"
    restored = _run_manage(fresh, "backup", "restore", str(tmp_path / "out" / "plinth.tar"))
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "migrations: all applied" in restored.stdout
    assert f"audit chain OK: {head} events verified" in restored.stdout
    assert "catalog-uploads was at" in restored.stdout, "the moved upload folder is pointed out"

    verify = _run_manage(fresh, "audit", "verify")
    assert verify.returncode == 0 and f"{head} events verified" in verify.stdout, verify.stdout + verify.stderr
    counted = _run_manage(fresh, "shell", "-c", "from catalog.models import Entity; "
                          "print(sorted(Entity.objects.values_list('ref', flat=True)))")
    assert counted.returncode == 0, counted.stderr
    assert set(eval(counted.stdout.strip().splitlines()[-1])) == populated  # noqa: S307 — our own repr
    uploaded = list((fresh / "catalog-uploads").rglob("catalog-info.yaml"))
    assert [p.read_text() for p in uploaded] == [DATASET.format(name="up-1")]
    assert (fresh / "storage" / STORED).read_bytes() == b"a run's download archive", "the shared storage folder"
    db = sqlite3.connect(fresh / "plinth.sqlite3")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


def test_restore_with_force_replaces_the_live_database_with_the_snapshot(populated, tmp_path):
    backup = tmp_path / "b.tar"
    services.backup_create(destination=backup)
    head = audit.chain_head()
    TeamFactory(name="later-team")
    catalog_services.location_register(
        target=str(write_files(tmp_path / "later", {"catalog-info.yaml": DATASET.format(name="later")})),
        actor=None, file_roots=None)
    assert audit.chain_head()["seq"] > head["seq"]

    with pytest.raises(CommandError, match="target database is not empty"):
        call_command("backup", "restore", str(backup))
    assert Entity.objects.filter(ref="dataset:default/later").exists(), "a refused restore changes nothing"

    out = io.StringIO()
    call_command("backup", "restore", str(backup), "--force", stdout=out)
    assert "audit chain OK" in out.getvalue()
    assert set(Entity.objects.values_list("ref", flat=True)) == populated
    assert audit.chain_head() == head
    ok, message, _ = audit.verify_database()
    assert ok, message


def _rewrite(source: Path, target: Path, change) -> None:
    """Copy a backup member by member; change(name, bytes) -> bytes | None (None drops the member)."""
    with tarfile.open(source) as src, tarfile.open(target, "w", format=tarfile.PAX_FORMAT) as dst:
        for member in src:
            data = change(member.name, src.extractfile(member).read())
            if data is not None:
                member.size = len(data)
                dst.addfile(member, io.BytesIO(data))


def _flip_in_database(name: str, data: bytes) -> bytes:
    if name != "database.sqlite3":
        return data
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1:]


def _other_engine(name: str, data: bytes) -> bytes:
    if name != "manifest.json":
        return data
    manifest = json.loads(data)
    manifest["engine"] = "postgresql"
    return json.dumps(manifest).encode()


@pytest.mark.parametrize(("case", "message"), [
    ("missing", "no such backup file"),
    ("not-a-tar", "not a Plinth backup"),
    ("truncated", "not a Plinth backup"),
    ("altered", "does not match its SHA-256"),
    ("no-manifest", "has no manifest"),
    ("other-engine", "backup of a postgresql database; this portal runs on sqlite"),
    ("garbage-database", "not a readable SQLite database|integrity check"),
    # A manifest edited by hand: refused before the swap, not a KeyError after it.
    ("manifest-no-createdAt", "'createdAt' is missing"),
    ("manifest-sha256-list", "'sha256' is not what a backup writes"),
    ("manifest-engine-list", "'engine' is not what a backup writes"),
    ("manifest-rows-text", "'rows' is not what a backup writes"),
])
def test_a_bad_backup_is_refused_with_a_clear_message_and_nothing_changes(populated, tmp_path, case, message):
    good = tmp_path / "good.tar"
    services.backup_create(destination=good)
    bad = tmp_path / f"{case}.tar"
    if case == "not-a-tar":
        bad.write_text("hello, I am not a backup\n")
    elif case == "truncated":
        bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    elif case == "altered":
        _rewrite(good, bad, _flip_in_database)
    elif case == "no-manifest":
        _rewrite(good, bad, lambda name, data: None if name == "manifest.json" else data)
    elif case == "other-engine":
        _rewrite(good, bad, _other_engine)
    elif case.startswith("manifest-"):
        key, value = {"no-createdAt": ("createdAt", None), "sha256-list": ("sha256", ["x"]),
                      "engine-list": ("engine", ["sqlite"]), "rows-text": ("rows", {"catalog_entity": "9"})}[case[9:]]

        def edit(name: str, data: bytes) -> bytes:
            if name != "manifest.json":
                return data
            manifest = json.loads(data)
            if value is None:
                del manifest[key]
            else:
                manifest[key] = value
            return json.dumps(manifest).encode()
        _rewrite(good, bad, edit)
    elif case == "garbage-database":
        import hashlib

        junk = b"SQLite format 3\x00" + b"\x07" * 8192

        def swap(name: str, data: bytes) -> bytes:
            if name == "database.sqlite3":
                return junk
            if name == "manifest.json":
                manifest = json.loads(data)
                manifest["sha256"]["database.sqlite3"] = hashlib.sha256(junk).hexdigest()
                return json.dumps(manifest).encode()
            return data
        _rewrite(good, bad, swap)
    database = Path(connection.settings_dict["NAME"])
    uploads = sorted(p.read_bytes() for p in Path(services.file_trees()["catalog-uploads"]).rglob("*") if p.is_file())
    head, refs = audit.chain_head(), set(Entity.objects.values_list("ref", flat=True))
    staged_before = set(database.parent.glob(".plinth-restore-*"))

    with pytest.raises(CommandError, match=message):
        call_command("backup", "restore", str(bad), "--force")
    if case != "missing":  # check does not know which engine is wanted: the altered manifest gives it away
        with pytest.raises(CommandError, match=message if case not in ("other-engine", "manifest-engine-list")
                           else "manifest is inconsistent|'engine' is not"):
            call_command("backup", "check", str(bad))

    connection.close()
    assert database.exists()
    assert audit.chain_head() == head
    assert set(Entity.objects.values_list("ref", flat=True)) == refs
    assert sorted(p.read_bytes() for p in Path(services.file_trees()["catalog-uploads"]).rglob("*")
                  if p.is_file()) == uploads
    assert set(database.parent.glob(".plinth-restore-*")) == staged_before, "the staging folder is removed"


def test_a_backup_that_fails_half_way_leaves_no_file(populated, tmp_path, monkeypatch):
    destination = tmp_path / "out" / "b.tar"
    destination.parent.mkdir()
    destination.write_bytes(b"the previous backup")

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(services, "_add_tree", broken)
    with pytest.raises(BackupError, match=f"writing the backup {destination} failed.*disk full"):
        services.backup_create(destination=destination)
    assert destination.read_bytes() == b"the previous backup", "the old backup is not replaced by a half one"
    assert [p.name for p in destination.parent.iterdir()] == ["b.tar"]


def test_check_describes_a_good_backup(populated, tmp_path):
    backup = tmp_path / "b.tar"
    services.backup_create(destination=backup)
    out = io.StringIO()
    call_command("backup", "check", str(backup), stdout=out)
    text = out.getvalue()
    assert "backup OK" in text and "engine sqlite" in text
    assert f"audit chain head #{audit.chain_head()['seq']}" in text
    assert re.search(r"catalog-uploads [1-9]", text), "the uploaded descriptor folder is in the backup"


@pytest.mark.django_db(transaction=False)
def test_the_postgresql_password_goes_to_a_private_passfile_never_to_the_environment_or_argv():
    from portal.backup import engines

    cfg = {"NAME": "plinth", "HOST": "db.internal", "PORT": 5432, "USER": "plinth",
           "PASSWORD": "p:a\\ss word", "OPTIONS": {"sslmode": "require"}}
    with engines.pg_environment(cfg) as env:
        passfile = Path(env["PGPASSFILE"])
        assert "PGPASSWORD" not in env and not any("p:a" in value for value in env.values())
        assert (env["PGHOST"], env["PGPORT"], env["PGUSER"], env["PGDATABASE"], env["PGSSLMODE"]) == (
            "db.internal", "5432", "plinth", "plinth", "require")
        assert passfile.stat().st_mode & 0o777 == 0o600
        assert passfile.read_text() == "*:*:*:*:p\\:a\\\\ss word\n"
    assert not passfile.exists(), "the passfile is removed when the command is done"


def test_a_restore_while_another_process_holds_the_write_lock_fails_clearly_and_changes_nothing(
        populated, tmp_path, monkeypatch):
    from portal.backup import engines

    backup = tmp_path / "b.tar"
    services.backup_create(destination=backup)
    TeamFactory(name="after-backup")
    uploads = Path(services.file_trees()["catalog-uploads"])
    (uploads / "after-backup.txt").write_text("written after the backup")
    monkeypatch.setattr(engines, "LOCK_TIMEOUT", 0.5)
    holder = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # the running portal, mid-write
    try:
        with pytest.raises(CommandError, match="stop the portal's web, worker and beat processes"):
            call_command("backup", "restore", str(backup), "--force")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    from portal.accounts.models import Team

    assert Team.objects.filter(name="after-backup").exists(), "the database is as it was"
    assert (uploads / "after-backup.txt").read_text() == "written after the backup", (
        "the files swapped in before the database failed are swapped back")
    assert not list(uploads.parent.glob(".catalog-uploads.*")), "staged file trees are removed"
    assert not list(uploads.glob(".plinth-*")), "the hidden folders of the swap are removed"
    assert [p.read_text() for p in uploads.rglob("catalog-info.yaml")] == [DATASET.format(name="up-1")]


@pytest.fixture
def tmpfs(tmp_path):
    """mount(folder): a tmpfs mounted there — a volume whose folder cannot be renamed (EBUSY), like a
    shared mount in production. Needs root; every mount below tmp_path is removed afterwards."""

    def mount(folder: Path) -> Path:
        if os.geteuid() != 0:
            pytest.skip("mounting a tmpfs needs root")
        folder.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(folder)],  # noqa: S603, S607
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        return folder

    yield mount
    with open("/proc/self/mounts") as fh:
        points = [line.split()[1].replace("\\040", " ") for line in fh]
    for point in sorted((p for p in points if p.startswith(str(tmp_path) + "/")), key=len, reverse=True):
        subprocess.run(["umount", point], check=False)  # noqa: S603, S607


def test_a_file_tree_that_is_a_mount_point_is_restored_inside_it(populated, tmp_path, settings, tmpfs):
    """A shared volume mounted at PLINTH_CATALOG_UPLOAD_ROOT: its contents are swapped, not the folder."""
    from portal.accounts.models import Team

    backup = tmp_path / "b.tar"
    services.backup_create(destination=backup)
    head = audit.chain_head()
    TeamFactory(name="after-backup")
    uploads = tmpfs(tmp_path / "volume" / "catalog-uploads")
    write_files(uploads, {"stale/catalog-info.yaml": "not in the backup"})
    settings.PLINTH_CATALOG_UPLOAD_ROOT = uploads

    out = io.StringIO()
    call_command("backup", "restore", str(backup), "--force", stdout=out)
    assert "migrations: all applied" in out.getvalue() and "audit chain OK" in out.getvalue()
    assert os.path.ismount(uploads), "the volume is still mounted there"
    assert [p.read_text() for p in uploads.rglob("catalog-info.yaml")] == [DATASET.format(name="up-1")]
    assert not list(uploads.glob(".plinth-*")), "the hidden folders of the swap are removed"
    assert sorted(p.name for p in uploads.parent.iterdir()) == ["catalog-uploads"], "nothing left beside it"
    assert audit.chain_head() == head
    assert not Team.objects.filter(name="after-backup").exists()


def test_a_mount_point_inside_a_file_tree_is_refused_before_anything_changes(populated, tmp_path, tmpfs):
    from portal.accounts.models import Team

    backup = tmp_path / "b.tar"
    services.backup_create(destination=backup)
    TeamFactory(name="after-backup")
    uploads = Path(services.file_trees()["catalog-uploads"])
    nested = tmpfs(uploads / "nested")
    (nested / "kept.txt").write_text("on the nested volume")
    before = sorted(str(p.relative_to(uploads)) for p in uploads.rglob("*"))

    with pytest.raises(CommandError, match=re.escape(f"{nested} is a mount point inside {uploads}")):
        call_command("backup", "restore", str(backup), "--force")
    assert Team.objects.filter(name="after-backup").exists(), "the database is as it was"
    assert os.path.ismount(nested) and (nested / "kept.txt").read_text() == "on the nested volume"
    assert sorted(str(p.relative_to(uploads)) for p in uploads.rglob("*")) == before


def test_a_file_tree_that_is_a_symbolic_link_is_restored_into_the_folder_it_names(populated, tmp_path, settings):
    backup = tmp_path / "b.tar"
    services.backup_create(destination=backup)
    real = tmp_path / "shared" / "uploads"
    write_files(real, {"stale/catalog-info.yaml": "not in the backup"})
    link = tmp_path / "var" / "uploads-link"
    link.symlink_to(real, target_is_directory=True)
    settings.PLINTH_CATALOG_UPLOAD_ROOT = link

    call_command("backup", "restore", str(backup), "--force", stdout=io.StringIO())
    assert link.is_symlink() and link.resolve() == real.resolve(), "the link is kept"
    assert [p.read_text() for p in real.rglob("catalog-info.yaml")] == [DATASET.format(name="up-1")]
    assert not list(link.parent.glob(".uploads-link*")) and not list(real.glob(".plinth-*"))


@pytest.mark.parametrize("case", ["folder", "missing-parent", "not-a-file"])
def test_backup_create_refuses_a_destination_it_cannot_write_before_writing_anything(populated, tmp_path, case):
    out = tmp_path / "out"
    out.mkdir()
    destination, message = {
        "folder": (out, f"{out} is a folder: name the backup file to write inside it"),
        "missing-parent": (Path("/proc/nope/x.tar"), "cannot create the folder for /proc/nope/x.tar"),
        "not-a-file": (out / "pipe", f"{out / 'pipe'} exists and is not a regular file"),
    }[case]
    if case == "not-a-file":
        os.mkfifo(destination)
    with pytest.raises(CommandError, match=re.escape(message)):
        call_command("backup", "create", str(destination))
    assert [p.name for p in out.iterdir()] == (["pipe"] if case == "not-a-file" else []), "nothing left behind"
    if case == "not-a-file":
        assert destination.is_fifo()
