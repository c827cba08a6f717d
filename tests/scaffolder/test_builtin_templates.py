"""The shipped templates generate valid projects: descriptors validate and register, and the
generated tests pass when run (pytest in a subprocess, in the generated checkout)."""

import os
import subprocess
import sys

import pytest

from catalog.models import Entity
from portal.scaffolder.models import RunSecret, RunStatus

from .conftest import ml_values, run_inline, start, unique

pytestmark = pytest.mark.django_db


def run_generated_tests(checkout):
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "MLFLOW_TRACKING_URI": ""}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:django"],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    return proc.stdout


@pytest.mark.parametrize("model_type", ["classifier", "regressor"])
def test_ml_model_service_generated_tests_pass(org, scaffolder_root, model_type):
    name = unique("svc")
    run = run_inline(start(org["users"]["alice"], "ml-model-service", ml_values(name, modelType=model_type)))
    assert run.status == RunStatus.SUCCEEDED, run.error
    out = run_generated_tests(scaffolder_root / "published" / "checkouts" / "fraud-ml" / name)
    assert "passed" in out and "failed" not in out


def test_feature_set(org, scaffolder_root):
    name = unique("feat")
    values = {
        "name": name,
        "owner": "recsys",
        "entityName": "customer",
        "joinKey": "customer_id",
        "features": "orders_7d:INT64\nspend_30d_avg:FLOAT\nis_vip:BOOL",
        "ttl": "1d12h",
    }
    run = run_inline(start(org["users"]["dan"], "feature-set", values))
    assert run.status == RunStatus.SUCCEEDED, run.error
    entity = Entity.objects.get(ref=f"featureset:default/{name}")
    assert [f["name"] for f in entity.spec["features"]] == ["orders_7d", "spend_30d_avg", "is_vip"]
    assert entity.owner_team.name == "recsys"
    run_generated_tests(scaffolder_root / "published" / "checkouts" / "recsys" / name)


def test_training_pipeline(org, scaffolder_root):
    name, output = unique("train"), unique("report")
    values = {
        "name": name,
        "owner": "fraud-ml",
        "schedule": "0 3 * * 1",
        "orchestrator": "airflow",
        "inputs": ["dataset:default/card-transactions-2025"],
        "outputName": output,
    }
    run = run_inline(start(org["users"]["alice"], "training-pipeline", values))
    assert run.status == RunStatus.SUCCEEDED, run.error
    pipeline = Entity.objects.get(ref=f"pipeline:default/{name}")
    assert pipeline.spec["inputs"] == ["dataset:default/card-transactions-2025"]
    assert Entity.objects.filter(ref=f"dataset:default/{output}").exists()
    run_generated_tests(scaffolder_root / "published" / "checkouts" / "fraud-ml" / name)


def test_dry_run_shows_every_file_and_publishes_nothing(org, scaffolder_root):
    name = unique("dry")
    run = run_inline(start(org["users"]["alice"], "ml-model-service", ml_values(name), dry_run=True))
    assert run.status == RunStatus.SUCCEEDED, run.error
    paths = {f["path"]: f for f in run.files}
    assert {
        "catalog-info.yaml",
        "training/train.py",
        "service/app.py",
        "model-card.md",
        "api/openapi.yaml",
        "docs/index.md",
        "tests/test_scoring.py",
    } <= set(paths)
    assert f'name: "{name}"' in paths["catalog-info.yaml"]["content"]
    assert not Entity.objects.filter(ref=f"model:default/{name}").exists()
    assert not (scaffolder_root / "published").exists()
    assert {s.status for s in run.steps.filter(action__in=["publish:git", "catalog:register"])} == {"skipped"}


def test_without_docs_and_with_a_secret_that_is_never_stored(org, scaffolder_root):
    name, secret = unique("nodocs"), "tok-SUPER-SECRET-123"
    run = start(
        org["users"]["alice"],
        "ml-model-service",
        ml_values(name, includeDocs=False, mlflowToken=secret),
        dry_run=True,
    )
    assert "mlflowToken" not in run.parameters and run.secret_names == ["mlflowToken"]
    stored = bytes(RunSecret.objects.get(run_uid=run.uid).token)
    assert secret.encode() not in stored and b"mlflowToken" not in stored, "encrypted in the database"
    run = run_inline(run)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert not any(f["path"].startswith("docs/") for f in run.files)
    logs = "\n".join(run.logs.values_list("message", flat=True))
    assert "MLflow token provided (20 characters)" in logs and secret not in logs
    assert not RunSecret.objects.filter(run_uid=run.uid).exists()  # deleted after the run


def test_an_existing_repository_is_never_overwritten(org, scaffolder_root):
    name = unique("dup")
    first = run_inline(start(org["users"]["alice"], "ml-model-service", ml_values(name)))
    assert first.status == RunStatus.SUCCEEDED
    second = run_inline(start(org["users"]["alice"], "ml-model-service", ml_values(name)))
    assert second.status == RunStatus.FAILED
    assert f"repository fraud-ml/{name} already exists; choose another name" in second.error


ZIP_TEMPLATE = """\
apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata: {name: %s, title: Zip}
spec:
  owner: fraud-ml
  type: test
  parameters: [{properties: {name: {type: string}}}]
  steps:
    - {id: write, action: catalog:write, input: {entity: {apiVersion: backstage.io/v1alpha1, kind: Component,
        metadata: {name: "${{ parameters.name }}"}, spec: {type: library, lifecycle: experimental, owner: fraud-ml}}}}
    - {id: zip, action: publish:zip, input: {}}
  output:
    links: [{title: Download, url: "${{ steps.zip.output.downloadUrl }}"}]
"""


def test_publish_zip_is_downloadable_by_the_runs_owner_only(client, org, scaffolder_root, tmp_path):
    import io
    import zipfile

    from .conftest import register_template

    entity = register_template(tmp_path, ZIP_TEMPLATE % unique("zip"))
    run = run_inline(start(org["users"]["alice"], entity.name, {"name": "zipped"}, entity=entity))
    assert run.status == RunStatus.SUCCEEDED, run.error
    url = run.output["links"][0]["url"]
    client.force_login(org["users"]["alice"])
    body = b"".join(client.get(url).streaming_content)
    assert "name: zipped" in zipfile.ZipFile(io.BytesIO(body)).read("catalog-info.yaml").decode()
    client.force_login(org["users"]["dan"])
    assert client.get(url).status_code == 404
