"""Backup and restore on the production profile: pg_dump of the live database, restored by the real
`manage.py backup restore` (another process, DATABASE_URL naming a second, empty database) into a portal
whose catalog is there and whose `audit verify` passes — also into a freshly migrated one (what a migrate
Job leaves on a new cluster) without --force; a damaged dump is refused before pg_restore runs; an error
in psql is reported as psql's, and a pg_restore that fails half-way commits nothing."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction

from catalog import services as catalog_services
from catalog.models import Entity
from portal.backup import services
from portal.core import audit
from tests.factories import TeamFactory, write_files

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.prod_smoke, pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("postgres_only")]

DATASET = """apiVersion: plinth.dev/v1alpha1
kind: Dataset
metadata: {{name: {name}}}
spec: {{owner: pg-backup-team, classification: internal}}
"""


def _url(dbname: str) -> str:
    cfg = connection.settings_dict
    auth = quote(cfg["USER"] or "", safe="")
    if cfg.get("PASSWORD"):
        auth += ":" + quote(cfg["PASSWORD"], safe="")
    port = f":{cfg['PORT']}" if cfg.get("PORT") else ""
    return f"postgres://{auth}@{cfg['HOST'] or '127.0.0.1'}{port}/{dbname}"


@pytest.fixture
def second_database():
    name = f"{connection.settings_dict['NAME']}_restored"
    admin = psycopg.connect(_url("postgres"), autocommit=True)
    admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def populated(tmp_path, settings):
    settings.PLINTH_CATALOG_UPLOAD_ROOT = tmp_path / "uploads"
    settings.PLINTH_SCAFFOLDER_ROOT = str(tmp_path / "scaffolder")
    TeamFactory(name="pg-backup-team")
    folder = write_files(tmp_path / "repo", {f"d{i}/catalog-info.yaml": DATASET.format(name=f"pg-{i}")
                                             for i in range(4)})
    catalog_services.location_register(target=str(folder), actor=None, file_roots=None)
    for i in range(3):
        with transaction.atomic():
            audit.audit_record(actor=None, action="backup.test", target=f"test:{i}")
    return set(Entity.objects.values_list("ref", flat=True))


def _manage(database: str, var_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in {"PLINTH_SCAFFOLDER_ROOT", "DJANGO_SETTINGS_MODULE"}}
    env.update(DATABASE_URL=_url(database), PLINTH_VAR_DIR=str(var_dir), DJANGO_SETTINGS_MODULE="portal.settings.test")
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env,  # noqa: S603
                          capture_output=True, text=True, timeout=300)


def test_pg_dump_restores_into_a_second_database_and_audit_verify_passes(populated, second_database, tmp_path):
    backup = tmp_path / "plinth.tar"
    summary = services.backup_create(destination=backup)
    assert summary.engine == "postgresql"
    with tarfile.open(backup) as tar:
        assert tar.extractfile("database.pgdump").read(5) == b"PGDMP", "a plain pg_restore archive inside"
    head = audit.chain_head()

    restored = _manage(second_database, tmp_path / "var", "backup", "restore", str(backup))
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "migrations: all applied" in restored.stdout
    assert f"audit chain OK: {head['seq']} events verified; head {head['hash']}" in restored.stdout
    verify = _manage(second_database, tmp_path / "var", "audit", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr

    with psycopg.connect(_url(second_database)) as conn:
        refs = {row[0] for row in conn.execute("SELECT ref FROM catalog_entity")}
        triggers = {row[0] for row in conn.execute("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")}
    assert refs == populated
    assert {"core_auditevent_append_only", "core_auditchainhead_forward_only"} <= triggers

    with psycopg.connect(_url(second_database), autocommit=True) as conn:
        conn.execute("CREATE TABLE stray_after_backup (x int)")
    again = _manage(second_database, tmp_path / "var", "backup", "restore", str(backup))
    assert again.returncode != 0 and "target database is not empty" in again.stderr
    forced = _manage(second_database, tmp_path / "var", "backup", "restore", str(backup), "--force")
    assert forced.returncode == 0 and "audit chain OK" in forced.stdout, forced.stdout + forced.stderr
    with psycopg.connect(_url(second_database)) as conn:
        assert {row[0] for row in conn.execute("SELECT ref FROM catalog_entity")} == populated
        assert conn.execute("SELECT to_regclass('public.stray_after_backup')").fetchone()[0] is None, (
            "--force replaces the whole public schema")


def test_a_damaged_dump_is_refused_before_pg_restore_runs(populated, tmp_path):
    good = tmp_path / "good.tar"
    services.backup_create(destination=good)
    bad = tmp_path / "bad.tar"
    junk = b"PGDMP" + b"\x00" * 4096
    with tarfile.open(good) as src, tarfile.open(bad, "w", format=tarfile.PAX_FORMAT) as dst:
        for member in src:
            data = src.extractfile(member).read()
            if member.name == "database.pgdump":
                data = junk
            elif member.name == "manifest.json":  # a consistent manifest: pg_restore's own reading must refuse it
                manifest = json.loads(data)
                manifest["sha256"]["database.pgdump"] = hashlib.sha256(junk).hexdigest()
                data = json.dumps(manifest).encode()
            member.size = len(data)
            dst.addfile(member, io.BytesIO(data))
    refs, head = set(Entity.objects.values_list("ref", flat=True)), audit.chain_head()
    with pytest.raises(CommandError, match="reading the dump's table of contents failed"):
        call_command("backup", "restore", str(bad), "--force")
    assert set(Entity.objects.values_list("ref", flat=True)) == refs
    assert audit.chain_head() == head


def test_a_restore_into_a_freshly_migrated_database_needs_no_force_and_replaces_its_schema(
        populated, second_database, tmp_path):
    """Migrated but empty: no data to protect, but its tables (insights' partitions among them) are
    replaced with the backup's schema; `pg_restore --clean` alone fails on those partitions."""
    backup = tmp_path / "plinth.tar"
    services.backup_create(destination=backup)
    head = audit.chain_head()
    migrated = _manage(second_database, tmp_path / "var", "migrate", "-v0")
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr

    restored = _manage(second_database, tmp_path / "var", "backup", "restore", str(backup))
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "migrations: all applied" in restored.stdout
    assert f"audit chain OK: {head['seq']} events verified" in restored.stdout
    with psycopg.connect(_url(second_database)) as conn:
        assert {row[0] for row in conn.execute("SELECT ref FROM catalog_entity")} == populated


def test_an_error_in_psql_is_reported_as_psqls_and_changes_nothing(populated, second_database, tmp_path):
    backup = tmp_path / "plinth.tar"
    services.backup_create(destination=backup)
    with psycopg.connect(_url(second_database), autocommit=True) as conn:
        conn.execute("CREATE TYPE catalog_entity AS (x int)")  # no table, no data: pg_restore's SQL fails on it

    restored = _manage(second_database, tmp_path / "var", "backup", "restore", str(backup), "--force")
    assert restored.returncode != 0
    assert "restoring failed (psql exit 3), nothing was changed" in restored.stderr, restored.stderr
    assert '"catalog_entity" is a composite type' in restored.stderr, restored.stderr
    with psycopg.connect(_url(second_database)) as conn:
        assert conn.execute("SELECT to_regclass('public.core_auditevent')").fetchone()[0] is None


def test_a_pg_restore_that_fails_half_way_commits_nothing(populated, second_database, tmp_path):
    """A dump that breaks after the check (a read error, a file changed under the restore): psql has
    run pg_restore's SQL up to there, including the schema drop, and must not commit it at end of input."""
    backup = tmp_path / "plinth.tar"
    services.backup_create(destination=backup)
    restored = _manage(second_database, tmp_path / "var", "backup", "restore", str(backup))
    assert restored.returncode == 0, restored.stdout + restored.stderr
    with psycopg.connect(_url(second_database), autocommit=True) as conn:
        conn.execute("CREATE TABLE stray_before (x int)")
    with tarfile.open(backup) as tar:
        dump = tar.extractfile("database.pgdump").read()
    cut = tmp_path / "cut.pgdump"
    cut.write_bytes(dump[: len(dump) * 9 // 10])

    code = ("from pathlib import Path; from portal.backup import engines\n"
            "try:\n"
            f"    engines.pg_restore(Path({str(cut)!r}), replace=True)\n"
            "except engines.BackupError as exc:\n"
            "    print('REFUSED', exc)\n")
    run = _manage(second_database, tmp_path / "var", "shell", "-c", code)
    assert "REFUSED pg_restore failed (exit 1), nothing was changed" in run.stdout, run.stdout + run.stderr
    with psycopg.connect(_url(second_database)) as conn:
        assert conn.execute("SELECT to_regclass('public.stray_before')").fetchone()[0] is not None, (
            "the schema drop at the start of the restore was rolled back")
        assert {row[0] for row in conn.execute("SELECT ref FROM catalog_entity")} == populated
