"""MLflow `log_input` datasets as lineage, against the real `mlflow server` the suite starts: an input no
Dataset entity names gets an observed one (as an OpenLineage dataset would), a Dataset declared later
takes the input over at once (no MLflow sync needed), and the demo seed logs inputs the demo links."""

from __future__ import annotations

import textwrap
import uuid

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from catalog import mlflow_sync, services
from catalog.models import Entity, ModelVersion, RunInput
from catalog.services import OBSERVED_SOURCE
from portal.lineage.models import Node, NodeType, node_key
from portal.site import mlflow_demo

pytestmark = pytest.mark.django_db
FRAME = {"amount": [1.0, 2.5], "label": [0, 1]}


@pytest.fixture(scope="module")
def model(mlflow_url):
    """A registered model whose one version's run logged three inputs: a Parquet file on S3 and a local
    CSV that no entity names, and a DataFrame built in code (no source URI)."""
    mlflow.set_tracking_uri(mlflow_url)
    client = MlflowClient(mlflow_url, mlflow_url)
    name = f"lineage-model-{uuid.uuid4().hex[:6]}"
    tag = uuid.uuid4().hex[:6]
    experiment_id = client.create_experiment(name)
    client.create_registered_model(name)
    frame = pd.DataFrame(FRAME)
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_input(mlflow.data.from_pandas(frame, source=f"s3://lake/{tag}/train.parquet", name="train"),
                         context="training")
        mlflow.log_input(mlflow.data.from_pandas(frame, source=f"/data/{tag}/eval.csv", name="eval"), context="eval")
        mlflow.log_input(mlflow.data.from_pandas(frame, name="in-memory"), context="training")
    client.create_model_version(name, source=f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    return {"name": name, "tag": tag, "run_id": run.info.run_id}


@pytest.fixture
def synced(model, mlflow_url, settings):
    settings.MLFLOW_TRACKING_URI = mlflow_url
    mlflow_sync.sync([model["name"]])
    return {row.context + ":" + row.name: row for row in RunInput.objects.filter(run__run_id=model["run_id"])}


def test_inputs_without_a_dataset_entity_get_an_observed_one_like_openlineage_datasets(model, synced):
    train = synced["training:train"]
    assert (train.namespace, train.dataset_name) == ("s3://lake", f"{model['tag']}/train.parquet")
    observed = train.entity
    assert observed is not None and observed.source == OBSERVED_SOURCE and observed.kind == "Dataset"
    assert observed.lifecycle == "observed" and observed.owner_team is None, "unowned: listed for admins to claim"
    assert observed.annotations["openlineage.io/dataset"] == f"s3://lake/{model['tag']}/train.parquet"
    node = Node.objects.get(key=node_key(NodeType.DATASET, "s3://lake", f"{model['tag']}/train.parquet"))
    assert node.entity_id == observed.pk, "the same node an OpenLineage event naming it would use"
    assert synced["eval:eval"].entity.annotations["openlineage.io/dataset"] == f"file//data/{model['tag']}/eval.csv"
    assert synced["training:in-memory"].entity is None, "a DataFrame built in code names no dataset"
    # A second sync links the same entities again and creates none.
    count = Entity.objects.filter(source=OBSERVED_SOURCE).count()
    mlflow_sync.sync([model["name"]])
    again = RunInput.objects.get(run__run_id=model["run_id"], name="train")
    assert again.entity_id == observed.pk and Entity.objects.filter(source=OBSERVED_SOURCE).count() == count


def test_a_dataset_declared_later_takes_the_input_over_without_a_sync(
        model, synced, tmp_path, settings, django_capture_on_commit_callbacks):
    observed_id = synced["training:train"].entity_id
    settings.PLINTH_CATALOG_FILE_ROOTS = [str(tmp_path)]
    (tmp_path / "catalog-info.yaml").write_text(textwrap.dedent(f"""\
        apiVersion: plinth.dev/v1alpha1
        kind: Dataset
        metadata:
          name: lake-train-{model['tag']}
          annotations:
            openlineage.io/dataset: "s3://lake/{model['tag']}/train.parquet"
        spec: {{type: table, owner: fraud-ml}}
        """))
    with django_capture_on_commit_callbacks(execute=True):  # the catalog's entities_changed, sent on commit
        services.location_register(target=str(tmp_path), actor=None, file_roots=None)
    declared = Entity.objects.get(name=f"lake-train-{model['tag']}")
    assert RunInput.objects.get(run__run_id=model["run_id"], name="train").entity_id == declared.pk
    assert RunInput.objects.get(run__run_id=model["run_id"], name="eval").entity.source == OBSERVED_SOURCE
    assert not Entity.objects.filter(pk=observed_id).exists(), "the observed stand-in is gone"
    version = ModelVersion.objects.get(entity__name=model["name"])
    assert declared.pk in {i.entity_id for i in version.experiment_run.inputs.all()}


def test_the_demo_seed_logs_inputs_that_link_to_the_demo_datasets(demo_org, mlflow_url, settings):
    settings.MLFLOW_TRACKING_URI = mlflow_url
    mlflow_demo.seed(mlflow_url)
    mlflow_sync.sync(["fraud-detector", "churn-predictor"])
    detector = ModelVersion.objects.get(entity__ref="model:default/fraud-detector", version="2")
    inputs = {i.context: i for i in detector.experiment_run.inputs.all()}
    assert inputs["training"].entity.ref == "dataset:default/card-transactions-2025"
    assert inputs["eval"].entity.ref == "dataset:default/chargebacks-2025"
    churn = ModelVersion.objects.get(entity__ref="model:default/churn-predictor", version="1")
    (customers,) = churn.experiment_run.inputs.all()
    assert (customers.namespace, customers.dataset_name) == ("s3://ml-data", "churn/customers-2025.parquet")
    assert customers.entity.source == OBSERVED_SOURCE
