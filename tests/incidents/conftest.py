"""Incident fixtures: the demo organisation, bearer-token clients for its people, Alertmanager payloads
as Alertmanager writes them, and a real Alertmanager (Debian's prometheus-alertmanager) whose webhook
receiver posts to the live server."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml
from django.test import Client

from portal.accounts import services as account_services
from tests.services import free_port

SERVICE = "component:default/fraud-scoring-service"
API = "api:default/fraud-scoring-api"
PRIVATE = "model:default/chargeback-predictor"  # fraud-ml's private model
RANKER = "model:default/product-ranker"  # recsys


@pytest.fixture
def api_as(demo_org):
    def make(username: str) -> Client:
        _, raw = account_services.token_create(user=demo_org["users"][username], name="incidents")
        client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}", raise_request_exception=False)
        client.get("/api/v1/me")  # the token's first use is audited: not part of what a test counts
        return client

    return make


def post(client: Client, url: str, body) -> object:
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(url, data=data, content_type="application/json")


def alert(name: str = "FraudApiErrors", *, status: str = "firing", entity: str | None = SERVICE,
          severity: str | None = "critical", fingerprint: str | None = None, starts: str = "2026-12-03T10:40:00.123456789Z",
          **labels) -> dict:
    all_labels = {"alertname": name, **labels}
    if entity is not None:
        all_labels["plinth_entity"] = entity
    if severity is not None:
        all_labels["severity"] = severity
    return {"status": status, "labels": all_labels, "annotations": {"summary": f"{name} on {entity}"},
            "startsAt": starts, "endsAt": "2026-12-03T11:00:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.example:9090/graph?g0.expr=up", "fingerprint": fingerprint
            or hashlib.sha256(repr((name, entity, sorted(labels.items()))).encode()).hexdigest()[:16]}


def payload(*alerts: dict, group: str = "FraudApiErrors", status: str | None = None, **extra) -> dict:
    firing = any(a["status"] == "firing" for a in alerts)
    return {"version": "4", "groupKey": f'{{}}:{{alertname="{group}"}}', "truncatedAlerts": 0,
            "status": status or ("firing" if firing else "resolved"), "receiver": "plinth",
            "groupLabels": {"alertname": group}, "commonLabels": {"alertname": group},
            "commonAnnotations": {"summary": "5xx above 5 %"}, "externalURL": "http://alertmanager.example:9093",
            "alerts": list(alerts), **extra}


# -- a real Alertmanager ----------------------------------------------------------------------------


@dataclass
class Alertmanager:
    url: str
    token_file: Path
    log_path: Path
    proc: subprocess.Popen

    def use_token(self, raw: str) -> None:
        """Alertmanager reads `credentials_file` on every request: the next notification carries it."""
        self.token_file.write_text(raw)

    def post_alerts(self, alerts: list[dict]) -> None:
        """POST /api/v2/alerts, as Prometheus does."""
        response = httpx.post(f"{self.url}/api/v2/alerts", json=alerts, timeout=5)
        assert response.status_code == 200, response.text

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


def _binary() -> str:
    for name in ("prometheus-alertmanager", "alertmanager"):
        found = shutil.which(name)
        if found:
            return found
    raise RuntimeError("prometheus-alertmanager not found: run `make system-deps` (Debian's prometheus-alertmanager)")


@pytest.fixture(scope="module")
def alertmanager(live_server, tmp_path_factory) -> Alertmanager:
    """Alertmanager on a free loopback port; its one receiver posts every group to the live server's
    webhook with the token in `token_file`. Short waits (1 s) so that a test sees notifications at once."""
    workdir = tmp_path_factory.mktemp("alertmanager")
    token_file = workdir / "token"
    token_file.write_text("not-a-token-yet")
    port = free_port()
    config = {
        "route": {"receiver": "plinth", "group_by": ["alertname"], "group_wait": "1s", "group_interval": "1s",
                  "repeat_interval": "1h"},
        "receivers": [{"name": "plinth", "webhook_configs": [{
            "url": f"{live_server.url}/api/v1/incidents/alertmanager", "send_resolved": True, "max_alerts": 1000,
            "http_config": {"authorization": {"type": "Bearer", "credentials_file": str(token_file)}}}]}],
    }
    config_path = workdir / "alertmanager.yml"
    config_path.write_text(yaml.safe_dump(config))
    log_path = workdir / "alertmanager.log"
    cmd = [_binary(), f"--config.file={config_path}", f"--storage.path={workdir / 'data'}",
           f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=", "--log.level=debug"]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,  # noqa: S603
                                start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"alertmanager exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                break
        if time.monotonic() > deadline:
            raise RuntimeError(f"alertmanager not ready after 30 s:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.1)
    yield Alertmanager(url=url, token_file=token_file, log_path=log_path, proc=proc)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
