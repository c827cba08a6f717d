"""Suite-wide fixtures: real services, a real Celery worker, and a real Chromium.

Services come from the environment prepared by `python -m tests.services` (what `make test`
does). When pytest is run on its own, the first test that needs a service starts it here.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis.database import DirectoryBasedExampleDatabase

from tests import services, shards

# Playwright's sync API runs an event loop in the test thread; Django would otherwise refuse
# ORM calls from it ("You cannot call this from an async context").
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"

# Hypothesis profiles (docs/security.md, "Property-based bad-input tests"). `ci`, the default and what
# `make test` runs, keeps Hypothesis' own 100 examples for a property that does not say otherwise;
# the HTTP-driven properties state a smaller count for it (tests.hostile.budget). `fuzz` multiplies
# every such count by 20: `make fuzz-bad-input`, or HYPOTHESIS_PROFILE=fuzz for one pytest run.
# No deadline in either: the machine is shared, and a slow example is not a failing one.
_HYPOTHESIS_COMMON = {
    "deadline": None,
    "print_blob": True,  # a failure prints @reproduce_failure(...) to replay it exactly
    "database": DirectoryBasedExampleDatabase(str(ROOT / "var" / "hypothesis")),
    "suppress_health_check": [HealthCheck.too_slow],
}
hypothesis_settings.register_profile("ci", **_HYPOTHESIS_COMMON)
hypothesis_settings.register_profile("fuzz", max_examples=2000, **_HYPOTHESIS_COMMON)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
CHROMIUM = os.environ.get("PLINTH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-quic",
    "--disable-sync",
]


# --- shards (tests/shards.py: make test runs the suite as parallel shards) ---------------------


def pytest_addoption(parser):
    parser.addoption("--shard", default=None, metavar="K/N",
                     help="run only shard K of N: whole test files dealt by measured weight (tests/shards.py)")


@pytest.hookimpl(trylast=True)  # after -m and -k deselected theirs: every shard deals the same files
def pytest_collection_modifyitems(config, items):
    spec = config.getoption("--shard")
    if not spec:
        return
    try:
        k, n = shards.parse_spec(spec)
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from exc
    keep, drop = shards.select(items, k, n)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


# --- services -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def _service_stack() -> Iterator[contextlib.ExitStack]:
    with contextlib.ExitStack() as stack:
        yield stack


def _service_url(kind: str, stack: contextlib.ExitStack) -> str:
    url = os.environ.get(services.ENV_NAMES[kind])
    if url:
        return url
    url = stack.enter_context(services.running_services((kind,)))[kind]
    # Later fixtures and subprocesses (the Celery worker) read the same variable.
    os.environ[services.ENV_NAMES[kind]] = url
    return url


@pytest.fixture(scope="session")
def redis_url(_service_stack) -> str:
    return _service_url("redis", _service_stack)


@pytest.fixture(scope="session")
def mlflow_url(_service_stack) -> str:
    return _service_url("mlflow", _service_stack)


@pytest.fixture(scope="session")
def postgres_url(_service_stack) -> str:
    return _service_url("postgres", _service_stack)


@pytest.fixture
def postgres_only():
    """The production-profile tests (marked prod_smoke): `make test` runs them with DATABASE_URL set;
    elsewhere they skip instead of running on SQLite."""
    from django.db import connection

    if not os.environ.get("DATABASE_URL"):
        pytest.skip("DATABASE_URL is not set; `make test` runs this subset against PostgreSQL")
    assert connection.vendor == "postgresql"


@pytest.fixture(scope="session")
def service_urls(redis_url, mlflow_url, postgres_url) -> dict[str, str]:
    """{"redis": ..., "mlflow": ..., "postgres": ...}: from the environment, or started for this session."""
    return {"redis": redis_url, "mlflow": mlflow_url, "postgres": postgres_url}


# --- Celery worker ------------------------------------------------------------------------


class WorkerProcess:
    """A `celery worker` subprocess on the test database; its output goes to a log file."""

    def __init__(self, proc: subprocess.Popen, hostname: str, log_path: Path) -> None:
        self.proc, self.hostname, self.log_path = proc, hostname, log_path

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 15.0) -> int | None:
        """Warm shutdown (SIGTERM: finish running tasks), then SIGKILL after `timeout` seconds."""
        if self.alive():
            # Only the main process: it drains its pool itself. SIGTERM to the whole group would
            # hit the pool children directly and turn a warm shutdown into lost tasks.
            self.proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=timeout)
        self._signal(signal.SIGKILL)  # pool children that outlived the parent
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        return self.proc.returncode

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until the worker's first heartbeat reached the database."""
        try:
            _wait_for_heartbeat(self, timeout)
        except BaseException:
            self.stop(timeout=5)  # never leak a worker, whatever interrupted the wait
            raise

    def kill(self) -> None:
        """SIGKILL the worker and its pool, as a crash would: no shutdown hooks run."""
        self._signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def _signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)


def _test_database_url() -> str:
    """The URL of the database the tests use now (after pytest-django created the test DB)."""
    from django.db import connection

    cfg = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{Path(cfg['NAME']).resolve()}"
    if connection.vendor == "postgresql":
        auth = quote(cfg["USER"] or "", safe="")
        if cfg.get("PASSWORD"):
            auth += ":" + quote(cfg["PASSWORD"], safe="")
        host = f"{auth}@" if auth else ""
        port = f":{cfg['PORT']}" if cfg.get("PORT") else ""
        return f"postgres://{host}{cfg['HOST'] or '127.0.0.1'}{port}/{cfg['NAME']}"
    raise RuntimeError(f"celery_worker_process does not know how to share a {connection.vendor} database")


def use_broker(url: str) -> None:
    """Point this process's publisher at `url`, dropping cached connections to the previous broker."""
    from portal.celery import app

    app.conf.broker_url = url
    app._pool = None
    with contextlib.suppress(AttributeError, KeyError):
        app.__dict__["amqp"]._producer_pool = None


def _broker_url(redis_url: str) -> str:
    """The broker the test process sends to; the worker must consume from the same one. The process
    publishes into memory (portal/settings/test.py) until a test runs a worker: then to its Redis."""
    from portal.celery import app

    current = app.conf.broker_url or ""
    if not current.startswith("redis"):
        use_broker(redis_url)
        current = redis_url
    return current


def drop_queued(broker_url: str) -> int:
    """Delete the messages a Redis broker still holds, waiting or delivered and not acknowledged (the
    queue bindings stay: publishers declare them once per process). The number of keys removed."""
    import redis

    client = redis.Redis.from_url(broker_url, socket_timeout=5, socket_connect_timeout=5)
    try:
        keys = [*client.scan_iter(match="celery*"), *client.scan_iter(match="unacked*")]
        return client.delete(*keys) if keys else 0
    finally:
        client.close()


@pytest.fixture(autouse=True)
def _no_message_outlives_its_test(request):
    """A test that may run a worker (it asks for the suite's Redis) publishes there from its first fixture
    on, so that what its set-up queues before the worker starts is not lost; what is still queued when it
    ends is dropped, so the next test's worker never runs it against other data, and this process
    publishes into memory again (portal/settings/test.py)."""
    if "redis_url" in request.fixturenames:
        _broker_url(request.getfixturevalue("redis_url"))
    yield
    reset_broker()


def reset_broker() -> None:
    from django.conf import settings as django_settings

    from portal.celery import app

    url = app.conf.broker_url or ""
    if url == django_settings.CELERY_BROKER_URL:
        return
    if url.startswith("redis"):
        with contextlib.suppress(Exception):  # a test may have stopped its own Redis (tests/reliability)
            drop_queued(url)
    use_broker(django_settings.CELERY_BROKER_URL)


def start_celery_worker(
    redis_url: str,
    *,
    concurrency: int = 2,
    timeout: float = 60.0,
    env: dict[str, str] | None = None,
    wait: bool = True,
) -> WorkerProcess:
    """`env`: extra environment for the worker (e.g. where MLflow or the SMTP server is). `wait=False`:
    return at once; call `worker.wait_ready()` before relying on it (set-up can go on meanwhile)."""
    hostname = f"test-{uuid.uuid4().hex[:8]}@plinth-tests"
    extra = env or {}
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings.test",
        "DATABASE_URL": _test_database_url(),
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": _broker_url(redis_url),
        "PLINTH_HEARTBEAT_SECONDS": "1",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }
    fd, name = tempfile.mkstemp(prefix="celery-worker-", suffix=".log")
    os.close(fd)
    log_path = Path(name)
    loglevel = os.environ.get("PLINTH_TEST_WORKER_LOGLEVEL", "info")  # "debug" when chasing a failure
    cmd = [sys.executable, "-m", "celery", "-A", "portal", "worker", "-n", hostname, "-l", loglevel]
    cmd += ["--pool", "prefork", "--concurrency", str(concurrency), "--without-mingle", "--without-gossip"]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(  # noqa: S603
            cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    worker = WorkerProcess(proc, hostname, log_path)
    _WORKER_PIDS.add(proc.pid)
    if wait:
        worker.wait_ready(timeout)
    return worker


_WORKER_PIDS: set[int] = set()  # the worker processes this session started


@pytest.fixture(scope="session", autouse=True)
def _upload_folders_removed():
    """The test process and each worker it starts extract uploaded descriptors into a folder of their own,
    `var/catalog-uploads-<pid>` (portal/settings/test.py): removed when the session ends, so that runs by
    hand do not fill a developer's var/."""
    yield
    from django.conf import settings as django_settings

    root = Path(django_settings.PLINTH_CATALOG_UPLOAD_ROOT)
    for pid in (os.getpid(), *_WORKER_PIDS):
        shutil.rmtree(root.with_name(f"catalog-uploads-{pid}"), ignore_errors=True)


def _wait_for_heartbeat(worker: WorkerProcess, timeout: float) -> None:
    from portal.core.models import WorkerHeartbeat

    deadline = time.monotonic() + timeout
    # The heartbeat row proves more than "ready" in the log: the worker reached our database.
    while not WorkerHeartbeat.objects.filter(hostname=worker.hostname).exists():
        if not worker.alive() or time.monotonic() > deadline:
            state = f"exited with {worker.proc.returncode}" if not worker.alive() else "timed out"
            tail = "\n".join(worker.log.splitlines()[-15:])
            pytest.fail(f"Celery worker {state} before its first heartbeat.\n--- worker log ---\n{tail}")
        time.sleep(0.2)


@pytest.fixture
def celery_worker_process(transactional_db, redis_url) -> Iterator[WorkerProcess]:
    """A fresh Celery worker per test. Data must be committed to be seen: hence transactional_db."""
    worker = start_celery_worker(redis_url)
    try:
        yield worker
    finally:
        worker.stop()
        with contextlib.suppress(OSError):
            worker.log_path.unlink()


# --- Chromium -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, request):
    """A new browser context and page; a screenshot is saved to test-artifacts/screenshots/ afterwards."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    pg = context.new_page()
    yield pg
    shots = ARTIFACTS / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)[-180:]
    with contextlib.suppress(Exception):  # a crashed page must not hide the test's own failure
        pg.screenshot(path=str(shots / f"{name}.png"), full_page=True)
    context.close()


# --- domain fixtures shared by every app's tests ---------------------------------------------

SHARED_COMPAT = ROOT.parent / "shared" / "compat" / "backstage"


@pytest.fixture
def demo_org(db):
    """The demo organisation (teams, users, roles) and its catalog, as `make run` loads it.

    Returns {"teams": {name: Team}, "users": {username: User}}; every demo password is
    `portal.core.org_demo.DEMO_PASSWORD`."""
    from catalog import demo as catalog_demo
    from portal.accounts import demo as org_demo

    org = org_demo.load_org()
    plan = catalog_demo.load_catalog()
    assert not plan.errors, [str(e) for e in plan.errors]
    return org


@pytest.fixture
def backstage_compat() -> Path:
    """../shared/compat/backstage (read-only); skips with a clear message when absent."""
    if not SHARED_COMPAT.is_dir():
        pytest.skip(f"Backstage compatibility corpus not found at {SHARED_COMPAT} (../shared/compat/backstage)")
    return SHARED_COMPAT


@pytest.fixture(scope="session")
def feast_repos(tmp_path_factory):
    """A real Feast repository, applied and materialized, and its re-applied copy (tests/feast_repos.py):
    built once per session, shared by the catalog's Feast tests and the browser journey."""
    from tests.feast_repos import build

    return build(tmp_path_factory.mktemp("feast"))

