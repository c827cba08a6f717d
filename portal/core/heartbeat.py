"""Celery workers announce themselves: a thread refreshes a WorkerHeartbeat row.

This works with every broker (the SQLAlchemy transport has no remote control), and a
worker killed with SIGKILL simply stops refreshing, so `/readyz` sees it as stale.
"""

from __future__ import annotations

import logging
import os
import threading

from celery.signals import worker_ready, worker_shutdown
from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

log = logging.getLogger("plinth.heartbeat")
_stop = threading.Event()


def beat_once(hostname: str, started_at) -> None:
    from .models import WorkerHeartbeat

    WorkerHeartbeat.objects.update_or_create(
        hostname=hostname,
        defaults={"pid": os.getpid(), "started_at": started_at, "last_seen": timezone.now()},
    )


def _loop(hostname: str) -> None:
    started_at = timezone.now()
    while not _stop.is_set():
        try:
            close_old_connections()
            beat_once(hostname, started_at)
        except Exception:  # the heartbeat must never kill the worker
            log.exception("worker heartbeat failed")
        finally:
            # Never hold a connection between beats: the pool forks replacement processes from this
            # process, and an open SQLite connection (or lock) must not be inherited by them.
            connection.close()
        _stop.wait(settings.PLINTH_HEARTBEAT_SECONDS)


@worker_ready.connect
def _start(sender=None, **kwargs) -> None:
    hostname = getattr(sender, "hostname", None) or f"worker@{os.uname().nodename}:{os.getpid()}"
    _stop.clear()
    threading.Thread(target=_loop, args=(hostname,), name="plinth-heartbeat", daemon=True).start()


@worker_shutdown.connect
def _stop_beating(sender=None, **kwargs) -> None:
    from .models import WorkerHeartbeat

    _stop.set()
    hostname = getattr(sender, "hostname", None)
    try:
        if hostname:
            WorkerHeartbeat.objects.filter(hostname=hostname).delete()
    except Exception:
        log.exception("could not remove the heartbeat row")
