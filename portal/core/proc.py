"""Helpers for the commands that run other processes (devstack, the benchmarks, the load test)."""

from __future__ import annotations

import os
import secrets
import subprocess
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
