"""`manage.py catalog bench --latency`: request latency of the API's reads against the floor.

One run seeds a generated catalog (`catalog.bench.generate`, ingested as `catalog bench` does), then
times, interleaved so that a noisy machine weighs on every group alike:

    floor     GET /api/v1/ping with a token: authentication, the middleware stack and DRF, nothing else
    healthz   GET /healthz: Django's middleware stack without DRF and without authentication
    by_name   GET /api/v1/entities/by-name/<kind>/<namespace>/<name> (the primary-key read)
    list      GET /api/v1/entities?filter=... (filtered lists)
    facets    GET /api/v1/entity-facets?...

twice: through HTTP against a real gunicorn (one sync worker, the production entry point
`portal.wsgi`, DEBUG off; the server's CPU is read from /proc per request), and in-process with
Django's test Client (DEBUG off too), which leaves out the HTTP parsing and the socket and so shows
the Django-side cost alone. Each group reports its median and p95 wall time, its mean CPU time and
the ratio of its median to the floor's (the issue's targets: by-name within 3x, lists and facets
within 5x). A query pass apart (queries are captured, which costs) gives each group's query count
and time.

On PostgreSQL the tables are analysed after the ingest (what autovacuum does shortly after a bulk
registration), so that the run measures plans of the steady state. All requests carry `Authorization: Bearer <token>` of a member of one generated team. The API's read
rate limit is raised for the run (the counting itself still happens on every request)."""

from __future__ import annotations

import gc
import http.client
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import override_settings

from portal.accounts import services as account_services
from portal.accounts.models import Membership, Role, Team
from portal.core.db import wait_for_checkpoints
from portal.core.proc import cpu_ticks, stop

from . import services
from .bench import generate, quiet_access_log, remove
from .models import Entity

GROUPS = ("floor", "healthz", "by_name", "list", "facets")
TARGETS = {"by_name": 3.0, "list": 5.0, "facets": 5.0}  # times the floor's median (issue 18)
BENCH_RATE = "1000000/min"
FLOOR_REPEAT = 8


def _urls(info: dict, user) -> dict[str, list[str]]:
    owner = info["teams"][3]
    # Entities of every kind, the member's own team's private ones included (the read then checks the
    # membership): a spread of relation counts and descriptor sizes.
    internal = list(Entity.objects.filter(namespace="bench", visibility="internal").order_by("pk")
                    .values_list("kind_key", "name")[:3000:150])
    private = list(Entity.objects.filter(namespace="bench", visibility="private",
                                         owner_team__memberships__user=user).values_list("kind_key", "name")[:4])
    return {
        # Repeated, so that each round samples them about as often as the other groups.
        "floor": ["/api/v1/ping"] * FLOOR_REPEAT,
        "healthz": ["/healthz"] * FLOOR_REPEAT,
        "by_name": [f"/api/v1/entities/by-name/{k}/bench/{n}" for k, n in internal + private],
        "list": ["/api/v1/entities?filter=kind=model&limit=20",
                 "/api/v1/entities?filter=kind=model,spec.type=classifier&limit=20",
                 f"/api/v1/entities?filter=spec.owner={owner}&limit=20",
                 "/api/v1/entities?filter=kind=dataset,spec.lifecycle=production&limit=20",
                 "/api/v1/entities?filter=metadata.tags=gpu&limit=20&fields=kind,metadata.name"],
        "facets": ["/api/v1/entity-facets?facet=kind&facet=spec.type&facet=spec.lifecycle",
                   "/api/v1/entity-facets?facet=metadata.tags&filter=kind=model",
                   "/api/v1/entity-facets?facet=spec.owner&filter=kind=model"],
    }


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def _pct(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct))]


def _schedule(urls: dict[str, list[str]], rounds: int, seed: int = 11) -> list[tuple[str, str]]:
    """`rounds` passes over every URL of every group, each pass shuffled (interleaved groups)."""
    rng = random.Random(seed)  # noqa: S311 (an order, not a secret)
    plan = []
    for _ in range(rounds):
        one = [(group, url) for group, group_urls in urls.items() for url in group_urls]
        rng.shuffle(one)
        plan.extend(one)
    return plan


def _summary(wall: dict[str, list[float]], cpu: dict[str, float]) -> dict[str, dict]:
    """Per group: wall median and p95, mean CPU, and both against the floor's (`x_floor`: the medians,
    the issue's measure; `x_floor_cpu`: the CPU means, steadier on a shared machine)."""
    floor, floor_cpu = _pct(wall["floor"], 0.5), cpu["floor"] / len(wall["floor"])
    out = {}
    for group in GROUPS:
        p50, mean_cpu = _pct(wall[group], 0.5), cpu[group] / len(wall[group])
        out[group] = {"p50_ms": _ms(p50), "p95_ms": _ms(_pct(wall[group], 0.95)), "cpu_ms": _ms(mean_cpu),
                      "n": len(wall[group]), "x_floor": round(p50 / floor, 2),
                      "x_floor_cpu": round(mean_cpu / floor_cpu, 2) if floor_cpu else None}
    return out


class _QueryTimer:
    """A `connection.execute_wrapper`: counts and times the statements run through it."""

    def __init__(self) -> None:
        self.count, self.seconds = 0, 0.0

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.count += 1
            self.seconds += time.perf_counter() - started


# -- in-process -----------------------------------------------------------------------------------
def _in_process(urls: dict[str, list[str]], headers: dict, rounds: int) -> dict:
    client = Client(HTTP_HOST="localhost", **headers)
    for _group, url in _schedule(urls, 1):  # warm: the first request of each URL fills caches
        response = client.get(url)
        if response.status_code != 200:
            raise RuntimeError(f"{url}: {response.status_code} {response.content[:200]!r}")
    wall: dict[str, list[float]] = {g: [] for g in GROUPS}
    cpu = dict.fromkeys(GROUPS, 0.0)
    gc.collect()
    for group, url in _schedule(urls, rounds):
        c0, t0 = time.process_time(), time.perf_counter()
        response = client.get(url)
        wall[group].append(time.perf_counter() - t0)
        cpu[group] += time.process_time() - c0
        assert response.status_code == 200, (url, response.status_code)
    result = _summary(wall, cpu)
    # Queries apart (timing them costs a little of its own): count and time of each URL's statements.
    for group, group_urls in urls.items():
        counts, spent = [], []
        for url in group_urls:
            timer = _QueryTimer()
            with connection.execute_wrapper(timer):
                client.get(url)
            counts.append(timer.count)
            spent.append(timer.seconds)
        result[group].update(max_queries=max(counts), query_ms=round(_pct(spent, 0.5) * 1000, 3))
    return result


# -- where the time of one URL goes ----------------------------------------------------------------
# Each part is timed by a wrapper around the function that does it (put in place for this pass only,
# then removed): wall and CPU (this thread's) per request, the mean over `n` requests. Parts nest:
# "drf" holds the token check, throttling, negotiation, the view and rendering; the view holds the
# parts the view calls; "queries" are all statements of the request wherever they run.
def _parts() -> dict[str, tuple[object, str]]:
    from rest_framework import negotiation, renderers, views

    from portal.accounts import authentication
    from portal.core import throttling

    from . import api, selectors

    return {
        "drf": (views.APIView, "dispatch"),
        "token_check": (authentication.BearerTokenAuthentication, "authenticate"),
        "throttle": (throttling._ScopedThrottle, "allow_request"),
        "negotiation": (negotiation.DefaultContentNegotiation, "select_renderer"),
        "entity_query": (selectors, "entity_body_by_name"),
        "relations": (api, "relations_for"),
        "envelope": (api, "envelope"),
        "render_json": (renderers.JSONRenderer, "render"),
    }


def breakdown(client: Client, url: str, n: int = 200) -> dict[str, dict]:
    spent = {name: [0.0, 0.0] for name in ["request", *_parts(), "queries"]}
    originals = []

    def timed(name, func):
        def wrapper(*args, **kwargs):
            t0, c0 = time.perf_counter(), time.thread_time()
            try:
                return func(*args, **kwargs)
            finally:
                spent[name][0] += time.perf_counter() - t0
                spent[name][1] += time.thread_time() - c0
        return wrapper

    statements = [0]

    def query_timer(execute, sql, params, many, context):
        t0, c0 = time.perf_counter(), time.thread_time()
        try:
            return execute(sql, params, many, context)
        finally:
            statements[0] += 1
            spent["queries"][0] += time.perf_counter() - t0
            spent["queries"][1] += time.thread_time() - c0

    for name, (owner, attr) in _parts().items():
        original = owner.__dict__[attr]  # the class (or module) that defines it
        originals.append((owner, attr, original))
        setattr(owner, attr, timed(name, original))
    try:
        for _ in range(10):
            client.get(url)
        gc.collect()
        for value in spent.values():
            value[0] = value[1] = 0.0
        with connection.execute_wrapper(query_timer):
            statements[0] = 0
            for _ in range(n):
                t0, c0 = time.perf_counter(), time.thread_time()
                response = client.get(url)
                spent["request"][0] += time.perf_counter() - t0
                spent["request"][1] += time.thread_time() - c0
                assert response.status_code == 200, (url, response.status_code)
    finally:
        for owner, attr, original in reversed(originals):
            setattr(owner, attr, original)
    out = {name: {"wall_ms": round(w / n * 1000, 3), "cpu_ms": round(c / n * 1000, 3)} for name, (w, c) in spent.items()}
    out["queries"]["count"] = round(statements[0] / n, 2)
    return out


# -- through gunicorn ----------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(port: int, url: str, headers: dict) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", url, headers={"Host": "localhost", **headers})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _worker_pid(master: int, deadline: float) -> int:
    while time.monotonic() < deadline:
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.1)
    raise RuntimeError("gunicorn started no worker")


def _through_gunicorn(urls: dict[str, list[str]], token: str, rounds: int, log: Path) -> dict:
    port = _free_port()
    env = {**os.environ, "DEBUG": "false", "DJANGO_SETTINGS_MODULE": os.environ.get(
        "DJANGO_SETTINGS_MODULE", settings.SETTINGS_MODULE), "PLINTH_API_RATE_READ": BENCH_RATE}
    command = [sys.executable, "-m", "gunicorn", "portal.wsgi:application", "--bind", f"127.0.0.1:{port}",
               "--workers", "1", "--timeout", "60", "--chdir", str(settings.BASE_DIR)]
    with log.open("wb") as out:
        server = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)  # noqa: S603
    try:
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {server.returncode}: {log.read_text()[-2000:]}")
            try:
                if _get(port, "/healthz", {})[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("gunicorn did not answer /healthz within 60 s")
            time.sleep(0.2)
        worker = _worker_pid(server.pid, deadline)
        headers = {"Authorization": f"Bearer {token}"}
        for group, url in _schedule(urls, 1):  # warm, as in-process
            status, body = _get(port, url, headers if group != "healthz" else {})
            if status != 200:
                raise RuntimeError(f"{url}: HTTP {status} {body[:200]!r}")
        wall: dict[str, list[float]] = {g: [] for g in GROUPS}
        ticks = dict.fromkeys(GROUPS, 0)
        for group, url in _schedule(urls, rounds):
            before = cpu_ticks(worker)
            t0 = time.perf_counter()
            status, _ = _get(port, url, headers if group != "healthz" else {})
            wall[group].append(time.perf_counter() - t0)
            ticks[group] += cpu_ticks(worker) - before
            assert status == 200, (url, status)
        hz = os.sysconf("SC_CLK_TCK")
        return _summary(wall, {g: t / hz for g, t in ticks.items()})
    finally:
        stop(server, grace=20)


# -- the run --------------------------------------------------------------------------------------
def _targets(result: dict) -> dict:
    out = {}
    for group, limit in TARGETS.items():
        out[f"{group}_within_{limit:g}x"] = result[group]["x_floor"] <= limit
        cpu = result[group]["x_floor_cpu"]
        out[f"{group}_within_{limit:g}x_cpu"] = cpu is not None and cpu <= limit
    return out


def run(total: int, rounds: int = 20, keep: bool = False, http: bool = True) -> dict:
    with quiet_access_log():
        return _run(total, rounds, keep, http)


def _run(total: int, rounds: int, keep: bool, http: bool) -> dict:
    root = Path(tempfile.mkdtemp(prefix="plinth-latency-"))
    result: dict = {"entities_requested": total, "db": connection.vendor, "rounds": rounds}
    try:
        info = generate(root, total)
        with override_settings(DEBUG=False):
            started = time.perf_counter()
            plan = services.location_register(target=str(root), actor=None, file_roots=None)
            wait_for_checkpoints()
        result["ingest_s"] = round(time.perf_counter() - started, 1)
        result["entities_stored"] = Entity.objects.filter(location__target=str(root.resolve())).count()
        del plan
        gc.collect()
        if connection.vendor == "postgresql":
            # Steady state: fresh planner statistics, as autovacuum gives a table a minute or so after a
            # bulk registration (right after one, before it, a filtered list measured ~110 ms, not ~35).
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
        user, _ = get_user_model().objects.get_or_create(username="bench-latency")
        team = Team.objects.get(name=info["teams"][0])
        Membership.objects.get_or_create(user=user, team=team, defaults={"role": Role.MEMBER})
        _, token = account_services.token_create(user=user, name="latency bench")
        urls = _urls(info, user)
        result["urls"] = {group: len(set(group_urls)) for group, group_urls in urls.items()}
        result["load_average_before"] = [round(x, 2) for x in os.getloadavg()]
        rates = {**settings.PLINTH_API_RATES, "read": BENCH_RATE}
        with override_settings(DEBUG=False, PLINTH_API_RATES=rates):
            result["in_process"] = _in_process(urls, {"HTTP_AUTHORIZATION": f"Bearer {token}"}, rounds)
            client = Client(HTTP_HOST="localhost", HTTP_AUTHORIZATION=f"Bearer {token}")
            result["breakdown"] = {group: breakdown(client, urls[group][0]) for group in ("floor", "by_name")}
        result["in_process_targets"] = _targets(result["in_process"])
        if http:
            result["http"] = _through_gunicorn(urls, token, rounds, root / "gunicorn.log")
            result["http_targets"] = _targets(result["http"])
        result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
        return result
    finally:
        if not keep:
            remove(root)
            get_user_model().objects.filter(username="bench-latency").delete()
