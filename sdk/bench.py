"""SDK and CLI benchmark (`make sdk-bench`; not part of the package, not a test). Prints one JSON line.

1. Start-up: the imports `plinth --help` and `plinth catalog get REF` trigger, from
   `python -X importtime` (the interpreter's own start-up, `site`, excluded), median of several runs;
   and each command's wall time.
2. Listing: a scratch portal (its own PLINTH_VAR_DIR) filled by `manage.py catalog bench --keep`, served
   by gunicorn; `Client.entities.list()` walks every entity — a full listing, so it streams
   (`GET /api/v1/entities/export`) — `--runs` times while the resident memory of this process is
   sampled: entities/s (median of the runs) and how much the memory grew between the first 10% and the
   end. For comparison, the paged list (`order=metadata.name`, pages of 500) over its first
   `--paged-sample` entities.

    make sdk-bench SDK_BENCH_ENTITIES=250000      # default; a smaller number for a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
PLINTH = str(Path(PY).parent / "plinth")
STARTUP = {"site", "encodings", "zipimport", "_frozen_importlib_external", "io", "_signal", "_codecs", "_abc",
           "_thread", "_warnings", "_weakref", "marshal", "posix", "time", "_imp", "_io", "winreg", "abc", "codecs",
           "_distutils_hack", "sitecustomize", "usercustomize"}


def import_ms(args: list[str], env: dict) -> tuple[float, float]:
    """(milliseconds of imports the command triggers, wall milliseconds of the command)."""
    code = f"import sys; sys.argv = {['plinth', *args]!r}; from plinth_sdk.cli.main import main; sys.exit(main())"
    started = time.perf_counter()
    result = subprocess.run([PY, "-X", "importtime", "-c", code], env=env, capture_output=True, text=True,
                            timeout=60)
    wall = (time.perf_counter() - started) * 1000
    total = 0
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _own, cumulative, name = line[len("import time:"):].split("|")
        if name.startswith("  "):  # nested: counted in its parent's cumulative time
            continue
        if name.strip() in STARTUP:
            continue
        total += int(cumulative)
    return total / 1000, wall


def median_startup(args: list[str], env: dict, runs: int = 7) -> dict:
    samples = [import_ms(args, env) for _ in range(runs)]
    return {"imports_ms": round(statistics.median(s[0] for s in samples), 1),
            "wall_ms": round(statistics.median(s[1] for s in samples), 1)}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def manage(env: dict, *args: str, capture: bool = True) -> str:
    result = subprocess.run([PY, "manage.py", *args], cwd=ROOT, env=env, capture_output=capture, text=True,
                            check=True)
    return result.stdout if capture else ""


def listing(url: str, token: str, fields: list[str] | None, *, paged: int | None = None) -> dict:
    """Walk every entity (or, `paged`, that many through the paged list); the memory is sampled every
    5,000 and compared with the first 10%."""
    from plinth_sdk import Client
    from plinth_sdk.resources import ENTITY_LIST

    with Client(url, token, timeout=120) as client:
        expected = client._run(ENTITY_LIST.call(lambda body: body["totalItems"], params={"limit": 1}))
        if paged:
            expected = min(expected, paged)
        baseline, peak, count = None, rss_mb(), 0
        started = time.perf_counter()
        entities = (client.entities.list(order="metadata.name", page_size=500, limit=paged, fields=fields)
                    if paged else client.entities.list(fields=fields))
        for _entity in entities:
            count += 1
            if count % 5000 == 0:
                peak = max(peak, rss_mb())
                if baseline is None and count >= expected // 10:
                    baseline = rss_mb()
        elapsed = time.perf_counter() - started
    return {"entities": count, "expected": expected, "seconds": round(elapsed, 2),
            "entities_per_s": round(count / elapsed), "rss_after_10pct_mb": round(baseline or 0, 1),
            "rss_peak_mb": round(peak, 1), "rss_growth_mb": round(peak - (baseline or peak), 1)}


def median_run(runs: list[dict]) -> dict:
    """The run with the median entities/s, with every run's rate beside it."""
    ordered = sorted(runs, key=lambda r: r["entities_per_s"])
    return {**ordered[len(ordered) // 2], "runs_entities_per_s": [r["entities_per_s"] for r in runs],
            "rss_peak_max_mb": max(r["rss_peak_mb"] for r in runs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=250_000)
    parser.add_argument("--keep", action="store_true", help="keep the scratch portal's folder")
    parser.add_argument("--reuse", metavar="DIR", help="a scratch portal an earlier run kept (--keep): no new load")
    parser.add_argument("--runs", type=int, default=3, help="full listings to time (the median is reported)")
    parser.add_argument("--paged-sample", type=int, default=25_000,
                        help="entities to walk through the paged list, for comparison (0: skip)")
    opts = parser.parse_args()
    result: dict = {"entities_requested": opts.entities, "load_average": round(os.getloadavg()[0], 2)}
    scratch = Path(opts.reuse) if opts.reuse else Path(tempfile.mkdtemp(prefix="plinth-sdk-bench-"))
    # The dev profile with DEBUG off: no query log, as a production web process serves.
    env = {**os.environ, "PLINTH_VAR_DIR": str(scratch), "DJANGO_SETTINGS_MODULE": "portal.settings.dev",
           "DEBUG": "0"}
    cli_env = {k: v for k, v in os.environ.items() if not k.startswith("PLINTH_")}
    cli_env["XDG_CONFIG_HOME"] = str(scratch / "config")
    server = None
    try:
        result["help"] = median_startup(["--help"], cli_env)
        if not opts.reuse:
            manage(env, "migrate", "--noinput")
            started = time.perf_counter()
            bench = json.loads(manage(env, "catalog", "bench", "--entities", str(opts.entities), "--keep").strip()
                               .splitlines()[-1])
            result["catalog_bench_s"] = round(time.perf_counter() - started, 1)
            result["ingest_s"] = bench.get("ingest_s")
            manage(env, "shell", "-c", "from django.contrib.auth import get_user_model as g; "
                   "g().objects.create_superuser('sdk-bench', 'sdk-bench@example.com', 'sdk-bench-password')")
        token = manage(env, "create_token", "sdk-bench").strip().splitlines()[-1]
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [PY, "-m", "gunicorn", "portal.wsgi:application", "--bind", f"127.0.0.1:{port}", "--workers", "2",
             "--timeout", "300"], cwd=ROOT, env={**env, "DJANGO_SETTINGS_MODULE": "portal.settings.dev"},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        _wait_up(url)
        cli_env.update(PLINTH_URL=url, PLINTH_TOKEN=token)
        ref = _some_ref(url, token)
        result["catalog_get"] = median_startup(["catalog", "get", ref], cli_env)
        result["list_full"] = median_run([listing(url, token, None) for _ in range(opts.runs)])
        result["list_projected"] = listing(url, token, ["kind", "metadata.name", "metadata.namespace"])
        if opts.paged_sample:
            result["list_paged_sample"] = listing(url, token, None, paged=opts.paged_sample)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        if not opts.keep and not opts.reuse:
            shutil.rmtree(scratch, ignore_errors=True)
    print(json.dumps(result))


def _wait_up(url: str, timeout: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise SystemExit("the scratch portal did not start")


def _some_ref(url: str, token: str) -> str:
    from plinth_sdk import Client

    with Client(url, token) as client:
        return next(iter(client.entities.list(kind="model", limit=1))).ref


if __name__ == "__main__":
    main()
