"""No merge-conflict markers committed anywhere: a merge once left one in docs/lineage.md, where no
parser or linter looks. Every tracked text file is read (git's list, so generated and ignored files
are not)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MARKER = re.compile(rb"^(<{7}|>{7}) |^={7}$", re.MULTILINE)
SKIP_SUFFIXES = {".png", ".jpg", ".pdf", ".gz", ".zip", ".woff", ".woff2", ".ico", ".lock"}


def tracked_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [ROOT / name for name in out.decode().split("\0") if name]


def test_no_conflict_markers_in_tracked_files():
    found = []
    for path in tracked_files():
        if path.suffix in SKIP_SUFFIXES or not path.is_file():
            continue
        data = path.read_bytes()
        if b"\0" in data[:4096]:
            continue
        for match in MARKER.finditer(data):
            line = data.count(b"\n", 0, match.start()) + 1
            found.append(f"{path.relative_to(ROOT)}:{line}")
    assert not found, "merge-conflict markers committed: " + ", ".join(found)
