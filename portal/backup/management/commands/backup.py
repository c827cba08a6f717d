"""`manage.py backup create FILE` · `backup check FILE` · `backup restore FILE [--force]`.

create writes a whole backup (database snapshot and the local file trees it refers to) to FILE, atomically.
check reads a backup through and says whether restore would accept it. restore refuses a missing, damaged,
altered or other-engine file and a non-empty target (without --force) before changing anything, then
prints the migrations check and `audit verify`. Exit status 1 on any refusal or when the audit chain fails.
See docs/deployment.md#backup-and-restore."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from portal.backup import services
from portal.backup.engines import BackupError


class Command(BaseCommand):
    help = "Back up the portal (database and local files) to one file, check a backup, or restore one."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="verb", required=True)
        create = sub.add_parser("create", help="Write a backup to FILE (a temporary file renamed when complete)")
        create.add_argument("file")
        check = sub.add_parser("check", help="Read a backup through and check it, changing nothing")
        check.add_argument("file")
        restore = sub.add_parser("restore", help="Replace the database and local files with a backup's")
        restore.add_argument("file")
        restore.add_argument("--force", action="store_true", help="Replace a database that holds data")

    def handle(self, *args, verb: str, file: str, **options):
        try:
            getattr(self, "_" + verb)(Path(file), **options)
        except BackupError as exc:
            raise CommandError(f"backup {verb}: {exc}") from exc
        except DatabaseError as exc:  # e.g. DATABASE_URL names a database that does not exist
            raise CommandError(f"backup {verb}: the configured database cannot be used: {exc}") from exc
        except OSError as exc:  # e.g. PLINTH_VAR_DIR not writable; the message names the path
            raise CommandError(f"backup {verb}: {exc}") from exc

    def _describe(self, summary: services.Summary) -> None:
        rows = ", ".join(f"{table} {n}" for table, n in summary.rows.items())
        files = ", ".join(f"{name} {n}" for name, n in summary.files.items())
        self.stdout.write(f"  engine {summary.engine}, taken {summary.created_at}, {summary.bytes:,} bytes "
                          f"(database {summary.database_bytes:,})")
        self.stdout.write(f"  audit chain head #{summary.audit_head['seq']}; rows: {rows or 'none'}")
        self.stdout.write(f"  files: {files}")

    def _create(self, path: Path, **_):
        summary = services.backup_create(destination=path)
        self.stdout.write(f"backup written: {path}")
        self._describe(summary)

    def _check(self, path: Path, **_):
        summary = services.backup_check(source=path)
        self.stdout.write(f"backup OK: {path}")
        self._describe(summary)

    def _restore(self, path: Path, force: bool = False, **_):
        result = services.backup_restore(source=path, force=force)
        self.stdout.write(f"restored from {path}")
        self._describe(result.summary)
        for name, (old, new) in result.moved_roots.items():
            self.stdout.write(f"note: {name} was at {old} and is now at {new}; catalog locations registered "
                              "from there still name the old folder (restore into the same paths, or link it)")
        if result.pending_migrations:
            self.stdout.write(f"migrations: {len(result.pending_migrations)} not applied "
                              f"({', '.join(result.pending_migrations[:5])}…): run `manage.py migrate` now")
        else:
            self.stdout.write("migrations: all applied")
        if not result.audit_ok:
            raise CommandError(f"audit chain BROKEN after restore: {result.audit_message}")
        self.stdout.write(f"audit chain OK: {result.audit_message}")
