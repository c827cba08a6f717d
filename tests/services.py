"""Real backing services for the test suite: Redis, PostgreSQL and an MLflow tracking server.

Each service runs on a free loopback port, in its own process group, with its data in a
temporary directory that is removed afterwards. Two ways in:

    python -m tests.services [--services redis,postgres,mlflow] -- CMD ... [++ [prod:] CMD ...]

runs each command in turn with REDIS_URL, MLFLOW_TRACKING_URI and PLINTH_TEST_POSTGRES_URL
exported; a command that starts with the token `prod:` also gets DATABASE_URL pointed at
PostgreSQL. And `running_services(kinds)` is a context manager yielding the same URLs, used by
`tests/conftest.py` when pytest runs without the wrapper.
"""

from __future__ import annotations

import base64
import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ALL_KINDS = ("redis", "mlflow", "postgres")
PG_ROLE = "plinth"
PG_DATABASE = "plinth"


class ServiceError(RuntimeError):
    """A service did not start; the message names it and carries the tail of its log."""


@dataclass
class Service:
    name: str
    proc: subprocess.Popen
    log_path: Path
    url: str
    stop_signal: int = signal.SIGTERM
    started_at: float = 0.0
    ready_after: float = 0.0

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or "(empty log)"

    def stop(self, grace: float = 10.0) -> None:
        """Signal the whole process group, then SIGKILL whatever is left after `grace` seconds."""
        if self.proc.poll() is None:
            _signal_group(self.proc, self.stop_signal)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=grace)
        # Children (uvicorn workers, postgres backends) may outlive the leader.
        _signal_group(self.proc, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _spawn(name: str, cmd: list[str], workdir: Path, url: str, **popen) -> Service:
    log_path = workdir / f"{name}.log"
    log = log_path.open("wb")
    proc = subprocess.Popen(  # noqa: S603 (fixed argument lists)
        cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, **popen
    )
    log.close()
    return Service(name=name, proc=proc, log_path=log_path, url=url, started_at=time.monotonic())


def _wait_ready(pending: list[tuple[Service, Callable[[], bool], float]], on_ready=None) -> None:
    """Poll every pending service until each answers its probe; fail on the first that dies or times out."""
    pending = list(pending)
    while pending:
        for item in list(pending):
            service, probe, timeout = item
            if service.proc.poll() is not None:
                raise ServiceError(
                    f"{service.name} exited with code {service.proc.returncode} before it was ready.\n"
                    f"--- last lines of {service.log_path} ---\n{service.log_tail()}"
                )
            ok = False
            with contextlib.suppress(Exception):
                ok = probe()
            if ok:
                service.ready_after = time.monotonic() - service.started_at
                pending.remove(item)
                if on_ready:
                    on_ready(service)
            elif time.monotonic() - service.started_at > timeout:
                raise ServiceError(
                    f"{service.name} was not ready after {timeout:.0f} s.\n"
                    f"--- last lines of {service.log_path} ---\n{service.log_tail()}"
                )
        time.sleep(0.1)


# --- Redis --------------------------------------------------------------------------------


def start_redis(workdir: Path, port: int | None = None) -> tuple[Service, Callable[[], bool]]:
    """`port`: a fixed port, to start a stopped server again where its clients expect it."""
    port = port or free_port()
    binary = shutil.which("redis-server")
    if not binary:
        raise ServiceError("redis-server not found (run `make system-deps`)")
    # No persistence (`--save ""`), and fail loudly rather than silently evict when memory runs out.
    persistence = ["--save", "", "--appendonly", "no", "--maxmemory-policy", "noeviction"]
    cmd = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir), *persistence]
    service = _spawn("redis", cmd, workdir, f"redis://127.0.0.1:{port}/0")

    def probe() -> bool:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")

    return service, probe


# --- PostgreSQL ---------------------------------------------------------------------------


def _pg_bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise ServiceError("PostgreSQL binaries not found (run `make system-deps`)")


def _as_postgres_user() -> dict:
    """initdb and postgres refuse to run as root: drop to the `postgres` OS user when we are root."""
    if os.geteuid() != 0:
        return {}
    try:
        entry = pwd.getpwnam("postgres")
    except KeyError as exc:
        raise ServiceError("running as root but there is no `postgres` OS user to run PostgreSQL") from exc
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def start_postgres(workdir: Path, *, durable: bool = False, port: int | None = None) -> tuple[Service, Callable[[], bool]]:
    """`durable`: a cluster kept between runs (`manage.py devstack --profile prod` keeps it under
    PLINTH_VAR_DIR): initdb only when `workdir/postgres/data` holds none yet, and fsync left on.
    `port`: the one to listen on (the load test restarts PostgreSQL where its clients expect it)."""
    bindir, port = _pg_bindir(), port or free_port()
    pgdir = workdir / "postgres"
    pgdir.mkdir(exist_ok=durable)
    creds = _as_postgres_user()
    if creds:
        os.chown(pgdir, creds["user"], creds["group"])
    env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
    t0 = time.monotonic()
    data = str(pgdir / "data")
    if not (durable and (pgdir / "data" / "PG_VERSION").exists()):
        initdb = [str(bindir / "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8"]
        initdb += [] if durable else ["--no-sync"]
        init = subprocess.run(initdb, capture_output=True, text=True, env=env, cwd=pgdir, **creds)  # noqa: S603
        if init.returncode != 0:
            raise ServiceError(
                f"postgres: initdb failed ({init.returncode}):\n{init.stdout[-2000:]}{init.stderr[-2000:]}"
            )
    listen = ["-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={pgdir}"]
    # Durability is pointless for a throwaway test cluster; these make it several times faster.
    fast = [] if durable else ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
    cmd = [str(bindir / "postgres"), "-D", data, "-p", str(port), *listen, *fast]
    url = f"postgres://{PG_ROLE}@127.0.0.1:{port}/{PG_DATABASE}"
    service = _spawn("postgres", cmd, workdir, url, env=env, cwd=pgdir, **creds)
    service.started_at = t0  # the reported start-up time includes initdb
    service.stop_signal = signal.SIGINT  # "fast" shutdown; SIGTERM would wait for clients to leave

    def probe() -> bool:
        import psycopg

        dsn = f"host=127.0.0.1 port={port} user=postgres dbname=postgres connect_timeout=2"
        with psycopg.connect(dsn, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [PG_ROLE]).fetchone()
            if not exists:
                # CREATEDB: pytest-django creates and drops test_plinth itself.
                conn.execute(f'CREATE ROLE "{PG_ROLE}" LOGIN CREATEDB')
                conn.execute(f'CREATE DATABASE "{PG_DATABASE}" OWNER "{PG_ROLE}"')
        return True

    return service, probe


# --- MLflow -------------------------------------------------------------------------------


def _mlflow_binary() -> str:
    candidate = Path(sys.executable).parent / "mlflow"
    if candidate.exists():
        return str(candidate)
    venv = ROOT / ".venv" / "bin" / "mlflow"
    if venv.exists():
        return str(venv)
    raise ServiceError("mlflow not found next to the Python interpreter nor in .venv (run `make setup`)")


# The suite's MLflow delivers webhooks to the portal a test runs on loopback http (MLflow allows only
# public https addresses by default), re-reads its webhook list every second instead of every minute, and
# keeps webhook secrets under a key of this run (tests/catalog/test_mlflow_webhooks.py).
MLFLOW_WEBHOOK_ENV = {
    "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
    "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
    "MLFLOW_WEBHOOK_CACHE_TTL": "1",
    "MLFLOW_WEBHOOK_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
}


def start_mlflow(workdir: Path) -> tuple[Service, Callable[[], bool]]:
    port, home = free_port(), workdir / "mlflow"
    (home / "artifacts").mkdir(parents=True)
    store, artifacts = f"sqlite:///{home / 'mlflow.db'}", str(home / "artifacts")
    cmd = [_mlflow_binary(), "server", "--backend-store-uri", store, "--default-artifact-root", artifacts]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", **MLFLOW_WEBHOOK_ENV}
    url = f"http://127.0.0.1:{port}"
    service = _spawn("mlflow", cmd, workdir, url, env=env, cwd=home)

    def probe() -> bool:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:  # noqa: S310 (loopback http)
            return resp.status == 200

    return service, probe


STARTERS = {"redis": start_redis, "postgres": start_postgres, "mlflow": start_mlflow}
TIMEOUTS = {"redis": 15.0, "postgres": 60.0, "mlflow": 120.0}
ENV_NAMES = {"redis": "REDIS_URL", "mlflow": "MLFLOW_TRACKING_URI", "postgres": "PLINTH_TEST_POSTGRES_URL"}


@contextlib.contextmanager
def running_services(
    kinds: tuple[str, ...] = ALL_KINDS, *, verbose: bool = False
) -> Iterator[dict[str, str]]:
    """Start the services in `kinds` at once, wait for all, yield {kind: url}; stop them on exit."""
    unknown = set(kinds) - set(STARTERS)
    if unknown:
        raise ValueError(f"unknown service kind(s): {sorted(unknown)}")
    workdir = Path(tempfile.mkdtemp(prefix="plinth-services-"))
    workdir.chmod(0o711)  # the postgres OS user must be able to reach its own subdirectory
    started: list[Service] = []
    try:
        pending = []
        for kind in kinds:  # start everything first: MLflow's slow boot overlaps the others
            service, probe = STARTERS[kind](workdir)
            started.append(service)
            pending.append((service, probe, TIMEOUTS[kind]))

        def report(service: Service) -> None:
            if verbose:
                print(
                    f"[services] {service.name} ready in {service.ready_after:.1f} s at {service.url}",
                    flush=True,
                )

        _wait_ready(pending, on_ready=report)
        yield {s.name: s.url for s in started}
    finally:
        for service in reversed(started):
            service.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@contextlib.contextmanager
def kept_services(workdir: Path, *, verbose: bool = False) -> Iterator[dict[str, str]]:
    """PostgreSQL and Redis for `manage.py devstack --profile prod`: started as for the suite, but
    PostgreSQL's cluster is kept in `workdir` (created when missing) between runs; Redis keeps nothing
    (broker messages and cache only: every job comes back from the database). Yields {kind: url}."""
    workdir.mkdir(parents=True, exist_ok=True)
    workdir.chmod(0o711)  # the postgres OS user must be able to reach its own subdirectory
    started: list[Service] = []
    try:
        postgres, pg_probe = start_postgres(workdir, durable=True)
        started.append(postgres)
        redis, redis_probe = start_redis(workdir)
        started.append(redis)

        def report(service: Service) -> None:
            if verbose:
                print(f"[services] {service.name} ready in {service.ready_after:.1f} s at {service.url}", flush=True)

        _wait_ready([(postgres, pg_probe, TIMEOUTS["postgres"]), (redis, redis_probe, TIMEOUTS["redis"])],
                    on_ready=report)
        yield {s.name: s.url for s in started}
    finally:
        for service in reversed(started):
            service.stop()


# --- command line -------------------------------------------------------------------------


class _Terminated(Exception):
    pass


def split_commands(argv: list[str]) -> list[tuple[bool, list[str]]]:
    commands, current = [], []
    for token in [*argv, "++"]:
        if token != "++":
            current.append(token)
            continue
        if current:
            prod = current[0] == "prod:"
            commands.append((prod, current[1:] if prod else current))
        current = []
    return [(prod, cmd) for prod, cmd in commands if cmd]


def _run(cmd: list[str], env: dict[str, str]) -> int:
    # The child stays in our process group so that Ctrl-C in a terminal reaches it directly.
    proc = subprocess.Popen(cmd, env=env)  # noqa: S603
    try:
        return proc.wait()
    except (KeyboardInterrupt, _Terminated):
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        raise


def main(argv: list[str]) -> int:
    kinds = ALL_KINDS
    if argv[:1] == ["--services"] and len(argv) > 1:
        kinds, argv = tuple(k.strip() for k in argv[1].split(",") if k.strip()), argv[2:]
    if argv[:1] != ["--"] or not split_commands(argv[1:]):
        print(__doc__, file=sys.stderr)
        return 2
    commands = split_commands(argv[1:])

    def on_sigterm(signum, frame):
        raise _Terminated()

    signal.signal(signal.SIGTERM, on_sigterm)
    results: list[tuple[str, int, float]] = []
    try:
        with running_services(kinds, verbose=True) as urls, tempfile.TemporaryDirectory(prefix="plinth-run-") as scratch:
            base_env = dict(os.environ)
            base_env.update({ENV_NAMES[kind]: url for kind, url in urls.items()})
            # Scaffolder workspaces and published repositories of this run stay out of var/.
            base_env.setdefault("PLINTH_SCAFFOLDER_ROOT", str(Path(scratch) / "scaffolder"))
            for prod, cmd in commands:
                env = dict(base_env)
                if prod:
                    if "postgres" not in urls:
                        raise ServiceError("a `prod:` command needs the postgres service")
                    env["DATABASE_URL"] = urls["postgres"]
                label = ("prod: " if prod else "") + " ".join(cmd)
                print(f"[services] running: {label}", flush=True)
                started = time.monotonic()
                results.append((label, _run(cmd, env), time.monotonic() - started))
    except ServiceError as exc:
        print(f"[services] ERROR: {exc}", file=sys.stderr, flush=True)
        return 3
    except (KeyboardInterrupt, _Terminated):
        print("[services] interrupted; services stopped", file=sys.stderr, flush=True)
        return 130
    for label, code, seconds in results:
        print(
            f"[services] {'ok  ' if code == 0 else 'FAIL'} (exit {code}, {seconds:.1f} s): {label}",
            flush=True,
        )
    return next((code for _, code, _ in results if code != 0), 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
