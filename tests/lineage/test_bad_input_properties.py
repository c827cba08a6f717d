"""Hostile input for the graph endpoints (`GET /api/v1/lineage`, `/lineage/columns`, `/lineage/impact`):
every example answers 200, 404 (no such node), or 400 naming the parameter — never a 5xx — and reading
writes nothing (tests/hostile.py, docs/security.md)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portal.lineage.models import Edge, GraphEdge, Node
from tests import hostile
from tests.hostile import each_backend  # noqa: F401 (a fixture)
from tests.lineage.conftest import post, run_event

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("each_backend")]
PG = "postgres://db:5432"
PATHS = ("/api/v1/lineage", "/api/v1/lineage/columns", "/api/v1/lineage/impact")

NODE_IDS = st.one_of(
    hostile.HOSTILE_STRINGS,
    st.builds(lambda prefix, rest: f"{prefix}:{rest}",
              st.sampled_from(["dataset", "job", "entity", "run", "version", "datasetField", "DATASET", ""]),
              hostile.HOSTILE_STRINGS),
    st.sampled_from([f"dataset:{PG}:t0", f"dataset:{PG}", "dataset::", "job:a:", "entity:model:default",
                     "entity:model:default:x:y", "version:model:default:x:v:1", "version:model:default:x:1", "run:../../etc", "run:",
                     f"dataset:{PG}:t0\u202e", "dataset:" + ":" * 3000, "entity:MODEL:Default:X"]),
)
NUMBERS = st.one_of(st.integers(-5, 30).map(str), st.sampled_from(["", "1e3", "٣", "+2", " 2", "2.0", "0x3", "99999999"]),
                    hostile.HOSTILE_STRINGS)
DIRECTIONS = st.one_of(st.sampled_from(["upstream", "downstream", "both", "UP", ""]), hostile.HOSTILE_STRINGS)


@pytest.fixture
def graph_api(api):
    for i in (1, 2):
        assert post(api, run_event("COMPLETE", job=("etl", f"j{i}"), inputs=[(PG, f"t{i - 1}")],
                                   outputs=[(PG, f"t{i}")])).status_code == 201
    api.get("/api/v1/lineage", {"nodeId": f"dataset:{PG}:t0"})  # the token's first use is audited now
    return api


@hostile.budget(ci=30)
@given(node_id=NODE_IDS, depth=NUMBERS, direction=DIRECTIONS, column=hostile.HOSTILE_STRINGS, path=st.sampled_from(PATHS))
def test_any_parameters_get_a_graph_a_404_or_a_400_naming_them(graph_api, node_id, depth, direction, column, path):
    before = hostile.digest(Node, Edge, GraphEdge)
    params = {"nodeId": node_id, "depth": depth, "direction": direction}
    if path.endswith("columns"):
        params["column"] = column
    response = graph_api.get(path, params)
    hostile.assert_clear(response, names=["nodeId", "depth", "direction", "column"])
    assert response.status_code in (200, 400, 404), response.content[:500]
    assert hostile.digest(Node, Edge, GraphEdge) == before


@pytest.mark.parametrize("params,name", [
    ({}, "nodeId"),
    ({"nodeId": ""}, "nodeId"),
    ({"nodeId": "table:x"}, "nodeId"),
    ({"nodeId": "dataset:nocolon"}, "nodeId"),
    ({"nodeId": "entity:model:x"}, "nodeId"),
    ({"nodeId": "x" * 5000}, "nodeId"),
    ({"nodeId": f"dataset:{PG}:t0", "depth": "-1"}, "depth"),
    ({"nodeId": f"dataset:{PG}:t0", "depth": "21"}, "depth"),
    ({"nodeId": f"dataset:{PG}:t0", "depth": "two"}, "depth"),
    ({"nodeId": f"dataset:{PG}:t0", "direction": "sideways"}, "direction"),
    ({"nodeId": [f"dataset:{PG}:t0", f"dataset:{PG}:t1"]}, "nodeId"),
])
def test_each_malformed_parameter_is_a_400_naming_it(graph_api, params, name):
    for path in ("/api/v1/lineage", "/api/v1/lineage/impact"):
        if path.endswith("impact") and name == "direction":
            continue  # impact is downstream only: it ignores direction
        response = graph_api.get(path, params)
        assert response.status_code == 400, (path, params, response.content)
        body = response.json()["error"]
        assert name in body["details"] and body["message"].startswith(name), body


def test_a_nul_in_a_parameter_is_refused_naming_it(graph_api):
    response = graph_api.get("/api/v1/lineage", {"nodeId": f"dataset:{PG}:t\x000"})
    assert response.status_code == 400 and "nodeId" in response.content.decode()


def test_a_well_formed_unknown_node_is_a_404(graph_api):
    for node_id in (f"dataset:{PG}:nope", "job:etl:nope", "entity:model:default:nope", "run:abc123",
                    "version:model:default:nope:1"):
        response = graph_api.get("/api/v1/lineage", {"nodeId": node_id})
        assert response.status_code == 404, node_id
        assert response.json() == {"error": {"status": 404, "message": "No such node."}}
