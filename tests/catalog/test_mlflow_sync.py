"""The MLflow provider against a real `mlflow server` (SQLite backend) started by the test setup."""

import uuid

import pytest
from mlflow.tracking import MlflowClient

from catalog import mlflow_sync
from catalog.models import Entity, MlflowSyncState, ModelVersion
from portal.site import mlflow_demo

pytestmark = pytest.mark.django_db


@pytest.fixture
def mlflow_server(mlflow_url, settings):
    settings.MLFLOW_TRACKING_URI = mlflow_url
    mlflow_demo.seed(mlflow_url)
    client = MlflowClient(mlflow_url, mlflow_url)  # the demo's aliases, whatever other tests promoted
    client.set_registered_model_alias("fraud-detector", "champion", "2")
    client.set_registered_model_alias("fraud-detector", "challenger", "3")
    return mlflow_url


def test_sync_merges_versions_aliases_and_run_metrics_into_descriptors(demo_org, mlflow_server):
    result = mlflow_sync.sync()
    assert result["models"] >= 3
    detector = Entity.objects.get(ref="model:default/fraud-detector")
    versions = {v.version: v for v in ModelVersion.objects.filter(entity=detector)}
    assert set(versions) >= {"1", "2", "3"}
    assert versions["2"].aliases == ["champion"] and versions["3"].aliases == ["challenger"]
    assert versions["3"].metrics["auc"] == pytest.approx(0.93)
    assert versions["1"].params["n_estimators"] == "200"
    assert detector.location is not None, "merged with its descriptor, not duplicated"
    assert Entity.objects.filter(kind_key="model", name__iexact="fraud-detector").count() == 1
    assert MlflowSyncState.objects.get().last_success_at is not None


def test_a_sync_moves_a_models_updated_at_only_when_its_versions_change(demo_org, mlflow_server):
    """A version (or a metric name) the model did not have is a change of the model: its updated_at
    moves (the search repair sweep compares it with the document); a sync that finds nothing new
    leaves it, so "recently updated" is not every model every 5 minutes."""
    mlflow_sync.sync()
    detector = Entity.objects.get(ref="model:default/fraud-detector")
    synced_at = detector.updated_at
    mlflow_sync.sync()
    assert Entity.objects.get(pk=detector.pk).updated_at == synced_at
    ModelVersion.objects.filter(entity=detector, version="1").delete()  # the sync will find it again
    mlflow_sync.sync()
    assert Entity.objects.get(pk=detector.pk).updated_at > synced_at
    assert ModelVersion.objects.filter(entity=detector, version="1").exists()


def test_registered_model_without_descriptor_appears_as_an_entity(db, mlflow_server):
    name = f"orphan-model-{uuid.uuid4().hex[:6]}"
    MlflowClient(mlflow_server, mlflow_server).create_registered_model(name)
    mlflow_sync.sync()
    entity = Entity.objects.get(ref=f"model:default/{name}")
    assert entity.source == "mlflow" and entity.annotations["mlflow.org/registered-model"] == name
    assert mlflow_sync.sync()["models"] >= 1  # a second pass is idempotent
    assert Entity.objects.filter(ref=f"model:default/{name}").count() == 1


def test_mlflow_down_records_the_error_and_keeps_old_data(demo_org, mlflow_server, settings, client):
    mlflow_sync.sync()
    settings.MLFLOW_TRACKING_URI = "http://127.0.0.1:9"
    with pytest.raises(Exception):  # noqa: B017 - any transport error; the task retries it
        mlflow_sync.sync()
    state = MlflowSyncState.objects.get()
    assert state.last_error and state.last_success_at
    assert ModelVersion.objects.filter(entity__name="fraud-detector").count() >= 3
    client.force_login(demo_org["users"]["alice"])
    html = client.get("/catalog/model/default/fraud-detector/versions/").content.decode()
    assert "MLflow data as of" in html and "the last sync failed" in html
