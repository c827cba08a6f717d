"""`manage.py loadtest`: the figures it derives from locust's statistics, and one real small run of the
whole thing (PostgreSQL, Redis, gunicorn, a Celery worker, locust's scenario) with PostgreSQL restarted
in the middle: the portal answers 503 while the database is away, nothing else, and recovers."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from portal.site import loadtest

ROOT = Path(__file__).resolve().parents[2]


def _entry(name: str, times: dict[int, int], failures: int = 0, method: str = "GET") -> dict:
    return {"name": name, "method": method, "num_requests": sum(times.values()), "num_failures": failures,
            "total_response_time": float(sum(t * n for t, n in times.items())),
            "response_times": {str(t): n for t, n in times.items()}}


def test_percentiles_come_from_the_merged_histogram():
    histogram = {10.0: 90, 200.0: 10}
    assert loadtest.percentile(histogram, 0.5) == 10.0
    assert loadtest.percentile(histogram, 0.9) == 10.0
    assert loadtest.percentile(histogram, 0.95) == 200.0
    assert loadtest.percentile({}, 0.95) is None


def test_summary_keeps_the_floor_out_of_the_mix_and_merges_methods():
    stats = [_entry("browse", {20: 50}), _entry("write:register", {300: 5}, method="POST"),
             _entry("write:register", {100: 5}, method="GET"), _entry("floor:ping", {1: 1000})]
    summary = loadtest.summarise(stats, seconds=10.0)
    assert summary["mix"]["requests"] == 60  # the floor's 1,000 are not in it
    assert summary["mix"]["p95_ms"] == 300.0
    assert summary["mix"]["rps"] == 6.0
    assert summary["groups"]["write:register"]["requests"] == 10
    assert summary["groups"]["floor:ping"]["p50_ms"] == 1.0


def test_best_step_is_the_fastest_within_budget_without_failures():
    def step(rps, p95, failures=0):
        return {"mix": {"rps": rps, "p95_ms": p95}, "failures_all": failures}

    steps = [step(10, 40), step(20, 90), step(30, 149), step(40, 100, failures=1), step(50, 400)]
    assert loadtest.best_step(steps)["mix"]["rps"] == 30
    assert loadtest.best_step([step(50, 400)]) is None


def test_errors_are_counted_by_status(tmp_path):
    csv = tmp_path / "f.csv"
    csv.write_text("Method,Name,Error,Occurrences,First Seen,Last Seen\n"
                   "GET,browse,HTTPError('503 Server Error: Service Unavailable for url: browse'),7,a,b\n"
                   "POST,write:register,HTTPError('503 Server Error: Service Unavailable for url: x'),2,a,b\n"
                   "GET,entity,\"ConnectionError(RemoteDisconnected('closed'))\",1,a,b\n")
    assert loadtest._errors(csv) == {"503": 9, "ConnectionError": 1}


def test_a_request_the_scenario_checks_itself_is_counted_by_its_status(tmp_path):
    """The approval submit (catch_response) fails as CatchResponseError('503: …'): a 503 like any other,
    so a PostgreSQL restart that catches one is still "only 503s" (a fresh-clone check failed on it)."""
    csv = tmp_path / "f.csv"
    csv.write_text("Method,Name,Error,Occurrences,First Seen,Last Seen\n"
                   "POST,write:approval-submit,\"CatchResponseError('503: {\"\"error\"\": 1}')\",1,a,b\n"
                   "GET,browse,HTTPError('503 Server Error: Service Unavailable for url: browse'),2,a,b\n"
                   "POST,x,\"CatchResponseError('unexpected body')\",1,a,b\n")
    assert loadtest._errors(csv) == {"503": 3, "CatchResponseError": 1}


@pytest.mark.prod_smoke
@pytest.mark.timeout(900)  # a minute or two when idle; starts PostgreSQL, seeds, runs locust three times
def test_small_load_run_with_a_postgres_restart():
    # Not pytest's tmp_path: its 0700 parents keep the `postgres` OS user (PostgreSQL as root) out.
    home = Path(tempfile.mkdtemp(prefix="plinth-loadtest-"))
    home.chmod(0o711)
    try:
        _small_run(home)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _small_run(home: Path) -> None:
    env = {**os.environ, "PLINTH_VAR_DIR": str(home / "var"), "DJANGO_SETTINGS_MODULE": "portal.settings.dev"}
    proc = subprocess.Popen([sys.executable, str(ROOT / "manage.py"), "loadtest", "--entities", "300", "--steps", "3",
                             "--step-seconds", "10", "--keep-going", "--restart-database", "--restart-down-seconds", "3"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        out, err = proc.communicate(timeout=840)
    except BaseException:  # a timeout, pytest's included: SIGINT lets it stop its servers (SIGKILL would not)
        proc.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.communicate(timeout=60)
        raise
    assert proc.returncode == 0, err[-3000:]
    report = json.loads(out.strip().splitlines()[-1])
    assert report["seed"]["entities"] >= 300
    (step,) = report["steps"]
    assert step["failures_all"] == 0, step["errors"]
    assert step["mix"]["requests"] >= 15
    assert "entity" in step["groups"] and any(name.startswith("browse:") for name in step["groups"])
    assert step["floor"]["ping"]["requests"] > 10 and step["floor"]["ping"]["failures"] == 0
    restart = report["database_restart"]
    # While PostgreSQL was away: refused with 503 (and Retry-After), never a 500 or a broken connection.
    assert restart["during"]["errors"], "the restart went unnoticed: nothing was measured while it was down"
    assert set(restart["during"]["errors"]) == {"503"}, restart["during"]["errors"]
    # Afterwards: every request served again, and the audit chain intact.
    assert restart["after"]["failures_all"] == 0, restart["after"]["errors"]
    assert restart["audit_verify_exit"] == 0
    # Nothing half-written: every upload that was stored has its entity.
    assert report["outcomes"]["uploads_without_entities"] == 0, report["outcomes"]
