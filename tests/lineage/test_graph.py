"""The unified lineage graph (`portal.lineage.graph`, `GET /api/v1/lineage`): OpenLineage edges and catalog
relations, MLflow runs and model versions, deployments — as one graph in Marquez's shape, cycles ending,
private nodes of other teams dropped and counted, a constant number of queries whatever the size."""

from __future__ import annotations

import pytest

from tests.lineage.conftest import post, run_event

pytestmark = pytest.mark.django_db


def _chain(api, *, prefix="etl", length=3, namespace="postgres://db:5432"):
    """d0 → job1 → d1 → job2 → d2 …, each job a run."""
    for i in range(1, length + 1):
        response = post(api, run_event("COMPLETE", job=("airflow", f"{prefix}.step{i}"),
                                       inputs=[(namespace, f"shop.public.t{i - 1}")],
                                       outputs=[(namespace, f"shop.public.t{i}")]))
        assert response.status_code == 201, response.json()


def test_openlineage_chain_in_marquez_shape(api, member):
    _chain(api)
    body = api.get("/api/v1/lineage", {"nodeId": "dataset:postgres://db:5432:shop.public.t1", "depth": 2}).json()
    ids = {n["id"] for n in body["graph"]}
    assert ids == {"dataset:postgres://db:5432:shop.public.t0", "job:airflow:etl.step1",
                   "dataset:postgres://db:5432:shop.public.t1", "job:airflow:etl.step2",
                   "dataset:postgres://db:5432:shop.public.t2"}
    assert body["hidden"] == 0 and body["root"] == "dataset:postgres://db:5432:shop.public.t1"


@pytest.fixture
def org(db, django_capture_on_commit_callbacks):
    """The demo organisation and catalog, with the receivers that run on commit run."""
    from portal.core import demo

    with django_capture_on_commit_callbacks(execute=True):
        org = demo.load_org()
        assert not demo.load_catalog().errors
    return org


def test_demo_catalog_relations(org, client):
    client.force_login(org["users"]["alice"])
    body = client.get("/api/v1/lineage", {"nodeId": "entity:dataset:default:card-transactions-2025",
                                          "depth": 3}).json()
    print(body)
    assert "entity:model:default:fraud-detector" in {n["id"] for n in body["graph"]}
