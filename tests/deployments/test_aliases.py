"""MLflow aliases as a source of deployments, against the real `mlflow server` the suite starts: a mapped
alias makes its version live in the environment, moving it retires the old one there (with history)."""

from __future__ import annotations

import uuid

import pytest
from mlflow.tracking import MlflowClient

from catalog import mlflow_sync
from catalog.models import Entity
from portal.deployments.models import Deployment, DeploymentEvent, Drift

pytestmark = pytest.mark.django_db


@pytest.fixture
def registry(mlflow_url, settings):
    settings.MLFLOW_TRACKING_URI = mlflow_url
    settings.PLINTH_DEPLOYMENT_ALIASES = {"production": "prod", "staging": "staging"}
    client = MlflowClient(mlflow_url, mlflow_url)
    name = f"serving-{uuid.uuid4().hex[:8]}"
    client.create_registered_model(name)
    for _ in range(3):
        client.create_model_version(name, source="s3://models/serving/artifacts")
    return client, name


def states(name: str) -> dict[tuple[str, str], str]:
    return {(d.version, d.environment): d.status for d in Deployment.objects.filter(model__name=name)}


def test_aliases_become_deployments_and_moves_keep_history(registry):
    client, name = registry
    client.set_registered_model_alias(name, "production", "1")
    client.set_registered_model_alias(name, "staging", "2")
    client.set_registered_model_alias(name, "candidate", "3")  # not mapped: not a deployment
    mlflow_sync.sync(names=[name])
    assert states(name) == {("1", "prod"): "live", ("2", "staging"): "live"}
    model = Entity.objects.get(name=name)
    assert Entity.objects.filter(kind_key="deployment", data__spec__model=model.ref).count() == 2
    mlflow_sync.sync(names=[name])  # nothing moved: no new history
    assert DeploymentEvent.objects.filter(model=model).count() == 2

    client.set_registered_model_alias(name, "production", "2")  # v2 goes to prod, v1 leaves
    mlflow_sync.sync(names=[name])
    assert states(name) == {("1", "prod"): "retired", ("2", "prod"): "live", ("2", "staging"): "live"}
    history = [(e.version, e.environment, e.status, e.source, e.actor_label)
               for e in DeploymentEvent.objects.filter(model=model).order_by("id")]
    assert history[2:] == [("1", "prod", "retired", "mlflow-alias", "mlflow"),
                           ("2", "prod", "live", "mlflow-alias", "mlflow")]
    # v2 serves prod without an executed promotion: drift (the default rule governs prod)
    assert Drift.objects.filter(model=model, cleared_at__isnull=True).get().version == "2"

    client.delete_registered_model_alias(name, "staging")
    mlflow_sync.sync(names=[name])
    assert states(name)[("2", "staging")] == "retired"


def test_a_pipeline_reported_endpoint_survives_an_alias_event(registry, demo_org):
    """The alias says which version serves; what the CD pipeline said about the endpoint stays."""
    from portal.deployments import services

    client, name = registry
    mlflow_sync.sync(names=[name])
    model = Entity.objects.get(name=name)
    services.deployment_report(actor=demo_org["users"]["grace"], body={
        "model": model.ref, "version": "3", "environment": "staging", "status": "retired", "platform": "kserve",
        "endpoint": "https://serving.staging.example.com/v3"})
    client.set_registered_model_alias(name, "staging", "3")
    mlflow_sync.sync(names=[name])
    dep = Deployment.objects.get(model=model, version="3", environment="staging")
    assert dep.status == "live" and dep.endpoint == "https://serving.staging.example.com/v3"
    assert dep.entity.spec["endpoint"] == "https://serving.staging.example.com/v3"
