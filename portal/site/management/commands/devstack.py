"""`manage.py devstack`: the local stack behind `make run`.

Starts MLflow (unless MLFLOW_TRACKING_URI points elsewhere) and a Prometheus over the demo's made-up
serving metrics (unless PLINTH_PROMETHEUS_URL points elsewhere; skipped with a note when Debian's
prometheus package is missing), migrates and loads the demo data, then runs a Celery worker with
embedded beat and the web server.

`--profile prod` (`make run PROFILE=prod`) runs the production settings instead: PostgreSQL and Redis
started the way the suite starts them (tests/services.py; PostgreSQL's data kept in
PLINTH_VAR_DIR/prod), a SECRET_KEY kept in a 0600 file beside it, migrate, collectstatic and the
demo, then `check --deploy` (it refuses to go on with any issue), gunicorn with WEB_WORKERS
workers, one `celery worker` with WORKERS pool processes and one `celery beat` (portal/core/beat.py
makes any second beat a standby). Plain http on loopback: see PLINTH_LOCAL_HTTP in settings/prod.py.
Every child runs in its own
process group with its output prefixed by its name; Ctrl-C or SIGTERM stops them all, and a
child that dies on its own takes the stack down with a non-zero exit.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from portal.core.proc import kept_secret_key

STOP_GRACE_SECONDS = 10
MLFLOW_READY_SECONDS = 120
WEB_READY_SECONDS = 90
PROMETHEUS_READY_SECONDS = 60


class _Stop(Exception):
    """Raised from the signal handler to unwind into the shutdown path."""


@dataclass
class Child:
    name: str
    proc: subprocess.Popen
    # Celery's main process shuts its pool down itself (warm shutdown); SIGTERM reaching the pool
    # children directly makes them die mid-task. Others (MLflow's uvicorn) need the group signalled.
    term_leader_only: bool = False
    pump: threading.Thread = field(init=False)


class Supervisor:
    """Starts children in their own process groups, prefixes their output, stops them in reverse."""

    def __init__(self, out, env: dict[str, str], cwd: Path) -> None:
        self.out, self.env, self.cwd = out, env, cwd
        self.children: list[Child] = []
        self._lock = threading.Lock()

    def say(self, name: str, line: str) -> None:
        with self._lock:
            self.out.write(f"[{name}] {line.rstrip()}\n")
            self.out.flush()

    def start(
        self, name: str, cmd: list[str], *, term_leader_only: bool = False, env: dict[str, str] | None = None
    ) -> Child:
        proc = subprocess.Popen(  # noqa: S603 (fixed argument lists)
            cmd,
            cwd=self.cwd,
            env={**self.env, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            text=True,
            errors="replace",
            bufsize=1,
        )
        child = Child(name, proc, term_leader_only)
        child.pump = threading.Thread(target=self._pump, args=(child,), name=f"pump-{name}", daemon=True)
        child.pump.start()
        self.children.append(child)
        return child

    def _pump(self, child: Child) -> None:
        assert child.proc.stdout is not None
        for line in child.proc.stdout:
            self.say(child.name, line)

    def run_step(self, name: str, cmd: list[str], *, env: dict[str, str] | None = None) -> None:
        """Run a one-off command to completion; fail the whole stack if it fails."""
        child = self.start(name, cmd, env=env)
        code = child.proc.wait()
        child.pump.join(timeout=5)
        self.children.remove(child)
        if code != 0:
            raise CommandError(f"`{' '.join(cmd[1:])}` failed with exit code {code}")

    def dead_child(self) -> Child | None:
        return next((c for c in self.children if c.proc.poll() is not None), None)

    def stop_all(self) -> None:
        for child in reversed(self.children):
            if child.proc.poll() is None:
                self.say("devstack", f"stopping {child.name} (pid {child.proc.pid})")
                if child.term_leader_only:
                    child.proc.terminate()
                else:
                    _killpg(child.proc, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for child in reversed(self.children):
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            if child.proc.poll() is None:
                self.say("devstack", f"{child.name} ignored SIGTERM for {STOP_GRACE_SECONDS} s; killing it")
            _killpg(child.proc, signal.SIGKILL)  # also reaps grandchildren left in the group
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.proc.wait(timeout=5)
            child.pump.join(timeout=2)


def _killpg(proc: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 (loopback http only)
            return resp.status == 200
    except Exception:
        return False


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _webhook_env(env: dict[str, str], home: Path) -> None:
    """The local MLflow may deliver webhooks to the portal on loopback http, and both sides share a
    secret. The secret and MLflow's key for storing it live beside MLflow's database, so a webhook
    registered by an earlier `make run` still decrypts and verifies."""
    import base64

    def kept(name: str, make) -> str:
        path = home / name
        if not path.exists():
            path.write_text(make())
            path.chmod(0o600)
        return path.read_text().strip()

    env.setdefault("PLINTH_MLFLOW_WEBHOOK_SECRET", kept("webhook-secret", lambda: os.urandom(24).hex()))
    env["MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY"] = kept(
        "webhook-key", lambda: base64.urlsafe_b64encode(os.urandom(32)).decode())
    env.update({"MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true", "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
                "MLFLOW_WEBHOOK_CACHE_TTL": "5"})


class Command(BaseCommand):
    help = "Run the local stack: MLflow, migrations + demo data, Celery worker with beat, and the web server."
    # The children run their own checks; the supervisor itself needs none to start.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser) -> None:
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT") or 8000))
        parser.add_argument("--mlflow-port", type=int, default=int(os.environ.get("MLFLOW_PORT") or 5001))
        parser.add_argument("--prometheus-port", type=int, default=int(os.environ.get("PROMETHEUS_PORT") or 9091),
                            help="the demo Prometheus' port (another free one when taken)")
        parser.add_argument(
            "--gunicorn", action="store_true", help="serve with gunicorn instead of runserver"
        )
        parser.add_argument("--skip-demo", action="store_true", help="do not load the demo data and sign-ins")
        parser.add_argument("--profile", choices=["embedded", "prod"], default=os.environ.get("PROFILE") or "embedded",
                            help="embedded (SQLite, the default) or prod (PostgreSQL, Redis, gunicorn, "
                                 "separate worker and beat, DEBUG off)")
        parser.add_argument("--web-workers", type=int, default=int(os.environ.get("WEB_WORKERS") or 2),
                            help="prod profile: gunicorn workers")
        parser.add_argument("--workers", type=int, default=int(os.environ.get("WORKERS") or 2),
                            help="prod profile: Celery worker pool processes")

    def handle(self, *args, **opts) -> None:
        started = time.monotonic()
        base_dir, var_dir = Path(settings.BASE_DIR), Path(settings.VAR_DIR)
        var_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "MLFLOW_DISABLE_TELEMETRY": "true"}
        env.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.dev")
        # The OpenLineage spec the ingest checks events against is not in the repository (docs/lineage.md,
        # "Where the spec comes from"): a checkout next to the workplace's ../shared uses its copy.
        spec = base_dir.parent / "shared" / "compat" / "openlineage" / "spec"
        if not env.get("PLINTH_OPENLINEAGE_SPEC_DIR") and (spec / "OpenLineage.json").is_file():
            env["PLINTH_OPENLINEAGE_SPEC_DIR"] = str(spec)
        sup = Supervisor(self.stdout._out, env, base_dir)
        py, manage = sys.executable, str(base_dir / "manage.py")
        port = opts["port"]
        if _port_in_use(port):
            raise CommandError(f"port {port} is already in use; set PORT to another one")

        def on_signal(signum, frame):
            raise _Stop(signal.Signals(signum).name)

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        prod = opts["profile"] == "prod"
        code = 0
        services = contextlib.ExitStack()
        try:
            if prod:
                self._prod_env(sup, services, env, var_dir)
            own_mlflow = self._start_mlflow(sup, env, var_dir, opts["mlflow_port"])
            self._start_prometheus(sup, env, var_dir, opts["prometheus_port"], demo=not opts["skip_demo"])
            sup.run_step("migrate", [py, manage, "migrate", "--noinput"])
            if prod:  # the production profile serves only collected, hashed static files
                sup.run_step("collectstatic", [py, manage, "collectstatic", "--noinput", "-v", "0"])
            if not opts["skip_demo"]:
                sup.run_step("demo", [py, manage, "demo", "load"])
                sup.run_step("demo", [py, manage, "demo", "lineage"])
                sup.run_step("demo", [py, manage, "demo", "mlflow-seed"])
                sup.run_step("demo", [py, manage, "demo", "insights"])
                sup.run_step("demo", [py, manage, "demo", "operations"])
            if prod:
                self._start_prod_processes(sup, env, var_dir, py, manage, port, opts)
            else:
                schedule = str(var_dir / "celerybeat-schedule")
                worker = [py, "-m", "celery", "-A", "portal", "worker", "-B", "-l", "info", "--concurrency", "2"]
                sup.start("worker", [*worker, "-s", schedule], term_leader_only=True)
                sup.start("web", self._web_command(py, manage, port, opts["gunicorn"]), env=self._web_env())
            url = f"http://127.0.0.1:{port}"
            self._wait(sup, f"{url}/healthz", WEB_READY_SECONDS, "web")
            sup.say("devstack", f"Plinth is up at {url}/ (cold start {time.monotonic() - started:.1f} s)")
            if own_mlflow:  # model, version and alias changes reach the catalog at once (docs/catalog.md)
                sup.run_step("webhook", [py, manage, "catalog", "mlflow-webhook", "--url",
                                         f"{url}/api/v1/webhooks/mlflow"])
            if not opts["skip_demo"]:
                # `demo credentials` prints only with DEBUG on; the list is static (no database), so the
                # production profile asks the development settings for it.
                dev = {"DJANGO_SETTINGS_MODULE": "portal.settings.dev", "DEBUG": "1"} if prod else None
                sup.run_step("demo", [py, manage, "demo", "credentials"], env=dev)
            sup.say("devstack", "Ctrl-C stops everything.")
            code = self._watch(sup)
        except _Stop as stop:
            sup.say("devstack", f"{stop} received; shutting down")
        except CommandError as exc:
            sup.say("devstack", f"ERROR: {exc}")
            code = 1
        finally:
            # A second Ctrl-C during shutdown must not leave orphans behind.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            sup.stop_all()
            services.close()  # PostgreSQL and Redis last: the children above needed them to stop cleanly
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if code:
            sys.exit(code)

    def _prod_env(self, sup: Supervisor, services: contextlib.ExitStack, env: dict[str, str], var_dir: Path) -> None:
        """PostgreSQL and Redis as the suite starts them (unless DATABASE_URL and REDIS_URL are given),
        a kept SECRET_KEY, and the production settings over plain http on loopback."""
        home = var_dir / "prod"
        if not (os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL")):
            try:
                from tests import services as test_services  # the checkout's own service starter
            except ImportError as exc:
                raise CommandError("--profile prod starts PostgreSQL and Redis with tests/services.py, "
                                   "which is not importable here; set DATABASE_URL and REDIS_URL") from exc
            sup.say("devstack", f"starting PostgreSQL (data kept in {home / 'postgres'}) and Redis")
            try:
                urls = services.enter_context(test_services.kept_services(home))
            except test_services.ServiceError as exc:
                raise CommandError(str(exc)) from exc
            env.update({"DATABASE_URL": urls["postgres"], "REDIS_URL": urls["redis"]})
            env.pop("CELERY_BROKER_URL", None)
            sup.say("devstack", f"PostgreSQL at {urls['postgres']}, Redis at {urls['redis']}")
        else:
            sup.say("devstack", "using DATABASE_URL and REDIS_URL from the environment")
        home.mkdir(parents=True, exist_ok=True)
        env["SECRET_KEY"] = kept_secret_key(home / "secret-key")
        env.update({"DJANGO_SETTINGS_MODULE": "portal.settings.prod", "DEBUG": "0", "PLINTH_LOCAL_HTTP": "1"})

    def _start_prod_processes(self, sup: Supervisor, env: dict[str, str], var_dir: Path, py: str, manage: str,
                              port: int, opts: dict) -> None:
        import shutil

        # Refuse to start on any deploy-check issue; the three that plain http on loopback raises are
        # silenced by PLINTH_LOCAL_HTTP in settings/prod.py, and only those.
        sup.run_step("check", [py, manage, "check", "--deploy", "--fail-level", "WARNING"])
        home = var_dir / "prod"
        metrics = home / "metrics"  # gunicorn's workers share /metrics through it; cleared at each start
        shutil.rmtree(metrics, ignore_errors=True)
        metrics.mkdir(parents=True)
        celery = [py, "-m", "celery", "-A", "portal"]
        sup.start("worker", [*celery, "worker", "-l", "info", "--concurrency", str(opts["workers"])],
                  term_leader_only=True)
        sup.start("beat", [*celery, "beat", "-l", "info", "-s", str(home / "celerybeat-schedule")],
                  term_leader_only=True)
        web = [py, "-m", "gunicorn", "portal.wsgi:application", "--bind", f"127.0.0.1:{port}",
               "--workers", str(opts["web_workers"]), "--timeout", "60", "--access-logfile", "-"]
        sup.start("web", web, env={"PROMETHEUS_MULTIPROC_DIR": str(metrics)})

    def _start_mlflow(self, sup: Supervisor, env: dict[str, str], var_dir: Path, port: int) -> bool:
        """Start the local MLflow server unless one is configured or running; True when started here."""
        local = f"http://127.0.0.1:{port}"
        configured = os.environ.get("MLFLOW_TRACKING_URI")
        if configured and configured.rstrip("/") not in {local, f"http://localhost:{port}"}:
            sup.say("devstack", f"using MLflow at {configured} (MLFLOW_TRACKING_URI)")
            return False
        env["MLFLOW_TRACKING_URI"] = local
        if _http_ok(f"{local}/health"):
            sup.say("devstack", f"an MLflow server already answers at {local}; using it")
            return False
        if _port_in_use(port):
            raise CommandError(f"port {port} is taken by something that is not MLflow; set MLFLOW_PORT")
        home = var_dir / "mlflow"
        (home / "artifacts").mkdir(parents=True, exist_ok=True)
        _webhook_env(env, home)
        mlflow = Path(sys.executable).with_name("mlflow")
        store, artifacts = f"sqlite:///{home / 'mlflow.db'}", str(home / "artifacts")
        cmd = [str(mlflow), "server", "--backend-store-uri", store, "--default-artifact-root", artifacts]
        # MLflow logs every HTTP request at INFO; the portal's own lines matter more in this terminal.
        quiet = ["--uvicorn-opts", "--log-level warning"]
        sup.start("mlflow", [*cmd, "--host", "127.0.0.1", "--port", str(port), "--workers", "1", *quiet])
        t0 = time.monotonic()
        self._wait(sup, f"{local}/health", MLFLOW_READY_SECONDS, "mlflow")
        sup.say("devstack", f"MLflow ready at {local} in {time.monotonic() - t0:.1f} s")
        return True

    def _start_prometheus(self, sup: Supervisor, env: dict[str, str], var_dir: Path, port: int, *, demo: bool) -> None:
        """Serve the demo SLOs' series (portal/slo/demo.py) from a Prometheus of our own, and point the web
        process and the worker at it (PLINTH_PROMETHEUS_URL). A configured URL is used as it is; without
        Debian's prometheus package the stack goes on and the SLO tabs say Prometheus is unreachable."""
        import shutil

        if env.get("PLINTH_PROMETHEUS_URL", "").strip():
            sup.say("devstack", f"using Prometheus at {env['PLINTH_PROMETHEUS_URL']} (PLINTH_PROMETHEUS_URL)")
            return
        binary, promtool = (shutil.which(name, path=env.get("PATH")) for name in ("prometheus", "promtool"))
        if not (binary and promtool):
            sup.say("devstack", "Prometheus not found (run `make system-deps`: Debian's prometheus package); "
                                "going on without it: the demo SLOs will say Prometheus is unreachable")
            return
        if not demo:
            return
        from portal.slo import demo as slo_demo

        home = var_dir / "prometheus"
        try:
            blocks = slo_demo.ensure_blocks(home, promtool=promtool)
        except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
            sup.say("devstack", f"could not build the demo series ({exc}); going on without Prometheus")
            return
        when = blocks.anchor.strftime("%Y-%m-%d %H:%M UTC")
        sup.say("devstack", f"demo series built in {blocks.seconds:.1f} s (anchored {when})" if blocks.built
                else f"reusing the demo series anchored {when}")
        if port == 0 or _port_in_use(port):  # 0: any free port
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = sock.getsockname()[1]
        config = home / "prometheus.yml"
        config.write_text("# Written by manage.py devstack: no scrapes, the demo series only.\n"
                          "global:\n  scrape_interval: 1m\nscrape_configs: []\n", encoding="utf-8")
        url = f"http://127.0.0.1:{port}"
        sup.start("prometheus", [binary, f"--config.file={config}", f"--storage.tsdb.path={blocks.data_dir}",
                                 "--storage.tsdb.retention.time=100y", f"--web.listen-address=127.0.0.1:{port}",
                                 "--log.level=warn"])
        t0 = time.monotonic()
        self._wait(sup, f"{url}/-/ready", PROMETHEUS_READY_SECONDS, "prometheus")
        env["PLINTH_PROMETHEUS_URL"] = url
        sup.say("devstack", f"Prometheus ready at {url} in {time.monotonic() - t0:.1f} s")

    @staticmethod
    def _web_env() -> dict[str, str]:
        """The demo's web process runs with DEBUG off, so a newcomer meets the portal's own 404/403/500
        pages rather than Django's debug page listing every route; `DEBUG=1 make run` brings it back.
        Static files are still served (WhiteNoise from the finders, as in every non-production profile)."""
        return {} if os.environ.get("DEBUG") else {"DEBUG": "0"}

    @staticmethod
    def _web_command(py: str, manage: str, port: int, gunicorn: bool) -> list[str]:
        if gunicorn:
            app = [py, "-m", "gunicorn", "portal.wsgi:application", "--bind", f"127.0.0.1:{port}"]
            return [*app, "--workers", "2", "--access-logfile", "-"]
        return [py, manage, "runserver", f"127.0.0.1:{port}", "--noreload"]

    @staticmethod
    def _wait(sup: Supervisor, url: str, timeout: float, name: str) -> None:
        deadline = time.monotonic() + timeout
        while not _http_ok(url):
            dead = sup.dead_child()
            if dead:
                raise CommandError(f"{dead.name} exited with code {dead.proc.returncode} during start-up")
            if time.monotonic() > deadline:
                raise CommandError(f"{name} did not answer {url} within {timeout:.0f} s")
            time.sleep(0.2)

    @staticmethod
    def _watch(sup: Supervisor) -> int:
        while True:
            dead = sup.dead_child()
            if dead:
                sup.say(
                    "devstack",
                    f"{dead.name} exited unexpectedly (code {dead.proc.returncode}); stopping the rest",
                )
                return 1
            time.sleep(0.5)
