"""Health probes, readiness with a real worker, metrics, request ids, error pages, settings."""

import json
import os
import subprocess
import sys
import time

import pytest
from django.test import Client

from portal.core.models import WorkerHeartbeat
from tests.factories import UserFactory


def test_healthz_is_public_and_cheap(db, client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


@pytest.mark.worker
def test_readyz_follows_a_real_worker(celery_worker_process, mlflow_url, settings):
    """Ready with database, broker, a live worker and MLflow; not ready once the worker stops."""
    settings.MLFLOW_TRACKING_URI = mlflow_url
    settings.PLINTH_WORKER_STALE_SECONDS = 3
    client = Client()
    body = client.get("/readyz").json()
    assert body["status"] == "ready", body
    assert {name: c["status"] for name, c in body["checks"].items()} == {
        "database": "ok", "broker": "ok", "worker": "ok", "mlflow": "ok"}

    celery_worker_process.kill()  # no shutdown hook: the heartbeat just goes stale
    deadline = time.monotonic() + 15
    while True:
        response = client.get("/readyz")
        if response.status_code == 503 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not ready"
    assert body["checks"]["worker"]["status"] == "fail"
    assert "no worker heartbeat" in body["checks"]["worker"]["detail"]
    assert body["checks"]["database"]["status"] == "ok"


@pytest.mark.django_db
def test_readyz_reports_unreachable_mlflow(settings):
    settings.MLFLOW_TRACKING_URI = "http://127.0.0.1:9"  # discard port: nothing listens
    body = Client().get("/readyz").json()
    assert body["checks"]["mlflow"]["status"] == "fail"
    assert body["checks"]["database"]["status"] == "ok"


@pytest.mark.worker
def test_graceful_worker_shutdown_removes_its_heartbeat(celery_worker_process):
    assert WorkerHeartbeat.objects.filter(hostname=celery_worker_process.hostname).exists()
    # A warm shutdown on a saturated machine (two test shards on two cores) once took over the default
    # 15 s and ended in SIGKILL, which runs no shutdown hook: give it a minute, and say which it was.
    returncode = celery_worker_process.stop(timeout=60)
    assert returncode == 0, f"the worker did not shut down warmly (exit {returncode})"
    assert not WorkerHeartbeat.objects.filter(hostname=celery_worker_process.hostname).exists()


@pytest.mark.django_db
def test_metrics_and_request_ids(client):
    client.force_login(UserFactory())
    response = client.get("/", HTTP_X_REQUEST_ID="trace-abcdef123456")
    assert response["X-Request-ID"] == "trace-abcdef123456"
    assert "trace-abcdef123456" in response.content.decode(), "the footer shows the id for support"
    junk = client.get("/", HTTP_X_REQUEST_ID="<script>")
    assert junk["X-Request-ID"] != "<script>" and len(junk["X-Request-ID"]) == 32
    metrics = Client().get("/metrics")
    assert metrics.status_code == 200
    assert 'plinth_http_requests_total{method="GET",route="site:home",status="200"}' in metrics.content.decode()


@pytest.mark.django_db
def test_metrics_stay_the_portals_when_a_library_sets_the_multiprocess_folder_later(client, monkeypatch, tmp_path):
    """feast.metrics sets PROMETHEUS_MULTIPROC_DIR for the whole process when imported; /metrics read
    that empty folder instead of the portal's counters (found in the full suite, after the feast tests)."""
    client.force_login(UserFactory())
    client.get("/")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    metrics = Client().get("/metrics").content.decode()
    assert 'plinth_http_requests_total{method="GET",route="site:home",status="200"}' in metrics


@pytest.mark.django_db
def test_access_log_is_structured_json_with_request_id(client, caplog):
    import logging

    from portal.core.logging import JsonFormatter

    client.force_login(UserFactory(username="logme"))
    with caplog.at_level(logging.INFO, logger="plinth.access"):
        response = client.get("/catalog/")
    record = next(r for r in caplog.records if r.name == "plinth.access")
    line = json.loads(JsonFormatter().format(record))
    assert line["request_id"] == response["X-Request-ID"]
    assert line["path"] == "/catalog/" and line["status"] == 200 and line["user"] == "logme"
    assert line["duration_ms"] >= 0


@pytest.mark.django_db
def test_pages_have_a_strict_csp_and_friendly_errors(client):
    client.force_login(UserFactory())
    response = client.get("/")
    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert "unsafe-inline" not in response["Content-Security-Policy"].split("script-src")[1].split(";")[0]
    missing = client.get("/no/such/page/")
    assert missing.status_code == 404 and "There is nothing here" in missing.content.decode()
    api_missing = client.get("/api/v1/entities/by-name/x/y/z")
    assert api_missing.status_code == 404 and api_missing.json()["error"]["status"] == 404


def test_production_refuses_to_start_without_secret_key(tmp_path):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings.prod", "PLINTH_VAR_DIR": str(tmp_path)}
    env.pop("SECRET_KEY", None)
    result = subprocess.run([sys.executable, "manage.py", "check"], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr
