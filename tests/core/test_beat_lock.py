"""Exactly one beat (portal/core/beat.py): real `celery beat` processes against the suite's Redis,
and the embedded profile's file lock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from portal.core.beat import FileLock

ROOT = Path(__file__).resolve().parents[2]
SENDING = "Scheduler: Sending due task"
TTL = 3


@pytest.fixture
def beat_redis(redis_url):
    """(url, client) of database 14 of the suite's Redis, emptied before and after: the beats' tasks
    never reach the suite's own workers."""
    import redis

    url = redis_url.rsplit("/", 1)[0] + "/14"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url, client
    client.flushdb()


class Beat:
    def __init__(self, name: str, url: str | None, tmp_path: Path, var_dir: Path | None = None) -> None:
        """`url`: the Redis of the lock and broker; None: the embedded profile (file lock in `var_dir`)."""
        self.log_path = tmp_path / f"{name}.log"
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings.test",
               "PLINTH_BEAT_LOCK_TTL_SECONDS": str(TTL), "PYTHONUNBUFFERED": "1",
               "PLINTH_VAR_DIR": str(var_dir or tmp_path / f"var-{name}")}
        if url:
            env.update({"REDIS_URL": url, "CELERY_BROKER_URL": url})
        else:
            for name_ in ("REDIS_URL", "CELERY_BROKER_URL"):
                env.pop(name_, None)
        cmd = [sys.executable, "-m", "celery", "-A", "portal", "beat", "-l", "info",
               "-s", str(tmp_path / f"schedule-{name}")]
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,  # noqa: S603
                                         start_new_session=True)

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, text: str, timeout: float) -> float:
        started = time.monotonic()
        while text not in self.log:
            if self.proc.poll() is not None or time.monotonic() - started > timeout:
                pytest.fail(f"no {text!r} within {timeout} s (exit {self.proc.poll()}):\n{self.log[-3000:]}")
            time.sleep(0.2)
        return time.monotonic() - started

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)


@pytest.mark.prod_smoke
def test_a_second_beat_waits_as_a_standby_and_takes_over_when_the_holder_dies(beat_redis, tmp_path):
    url, client = beat_redis
    first = Beat("first", url, tmp_path)
    second = None
    try:
        first.wait_for("beat: holding the lock", 30)
        second = Beat("second", url, tmp_path)
        second.wait_for("beat standby: another beat holds the lock (", 30)
        assert f"pid {first.proc.pid})" in second.log, second.log
        # The holder schedules (relay-outbox every 5 s); the standby sends nothing meanwhile.
        first.wait_for(SENDING, 15)
        time.sleep(2)
        assert SENDING not in second.log and "holding the lock" not in second.log, second.log
        assert f'"pid": {first.proc.pid}' in client.get("plinth:beat:lock").decode()

        os.killpg(first.proc.pid, signal.SIGKILL)  # a crash: no release, the key must expire
        first.proc.wait(timeout=10)
        took_over = second.wait_for("beat: holding the lock", TTL + 5)
        assert took_over <= TTL + 5
        second.wait_for(SENDING, 15)
        assert f'"pid": {second.proc.pid}' in client.get("plinth:beat:lock").decode()
        assert "SECRET" not in second.log and "password" not in second.log.lower()
    finally:
        first.stop()
        if second:
            second.stop()


@pytest.mark.prod_smoke
def test_a_stopped_beat_releases_the_lock_at_once(beat_redis, tmp_path):
    url, client = beat_redis
    beat = Beat("only", url, tmp_path)
    try:
        beat.wait_for("beat: holding the lock", 30)
        assert client.exists("plinth:beat:lock")
        os.kill(beat.proc.pid, signal.SIGTERM)
        beat.proc.wait(timeout=15)
        assert not client.exists("plinth:beat:lock"), beat.log
    finally:
        beat.stop()


def test_the_embedded_profiles_file_lock_admits_one_holder_until_it_lets_go(tmp_path):
    path = tmp_path / "beat.lock"
    holder, standby = FileLock(path), FileLock(path)
    assert holder.acquire() == (True, "")
    held, who = standby.acquire()
    assert not held and who == f"({os.uname().nodename}, pid {os.getpid()})"
    assert holder.renew() == (True, "")
    holder.release()
    assert standby.acquire() == (True, "")
    standby.release()


@pytest.mark.prod_smoke
def test_a_holder_whose_key_another_beat_took_exits_instead_of_scheduling_twice(beat_redis, tmp_path):
    """A holder paused past the TTL finds the key held by someone else at its next renewal: it exits."""
    import json

    url, client = beat_redis
    beat = Beat("paused", url, tmp_path)
    try:
        beat.wait_for("beat: holding the lock", 30)
        client.set("plinth:beat:lock", json.dumps({"host": "elsewhere", "pid": 4242, "token": "t"}), px=60_000)
        beat.wait_for("beat: lost the lock to another beat (elsewhere, pid 4242)", TTL + 5)
        beat.proc.wait(timeout=15)
        assert "elsewhere" in client.get("plinth:beat:lock").decode(), "the new holder's key is left alone"
    finally:
        beat.stop()


def test_on_the_embedded_profile_a_second_beat_waits_for_the_file_lock(tmp_path):
    """Without Redis two real beats share PLINTH_VAR_DIR/beat.lock: one schedules, the other is a standby
    until the first dies (the kernel drops its flock)."""
    var_dir = tmp_path / "var"
    first = Beat("first", None, tmp_path, var_dir)
    second = None
    try:
        first.wait_for("beat: holding the lock", 30)
        second = Beat("second", None, tmp_path, var_dir)
        second.wait_for(f"beat standby: another beat holds the lock ({os.uname().nodename}, pid {first.proc.pid})", 30)
        os.killpg(first.proc.pid, signal.SIGKILL)
        first.proc.wait(timeout=10)
        second.wait_for("beat: holding the lock", 15)
        assert "Sending due task" not in second.log.split("beat: holding the lock")[0]
    finally:
        first.stop()
        if second:
            second.stop()
