"""Governance fixtures: the demo organisation with fraud-detector's MLflow versions in the catalog,
and a way to run queued outbox work in-process when a test is not about the worker."""

from __future__ import annotations

import contextlib
import time

import pytest
from django.test import Client

from catalog.models import Entity, ModelVersion
from portal.accounts import demo as org_demo

# As portal.site.mlflow_demo seeds them: champion=2, challenger=3.
FRAUD_VERSIONS = {"1": (0.88, []), "2": (0.91, ["champion"]), "3": (0.93, ["challenger"])}


@pytest.fixture
def fraud_versions(demo_org):
    entity = Entity.objects.get(ref="model:default/fraud-detector")
    for version, (auc, aliases) in FRAUD_VERSIONS.items():
        ModelVersion.objects.update_or_create(
            entity=entity,
            version=version,
            defaults={
                "version_number": int(version),
                "aliases": aliases,
                "metrics": {"auc": auc, "precision": auc - 0.05},
                "run_id": f"run{version}",
                "status": "READY",
            },
        )
    return entity


@pytest.fixture
def users(demo_org):
    return demo_org["users"]


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def as_user():
    return client_for


def drain(max_rounds: int = 10) -> list[str]:
    """Run unsent outbox work in this process, as a worker would (tasks called directly)."""
    import portal.governance.tasks  # noqa: F401 (registers the tasks with the app)
    from portal.celery import app
    from portal.governance.models import OutboxMessage

    ran = []
    for _ in range(max_rounds):
        pending = list(OutboxMessage.objects.filter(sent_at__isnull=True).order_by("id"))
        if not pending:
            break
        for message in pending:
            OutboxMessage.objects.filter(pk=message.pk).update(sent_at=message.created_at)
            if message.task.startswith("catalog."):
                continue  # the MLflow sync is not under test here
            app.tasks[message.task](*message.args)
            ran.append(message.key)
    return ran


@pytest.fixture
def run_outbox():
    return drain


DEMO_PASSWORD = org_demo.DEMO_PASSWORD


@pytest.fixture
def mlflow_fraud(mlflow_url, settings, demo_org):
    """The real MLflow server, seeded, with fraud-detector reset to champion=2, challenger=3, and the
    catalog synced from it."""
    from catalog import mlflow_sync
    from portal.site import mlflow_demo

    settings.MLFLOW_TRACKING_URI = mlflow_url
    mlflow_demo.seed(mlflow_url)
    client = mlflow_client(mlflow_url)
    client.set_registered_model_alias("fraud-detector", "champion", "2")
    client.set_registered_model_alias("fraud-detector", "challenger", "3")  # a promotion of v3 drops it
    for version in ("1", "2", "3"):
        with contextlib.suppress(Exception):  # no tag yet
            client.delete_model_version_tag("fraud-detector", version, "plinth.approval_request")
    mlflow_sync.sync()
    return client


def mlflow_client(url):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=url, registry_uri=url)


def wait_for(predicate, timeout: float = 60.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def worker_env(mlflow_fraud, redis_url, monkeypatch, mlflow_url):
    """MLflow seeded and synced. Naming `redis_url` makes this process publish to the worker's Redis
    (tests/conftest.py, `_no_message_outlives_its_test`)."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_url)
    return mlflow_fraud
