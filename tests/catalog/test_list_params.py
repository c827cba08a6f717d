"""The entity list's parameters read one way by the list and by its counts (`totalItems`, the facets, the
page's "N entities match"): a parameter given twice, an empty `filter` clause, more values than the list
reads. Before, each side read them its own way and the count disagreed with the rows. Also: a projection
through a scalar, and cursors a client made up."""

from __future__ import annotations

import base64
import json

import pytest
from django.test import Client

from catalog.filters import MAX_VALUES

pytestmark = pytest.mark.django_db


def alice(demo_org) -> Client:
    c = Client()
    c.force_login(demo_org["users"]["alice"])
    return c


def listed(client: Client, query: str) -> tuple[int, list[str]]:
    body = client.get(f"/api/v1/entities?{query}&limit=500&fields=kind,metadata.name").json()
    return body["totalItems"], sorted(f"{e['kind']}:{e['metadata']['name']}" for e in body["items"])


def facet_total(client: Client, query: str) -> int:
    return sum(v["count"] for v in client.get(f"/api/v1/entity-facets?facet=kind&{query}").json()["facets"]["kind"])


@pytest.mark.parametrize("query", ["kind=model&kind=dataset", "owner=fraud-ml&owner=recsys",
                                   "kind=model&kind=dataset&lifecycle=production", "type=classifier&type=ranker"])
def test_a_parameter_given_twice_is_both_values_for_the_rows_and_the_counts(demo_org, query):
    c = alice(demo_org)
    total, items = listed(c, query)
    joined = "&".join(f"{k}={','.join(v for kk, v in (p.split('=') for p in query.split('&')) if kk == k)}"
                      for k in dict.fromkeys(p.split("=")[0] for p in query.split("&")))
    assert (total, items) == listed(c, joined) and total == len(items) > 0, (query, joined)
    assert facet_total(c, query) == total
    page = c.get(f"/catalog/?{query}").content.decode()
    assert f"{total} entit" in page and page.count('class="entity-row') in (0, min(total, 50))


def test_an_empty_filter_clause_is_no_filter_and_an_empty_value_is_a_400(demo_org):
    c = alice(demo_org)
    everything = listed(c, "")
    for query in ("filter=", "filter=,", "filter=%20"):
        assert listed(c, query) == everything and facet_total(c, query) == everything[0], query
    for query in ("filter=kind=", "filter=spec.type=%20"):
        response = c.get(f"/api/v1/entities?{query}")
        assert response.status_code == 400 and "has no value" in response.json()["error"]["details"]["filter"][0]
    assert everything[0] > 0


def test_more_values_than_the_list_reads_is_a_400_naming_the_parameter(demo_org):
    c = alice(demo_org)
    many = ",".join(f"x{i}" for i in range(MAX_VALUES)) + ",model"
    response = c.get(f"/api/v1/entities?kind={many}")
    assert response.status_code == 400 and "kind" in response.json()["error"]["details"]
    assert c.get(f"/api/v1/entity-facets?kind={many}").status_code == 400
    assert c.get("/api/v1/entities?" + "&".join(f"tag=t{i}" for i in range(MAX_VALUES + 1))).status_code == 400
    page = c.get(f"/catalog/?kind={many}")
    assert page.status_code == 400 and f"At most {MAX_VALUES} values" in page.content.decode()
    clauses = "&".join(f"filter=kind=k{i}" for i in range(21))
    assert c.get(f"/api/v1/entities?{clauses}").status_code == 400
    at_cap = ",".join(f"x{i}" for i in range(MAX_VALUES - 1)) + ",model"
    assert listed(c, f"kind={at_cap}")[0] == listed(c, "kind=model")[0] > 0


def test_a_field_through_a_scalar_or_a_missing_key_is_left_out_not_an_empty_object(demo_org):
    c = alice(demo_org)
    items = c.get("/api/v1/entities?kind=model&fields=kind.x,metadata.nope,metadata.name").json()["items"]
    assert items and all(item == {"metadata": {"name": item["metadata"]["name"]}} for item in items)
    items = c.get("/api/v1/entities?kind=model&fields=kind.x").json()["items"]
    assert items and all(item == {} for item in items)


def cursor(payload: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


@pytest.mark.parametrize("payload", [
    {"o": "updated", "k": "0001-01-01T00:00:00+01:00", "id": 1},
    {"o": "updated", "k": "9999-12-31T23:59:59-01:00", "id": 1},
    {"o": "updated", "k": "2026-01-01T00:00:00", "id": 1},  # no offset: never written by the API
    {"o": "updated", "k": "2026-01-01T00:00:00+00:00", "id": 2**70},
])
def test_a_made_up_cursor_is_a_400_not_a_database_error(demo_org, payload):
    c = alice(demo_org)
    for order in ("updated", "-updated"):
        response = c.get(f"/api/v1/entities?order={order}&cursor={cursor(payload | {'o': order})}")
        assert response.status_code == 400 and "cursor" in response.json()["error"]["details"], (order, payload)
    for url in ("/api/v1/feedback", "/api/v1/incidents"):
        response = c.get(f"{url}?cursor={cursor({'t': payload['k'], 'id': payload['id']})}")
        assert response.status_code == 400, (url, payload)
