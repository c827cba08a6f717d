"""`/lineage/` opened without a node: a landing (200) that says what lineage shows and offers a way to
pick a root — a search by dataset or job name (one match opens its graph, a node id opens as is) and the
nodes most recently active — each list holding only nodes the viewer may see, in one query. A malformed
`nodeId` is still a 400 naming it."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from portal.accounts.models import Role
from portal.lineage.models import Node, node_key
from tests.factories import EntityFactory, MembershipFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


def _node(type_: str, namespace: str, name: str, entity=None) -> Node:
    return Node.objects.create(key=node_key(type_, namespace, name), type=type_, namespace=namespace, name=name,
                               entity=entity)


@pytest.fixture
def world(db):
    ours, theirs = TeamFactory(name="data-eng"), TeamFactory(name="risk")
    dora = UserFactory(username="dora")
    MembershipFactory(user=dora, team=ours, role=Role.MEMBER)
    secret = EntityFactory(kind="Pipeline", name="secret-scoring", owner_team=theirs, visibility="private")
    _node("job", "airflow", "etl.orders")
    _node("dataset", "postgres://db:5432", "shop.orders")
    _node("job", "airflow", "secret_scoring_job", entity=secret)
    client = Client()
    client.force_login(dora)
    return client


def _opened(response) -> str:
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert location.path == "/lineage/"
    return parse_qs(location.query)["nodeId"][0]


def test_the_bare_page_is_a_landing_with_a_search_and_the_recent_nodes_the_viewer_may_see(world):
    response = world.get("/lineage/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "is required" not in html and "alert-error" not in html
    assert 'data-testid="lineage-pick"' in html and 'name="q"' in html
    assert 'data-testid="lineage-recent"' in html
    assert "etl.orders" in html and "shop.orders" in html
    assert "/lineage/?nodeId=job%3Aairflow%3Aetl.orders" in html
    assert "secret" not in html.lower()  # another team's private pipeline is not named


def test_the_landing_costs_the_same_queries_however_many_nodes(world):
    with CaptureQueriesContext(connection) as few:
        world.get("/lineage/")
    for i in range(30):
        _node("job", "airflow", f"more.{i}")
    with CaptureQueriesContext(connection) as many:
        html = world.get("/lineage/").content.decode()
    assert len(many.captured_queries) == len(few.captured_queries)
    assert html.count("/lineage/?nodeId=") == 12


def test_one_match_opens_its_graph_several_are_listed_none_says_so(world):
    assert _opened(world.get("/lineage/", {"q": "shop.ord"})) == "dataset:postgres://db:5432:shop.orders"
    several = world.get("/lineage/", {"q": "orders"})
    assert several.status_code == 200
    html = several.content.decode()
    assert 'data-testid="lineage-matches"' in html and "etl.orders" in html and "shop.orders" in html
    hidden = world.get("/lineage/", {"q": "secret_scoring"})  # exists, but private to another team
    missing = world.get("/lineage/", {"q": "no-such-thing"})
    assert hidden.status_code == missing.status_code == 200
    assert "No dataset or job you may see" in hidden.content.decode()
    assert "/lineage/?nodeId=" not in hidden.content.decode()


def test_matches_come_most_recently_updated_first_and_at_most_twelve(world):
    from django.utils import timezone

    for i in range(14):
        _node("dataset", "s3://lake", f"orders.part{i:02}")
    Node.objects.filter(name="orders.part03").update(updated_at=timezone.now() + timezone.timedelta(hours=1))
    html = world.get("/lineage/", {"q": "ORDERS.PART"}).content.decode()  # any case
    assert html.count("/lineage/?nodeId=") == 12
    assert html.index("orders.part03") < html.index("orders.part13") < html.index("orders.part12")
    assert "orders.part00" not in html and "orders.part01" not in html  # the two oldest
    assert "The 12 most recently updated are shown" in html


def test_a_node_id_typed_in_the_search_opens_as_is(world):
    assert _opened(world.get("/lineage/", {"q": " job:airflow:etl.orders "})) == "job:airflow:etl.orders"


@pytest.mark.parametrize("q", ["x" * 201, "a\x01b"])
def test_a_bad_search_is_a_400_naming_q(world, q):
    response = world.get("/lineage/", {"q": q})
    assert response.status_code == 400
    assert "q: give a name of at most 200 characters" in response.content.decode()


@pytest.mark.parametrize("node_id", ["", "   ", "fraud-detector", "table:a:b"])
def test_a_given_but_malformed_node_id_is_still_a_400(world, node_id):
    response = world.get("/lineage/", {"nodeId": node_id})
    assert response.status_code == 400 and "nodeId:" in response.content.decode()
    assert 'data-testid="lineage-pick"' in response.content.decode()  # with the way to pick a node
