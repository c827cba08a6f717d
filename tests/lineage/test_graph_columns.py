"""Column-level lineage (`GET /api/v1/lineage/columns`): fields joined by the columnLineage facets, walked
up and down from one column or from every column of a dataset, with each field's transformations;
fields of datasets another team keeps private are dropped and counted."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog import services as catalog_services
from tests.factories import TeamFactory, write_files
from tests.lineage.conftest import facet, post, run_event

pytestmark = pytest.mark.django_db
PG = "postgres://db:5432"


def _write(api, job, sources: list[tuple[str, str]], target: str, field: str, *, schema=None, kind="DIRECT",
           subtype="IDENTITY"):
    """`job` reads the source tables and writes `target.field` from the source fields."""
    lineage = facet(fields={field: {"inputFields": [
        {"namespace": PG, "name": table, "field": column,
         "transformations": [{"type": kind, "subtype": subtype, "masking": subtype == "MASKED"}]}
        for table, column in sources]}})
    facets = {"columnLineage": lineage}
    if schema:
        facets["schema"] = facet(fields=[{"name": n, "type": t} for n, t in schema])
    out = {"namespace": PG, "name": target, "facets": facets}
    response = post(api, run_event("COMPLETE", job=("etl", job), inputs=sorted({(PG, t) for t, _ in sources}),
                                   outputs=[out]))
    assert response.status_code == 201, response.json()


@pytest.fixture
def columns(api):
    # orders.amount → totals.total (aggregation) → report.revenue; customers.email → report.contact (masked)
    _write(api, "totals", [("orders", "amount")], "totals", "total", subtype="AGGREGATION",
           schema=[("total", "numeric")])
    _write(api, "report", [("totals", "total")], "report", "revenue")
    _write(api, "contacts", [("customers", "email")], "report", "contact", subtype="MASKED")


def _get(api, **params):
    return api.get("/api/v1/lineage/columns", params)


def test_one_column_upstream_and_downstream_with_transformations(api, columns=None):
    if columns is None:  # called from the PostgreSQL module without the fixture
        _write(api, "totals", [("orders", "amount")], "totals", "total", subtype="AGGREGATION",
               schema=[("total", "numeric")])
        _write(api, "report", [("totals", "total")], "report", "revenue")
    body = _get(api, nodeId=f"dataset:{PG}:totals", column="total").json()
    ids = {n["id"] for n in body["graph"]}
    assert ids == {f"datasetField:{PG}:orders:amount", f"datasetField:{PG}:totals:total",
                   f"datasetField:{PG}:report:revenue"}
    assert body["root"] == f"dataset:{PG}:totals" and body["hidden"] == 0
    nodes = {n["id"]: n for n in body["graph"]}
    total = nodes[f"datasetField:{PG}:totals:total"]
    assert total["type"] == "DATASET_FIELD" and total["data"]["fieldType"] == "numeric"
    assert total["data"]["dataset"] == f"dataset:{PG}:totals"
    assert total["data"]["transformations"] == [{"from": f"datasetField:{PG}:orders:amount", "type": "DIRECT",
                                                 "subtype": "AGGREGATION", "masking": False}]
    assert total["inEdges"] == [{"origin": f"datasetField:{PG}:orders:amount",
                                 "destination": f"datasetField:{PG}:totals:total"}]
    assert total["outEdges"] == [{"origin": f"datasetField:{PG}:totals:total",
                                  "destination": f"datasetField:{PG}:report:revenue"}]
    up = _get(api, nodeId=f"dataset:{PG}:report", column="revenue", direction="upstream", depth=1).json()
    assert {n["id"] for n in up["graph"]} == {f"datasetField:{PG}:report:revenue", f"datasetField:{PG}:totals:total"}


def test_every_column_of_a_dataset_when_none_is_named(api, columns):
    body = _get(api, nodeId=f"dataset:{PG}:report", direction="upstream").json()
    ids = {n["id"] for n in body["graph"]}
    assert {f"datasetField:{PG}:report:revenue", f"datasetField:{PG}:report:contact",
            f"datasetField:{PG}:customers:email", f"datasetField:{PG}:orders:amount"} <= ids
    contact = next(n for n in body["graph"] if n["id"] == f"datasetField:{PG}:report:contact")
    assert contact["data"]["transformations"][0]["masking"] is True


def test_the_dataset_graph_flags_column_lineage(api, columns):
    body = api.get("/api/v1/lineage", {"nodeId": f"dataset:{PG}:totals", "depth": 1}).json()
    flags = {n["id"]: n["data"]["hasColumnLineage"] for n in body["graph"]}
    assert flags[f"dataset:{PG}:totals"] is True and flags["job:etl:totals"] is False
    totals = next(n for n in body["graph"] if n["id"] == f"dataset:{PG}:totals")
    assert totals["data"]["schema"] == [{"name": "total", "type": "numeric"}]


def test_fields_of_a_private_dataset_of_another_team_are_hidden(api, columns, tmp_path,
                                                                django_capture_on_commit_callbacks):
    TeamFactory(name="risk")
    write_files(tmp_path, {"catalog-info.yaml": (
        "apiVersion: plinth.dev/v1alpha1\nkind: Dataset\nmetadata:\n  name: private-totals\n  annotations:\n"
        f"    openlineage.io/dataset: {PG}/totals\n    plinth.dev/visibility: private\nspec:\n  owner: risk\n")})
    with django_capture_on_commit_callbacks(execute=True):
        catalog_services.location_register(target=str(tmp_path / "catalog-info.yaml"), actor=None, file_roots=None)
    response = _get(api, nodeId=f"dataset:{PG}:orders", column="amount", direction="downstream")
    body = response.json()
    assert {n["id"] for n in body["graph"]} == {f"datasetField:{PG}:orders:amount"}
    assert body["hidden"] == 1 and "totals" not in response.content.decode()
    assert _get(api, nodeId=f"dataset:{PG}:totals", column="total").status_code == 404


def test_columns_take_a_constant_number_of_queries(api, columns):
    def count(**params):
        _get(api, **params)
        with CaptureQueriesContext(connection) as captured:
            assert _get(api, **params).status_code == 200
        return len(captured)

    assert count(nodeId=f"dataset:{PG}:orders", column="amount", depth=1) == \
        count(nodeId=f"dataset:{PG}:orders", column="amount", depth=20)


@pytest.mark.parametrize("params,field", [
    ({"nodeId": "job:etl:totals"}, "nodeId"),
    ({"nodeId": f"dataset:{PG}:totals", "column": "x" * 301}, "column"),
    ({"nodeId": f"dataset:{PG}:totals", "column": "a\x01b"}, "column"),
    ({"nodeId": f"dataset:{PG}:totals", "depth": "21"}, "depth"),
    ({"nodeId": f"dataset:{PG}:totals", "direction": "sideways"}, "direction"),
])
def test_bad_column_requests_are_400_naming_the_parameter(api, columns, params, field):
    response = _get(api, **params)
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["details"]
