"""Celery workers announce themselves: a thread refreshes a WorkerHeartbeat row.

This works with every broker (the SQLAlchemy transport has no remote control), and a
worker killed with SIGKILL simply stops refreshing, so `/readyz` sees it as stale.

The heartbeat thread runs in the worker's main process, the one the prefork pool forks its
(replacement) pool processes from. A fork must never happen while this thread is inside a
database call: SQLite keeps its file locks per process, in the library's memory, so a child
forked while the heartbeat holds the write lock (`update_or_create` runs in BEGIN IMMEDIATE)
inherits a lock that nobody will ever release in that child. Every write of that pool process
then waits out the busy timeout and fails with "database is locked", for the rest of its life
(see docs/governance.md, "Known issues"). Hence `_db_guard`: held for the whole beat, from
opening the connection to closing it, and taken by `os.fork()` (`portal.core.db.forks_wait_for`),
so a fork waits until the beat is over and then starts from a process with no SQLite state.
"""

from __future__ import annotations

import logging
import os
import threading
import time

from celery.signals import worker_ready, worker_shutdown
from django.conf import settings
from django.db import OperationalError, close_old_connections, connection
from django.utils import timezone

from .db import forks_wait_for

log = logging.getLogger("plinth.heartbeat")
_stop = threading.Event()
# Held by the heartbeat thread while it touches the database, and by os.fork() in any other thread.
_db_guard = threading.Lock()
_fork_guard_installed = False


def _install_fork_guard() -> None:
    """Make os.fork() (billiard's pool uses it) wait until no beat is in progress."""
    global _fork_guard_installed
    if _fork_guard_installed:
        return
    forks_wait_for(_db_guard)
    _fork_guard_installed = True


def beat_once(hostname: str, started_at) -> None:
    from .models import WorkerHeartbeat

    WorkerHeartbeat.objects.update_or_create(
        hostname=hostname,
        defaults={"pid": os.getpid(), "started_at": started_at, "last_seen": timezone.now()},
    )


def _loop(hostname: str) -> None:
    started_at = timezone.now()
    while not _stop.is_set():
        with _db_guard:
            if _stop.is_set():  # shutdown removed the row meanwhile: a beat now would write it back
                break
            try:
                close_old_connections()
                beat_once(hostname, started_at)
            except Exception:  # the heartbeat must never kill the worker
                log.exception("worker heartbeat failed")
            finally:
                # Never hold a connection between beats either: a forked child must not inherit an
                # open SQLite connection (its file descriptors and in-library lock bookkeeping).
                connection.close()
        _stop.wait(settings.PLINTH_HEARTBEAT_SECONDS)


@worker_ready.connect
def _start(sender=None, **kwargs) -> None:
    hostname = getattr(sender, "hostname", None) or f"worker@{os.uname().nodename}:{os.getpid()}"
    _install_fork_guard()
    _stop.clear()
    threading.Thread(target=_loop, args=(hostname,), name="plinth-heartbeat", daemon=True).start()


@worker_shutdown.connect
def _stop_beating(sender=None, **kwargs) -> None:
    from .models import WorkerHeartbeat

    _stop.set()
    hostname = getattr(sender, "hostname", None)
    # After any beat in progress (it holds the guard), which would otherwise write the row back.
    with _db_guard:
        for attempt in range(5):  # a busy database (SQLite's write lock under load) gets a few more tries
            try:
                if hostname:
                    WorkerHeartbeat.objects.filter(hostname=hostname).delete()
                break
            except OperationalError:
                if attempt == 4:
                    log.exception("could not remove the heartbeat row")
                else:
                    time.sleep(0.5 * (attempt + 1))
            except Exception:
                log.exception("could not remove the heartbeat row")
                break
