"""Readiness checks: database, broker, a live worker, MLflow. Each returns (ok, detail)."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone


def check_database() -> tuple[bool, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return True, connection.vendor


def check_broker() -> tuple[bool, str]:
    from portal.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
        transport = conn.transport_cls
    return True, str(transport)


def check_worker() -> tuple[bool, str]:
    from .models import WorkerHeartbeat

    cutoff = timezone.now() - timedelta(seconds=settings.PLINTH_WORKER_STALE_SECONDS)
    live = WorkerHeartbeat.objects.filter(last_seen__gte=cutoff).count()
    if live:
        return True, f"{live} worker(s) alive"
    return False, f"no worker heartbeat in the last {settings.PLINTH_WORKER_STALE_SECONDS} s"


def check_mlflow() -> tuple[bool, str]:
    url = settings.MLFLOW_TRACKING_URI.rstrip("/") + "/health"
    if not url.startswith(("http://", "https://")):
        return False, "MLFLOW_TRACKING_URI is not an http(s) URL"
    with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 (scheme checked above)
        return resp.status == 200, f"HTTP {resp.status}"


CHECKS: dict[str, Callable[[], tuple[bool, str]]] = {
    "database": check_database,
    "broker": check_broker,
    "worker": check_worker,
    "mlflow": check_mlflow,
}


def run_checks() -> dict[str, dict]:
    results: dict[str, dict] = {}
    for name, check in CHECKS.items():
        started = time.perf_counter()
        try:
            ok, detail = check()
        except Exception as exc:  # a failing dependency is a result, not a crash
            ok, detail = False, f"{type(exc).__name__}: {exc}"[:300]
        results[name] = {
            "status": "ok" if ok else "fail",
            "detail": detail,
            "latency_ms": round((time.perf_counter() - started) * 1000, 1),
        }
    return results
