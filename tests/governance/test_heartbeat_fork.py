"""The worker heartbeat and the prefork pool: a process forked from the worker's main process must be
able to write to SQLite, even when the fork comes while the heartbeat thread is inside its write
transaction (see docs/governance.md, "Known issues").

Without the fork guard the child inherits SQLite's in-process record of the heartbeat's write lock and
every write it makes fails with "database is locked", which is how a replacement pool process used to
receive a redelivered execution and never run it."""

from __future__ import annotations

import os
import sqlite3
import threading

import pytest
from django.db import connection, transaction

from portal.core import heartbeat

pytestmark = pytest.mark.django_db(transaction=True)


def _child_can_write(db_path: str) -> int:
    """In the forked child: 0 when a write transaction can be taken, 1 when SQLite says it is locked."""
    try:
        conn = sqlite3.connect(db_path, isolation_level=None, timeout=2)
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        conn.close()
        return 0
    except sqlite3.OperationalError:
        return 1


def test_fork_during_a_heartbeat_waits_and_the_child_can_write(monkeypatch):
    if connection.vendor != "sqlite":
        pytest.skip("SQLite-specific: PostgreSQL locks live in the server, not in the forked process")
    db_path = str(connection.settings_dict["NAME"])
    in_transaction, release = threading.Event(), threading.Event()
    real_beat = heartbeat.beat_once

    def slow_beat(hostname, started_at):
        # The beat's write transaction, kept open long enough for the fork below to land inside it.
        with transaction.atomic():
            real_beat(hostname, started_at)
            in_transaction.set()
            release.wait(5)
        heartbeat._stop.set()  # one beat is enough

    monkeypatch.setattr(heartbeat, "beat_once", slow_beat)
    heartbeat._install_fork_guard()  # what worker_ready does in a real worker
    heartbeat._stop.clear()
    beat = threading.Thread(target=heartbeat._loop, args=("fork-test@plinth-tests",), daemon=True)
    beat.start()
    try:
        assert in_transaction.wait(10), "the heartbeat never started its transaction"
        threading.Timer(0.5, release.set).start()
        pid = os.fork()  # as billiard does for a replacement pool process
        if pid == 0:
            os._exit(_child_can_write(db_path))
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status)
        assert os.WEXITSTATUS(status) == 0, "the forked child cannot write: database is locked"
        assert release.is_set(), "the fork did not wait for the heartbeat's transaction to end"
    finally:
        release.set()
        beat.join(10)
        heartbeat._stop.clear()
