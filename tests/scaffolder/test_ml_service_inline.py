"""The ML model service template end to end, executed in-process (no worker): generated files,
publish as a git bundle in the shared storage, catalog registration, output links."""

import re

import pytest

from catalog.models import Entity
from portal.scaffolder.models import RunStatus

from .conftest import ml_values, published_git, run_inline, start, unique

pytestmark = pytest.mark.django_db


def test_ml_model_service_publishes_and_registers(client, org, scaffolder_root):
    alice = org["users"]["alice"]
    name = unique("churn")
    run = run_inline(start(alice, "ml-model-service", ml_values(name)))
    assert run.status == RunStatus.SUCCEEDED, (run.error, list(run.logs.values_list("message", flat=True)))
    model = Entity.objects.get(ref=f"model:default/{name}")
    assert model.owner_team.name == "fraud-ml"
    # No targetPath: the files go to the top of the project, which the log names (not ".").
    logs = list(run.logs.values_list("message", flat=True))
    assert any(re.fullmatch(r"rendered \d+ files from skeleton into the project root", m) for m in logs), logs
    assert Entity.objects.filter(ref=f"component:default/{name}-service").exists()
    api = Entity.objects.get(ref=f"api:default/{name}-api")
    assert "openapi: 3.0.3" in api.spec["definition"]
    log = published_git("fraud-ml", name, "log", "--format=%s", "main")
    assert f"Create {name}" in log
    links = {link["title"]: link["url"] for link in run.output["links"]}
    assert links["Open the model in the catalog"] == f"/catalog/model/default/{name}/"
    assert links["Repository"] == f"/create/repositories/fraud-ml/{name}.bundle"
    assert model.source == f"{model.location.target.rpartition('/')[0]}/catalog-info.yaml"
    assert model.location.type == "upload" and model.location.target.endswith("/catalog-info.yaml")
    assert links["Documentation"] == f"/docs/component/default/{name}-service/"
    assert not (scaffolder_root / "workspaces" / str(run.uid)).exists()
    # The docs app builds sites in the background on registration; build now to check the generated docs.
    techdocs = pytest.importorskip("portal.techdocs.services")
    techdocs.docs_build(entity=Entity.objects.get(ref=f"component:default/{name}-service"))
    client.force_login(alice)
    docs = client.get(links["Documentation"]).content.decode()
    assert "Predicts churn." in docs and "Training" in docs
