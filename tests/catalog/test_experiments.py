"""Experiments from MLflow, against the real `mlflow server` the suite starts: each version's run (params,
final metrics and their series, tags, datasets logged with `mlflow.log_input`, named the OpenLineage way
and linked to Dataset entities the reader may see), and the compare view and API over 2–10 versions."""

from __future__ import annotations

import html
import uuid

import mlflow
import pandas as pd
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from mlflow.tracking import MlflowClient

from catalog import experiments, mlflow_sync
from catalog.models import Entity, ExperimentRun, ModelVersion, RunInput
from portal.accounts.models import Team
from tests.factories import EntityFactory

pytestmark = pytest.mark.django_db

LOSS = {"1": [1.0, 0.6, 0.4, 0.3, 0.25], "2": [0.9, 0.5, 0.3, 0.2, 0.15]}
AUC = {"1": 0.90, "2": 0.93}
PARAMS = {"1": {"learning_rate": "0.1", "max_depth": "4"}, "2": {"learning_rate": "0.05", "max_depth": "4"}}


def _dataset(name: str, *, annotation: str | None = None, team: Team | None = None, private: bool = False) -> Entity:
    annotations = {"openlineage.io/dataset": annotation} if annotation else {}
    if private:
        annotations["plinth.dev/visibility"] = "private"
    data = {"apiVersion": "plinth.dev/v1alpha1", "kind": "Dataset",
            "metadata": {"name": name, "namespace": "default", "annotations": annotations}, "spec": {"owner": ""}}
    return EntityFactory(kind="Dataset", name=name, spec_type="", data=data, owner_team=team,
                         visibility="private" if private else "internal")


@pytest.fixture(scope="module")
def registered(mlflow_url):
    """In MLflow (once for the module): a registered model with two versions, each from a run that
    logged params, a loss series, an auc, a training set on S3 (the second with credentials in its URI)
    and a local evaluation set; v1 is the champion."""
    mlflow.set_tracking_uri(mlflow_url)
    client = MlflowClient(mlflow_url, mlflow_url)
    name = f"exp-model-{uuid.uuid4().hex[:6]}"
    experiment_id = client.create_experiment(name)
    client.create_registered_model(name)
    runs = {version: _train(experiment_id, version) for version in ("1", "2")}
    for run_id in runs.values():
        client.create_model_version(name, source=f"runs:/{run_id}/model", run_id=run_id)
    client.set_registered_model_alias(name, "champion", "1")
    return {"name": name, "runs": runs, "experiment_id": experiment_id}


FRAME = {"amount": [1.5, 2.0, 3.25], "merchant": ["a", "b", "c"], "label": [0, 1, 0]}


def _train(experiment_id: str, version: str) -> str:
    frame = pd.DataFrame(FRAME)
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"train-v{version}") as run:
        mlflow.log_params(PARAMS[version])
        for step, value in enumerate(LOSS[version]):
            mlflow.log_metric("loss", value, step=step)
        mlflow.log_metric("auc", AUC[version])
        secret = "user:hunter2@" if version == "2" else ""
        train = mlflow.data.from_pandas(frame, source=f"s3://{secret}ml-data/fraud/train.parquet",
                                        name="fraud-train", targets="label")
        mlflow.log_input(train, context="training")
        holdout = mlflow.data.from_pandas(frame, source="/data/fraud/holdout.csv", name="fraud-holdout")
        mlflow.log_input(holdout, context="eval")
    return run.info.run_id


@pytest.fixture
def trained(registered, demo_org, mlflow_url, settings):
    """The model synced into the catalog, next to a public Dataset entity carrying the training set's
    OpenLineage name as annotation and a private one of another team named like the evaluation set."""
    settings.MLFLOW_TRACKING_URI = mlflow_url
    public = _dataset("fraud-train-set", annotation="s3://ml-data/fraud/train.parquet")
    hidden = _dataset("fraud-holdout", team=demo_org["teams"]["recsys"], private=True)  # matched by name
    mlflow_sync.sync([registered["name"]])
    entity = Entity.objects.get(ref=f"model:default/{registered['name']}")
    return {**registered, "entity": entity, "public": public, "hidden": hidden,
            "page": f"/catalog/model/default/{entity.name}/", "api": f"/api/v1/entities/by-name/model/default/{entity.name}"}


def test_sync_stores_each_run_with_series_tags_and_openlineage_named_inputs(trained):
    run = ExperimentRun.objects.get(run_id=trained["runs"]["2"])
    assert run.name == "train-v2" and run.status == "FINISHED" and run.ended_at is not None
    assert run.params == PARAMS["2"]
    assert run.metrics == {"loss": pytest.approx(0.15), "auc": pytest.approx(0.93)}
    assert run.history == {"loss": [[s, pytest.approx(v)] for s, v in enumerate(LOSS["2"])]}, "auc has one value: no series"
    assert run.tags["mlflow.runName"] == "train-v2"
    version = ModelVersion.objects.get(entity=trained["entity"], version="2")
    assert version.experiment_run == run and version.metrics["auc"] == pytest.approx(0.93)
    train, holdout = RunInput.objects.filter(run=run).order_by("context")[::-1]
    assert (train.namespace, train.dataset_name, train.context) == ("s3://ml-data", "fraud/train.parquet", "training")
    assert train.source == "s3://ml-data/fraud/train.parquet", "credentials in the URI are never stored"
    assert train.name == "fraud-train" and len(train.digest) >= 8 and train.source_type == "s3"
    assert [c["name"] for c in train.schema] == ["amount", "merchant", "label"]
    assert train.entity == trained["public"], "linked by its openlineage.io/dataset annotation"
    assert (holdout.namespace, holdout.dataset_name, holdout.context) == ("file", "/data/fraud/holdout.csv", "eval")
    assert holdout.entity == trained["hidden"], "linked by name (pages decide who may see the link)"
    assert not RunInput.objects.filter(source__contains="hunter2").exists()


def test_a_second_sync_is_idempotent_and_drops_runs_no_version_names(trained, mlflow_url):
    before = list(ExperimentRun.objects.filter(run_id__in=trained["runs"].values()).values_list("run_id", "history"))
    mlflow_sync.sync([trained["name"]])
    assert list(ExperimentRun.objects.filter(run_id__in=trained["runs"].values()).values_list("run_id", "history")) == before
    assert RunInput.objects.filter(run__run_id=trained["runs"]["1"]).count() == 2
    client = MlflowClient(mlflow_url, mlflow_url)
    extra = _train(trained["experiment_id"], "1")
    version = client.create_model_version(trained["name"], source=f"runs:/{extra}/model", run_id=extra).version
    mlflow_sync.sync([trained["name"]])
    assert RunInput.objects.filter(run__run_id=extra).count() == 2
    for step, value in ((1, 0.7), (2, 0.8)):  # a post-hoc evaluation logged to the ended run
        client.log_metric(extra, "val_auc", value, step=step)
    mlflow_sync.sync([trained["name"]])
    assert ExperimentRun.objects.get(run_id=extra).history["val_auc"] == [[1, 0.7], [2, 0.8]]
    client.delete_model_version(trained["name"], version)
    mlflow_sync.sync([trained["name"]])
    assert not ExperimentRun.objects.filter(run_id=extra).exists()
    assert not RunInput.objects.filter(run__run_id=extra).exists()
    assert ExperimentRun.objects.filter(run_id=trained["runs"]["1"]).exists()


def test_run_api_shows_the_facts_and_hides_a_private_dataset_of_another_team(trained, client, demo_org):
    client.force_login(demo_org["users"]["alice"])
    body = client.get(f"{trained['api']}/versions/2/run").json()
    assert body["runId"] == trained["runs"]["2"] and body["aliases"] == []
    assert body["history"]["loss"][-1] == [4, pytest.approx(0.15)]
    inputs = {i["context"]: i for i in body["inputs"]}
    assert inputs["training"]["entityRef"] == trained["public"].ref
    assert inputs["eval"]["entityRef"] is None and inputs["eval"]["datasetName"] == "/data/fraud/holdout.csv"
    assert inputs["eval"]["address"] == "file:///data/fraud/holdout.csv"
    client.force_login(demo_org["users"]["carol"])  # recsys: may see its own private dataset
    body = client.get(f"{trained['api']}/versions/2/run").json()
    assert {i["context"]: i["entityRef"] for i in body["inputs"]}["eval"] == trained["hidden"].ref
    for bad in ("9", "x", "1" * 12):
        response = client.get(f"{trained['api']}/versions/{bad}/run")
        assert response.status_code == 404 and "has no version" in str(response.json())


def test_compare_page_and_api_give_the_hand_computed_differences(trained, client, demo_org):
    client.force_login(demo_org["users"]["alice"])
    body = client.get(f"{trained['api']}/compare", {"versions": "1,2"}).json()
    assert body["baseline"] == "1" and [v["version"] for v in body["versions"]] == ["1", "2"]
    metrics = {m["name"]: m for m in body["metrics"]}
    auc = metrics["auc"]["cells"][1]
    assert auc["delta"] == pytest.approx(0.03) and auc["verdict"] == "better" and metrics["auc"]["higherIsBetter"]
    assert auc["relative"] == pytest.approx(0.03 / 0.90)
    loss = metrics["loss"]["cells"][1]
    assert loss["delta"] == pytest.approx(-0.10) and loss["verdict"] == "better" and not metrics["loss"]["higherIsBetter"]
    assert metrics["loss"]["cells"][0] == {"version": "1", "value": pytest.approx(0.25), "delta": None,
                                           "relative": None, "verdict": None}
    params = {p["name"]: p for p in body["params"]}
    assert params["learning_rate"] == {"name": "learning_rate", "values": ["0.1", "0.05"], "differs": True}
    assert params["max_depth"]["differs"] is False
    reversed_body = client.get(f"{trained['api']}/compare", {"versions": "2,1"}).json()
    assert {m["name"]: m["cells"][1]["verdict"] for m in reversed_body["metrics"]} == {"auc": "worse", "loss": "worse"}

    html = client.get(f"{trained['page']}compare/", {"versions": "1,2"}).content.decode()
    assert 'data-verdict="better"' in html and '+0.0300 <span class="nowrap">(+3.3 %)</span>' in html and "-0.1000" in html
    assert 'class="differs"' in html and "learning_rate" in html
    assert html.count('<figure class="metric-chart compare-chart">') == 2
    assert "loss</code> over steps" in html and "auc</code> by version" in html
    assert trained["public"].get_absolute_url() in html
    assert trained["hidden"].get_absolute_url() not in html, "a private dataset of another team is not revealed"
    versions_tab = client.get(f"{trained['page']}versions/").content.decode()
    assert 'name="versions" value="2"' in versions_tab and "Compare selected versions" in versions_tab
    assert trained["public"].get_absolute_url() in versions_tab and "s3://ml-data/fraud/train.parquet" in versions_tab


def test_the_bare_compare_page_is_the_picker_without_an_error(trained, client, demo_org):
    """Opened from a link without versions, the page asks for them; it does not scold (the API, which has no
    picker, still answers 400 naming the parameter)."""
    client.force_login(demo_org["users"]["alice"])
    for params in ({}, {"versions": ""}, {"versions": " , "}):
        page = client.get(f"{trained['page']}compare/", params)
        body = page.content.decode()
        assert page.status_code == 200 and 'name="versions" value="1"' in body and "compare-error" not in body
    api = client.get(f"{trained['api']}/compare")
    assert api.status_code == 400 and "name 2 to 10 model versions" in str(api.json())


@pytest.mark.parametrize(("versions", "message"), [
    ("1", "1 given; compare 2 to 10"),
    (",".join(str(n) for n in range(1, 12)), "11 given; compare 2 to 10"),
    ("1,abc", "'abc' is not a version number"),
    ("1,-2", "'-2' is not a version number"),
    ("2,02", "version 2 is listed twice"),
    ("1,\u00b2", "'\u00b2' is not a version number"),  # '²'.isdigit() is True and int() refuses it: was a 500
])
def test_bad_versions_are_a_clear_400_on_page_and_api(trained, client, demo_org, versions, message):
    client.force_login(demo_org["users"]["alice"])
    params = {"versions": versions} if versions is not None else {}
    page = client.get(f"{trained['page']}compare/", params)
    assert page.status_code == 400 and html.escape(message) in page.content.decode()
    assert 'name="versions" value="1"' in page.content.decode(), "the page offers the versions to pick"
    api = client.get(f"{trained['api']}/compare", params)
    assert api.status_code == 400 and message.removeprefix("versions: ") in str(api.json())


def test_unknown_versions_and_hidden_or_other_models_answer_404(trained, client, demo_org):
    client.force_login(demo_org["users"]["alice"])
    for odd in ("%C2%B2", "99999999999"):  # '²' (a 500 before), and a number no version has
        assert client.get(f"{trained['api']}/versions/{odd}/run").status_code == 404
    assert client.get(trained["page"], {"sync": "\u00b2"}).status_code == 200  # the job id a redirect names
    assert client.get(trained["page"], {"sync": "9" * 30}).status_code == 200
    assert client.get(f"{trained['page']}compare/", {"versions": "1,7"}).status_code == 404
    assert client.get(f"{trained['api']}/compare", {"versions": "1,7"}).status_code == 404
    other = Entity.objects.get(ref="model:default/fraud-detector")
    ModelVersion.objects.create(entity=other, version="3", version_number=3)
    # Version 3 exists on another model only: a version number means something within its model.
    assert client.get(f"{trained['api']}/compare", {"versions": "1,3"}).status_code == 404
    hidden = EntityFactory(kind="Model", name="secret-model", visibility="private",
                           owner_team=demo_org["teams"]["recsys"])
    for v in ("1", "2"):
        ModelVersion.objects.create(entity=hidden, version=v, version_number=int(v))
    missing = client.get("/api/v1/entities/by-name/model/default/no-such-model/compare", {"versions": "1,2"})
    private = client.get("/api/v1/entities/by-name/model/default/secret-model/compare", {"versions": "1,2"})
    assert private.status_code == missing.status_code == 404
    assert client.get("/catalog/model/default/secret-model/compare/", {"versions": "1,2"}).status_code == 404
    assert client.get("/catalog/component/default/no-such/compare/", {"versions": "1,2"}).status_code == 404


def _versions_with_runs(entity: Entity, count: int, dataset: Entity) -> None:
    for n in range(1, count + 1):
        run = ExperimentRun.objects.create(run_id=uuid.uuid4().hex, name=f"r{n}", metrics={"auc": 0.8 + n / 100},
                                           history={"loss": [[0, 1.0], [1, 1 / n]]}, params={"seed": str(n)})
        RunInput.objects.create(run=run, name=dataset.name, namespace="s3://b", dataset_name=f"d{n}", entity=dataset)
        ModelVersion.objects.create(entity=entity, version=str(n), version_number=n, experiment_run=run,
                                    run_id=run.run_id, metrics={"auc": 0.8 + n / 100, "loss": 1 / n},
                                    params={"seed": str(n)})


def test_query_count_does_not_grow_with_the_number_of_versions(demo_org, client):
    client.force_login(demo_org["users"]["alice"])
    dataset = _dataset("shared-set")
    counts = {}
    for count in (2, 10):
        entity = EntityFactory(kind="Model", name=f"many-{count}")
        _versions_with_runs(entity, count, dataset)
        wanted = ",".join(str(n) for n in range(1, count + 1))
        for url in (f"/catalog/model/default/many-{count}/compare/", f"/api/v1/entities/by-name/model/default/many-{count}/compare",
                    f"/catalog/model/default/many-{count}/versions/"):
            with CaptureQueriesContext(connection) as queries:
                response = client.get(url, {"versions": wanted})
            assert response.status_code == 200, url
            counts.setdefault(url.replace(f"many-{count}", "many"), []).append(len(queries))
    for url, (two, ten) in counts.items():
        assert two == ten, f"{url}: {two} queries for 2 versions, {ten} for 10"


@pytest.mark.parametrize(("source_type", "uri", "expected"), [
    ("s3", "s3://bucket/path/to/file.parquet", ("s3://bucket", "path/to/file.parquet")),
    ("postgres", "postgresql://etl:pw@db.internal/shop/public/orders", ("postgres://db.internal:5432", "shop.public.orders")),
    ("gs", "gs://b/x.csv", ("gs://b", "x.csv")),
    ("local", "/data/x.csv", ("file", "/data/x.csv")),
    ("http", "https://example.com/d.csv", ("https://example.com", "/d.csv")),
    ("code", "", ("mlflow", "my-frame")),
    ("http", "https://u:pw@[example.com/d.csv", ("mlflow", "my-frame")),  # urllib cannot read it: the name
])
def test_openlineage_naming_of_sources(source_type, uri, expected):
    assert experiments.openlineage_name(source_type, uri, "my-frame") == expected
    assert experiments.source_uri('{"uri": "s3://k:secret@b/p"}') == "s3://b/p"
    # Unreadable, its credentials cannot be told apart: not shown at all (it raised ValueError in the sync).
    assert experiments.source_uri('{"uri": "https://u:pw@[example.com/d.csv"}') == ""


@pytest.mark.parametrize(("namespace", "name", "address"), [
    ("file", "/data/x.csv", "file:///data/x.csv"),
    ("s3://bucket", "path/to/file.parquet", "s3://bucket/path/to/file.parquet"),
    ("postgres://db.internal:5432", "shop.public.orders", "postgres://db.internal:5432/shop.public.orders"),
    ("https://example.com", "/d.csv", "https://example.com/d.csv"),
    ("mlflow", "my-frame", "mlflow/my-frame"),
])
def test_a_dataset_reads_as_its_address(namespace, name, address):
    assert experiments.dataset_address(namespace, name) == address


def test_thinning_keeps_first_and_last_points():
    points = [(s, float(s)) for s in range(1000)]
    thinned = experiments.thin(points, 50)
    assert len(thinned) == 50 and thinned[0] == [0, 0.0] and thinned[-1] == [999, 999.0]


def _diverged_model(mlflow_url: str) -> str:
    """In MLflow: a model whose one version comes from a run that diverged: its loss went NaN after two
    steps and its auc is NaN (MLflow stores them; an infinite value it stores as the largest float)."""
    mlflow.set_tracking_uri(mlflow_url)
    client = MlflowClient(mlflow_url, mlflow_url)
    name = f"diverged-{uuid.uuid4().hex[:6]}"
    experiment_id = client.create_experiment(name)
    client.create_registered_model(name)
    with mlflow.start_run(experiment_id=experiment_id, run_name="train-diverged") as run:
        for step, value in enumerate([0.9, 0.7, float("nan"), float("nan")]):
            mlflow.log_metric("loss", value, step=step)
        mlflow.log_metric("auc", float("nan"))
        mlflow.log_metric("epochs", 4)
        mlflow.log_param("note", "a\x00b")  # MLflow stores a NUL as logged; PostgreSQL stores none
        mlflow.set_tag("owner", "ml\x00ops")
    client.create_model_version(name, source=f"runs:/{run.info.run_id}/model", run_id=run.info.run_id,
                                tags={"stage": "de\x00v"})
    return name


def _sync_diverged(mlflow_url, settings):
    settings.MLFLOW_TRACKING_URI = mlflow_url
    name = _diverged_model(mlflow_url)
    mlflow_sync.sync([name])
    version = ModelVersion.objects.get(entity__ref=f"model:default/{name}", version="1")
    assert version.metrics == {"epochs": 4.0}, "NaN values are left out"
    run = version.experiment_run
    assert run.metrics == {"epochs": 4.0} and run.history == {"loss": [[0, 0.9], [1, 0.7]]}
    assert run.params == {"note": "ab"} and run.tags["owner"] == "mlops" and version.tags == {"stage": "dev"}
    mlflow_sync.sync([name])  # a second sync finds the run unchanged
    assert ModelVersion.objects.get(pk=version.pk).metrics == {"epochs": 4.0}


def test_a_diverged_run_with_nan_metrics_syncs_on_sqlite(demo_org, mlflow_url, settings):
    """MLflow keeps NaN metrics; JSON has no such numbers: the sync leaves them out."""
    _sync_diverged(mlflow_url, settings)


@pytest.mark.prod_smoke
def test_a_diverged_run_with_nan_metrics_syncs_on_postgresql(demo_org, mlflow_url, settings):
    """On PostgreSQL the jsonb column refused the NaN: the model's sync failed on every attempt."""
    _sync_diverged(mlflow_url, settings)
