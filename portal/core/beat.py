"""Exactly one Celery beat: a scheduler that schedules only while it holds a lock.

`LockedScheduler` (settings.CELERY_BEAT_SCHEDULER) is Celery's PersistentScheduler behind a lock:

* production (REDIS_URL set): a Redis key `plinth:beat:lock` set with NX and a TTL
  (PLINTH_BEAT_LOCK_TTL_SECONDS, default 30) and renewed every third of it while the beat lives;
* the embedded default (no Redis): an exclusive `flock` on `PLINTH_VAR_DIR/beat.lock`, which the kernel
  releases when the holder dies, so it needs no TTL.

A second beat started by mistake waits as a standby before it opens its schedule file: it logs once
"beat standby: another beat holds the lock (host, pid)" and tries again every third of the TTL. When
the holder dies its key expires and a standby takes over within the TTL. A holder that finds its key
taken by another beat (it was paused longer than the TTL) exits with a clear line rather than
schedule beside the new holder; its supervisor may start it again, as a standby. The lock's value is
the holder's host, pid and a random token: no secret is stored or logged.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import time
import uuid
from pathlib import Path

from celery.beat import PersistentScheduler
from django.conf import settings

logger = logging.getLogger("plinth.beat")

REDIS_KEY = "plinth:beat:lock"

# Renew our key when it is ours; set it again when it is gone (Redis restarted without persistence);
# answer 0 when another beat holds it. One script, so the check and the write are atomic.
_RENEW = """
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
elseif not current then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _identity() -> dict[str, object]:
    return {"host": socket.gethostname(), "pid": os.getpid(), "token": uuid.uuid4().hex}


def _describe(holder: str | bytes | None) -> str:
    """(host, pid) of a lock value, for the standby's log line."""
    try:
        data = json.loads(holder or "")
        return f"({data['host']}, pid {data['pid']})"
    except (ValueError, TypeError, KeyError):
        return "(unknown holder)"


class RedisLock:
    """The production lock: a key with a TTL, renewed while the beat lives."""

    def __init__(self, url: str, ttl: float) -> None:
        import redis

        self.client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self.ttl_ms = max(1, int(ttl * 1000))
        self.value = json.dumps(_identity(), sort_keys=True)
        self._renew = self.client.register_script(_RENEW)
        self._release = self.client.register_script(_RELEASE)

    def acquire(self) -> tuple[bool, str]:
        if self.client.set(REDIS_KEY, self.value, nx=True, px=self.ttl_ms):
            return True, ""
        return False, _describe(self.client.get(REDIS_KEY))

    def renew(self) -> tuple[bool, str]:
        if self._renew(keys=[REDIS_KEY], args=[self.value, self.ttl_ms]):
            return True, ""
        return False, _describe(self.client.get(REDIS_KEY))

    def release(self) -> None:
        self._release(keys=[REDIS_KEY], args=[self.value])


class FileLock:
    """The embedded default's lock: an exclusive flock, released by the kernel when the holder dies."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    def acquire(self) -> tuple[bool, str]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 4096)
            os.close(fd)
            return False, _describe(holder)
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(_identity(), sort_keys=True).encode())
        os.fsync(fd)
        self.fd = fd
        return True, ""

    def renew(self) -> tuple[bool, str]:
        return True, ""  # a flock cannot be taken away from a live process

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing drops the flock
            self.fd = None


def make_lock() -> RedisLock | FileLock:
    url = settings.PLINTH_BEAT_LOCK_REDIS_URL
    if url:
        return RedisLock(url, settings.PLINTH_BEAT_LOCK_TTL_SECONDS)
    return FileLock(Path(settings.VAR_DIR) / "beat.lock")


class LockedScheduler(PersistentScheduler):
    """PersistentScheduler that opens its schedule and sends tasks only while it holds the beat lock."""

    def __init__(self, *args, **kwargs) -> None:
        self.ttl = float(settings.PLINTH_BEAT_LOCK_TTL_SECONDS)
        self.renew_every = max(0.5, self.ttl / 3)
        self.beat_lock = make_lock()
        self._renew_at = 0.0
        super().__init__(*args, **kwargs)

    def setup_schedule(self) -> None:
        # The standby waits here, before the schedule file is opened: two beats on one host with
        # one schedule file would otherwise both write it.
        self._wait_for_lock()
        super().setup_schedule()

    def _wait_for_lock(self) -> None:
        reported = None
        while True:
            try:
                held, holder = self.beat_lock.acquire()
            except Exception as exc:  # Redis down: nobody can send tasks now; keep trying
                held, holder = False, f"(lock store unreachable: {type(exc).__name__})"
            if held:
                logger.warning("beat: holding the lock (%s, pid %s); scheduling", socket.gethostname(), os.getpid())
                self._renew_at = time.monotonic() + self.renew_every
                return
            if holder != reported:
                logger.warning("beat standby: another beat holds the lock %s; retrying every %.0f s",
                               holder, self.renew_every)
                reported = holder
            time.sleep(self.renew_every)

    def tick(self, *args, **kwargs) -> float:
        now = time.monotonic()
        if now >= self._renew_at:
            try:
                held, holder = self.beat_lock.renew()
            except Exception as exc:
                # Cannot tell; tasks cannot be sent either. A new holder, if any, shows at the next renewal.
                logger.warning("beat: could not renew the lock (%s); trying again", type(exc).__name__)
                held, holder = True, ""
            if not held:
                logger.error("beat: lost the lock to another beat %s; exiting so that only one beat schedules",
                             holder)
                raise SystemExit(1)
            self._renew_at = now + self.renew_every
        interval = super().tick(*args, **kwargs)
        return max(0.0, min(interval, self._renew_at - time.monotonic()))

    def close(self) -> None:
        super().close()
        try:
            self.beat_lock.release()  # a clean stop hands over at once instead of after the TTL
        except Exception:
            logger.warning("beat: could not release the lock; it expires after %.0f s", self.ttl)
