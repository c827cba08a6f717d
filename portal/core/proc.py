"""Helpers for the commands that run other processes (devstack, the benchmarks, the load test)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path


def cpu_ticks(pid: int) -> int:
    """utime + stime of a running process, in clock ticks (os.sysconf("SC_CLK_TCK") per second);
    OSError when it is gone."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()  # the name may hold spaces
    return int(fields[11]) + int(fields[12])


def kept_secret_key(path: Path) -> str:
    """The SECRET_KEY kept in `path` (0600) for a locally run production profile, made on first use."""
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(64))
    return path.read_text().strip()


def stop(proc: subprocess.Popen, grace: float) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `grace` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def start_worker(name: str, *, concurrency: int = 1, timeout: float = 60.0,
                 env: dict[str, str] | None = None) -> tuple[subprocess.Popen, Path]:
    """A Celery worker of this project for a benchmark (`name` prefixes its hostname and log file):
    its own session, its output in a temporary log file that the caller deletes, returned once its
    heartbeat row exists. CommandError with the end of the log when it exits or has not beaten within
    `timeout` seconds."""
    from django.conf import settings
    from django.core.management.base import CommandError

    from portal.core.models import WorkerHeartbeat

    hostname = f"{name}-{uuid.uuid4().hex[:6]}@plinth"
    fd, log_name = tempfile.mkstemp(prefix=f"{name}-worker-", suffix=".log")
    os.close(fd)
    log_path = Path(log_name)
    cmd = [sys.executable, "-m", "celery", "-A", "portal", "worker", "-n", hostname, "-l", "warning",
           "--pool", "prefork", "--concurrency", str(concurrency), "--without-mingle", "--without-gossip"]
    environ = {"DJANGO_SETTINGS_MODULE": "portal.settings.dev", **os.environ, **(env or {})}
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, cwd=settings.BASE_DIR, env=environ, stdout=log,  # noqa: S603
                                stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + timeout
    while not WorkerHeartbeat.objects.filter(hostname=hostname).exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise CommandError(f"the {name} worker did not start:\n{log_path.read_text(errors='replace')[-2000:]}")
        time.sleep(0.2)
    return proc, log_path
