"""`GET /api/v1/entities/export`: the NDJSON stream shows exactly what the paged list shows (entities,
envelope, visibility, filters, projection), checkpoints resume it, and bad parameters are a 400 before
the stream starts."""

import json

import pytest
from django.test import Client

from catalog import export
from portal.accounts import services as account_services

pytestmark = pytest.mark.django_db


def _client(demo_org, username: str) -> Client:
    _, raw = account_services.token_create(user=demo_org["users"][username], name="tests")
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


def stream(client: Client, query: str = "") -> list[dict]:
    response = client.get(f"/api/v1/entities/export{query}")
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/x-ndjson"
    text = b"".join(response.streaming_content).decode()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def entities(lines: list[dict]) -> list[dict]:
    assert lines[-1]["nextCursor"] is None, "the last line ends the stream"
    items = [line for line in lines if "nextCursor" not in line]
    assert lines[-1]["count"] == len(items)
    return items


def paged(client: Client, query: str = "") -> list[dict]:
    items, cursor = [], None
    while True:
        body = client.get(f"/api/v1/entities?limit=9{query}" + (f"&cursor={cursor}" if cursor else "")).json()
        items += body["items"]
        cursor = body["pageInfo"]["nextCursor"]
        if not cursor:
            return items


def by_ref(items: list[dict]) -> dict[str, dict]:
    out = {f"{i.get('kind')}:{i.get('metadata', {}).get('namespace')}/{i.get('metadata', {}).get('name')}".lower(): i
           for i in items}
    assert len(out) == len(items), "an entity appeared twice"
    return out


@pytest.mark.parametrize("username", ["alice", "carol", "grace"])
def test_the_stream_equals_the_paged_listing(demo_org, username, monkeypatch):
    """The same entities with the same bodies (relations to hidden targets dropped alike), in several
    chunks, for a member of the private model's team, a user of another team and a platform admin."""
    monkeypatch.setattr(export, "CHUNK", 7)
    client = _client(demo_org, username)
    lines = stream(client)
    items = entities(lines)
    assert len(items) > 14 and sum("nextCursor" in line for line in lines) > 2  # checkpoints per chunk
    assert by_ref(items) == by_ref(paged(client))


def test_a_private_entity_of_another_team_never_appears(demo_org):
    private = "model:default/chargeback-predictor"  # fraud-ml's, private
    assert private in by_ref(entities(stream(_client(demo_org, "alice"))))
    carol = entities(stream(_client(demo_org, "carol")))
    assert private not in by_ref(carol)
    assert not any(r["targetRef"] == private for item in carol for r in item["relations"])


@pytest.mark.parametrize("query", [
    "&kind=model", "&filter=kind=model,spec.type=classifier", "&filter=kind=api&filter=kind=pipeline",
    "&owner=fraud-ml", "&tag=fraud", "&fields=kind,metadata.name", "&kind=model&fields=relations,metadata.name",
    "&namespace=default&lifecycle=production",
])
def test_filters_and_projection_are_the_lists(demo_org, query):
    client = _client(demo_org, "alice")
    streamed = entities(stream(client, "?" + query[1:]))
    assert streamed and by_ref(streamed) == by_ref(paged(client, query))


def test_a_checkpoint_resumes_after_everything_before_it(demo_org, monkeypatch):
    monkeypatch.setattr(export, "CHUNK", 5)
    client = _client(demo_org, "alice")
    lines = stream(client)
    second = [i for i, line in enumerate(lines) if line.get("nextCursor")][1]
    resumed = stream(client, f"?cursor={lines[second]['nextCursor']}")
    rest = [line for line in lines[second + 1:] if "nextCursor" not in line]
    assert entities(resumed) == rest and len(rest) > 5


@pytest.mark.parametrize("query,field", [
    ("cursor=!!!notbase64", "cursor"),
    ("cursor=eyJpZCI6IDN9", "cursor"),  # {"id": 3}: the locations list's cursor, not a stream's
    ("cursor=" + export.encode_cursor(1)[:-2], "cursor"),
    ("filter=colour=red", "filter"),
    ("filter=kind=model&cursor=" + "A" * 3000, "cursor"),
])
def test_bad_parameters_are_400_naming_them_before_the_stream(demo_org, query, field):
    response = _client(demo_org, "alice").get(f"/api/v1/entities/export?{query}")
    assert response.status_code == 400 and not response.streaming
    assert response.json()["error"]["message"].startswith(f"{field}:")


def test_a_cursor_of_the_paged_list_is_refused(demo_org):
    client = _client(demo_org, "alice")
    cursor = client.get("/api/v1/entities?limit=2").json()["pageInfo"]["nextCursor"]
    response = client.get(f"/api/v1/entities/export?cursor={cursor}")
    assert response.status_code == 400 and "cursor" in response.json()["error"]["message"]


def test_signed_out_is_401_json(db):
    response = Client().get("/api/v1/entities/export", HTTP_ACCEPT="application/x-ndjson")
    assert response.status_code == 401
    assert json.loads(response.content)["error"]["status"] == 401


def test_queries_per_chunk_not_per_entity(demo_org, monkeypatch, django_assert_max_num_queries):
    """A chunk costs its rows and its relations (two reads), whatever its size."""
    monkeypatch.setattr(export, "CHUNK", 10)
    client = _client(demo_org, "alice")
    total = len(entities(stream(client)))
    chunks = total // 10 + 1
    with django_assert_max_num_queries(8 + 3 * chunks):
        stream(client)


def test_format_is_no_parameter_of_the_stream(demo_org):
    """`?format=` (DRF's override) would answer 404 for an unknown value: the stream ignores it."""
    assert entities(stream(_client(demo_org, "alice"), "?format=AAA&kind=model"))


def test_a_response_hands_over_after_its_time_budget(demo_org, monkeypatch):
    """After MAX_SECONDS a response ends with a cursor on its last line (a web worker is never held past
    its timeout); following the cursors gives the whole stream, once."""
    monkeypatch.setattr(export, "CHUNK", 8)
    client = _client(demo_org, "alice")
    whole = entities(stream(client))
    monkeypatch.setattr(export, "MAX_SECONDS", 0)
    parts, query, responses = [], "", 0
    while True:
        lines = stream(client, query)
        responses += 1
        last = lines[-1]
        items = [line for line in lines if "nextCursor" not in line]
        assert last["count"] == len(items) <= 8
        parts += items
        if last["nextCursor"] is None:
            break
        query = f"?cursor={last['nextCursor']}"
    assert parts == whole and responses > 3


def test_the_python_composition_equals_the_databases(demo_org, monkeypatch):
    """Databases without a `Stored` composition build whole bodies in Python: the same lines."""
    client = _client(demo_org, "alice")
    composed = entities(stream(client))
    monkeypatch.setattr(export, "COMPOSED_VENDORS", frozenset())
    assert entities(stream(client)) == composed
