"""The database half of a backup: a consistent snapshot and its restore, per engine.

SQLite (the embedded default): Python's `sqlite3.Connection.backup` copies the database page by page
in one step from a read transaction, so under WAL the copy is one consistent snapshot while the portal
keeps writing; restoring copies the snapshot into the live file the same way (the destination is locked
for the copy, and its WAL is kept coherent by SQLite, which a file rename would not do).

PostgreSQL (production): `pg_dump --format=custom`; restore is `pg_restore --clean --if-exists --no-owner`
relayed into `psql -v ON_ERROR_STOP=1` inside one transaction (a failed restore leaves the target as it was). The connection
comes from the configured database (DATABASE_URL) as PG* variables, and the password from a temporary
passfile (0600) — never on a command line or in a log line.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from django.db import connections

# Seconds a restore waits for the live SQLite database's lock before it gives up (the portal is running).
LOCK_TIMEOUT = 20.0
SQLITE_BUSY, SQLITE_LOCKED = 5, 6  # result codes (named in the sqlite3 module only from Python 3.11)
CHUNK = 1024 * 1024


class BackupError(Exception):
    """A backup or restore that cannot go on; the message says why and what to do."""


def engine_of(alias: str = "default") -> str:
    vendor = connections[alias].vendor
    if vendor not in {"sqlite", "postgresql"}:
        raise BackupError(f"backups support SQLite and PostgreSQL, not {vendor}")
    return vendor


# -- SQLite -------------------------------------------------------------------------------------------

def sqlite_path(alias: str = "default") -> Path:
    return Path(connections[alias].settings_dict["NAME"])


def read_only_uri(path: Path) -> str:
    """A read-only URI for sqlite3.connect(uri=True), percent-encoded (a path may hold ? or #)."""
    return Path(path).resolve().as_uri() + "?mode=ro"


def sqlite_snapshot(source: Path, target: Path) -> None:
    """Copy the live database into `target` as one consistent snapshot."""
    if not source.exists():
        raise BackupError(f"the database {source} does not exist")
    src = sqlite3.connect(read_only_uri(source), uri=True, timeout=20)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)  # pages=-1: every page in one step, from one read transaction
        dst.execute("PRAGMA journal_mode=DELETE")  # a self-contained file: no -wal beside it
    finally:
        dst.close()
        src.close()


def sqlite_check(path: Path) -> None:
    """Refuse a file that is not an intact SQLite database of a Plinth portal."""
    try:
        conn = sqlite3.connect(read_only_uri(path), uri=True)
        try:
            result = conn.execute("PRAGMA integrity_check").fetchone()[0]
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"the backup's database is not a readable SQLite database ({exc})") from exc
    if result != "ok":
        raise BackupError(f"the backup's database fails SQLite's integrity check: {result}")
    if not {"django_migrations", "core_auditevent"} <= tables:
        raise BackupError("the backup's database is not a Plinth database (no migrations or audit tables)")


def sqlite_restore(snapshot: Path, target: Path) -> None:
    """Copy the snapshot into the live database file (created when missing), in WAL mode after."""
    target.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(read_only_uri(snapshot), uri=True)
    dst = sqlite3.connect(target, timeout=LOCK_TIMEOUT)
    deadline = time.monotonic() + LOCK_TIMEOUT
    busy = f"could not lock {target} for {LOCK_TIMEOUT:g} s: stop the portal's web, worker and beat processes " \
           "and try again"

    def progress(status: int, remaining: int, total: int) -> None:
        # sqlite3's backup loop retries a busy destination for ever; aborting here rolls the copy back.
        if status in (SQLITE_BUSY, SQLITE_LOCKED) and time.monotonic() > deadline:
            raise BackupError(busy)

    try:
        try:
            src.backup(dst, progress=progress)
        except sqlite3.OperationalError as exc:
            raise BackupError(f"{busy} ({exc})") from exc
        dst.execute("PRAGMA journal_mode=WAL")
    finally:
        dst.close()
        src.close()


def sqlite_counts(path: Path, tables: list[str]) -> dict[str, int]:
    """Rows per table that exists (missing tables are left out)."""
    if not path.exists():
        return {}
    conn = sqlite3.connect(read_only_uri(path), uri=True, timeout=20)
    try:
        present = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        return {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables if t in present}  # noqa: S608
    finally:
        conn.close()


# -- PostgreSQL ---------------------------------------------------------------------------------------

def _passfile_line(password: str) -> str:
    escaped = password.replace("\\", "\\\\").replace(":", "\\:")
    return f"*:*:*:*:{escaped}\n"


@contextlib.contextmanager
def pg_environment(cfg: dict) -> Iterator[dict[str, str]]:
    """The environment for pg_dump/pg_restore/psql: PG* variables of a Django database configuration,
    the password in a passfile (0600) that exists only while the block runs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update({"PGDATABASE": str(cfg["NAME"]), "PGCONNECT_TIMEOUT": "20"})
    for key, var in (("HOST", "PGHOST"), ("PORT", "PGPORT"), ("USER", "PGUSER")):
        if cfg.get(key):
            env[var] = str(cfg[key])
    options = cfg.get("OPTIONS") or {}
    for key, var in (("sslmode", "PGSSLMODE"), ("sslrootcert", "PGSSLROOTCERT"), ("sslcert", "PGSSLCERT"),
                     ("sslkey", "PGSSLKEY")):
        if options.get(key):
            env[var] = str(options[key])
    with tempfile.TemporaryDirectory(prefix="plinth-pg-") as tmp:
        if cfg.get("PASSWORD"):
            passfile = Path(tmp) / "pgpass"
            fd = os.open(passfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(_passfile_line(str(cfg["PASSWORD"])))
            env["PGPASSFILE"] = str(passfile)
        yield env


def _run(argv: list[str], env: dict[str, str], what: str) -> str:
    try:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    except FileNotFoundError as exc:
        raise BackupError(f"{argv[0]} is not installed (Debian: apt-get install postgresql-client)") from exc
    if done.returncode != 0:
        raise BackupError(f"{what} failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}")
    return done.stdout


def pg_dump(target: Path, alias: str = "default") -> None:
    with pg_environment(connections[alias].settings_dict) as env:
        _run(["pg_dump", "--format=custom", "--no-password", f"--file={target}"], env, "pg_dump")


def pg_check(path: Path) -> None:
    """Refuse a file pg_restore cannot read whole: the table of contents, then every data block
    (decompressed into /dev/null — a damaged block fails here, before the target is touched)."""
    with path.open("rb") as fh:
        if fh.read(5) != b"PGDMP":
            raise BackupError("the backup's database is not a pg_dump custom-format archive")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    listing = _run(["pg_restore", "--list", str(path)], env, "reading the dump's table of contents")
    if "core_auditevent" not in listing:
        raise BackupError("the dump is not of a Plinth database (no core_auditevent table)")
    _run(["pg_restore", "--file=/dev/null", str(path)], env, "reading the dump's data")


def pg_restore(path: Path, *, replace: bool, alias: str = "default") -> None:
    """pg_restore's SQL, relayed to psql inside one transaction that is committed only when pg_restore
    finished cleanly: psql stops at the first error, and a pg_restore that fails half-way ends psql's
    input without COMMIT, so PostgreSQL rolls everything back (`psql --single-transaction` would commit
    whatever had arrived at end of input). `replace` first drops the public schema with everything in it,
    inside that transaction: `pg_restore --clean` alone cannot drop a partitioned table's partitions
    (their inherited primary keys refuse `DROP CONSTRAINT`), so it fails wherever the tables exist."""
    connections[alias].close()
    prelude = b"BEGIN;\n" + (b"DROP SCHEMA IF EXISTS public CASCADE;\nCREATE SCHEMA public;\n" if replace else b"")
    with pg_environment(connections[alias].settings_dict) as env, \
            tempfile.TemporaryFile() as dump_err, tempfile.TemporaryFile() as load_err:
        try:
            dump = subprocess.Popen(  # noqa: S603
                ["pg_restore", "--clean", "--if-exists", "--no-owner", "--no-privileges", "--file=-", str(path)],
                stdout=subprocess.PIPE, stderr=dump_err, env=env)
        except FileNotFoundError as exc:
            raise BackupError("pg_restore is not installed (Debian: apt-get install postgresql-client)") from exc
        try:
            load = subprocess.Popen(  # noqa: S603
                ["psql", "--no-psqlrc", "--quiet", "--no-password", "-v", "ON_ERROR_STOP=1",
                 f"--dbname={env['PGDATABASE']}", "-f", "-"],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=load_err, env=env)
        except FileNotFoundError as exc:
            dump.kill()
            dump.wait()
            raise BackupError("psql is not installed (Debian: apt-get install postgresql-client)") from exc
        psql_stopped = _relay(dump, load, prelude)
        dump_err.seek(0)
        load_err.seek(0)
        dump_message = dump_err.read().decode(errors="replace").strip()[-2000:]
        load_message = load_err.read().decode(errors="replace").strip()[-2000:]
    # When psql stopped at an error, pg_restore only lost its reader: psql's message is the cause.
    if dump.returncode != 0 and not psql_stopped:
        raise BackupError(f"pg_restore failed (exit {dump.returncode}), nothing was changed: {dump_message}")
    if load.returncode != 0:
        raise BackupError(f"restoring failed (psql exit {load.returncode}), nothing was changed: {load_message}")


def _relay(dump: subprocess.Popen, load: subprocess.Popen, prelude: bytes) -> bool:
    """Copy pg_restore's output to psql between the prelude and a COMMIT that is sent only when
    pg_restore exited 0; both processes have ended on return. True when psql stopped reading first."""
    psql_stopped = False
    try:
        load.stdin.write(prelude)
        while chunk := dump.stdout.read(CHUNK):
            load.stdin.write(chunk)
        dump.stdout.close()
        if dump.wait() == 0:
            load.stdin.write(b"COMMIT;\n")
    except BrokenPipeError:
        psql_stopped = True
    finally:
        dump.stdout.close()  # pg_restore, if still writing, ends on SIGPIPE
        dump.wait()
        with contextlib.suppress(BrokenPipeError):
            load.stdin.close()  # end of input without COMMIT: the transaction is rolled back
        load.wait()
    return psql_stopped


def pg_counts(tables: list[str], alias: str = "default") -> dict[str, int]:
    conn = connections[alias]
    present = set(conn.introspection.table_names())
    with conn.cursor() as cursor:
        counts = {}
        for table in tables:
            if table in present:
                cursor.execute(f"SELECT count(*) FROM {conn.ops.quote_name(table)}")  # noqa: S608
                counts[table] = cursor.fetchone()[0]
    return counts
