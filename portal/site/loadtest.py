"""`manage.py loadtest`: the production profile under the locust scenario (tests/load/locustfile.py).

`run` (the default) starts PostgreSQL and Redis the way the suite does (tests/services.py; the cluster
kept in PLINTH_VAR_DIR/loadtest so the 250,000-entity catalog is seeded once), migrates, collects static
files, seeds (`seed`, in a child with the production settings), starts a Celery worker and gunicorn
with the production settings and DEBUG off, then offers the traffic in steps of more and more people,
each step a fresh locust run of `--step-seconds` after everyone has arrived. For each step it reports
the mix's throughput, median and p95 (floor requests left out), failures, each group's figures and the
floor (`/api/v1/ping`, authenticated; `/healthz`) measured in the same run; then the highest throughput
at which p95 stayed at or under the budget with no error. One JSON line on stdout; the steps also in
`PLINTH_VAR_DIR/loadtest/report.json`.

Everything runs on this one machine: locust's own process shares the CPU with the portal (its CPU time
is reported), which a real load test from other machines would not."""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from portal.core.proc import cpu_ticks, kept_secret_key

LOCUSTFILE = Path(settings.BASE_DIR) / "tests" / "load" / "locustfile.py"
P95_BUDGET_MS = 150.0
WEB_READY_SECONDS = 90
_TARGET_OFFSETS = itertools.count(0, 8)
KINDS = ["model", "component", "api", "dataset", "pipeline", "featureset"]


@dataclass(frozen=True)
class Options:
    entities: int
    steps: list[int]
    step_seconds: int
    web_workers: int
    workers: int
    pace: float
    keep_going: bool
    restart_database: bool = False
    restart_down_seconds: int = 5
    web_threads: int = 1  # above 1: gunicorn's gthread workers, each with this many threads


# -- figures ---------------------------------------------------------------------------------------
def percentile(histogram: dict[float, int], pct: float) -> float | None:
    """The pct-th percentile of a {response time ms: count} histogram (locust's rounded buckets)."""
    total = sum(histogram.values())
    if not total:
        return None
    rank, seen = pct * total, 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen >= rank:
            return float(value)
    return float(max(histogram))


def _merge(entries: list[dict]) -> dict[float, int]:
    merged: dict[float, int] = {}
    for entry in entries:
        for value, count in entry["response_times"].items():
            merged[float(value)] = merged.get(float(value), 0) + count
    return merged


def _figures(entries: list[dict], seconds: float) -> dict:
    histogram = _merge(entries)
    requests = sum(e["num_requests"] for e in entries)
    total_ms = sum(e["total_response_time"] for e in entries)
    return {"requests": requests, "failures": sum(e["num_failures"] for e in entries),
            "rps": round(requests / seconds, 1) if seconds else None,
            "p50_ms": percentile(histogram, 0.5), "p95_ms": percentile(histogram, 0.95),
            "mean_ms": round(total_ms / requests, 2) if requests else None}


def summarise(stats: list[dict], seconds: float) -> dict:
    """A step's figures from locust's `--json-file` entries: the mix (everything but `floor:*`), each
    group, and the floor's requests by name."""
    mix = [e for e in stats if not e["name"].startswith("floor:")]
    groups: dict[str, list[dict]] = {}
    for entry in stats:
        groups.setdefault(entry["name"], []).append(entry)  # a name can come with several methods
    return {"mix": _figures(mix, seconds),
            "groups": {name: _figures(entries, seconds) for name, entries in sorted(groups.items())}}


def best_step(steps: list[dict], budget_ms: float = P95_BUDGET_MS) -> dict | None:
    """The step with the highest throughput whose p95 stayed within the budget with no failure at all
    (the floor's included)."""
    passing = [s for s in steps if s["mix"]["p95_ms"] is not None and s["mix"]["p95_ms"] <= budget_ms
               and not s["failures_all"]]
    return max(passing, key=lambda s: s["mix"]["rps"], default=None)


# -- the run ---------------------------------------------------------------------------------------
class Stack:
    """The services and processes of one load-test run; `close()` stops them in reverse."""

    def __init__(self, home: Path, say) -> None:
        self.home, self.say = home, say
        self.children: list[tuple[str, subprocess.Popen]] = []

    def environment(self, urls: dict[str, str]) -> dict[str, str]:
        env = {**os.environ, "DATABASE_URL": urls["postgres"], "REDIS_URL": urls["redis"],
               "DJANGO_SETTINGS_MODULE": "portal.settings.prod", "DEBUG": "0", "PLINTH_LOCAL_HTTP": "1",
               "SECRET_KEY": kept_secret_key(self.home / "secret-key"), "PLINTH_VAR_DIR": str(self.home / "var"),
               "ALLOWED_HOSTS": "127.0.0.1,localhost", "PYTHONUNBUFFERED": "1"}
        env.pop("CELERY_BROKER_URL", None)
        return env

    def start(self, name: str, cmd: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = open(self.home / f"{name}.log", "ab")  # noqa: SIM115 (closed with the process)
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,  # noqa: S603
                                cwd=settings.BASE_DIR, start_new_session=True)
        log.close()
        self.children.append((name, proc))
        return proc

    def close(self) -> None:
        for name, proc in reversed(self.children):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    self.say(f"[loadtest] {name} did not stop in 20 s; killing it")
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_http(url: str, timeout: float, proc: subprocess.Popen, name: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 (loopback)
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{name} did not answer {url} within {timeout:.0f} s")


def _cpu(pid: int) -> float:
    """CPU seconds of a process and its children still running (the gunicorn or Celery tree)."""
    children = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)],  # noqa: S607
                              capture_output=True, text=True, check=False).stdout.split()
    total = 0
    for one in [pid, *map(int, children)]:
        with contextlib.suppress(OSError):  # gone meanwhile
            total += cpu_ticks(one)
    return total / os.sysconf("SC_CLK_TCK")


class Database:
    """PostgreSQL (the cluster kept in `workdir`) and Redis, as the suite starts them; PostgreSQL can be
    restarted on the same port while the portal runs."""

    def __init__(self, workdir: Path) -> None:
        from tests import services  # the checkout's own service starter

        self.services, self.workdir = services, workdir
        workdir.mkdir(parents=True, exist_ok=True)
        workdir.chmod(0o711)  # the postgres OS user must reach its own subdirectory
        self.postgres, pg_probe = services.start_postgres(workdir, durable=True)
        self.redis, redis_probe = services.start_redis(workdir)
        services._wait_ready([(self.postgres, pg_probe, services.TIMEOUTS["postgres"]),
                              (self.redis, redis_probe, services.TIMEOUTS["redis"])])
        self.urls = {"postgres": self.postgres.url, "redis": self.redis.url}

    def stop_postgres(self) -> None:
        self.postgres.stop()

    def start_postgres(self) -> float:
        """Start it again where it was; seconds until it answers."""
        port = int(self.postgres.url.rsplit(":", 1)[1].split("/")[0])
        self.postgres, probe = self.services.start_postgres(self.workdir, durable=True, port=port)
        self.services._wait_ready([(self.postgres, probe, self.services.TIMEOUTS["postgres"])])
        return self.postgres.ready_after

    def close(self) -> None:
        for service in (self.redis, self.postgres):
            service.stop()


def run(options: Options, say=print) -> dict:
    home = Path(settings.VAR_DIR) / "loadtest"
    home.mkdir(parents=True, exist_ok=True)
    stack = Stack(home, say)
    py, manage = sys.executable, str(Path(settings.BASE_DIR) / "manage.py")
    result: dict = {"entities_requested": options.entities, "web_workers": options.web_workers,
                    "web_threads": options.web_threads,
                    "celery_workers": options.workers, "step_seconds": options.step_seconds,
                    "pace_per_person": options.pace, "p95_budget_ms": P95_BUDGET_MS, "cpus": os.cpu_count()}
    steps: list[dict] = []

    def stop(signum, frame):  # SIGTERM like Ctrl-C: through the `finally` below, which stops everything
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = signal.signal(signal.SIGTERM, stop)
    database = Database(home / "services")
    try:
        env = stack.environment(database.urls)
        say(f"[loadtest] PostgreSQL at {database.urls['postgres']}, Redis at {database.urls['redis']}; migrating")
        subprocess.run([py, manage, "migrate", "--noinput", "-v0"], env=env, check=True)  # noqa: S603
        subprocess.run([py, manage, "collectstatic", "--noinput", "-v0"], env=env, check=True)  # noqa: S603
        data = home / "people.json"
        started = time.perf_counter()
        seeded = subprocess.run([py, manage, "loadtest", "seed", "--entities", str(options.entities),  # noqa: S603
                                 "--people", str(max(options.steps) + 1), "--out", str(data)],
                                env=env, check=True, capture_output=True, text=True)
        result["seed"] = json.loads(seeded.stdout.strip().splitlines()[-1])
        result["seed"]["seconds"] = round(time.perf_counter() - started, 1)
        say(f"[loadtest] seeded: {result['seed']}")

        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        worker = stack.start("worker", [py, "-m", "celery", "-A", "portal", "worker", "-l", "warning",
                                        "--concurrency", str(options.workers)], env)
        web = stack.start("web", [py, "-m", "gunicorn", "portal.wsgi:application", "--bind", f"127.0.0.1:{port}",
                                  "--workers", str(options.web_workers), "--threads", str(options.web_threads),
                                  "--timeout", "60"], env)
        _wait_http(f"{base}/healthz", WEB_READY_SECONDS, web, "gunicorn")
        result["worker_idle_after_s"] = _wait_idle(worker.pid, database.urls["redis"], say)
        run_step = functools.partial(_step, py, base, data, options=options, home=home,
                                     pids=(web.pid, worker.pid))
        run_step(options.steps[0], seconds=10)  # warm-up, not reported: every web process's first requests
        say(f"[loadtest] portal at {base}; {len(options.steps)} steps of {options.step_seconds} s")
        for people in options.steps:
            step = run_step(people)
            steps.append(step)
            say(f"[loadtest] {_line(step)}")
            if not _within(step) and not options.keep_going:
                break
        if options.restart_database:
            result["database_restart"] = _restart(run_step, database, options, py, manage, env, say)
        outcomes = subprocess.run([py, manage, "loadtest", "outcomes"], env=env, check=True,  # noqa: S603
                                  capture_output=True, text=True)
        result["outcomes"] = json.loads(outcomes.stdout.strip().splitlines()[-1])
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not leave servers behind
        stack.close()
        database.close()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, previous)
    result["steps"] = steps
    best = best_step(steps)
    result["best"] = None if best is None else {
        "people": best["people"], "rps": best["mix"]["rps"], "p50_ms": best["mix"]["p50_ms"],
        "p95_ms": best["mix"]["p95_ms"], "floor_ping_p50_ms": best["floor"]["ping"]["p50_ms"],
        "floor_ping_mean_ms": best["floor"]["ping"]["mean_ms"],
        "floor_healthz_p50_ms": best["floor"]["healthz"]["p50_ms"]}
    (home / "report.json").write_text(json.dumps(result, indent=1))
    return result


def _within(step: dict) -> bool:
    p95 = step["mix"]["p95_ms"]
    return p95 is not None and p95 <= P95_BUDGET_MS and not step["failures_all"]


def _line(step: dict) -> str:
    mix = step["mix"]
    return (f"{step['people']} people: {mix['rps']} req/s, p50 {mix['p50_ms']} ms, p95 {mix['p95_ms']} ms, "
            f"failures {step['failures_all']}, floor p50 {step['floor']['ping']['p50_ms']} ms, "
            f"load {step['load_average']}")


def _wait_idle(pid: int, redis_url: str, say, limit: float = 1800.0) -> float:
    """Wait for the worker to finish what the seed queued: Celery's queue empty in Redis and the worker's
    processes idle (under a quarter CPU second in 5) twice in a row; seconds waited."""
    import redis

    queue = redis.Redis.from_url(redis_url)
    started, quiet = time.monotonic(), 0
    while time.monotonic() - started < limit:
        before = _cpu(pid)
        time.sleep(5)
        quiet = quiet + 1 if queue.llen("celery") == 0 and _cpu(pid) - before < 0.25 else 0
        if quiet == 2:
            return round(time.monotonic() - started, 1)
    say(f"[loadtest] the worker was still busy after {limit:.0f} s; measuring anyway")
    return round(limit, 1)


def _restart(run_step, database: Database, options: Options, py: str, manage: str, env: dict, say) -> dict:
    """PostgreSQL stopped (fast shutdown: sessions cut) a quarter into a step and started again on the
    same port after `--restart-down-seconds`; then a normal step, which must have no failure, and
    `audit verify`, which must still pass."""
    import threading

    people = options.steps[0]
    timeline: dict = {}

    def bounce() -> None:
        time.sleep(options.step_seconds / 4)
        database.stop_postgres()
        timeline["stopped_at_s"] = round(options.step_seconds / 4, 1)
        time.sleep(options.restart_down_seconds)
        timeline["start_s"] = round(database.start_postgres(), 1)

    thread = threading.Thread(target=bounce, daemon=True)
    thread.start()
    during = run_step(people, seconds=options.step_seconds)
    thread.join()
    after = run_step(people)
    verify = subprocess.run([py, manage, "audit", "verify"], env=env, capture_output=True, text=True)  # noqa: S603
    report = {"people": people, "down_s": options.restart_down_seconds, **timeline,
              "during": {"mix": during["mix"], "errors": during["errors"]},
              "after": {"mix": after["mix"], "failures_all": after["failures_all"], "errors": after["errors"]},
              "audit_verify_exit": verify.returncode}
    say(f"[loadtest] PostgreSQL restart: during {during['errors']}; after: {_line(after)}; "
        f"audit verify exit {verify.returncode}")
    return report


def _errors(path: Path) -> dict[str, int]:
    """locust's failures CSV as {kind: occurrences}: HTTP statuses by number, anything else by its name.
    A request the scenario checks itself (`catch_response`) fails as CatchResponseError with the message
    the locustfile gives it, which starts with the status (`503: …`): counted by that status too."""
    import csv
    import re

    counts: dict[str, int] = {}
    if path.exists():
        with path.open(newline="") as handle:
            for row in csv.DictReader(handle):
                status = re.search(r"\b([1-5]\d\d) (?:Client|Server) Error|^CatchResponseError\(['\"]([1-5]\d\d): ",
                                   row["Error"])
                kind = (status.group(1) or status.group(2)) if status else row["Error"].split("(")[0][:60]
                counts[kind] = counts.get(kind, 0) + int(row["Occurrences"])
    return counts


def _step(py: str, base: str, data: Path, people: int, *, options: Options, home: Path, pids: tuple[int, int],
          seconds: int | None = None) -> dict:
    seconds = seconds or options.step_seconds
    out = home / f"step-{people}"
    for leftover in home.glob(f"step-{people}*"):
        leftover.unlink()
    users = people + 1  # + the floor's one
    # Each step's people ask approvals for targets no earlier step used (one open request per target).
    offset = next(_TARGET_OFFSETS)
    env = {**os.environ, "LOADTEST_DATA": str(data), "LOADTEST_PACE": str(options.pace),
           "LOADTEST_TARGET_OFFSET": str(offset)}
    web_pid, worker_pid = pids
    cpu_before = (_cpu(web_pid), _cpu(worker_pid), resource.getrusage(resource.RUSAGE_CHILDREN))
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    # Everyone arrives within a second or two; --reset-stats drops the arrival, so the step's figures
    # cover `seconds` at full load.
    subprocess.run([py, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--only-summary", "--skip-log-setup",  # noqa: S603
                    "-u", str(users), "-r", str(max(users, 10)), "-t", f"{seconds + 3}s", "--reset-stats",
                    "--host", base, "--json-file", str(out), "--csv", str(out), "--exit-code-on-error", "0"],
                   env=env, check=True, capture_output=True, timeout=seconds + 120)
    wall = time.perf_counter() - started
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    stats = json.loads(out.with_suffix(".json").read_text())
    # The measured span: from the statistics' reset (everyone arrived) to the last request.
    starts = [e["start_time"] for e in stats if e.get("start_time")]
    ends = [e["last_request_timestamp"] for e in stats if e.get("last_request_timestamp")]
    span = (max(ends) - min(starts)) if starts and ends else float(seconds)
    summary = summarise(stats, span)
    floor = {"ping": summary["groups"].get("floor:ping") or _figures([], seconds),
             "healthz": summary["groups"].get("floor:healthz") or _figures([], seconds)}
    return {"people": people, "offered_rps": round(people * options.pace, 1), "measured_s": round(span, 1),
            "mix": summary["mix"],
            "groups": {k: v for k, v in summary["groups"].items() if not k.startswith("floor:")},
            "floor": floor, "failures_all": sum(e["num_failures"] for e in stats),
            "errors": _errors(Path(f"{out}_failures.csv")),
            "load_average": round(max(load_before, os.getloadavg()[0]), 2), "wall_s": round(wall, 1),
            "cpu_s": {"web": round(_cpu(web_pid) - cpu_before[0], 1), "worker": round(_cpu(worker_pid) - cpu_before[1], 1),
                      "locust": round(children.ru_utime + children.ru_stime - cpu_before[2].ru_utime
                                      - cpu_before[2].ru_stime, 1)}}


# -- seeding (in the child, with the production settings) ----------------------------------------------
def seed(entities: int, people: int, out: Path) -> dict:
    """The catalog (catalog/bench.py's generator, `entities` in namespace `bench`, registered once and
    kept), the built-in templates, and `people` people: each a maintainer of one bench team with a
    session and a token, paired with a reviewer of the same team; written to `out` (0600)."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    from catalog import bench, services
    from catalog.models import Entity, Location
    from portal.accounts.models import APIToken, Membership, Role, Team
    from portal.accounts.services import token_create
    from portal.scaffolder.management.commands.scaffolder import BUILTIN

    report: dict = {}
    root = out.parent / "catalog"
    location = Location.objects.filter(target=str(root.resolve())).first()
    have = Entity.objects.filter(location=location).count() if location else 0
    if location is None or have != entities:
        if location is not None:
            services.location_unregister(location=location, actor=None)
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        bench.generate(root, entities)
        started = time.perf_counter()
        plan = services.location_register(target=str(root), actor=None, file_roots=None)
        report.update(registered=len(plan.added), register_s=round(time.perf_counter() - started, 1))
    report["entities"] = Entity.objects.count()
    if not Location.objects.filter(target=str(BUILTIN)).exists():
        services.location_register(target=str(BUILTIN), actor=None, file_roots=None)

    User = get_user_model()
    teams = list(Team.objects.filter(name__startswith="bench-team-").order_by("name"))
    readable = list(Entity.objects.filter(namespace="bench", visibility="internal")
                    .values_list("kind_key", "name").order_by("?")[:2000])
    rows = []
    for slot in range(people):
        team = teams[slot % len(teams)]
        person, _ = User.objects.get_or_create(username=f"lt-person-{slot}")
        reviewer, _ = User.objects.get_or_create(username=f"lt-reviewer-{slot}")
        Membership.objects.update_or_create(user=person, team=team, defaults={"role": Role.MAINTAINER})
        Membership.objects.update_or_create(user=reviewer, team=team, defaults={"role": Role.REVIEWER})
        APIToken.objects.filter(user__in=[person, reviewer]).delete()
        client = Client()
        client.force_login(person)
        targets = [e.ref for e in Entity.objects.filter(owner_ref=f"group:default/{team.name}", namespace="bench",
                                                        visibility="internal")
                   .exclude(lifecycle__in=["production", "deprecated"])
                   .exclude(kind_key__in=["group", "system"]).order_by("?")[:200]]
        rows.append({"slot": slot, "team": team.name, "session": client.cookies[settings.SESSION_COOKIE_NAME].value,
                     "token": token_create(user=person, name="load test")[1],
                     "reviewer_token": token_create(user=reviewer, name="load test")[1], "targets": targets})
    data = {"people": rows, "entities": readable, "owners": [t.name for t in teams[:50]], "kinds": KINDS,
            "words": bench.WORDS, "template": "template:default/ml-model-service",
            "session_cookie": settings.SESSION_COOKIE_NAME}
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle)
    report["people"] = people
    return report


def outcomes() -> dict:
    """What the writes of the run left behind: registered uploads, approval requests by state,
    template runs by status."""
    from django.db.models import Count

    from catalog import uploads
    from catalog.models import Location
    from portal.governance.models import ApprovalRequest
    from portal.scaffolder.models import Run

    counted = Location.objects.annotate(n=Count("entities")).values_list("target", "n")
    upload_counts = [n for target, n in counted.iterator() if uploads.is_upload_target(target)]
    # Each upload carries one descriptor: a location without its entity would be a half-written one.
    return {"uploads": len(upload_counts), "uploads_without_entities": upload_counts.count(0),
            "approval_requests": dict(ApprovalRequest.objects.filter(requester__username__startswith="lt-person-")
                                      .values_list("state").annotate(n=Count("id")).order_by()),
            "template_runs": dict(Run.objects.filter(created_by__username__startswith="lt-person-")
                                  .values_list("status").annotate(n=Count("id")).order_by())}
