"""`manage.py devstack --profile prod` (`make run PROFILE=prod`) against the suite's PostgreSQL and Redis:
gunicorn answers /healthz and /readyz, DEBUG is off, a second beat is a standby, Ctrl-C stops it all."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.services import free_port

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.prod_smoke, pytest.mark.usefixtures("postgres_only")]


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 (loopback http)
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _wait_for(path: Path, text: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while text not in path.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"no {text!r} (exit {proc.poll()}):\n{path.read_text(errors='replace')[-4000:]}")
        time.sleep(0.5)


def test_the_production_profile_serves_through_gunicorn_with_debug_off(tmp_path, redis_url, mlflow_url):
    import redis

    redis_db = redis_url.rsplit("/", 1)[0] + "/13"  # away from the suite's broker and cache
    redis.Redis.from_url(redis_db).flushdb()
    port, var_dir, log_path = free_port(), tmp_path / "var", tmp_path / "devstack.log"
    env = {k: v for k, v in os.environ.items() 
           if k not in {"DJANGO_SETTINGS_MODULE", "DEBUG", "CELERY_BROKER_URL", "DJANGO_ALLOW_ASYNC_UNSAFE"}}
    env.update({"REDIS_URL": redis_db, "MLFLOW_TRACKING_URI": mlflow_url, "PLINTH_VAR_DIR": str(var_dir),
                "PLINTH_PROMETHEUS_URL": "http://127.0.0.1:9", "PLINTH_BEAT_LOCK_TTL_SECONDS": "3",
                "PYTHONUNBUFFERED": "1"})
    cmd = [sys.executable, "manage.py", "devstack", "--profile", "prod", "--skip-demo", "--port", str(port),
           "--web-workers", "2", "--workers", "1"]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,  # noqa: S603
                                start_new_session=True)
    beat = None
    try:
        _wait_for(log_path, "Plinth is up", proc, 150)
        _wait_for(log_path, "holding the lock", proc, 30)  # the beat may log after the web is up
        text = log_path.read_text()
        assert "System check identified no issues (3 silenced)" in text, "check --deploy ran and was clean"
        assert "[beat]" in text and "holding the lock" in text
        url = f"http://127.0.0.1:{port}"
        assert _get(f"{url}/healthz")[0] == 200
        deadline = time.monotonic() + 30  # the worker's first heartbeat
        while (ready := _get(f"{url}/readyz"))[0] != 200 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert ready[0] == 200, ready[1]
        assert '"postgresql"' in ready[1] and '"redis"' in ready[1]
        status, body = _get(f"{url}/no-such-page-here")
        assert status == 404 and "Not found · Plinth" in body and "URLconf" not in body, body[:500]
        assert "Server: gunicorn" in log_path.read_text() or _server_header(url) == "gunicorn"
        key = var_dir / "prod" / "secret-key"
        assert stat.S_IMODE(key.stat().st_mode) == 0o600 and len(key.read_text().strip()) >= 50
        assert key.read_text().strip() not in log_path.read_text(), "the secret key is never printed"

        # A second beat started by mistake against the same Redis waits as a standby.
        beat_log = tmp_path / "beat2.log"
        beat_env = {**env, "DJANGO_SETTINGS_MODULE": "portal.settings.prod", "DEBUG": "0",
                    "PLINTH_LOCAL_HTTP": "1", "SECRET_KEY": key.read_text().strip()}
        with beat_log.open("wb") as log:
            beat = subprocess.Popen([sys.executable, "-m", "celery", "-A", "portal", "beat", "-l", "info",  # noqa: S603
                                     "-s", str(tmp_path / "beat2-schedule")], cwd=ROOT, env=beat_env,
                                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        _wait_for(beat_log, "beat standby: another beat holds the lock", beat, 30)
    finally:
        if beat:
            os.killpg(beat.pid, signal.SIGKILL)
            beat.wait(timeout=10)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGINT)  # Ctrl-C
        try:
            code = proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
        redis.Redis.from_url(redis_db).flushdb()
    assert code == 0, log_path.read_text()[-3000:]
    assert "SIGINT received; shutting down" in log_path.read_text()
    assert _port_closed(port)


def _server_header(url: str) -> str:
    with urllib.request.urlopen(f"{url}/healthz", timeout=5) as resp:  # noqa: S310
        return resp.headers.get("Server", "")


def _port_closed(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0
