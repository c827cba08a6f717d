"""CPU time of other processes (benchmarks that time a server they started), read from /proc."""

from __future__ import annotations

from pathlib import Path


def cpu_ticks(pid: int) -> int:
    """utime + stime of a running process, in clock ticks (os.sysconf("SC_CLK_TCK") per second);
    OSError when it is gone."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()  # the name may hold spaces
    return int(fields[11]) + int(fields[12])
