"""The suite split across parallel runs, each with services of its own: what `make test` does.

    python -m tests.shards N -- CMD ... [++ [prod:] CMD ...]

starts N runs of `python -m tests.services` at once (each its own Redis, MLflow and PostgreSQL on free
ports, its own SQLite test database, Celery workers and Chromium). A plain command is a pytest run:
every shard runs it with `--shard K/N` added and so runs only its share of the test files. A `prod:`
command runs once, whole, in the last shard. Each shard writes its output to
test-artifacts/shards/shard-K.log; the runner prints a progress line every minute, then every log (the
ones that failed last, so that the end of the output shows the failures) and exits non-zero if any
shard failed.

Shares are whole test files, dealt largest first to the shard with the least work so far (the last
shard starts with the weight of the `prod:` run); the files of a `together` group in the weights file
(they share an expensive session fixture) go to one shard. The weights are the measured seconds per file in
tests/durations.json; a file not in it weighs a default per test. After the suite changes much:

    python -m tests.shards record SQLITE_JUNIT.xml [PROD_JUNIT.xml]

(junit XML from `pytest --junitxml`) writes the file again.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET  # noqa: S405 (our own pytest's report)
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "tests" / "durations.json"
LOG_DIR = ROOT / "test-artifacts" / "shards"
DEFAULT_SECONDS_PER_TEST = 1.0
PROGRESS_EVERY = 60.0


# --- the share of one shard (used by tests/conftest.py's --shard option) --------------------------


def parse_spec(spec: str) -> tuple[int, int]:
    """`"K/N"` → (K, N), 1 ≤ K ≤ N; ValueError naming the problem otherwise."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", spec or "")
    if not match:
        raise ValueError(f"--shard {spec!r}: expected K/N, e.g. 1/2")
    k, n = int(match[1]), int(match[2])
    if not 1 <= k <= n:
        raise ValueError(f"--shard {spec!r}: K must be between 1 and N")
    return k, n


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def load_weights(path: Path = WEIGHTS) -> tuple[dict[str, float], float]:
    """(seconds per test file, seconds of the prod: run); empty when the file is missing."""
    data = _read(path)
    return {str(k): float(v) for k, v in data.get("files", {}).items()}, float(data.get("prod_phase", 0.0))


def load_together(path: Path = WEIGHTS) -> list[list[str]]:
    """Groups of files that go to one shard: they share an expensive session fixture (the Feast
    repositories take ~35 s to build), which two shards would each build."""
    return [list(group) for group in _read(path).get("together", [])]


def deal(counts: dict[str, int], n: int, weights: dict[str, float], reserve_last: float = 0.0,
         together: list[list[str]] = ()) -> dict[str, int]:
    """Each file → its shard (1..n): largest first to the least loaded shard (ties: the lower number).
    `counts`: tests per file (the weight of a file with no measurement); `together`: groups of files
    dealt as one (their weights summed)."""
    def weight(path: str) -> float:
        return weights.get(path, DEFAULT_SECONDS_PER_TEST * counts[path])

    units: dict[str, list[str]] = {path: [path] for path in counts}
    for group in together:
        present = [path for path in group if path in units]
        for path in present[1:]:
            units[present[0]] += units.pop(path)

    def unit_weight(lead: str) -> float:
        return sum(weight(path) for path in units[lead])

    load = [0.0] * n
    load[-1] += reserve_last
    shard_of = {}
    for lead in sorted(units, key=lambda p: (-unit_weight(p), p)):
        index = min(range(n), key=lambda i: (load[i], i))
        load[index] += unit_weight(lead)
        shard_of.update({path: index + 1 for path in units[lead]})
    return shard_of


def select(items: list, k: int, n: int, weights_path: Path = WEIGHTS) -> tuple[list, list]:
    """The collected pytest items of shard k of n, and the others."""
    counts: dict[str, int] = defaultdict(int)
    for item in items:
        counts[_file_of(item.nodeid)] += 1
    weights, prod = load_weights(weights_path)
    shard_of = deal(dict(counts), n, weights, reserve_last=prod, together=load_together(weights_path))
    keep = [item for item in items if shard_of[_file_of(item.nodeid)] == k]
    drop = [item for item in items if shard_of[_file_of(item.nodeid)] != k]
    return keep, drop


def _file_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


# --- recording the weights ------------------------------------------------------------------------


def record(sqlite_xmls: list[Path], prod_xml: Path | None = None, path: Path = WEIGHTS) -> dict:
    """Seconds per test file summed over the shards' reports, and the `prod:` run's total."""
    files: dict[str, float] = defaultdict(float)
    for xml in sqlite_xmls:
        for case in ET.parse(xml).iter("testcase"):  # noqa: S314 (our own pytest's report)
            files[_path_of(case.get("classname", ""))] += float(case.get("time") or 0)
    prod = 0.0
    if prod_xml:
        prod = sum(float(case.get("time") or 0) for case in ET.parse(prod_xml).iter("testcase"))  # noqa: S314
    data = {"prod_phase": round(prod, 1), "together": load_together(path),
            "files": {k: round(v, 1) for k, v in sorted(files.items()) if k}}
    path.write_text(json.dumps(data, indent=1) + "\n")
    return data


def _path_of(classname: str) -> str:
    """`tests.catalog.test_api.TestX` → `tests/catalog/test_api.py` (the longest prefix that is a file)."""
    parts = classname.split(".")
    for end in range(len(parts), 0, -1):
        candidate = Path(*parts[:end]).with_suffix(".py")
        if (ROOT / candidate).is_file():
            return candidate.as_posix()
    return ""


# --- running the shards ---------------------------------------------------------------------------


def _junit(cmd: list[str], report: Path) -> list[str]:
    """A pytest command writes its junit XML to `report` (what `record` reads); others run as given."""
    is_pytest = any(part.endswith("pytest") for part in cmd[:3])
    return [*cmd, f"--junitxml={report}"] if is_pytest else cmd


def _shard_argv(k: int, n: int, commands: list[tuple[bool, list[str]]]) -> list[str]:
    argv = [sys.executable, "-m", "tests.services", "--"]
    parts = []
    for prod, cmd in commands:
        if prod:
            if k == n:
                parts.append(["prod:", *_junit(cmd, LOG_DIR / "prod.xml")])
        else:
            parts.append([*_junit(cmd, LOG_DIR / f"shard-{k}.xml"), "--shard", f"{k}/{n}"])
    for i, part in enumerate(parts):
        argv += (["++"] if i else []) + part
    return argv


def _progress(log: Path) -> str:
    try:
        with log.open("rb") as fh:
            fh.seek(max(0, log.stat().st_size - 4096))
            tail = fh.read().decode(errors="replace")
    except OSError:
        return "starting"
    found = re.findall(r"\[\s*(\d+)%\]", tail)
    running = re.findall(r"\[services\] running: (.*)", tail)
    where = ("prod " if running and running[-1].startswith("prod:") else "") + (f"{found[-1]}%" if found else "")
    return where or "starting"


def run(n: int, commands: list[tuple[bool, list[str]]]) -> int:
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    for stale in LOG_DIR.glob("*.xml"):  # an earlier run's reports: `record` must not mix them in
        stale.unlink()
    started = time.monotonic()
    procs = []
    for k in range(1, n + 1):
        log = LOG_DIR / f"shard-{k}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(  # noqa: S603 (our own argument list)
                _shard_argv(k, n, commands), cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                env={**os.environ, "PLINTH_SHARD": f"{k}/{n}"},
            )
        procs.append((k, proc, log))
        print(f"[shards] shard {k}/{n} started (pid {proc.pid}), log {log.relative_to(ROOT)}", flush=True)
    next_report = started + PROGRESS_EVERY
    try:
        while any(proc.poll() is None for _, proc, _ in procs):
            time.sleep(1)
            if time.monotonic() >= next_report:
                next_report += PROGRESS_EVERY
                states = ", ".join(
                    f"{k}/{n} " + (_progress(log) if proc.poll() is None else f"done (exit {proc.returncode})")
                    for k, proc, log in procs
                )
                print(f"[shards] {time.monotonic() - started:5.0f} s: {states}", flush=True)
    except KeyboardInterrupt:
        for _, proc, _ in procs:
            proc.terminate()
        for _, proc, _ in procs:
            proc.wait()
        return 130
    # Failed shards last: the end of the output is what a CI page shows.
    for k, proc, log in sorted(procs, key=lambda p: (p[1].returncode != 0, p[0])):
        print(f"\n[shards] ===== shard {k}/{n} (exit {proc.returncode}) =====", flush=True)
        sys.stdout.write(log.read_text(errors="replace"))
    print(f"\n[shards] {n} shards in {time.monotonic() - started:.0f} s", flush=True)
    for k, proc, _ in procs:
        print(f"[shards] {'ok  ' if proc.returncode == 0 else 'FAIL'} shard {k}/{n} (exit {proc.returncode})", flush=True)
    return next((proc.returncode for _, proc, _ in procs if proc.returncode), 0)


def main(argv: list[str]) -> int:
    from tests.services import split_commands

    if argv[:1] == ["record"]:
        named = argv[1:] or [str(p) for p in sorted(LOG_DIR.glob("shard-*.xml"))] + (
            [f"prod:{LOG_DIR / 'prod.xml'}"] if (LOG_DIR / "prod.xml").is_file() else [])
        sqlite = [Path(a) for a in named if not a.startswith("prod:")]
        prod = [Path(a.removeprefix("prod:")) for a in named if a.startswith("prod:")]
        if not sqlite or len(prod) > 1:
            print("record: no junit XML of a SQLite run (run `make test` first, or name the files)"
                  if not sqlite else "record: one prod: report at most", file=sys.stderr)
            return 2
        data = record(sqlite, prod[0] if prod else None)
        print(f"{WEIGHTS.relative_to(ROOT)}: {len(data['files'])} files, "
              f"{sum(data['files'].values()):.0f} s + prod {data['prod_phase']:.0f} s")
        return 0
    if len(argv) < 3 or not argv[0].isdigit() or int(argv[0]) < 1 or argv[1] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    commands = split_commands(argv[2:])
    if not commands:
        print(__doc__, file=sys.stderr)
        return 2
    return run(int(argv[0]), commands)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
