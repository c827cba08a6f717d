"""`--database postgres` for the benchmark commands (`catalog bench`, `search bench`, `lineage bench`):
the same command again, in a child process, against a PostgreSQL and a Redis started for the run the
way the test suite starts them (tests/services.py: unprivileged, loopback, a scratch directory), with
durability left on — fsync and synchronous commit as in production, not the suite's fast settings —
and the schema migrated first. Everything is removed afterwards.

The benchmarks themselves only ever use the configured database; this is how they get a configured
PostgreSQL without anyone setting one up by hand."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.management.base import CommandError

DATABASES = ("sqlite", "postgres")


def add_argument(parser) -> None:
    parser.add_argument("--database", choices=DATABASES, default=None,
                        help="postgres: run against a PostgreSQL (and Redis) started for this run; "
                             "default: the configured database")


def rerun_on_postgres(argv: list[str], *, say=print) -> int:
    """Run `manage.py` with `argv` (without --database) against fresh services; the child's exit code."""
    try:
        from tests import services as test_services  # the checkout's own service starter
    except ImportError as exc:
        raise CommandError("--database postgres starts PostgreSQL with tests/services.py, which is not "
                           "importable here; set DATABASE_URL to a scratch database instead") from exc
    home = Path(tempfile.mkdtemp(prefix="plinth-bench-pg-"))
    try:
        with test_services.kept_services(home) as urls:
            env = {**os.environ, "DATABASE_URL": urls["postgres"], "REDIS_URL": urls["redis"],
                   "PLINTH_VAR_DIR": str(home / "var")}
            env.pop("CELERY_BROKER_URL", None)
            manage = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py")]
            say(f"[bench] PostgreSQL at {urls['postgres']} (fsync on), Redis at {urls['redis']}; migrating")
            subprocess.run([*manage, "migrate", "--noinput", "-v0"], env=env, check=True)  # noqa: S603
            return subprocess.run([*manage, *argv], env=env).returncode  # noqa: S603
    except test_services.ServiceError as exc:
        raise CommandError(str(exc)) from exc
    finally:
        shutil.rmtree(home, ignore_errors=True)


def without_database_option(argv: list[str]) -> list[str]:
    """The command line after `manage.py`, `--database X` / `--database=X` left out."""
    out, skip = [], False
    for word in argv:
        if skip:
            skip = False
        elif word == "--database":
            skip = True
        elif not word.startswith("--database="):
            out.append(word)
    return out


def wants_postgres(options: dict) -> bool:
    """True when the command must run again on PostgreSQL (asked for, and not on it already)."""
    from django.db import connection

    if options.get("database") == "sqlite" and connection.vendor != "sqlite":
        raise CommandError(f"--database sqlite, but the configured database is {connection.vendor} (DATABASE_URL)")
    return options.get("database") == "postgres" and connection.vendor != "postgresql"


def rerun(stderr) -> None:
    """This command line again on PostgreSQL (from `manage.py …` only: the options must be re-parsed)."""
    if not sys.argv or not sys.argv[0].endswith("manage.py"):
        raise CommandError("--database postgres works from the command line (manage.py …) only")
    code = rerun_on_postgres(without_database_option(sys.argv[1:]), say=stderr.write)
    if code:
        raise CommandError(f"the benchmark on PostgreSQL exited with {code}")
