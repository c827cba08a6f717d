"""The lineage pages: the entity page's Lineage tab on every kind (the graph itself is fetched by the
browser from the API, so the page holds only the root's id) and the full page `/lineage/?nodeId=…`
(400 for a missing or malformed id, the same 404 for an unknown node and one the user may not see)."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import EntityFactory
from tests.lineage.conftest import post, run_event

pytestmark = pytest.mark.django_db


@pytest.fixture
def org(db, django_capture_on_commit_callbacks):
    """The demo organisation and catalog, with the receivers that run on commit run (graph edges)."""
    from catalog import demo as catalog_demo
    from portal.accounts import demo as org_demo

    with django_capture_on_commit_callbacks(execute=True):
        org = org_demo.load_org()
        assert not catalog_demo.load_catalog().errors
    return org


@pytest.fixture
def alice(client, org):
    client.force_login(org["users"]["alice"])
    return org["users"]["alice"]


def _root(html: str) -> str:
    match = re.search(r'data-root="([^"]*)"', html)
    assert match, "the graph widget is on the page"
    return match.group(1)


@pytest.mark.parametrize(("path", "root"), [
    ("model/default/fraud-detector", "entity:model:default:fraud-detector"),
    ("featureset/default/card-transactions-features", "entity:featureset:default:card-transactions-features"),
    # Declared by their openlineage.io annotations: the tab starts at that node.
    ("dataset/default/card-transactions-2025", "dataset:s3://ml-data:fraud/transactions/2025"),
    ("pipeline/default/fraud-detector-training", "job:airflow:training.fraud_detector"),
    ("component/default/fraud-scoring-service", "entity:component:default:fraud-scoring-service"),
    ("api/default/fraud-scoring-api", "entity:api:default:fraud-scoring-api"),
    ("group/default/fraud-ml", "entity:group:default:fraud-ml"),
])
def test_every_entity_has_a_lineage_tab(client, alice, path, root):
    overview = client.get(f"/catalog/{path}/").content.decode()
    assert f'href="/catalog/{path}/lineage/"' in overview and ">Lineage</a>" in overview
    assert "data-lineage" not in overview, "the graph is not on other tabs"
    html = client.get(f"/catalog/{path}/lineage/").content.decode()
    assert _root(html) == root
    assert 'data-api="/api/v1/lineage"' in html and 'data-columns-api="/api/v1/lineage/columns"' in html
    assert 'src="/static/js/lineage.js"' in html and "<script>" not in html  # no inline script (CSP)
    assert 'href="/lineage/?nodeId=' in html  # the full page


def test_pipeline_tab_keeps_its_schedule(client, alice):
    html = client.get("/catalog/pipeline/default/fraud-detector-training/lineage/").content.decode()
    assert "0 3 * * 1" in html and "airflow" in html


def test_tab_of_an_entity_mapped_to_a_lineage_node_starts_at_that_node(client, alice, org):
    """A job mapped to a Pipeline (observed here) is one node: the tab asks for the job's id."""
    from tests.lineage.conftest import bearer

    api = bearer(org["users"]["bob"])
    assert post(api, run_event("COMPLETE", job=("airflow", "etl.orders"),
                               inputs=[("postgres://db:5432", "shop.public.orders")])).status_code == 201
    from catalog.models import Entity
    pipeline = Entity.objects.get(kind_key="pipeline", annotations__contains={"openlineage.io/job": "airflow/etl.orders"}) \
        if connection.vendor == "postgresql" else next(
            e for e in Entity.objects.filter(kind_key="pipeline") if e.annotations.get("openlineage.io/job") == "airflow/etl.orders")
    html = client.get(f"{pipeline.get_absolute_url()}lineage/").content.decode()
    assert _root(html) == "job:airflow:etl.orders"


def test_lineage_tab_costs_the_same_queries_with_a_bigger_catalog(client, alice, org):
    url = "/catalog/model/default/fraud-detector/lineage/"
    team = alice.teams.first()
    client.get(url)
    with CaptureQueriesContext(connection) as small:
        assert client.get(url).status_code == 200
    for i in range(60):
        EntityFactory(name=f"extra-{i}", kind="Model", owner_team=team, tags=["x"])
    client.get(url)
    with CaptureQueriesContext(connection) as large:
        assert client.get(url).status_code == 200
    assert len(large.captured_queries) == len(small.captured_queries)
    assert len(large.captured_queries) <= 17  # the entity header's badges (scorecard, SLO, cost, incident)


def test_full_page_draws_from_the_root(client, alice):
    response = client.get("/lineage/", {"nodeId": "entity:model:default:fraud-detector"})
    assert response.status_code == 200
    html = response.content.decode()
    assert _root(html) == "entity:model:default:fraud-detector"
    assert "<h1>Fraud detector</h1>" in html and 'href="/catalog/model/default/fraud-detector/"' in html


@pytest.mark.parametrize("node_id", ["", "fraud-detector", "entity:model:fraud-detector", "table:a:b",
                                     "entity:model:default:has space", "dataset:\x01:x"])
def test_full_page_refuses_a_malformed_node_id(client, alice, node_id):
    response = client.get("/lineage/", {} if node_id is None else {"nodeId": node_id})
    assert response.status_code == 400
    assert "nodeId:" in response.content.decode()


def test_full_page_unknown_and_invisible_roots_are_the_same_404(client, org):
    client.force_login(org["users"]["carol"])  # not in fraud-ml: its private model is invisible
    invisible = client.get("/lineage/", {"nodeId": "entity:model:default:chargeback-predictor"})
    missing = client.get("/lineage/", {"nodeId": "entity:model:default:no-such-model"})
    assert invisible.status_code == missing.status_code == 404
    assert "chargeback" not in invisible.content.decode().lower()
    assert client.get("/lineage/", {"nodeId": "dataset:postgres://nowhere:5432:a.b"}).status_code == 404


def test_full_page_needs_sign_in(client, org):
    response = client.get("/lineage/", {"nodeId": "entity:model:default:fraud-detector"})
    assert response.status_code == 302 and "/accounts/sign-in/" in response["Location"]
