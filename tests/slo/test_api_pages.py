"""The API, the SLOs tab and the badge: visibility (another team's private entity's SLOs are a 404 and
never listed), filters, constant query counts, and the scorecard fact the "SLO defined" checks read."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from portal.scorecards import services as scorecard_services
from portal.scorecards.models import Result
from portal.slo import selectors, services
from portal.slo.models import SLO

from .conftest import CHECKOUT_SLO, NOW, SEARCH_SLO, register

pytestmark = pytest.mark.django_db
PRIVATE = "    plinth.dev/visibility: private\n"


def client_for(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


@pytest.fixture
def evaluated(demo_org, prometheus, tmp_path):
    checkout = register(tmp_path / "checkout", "checkout", CHECKOUT_SLO)
    search = register(tmp_path / "search", "search", SEARCH_SLO)
    secret = register(tmp_path / "secret", "secret-ledger", CHECKOUT_SLO, extra="")
    descriptor = tmp_path / "secret" / "catalog-info.yaml"
    descriptor.write_text(descriptor.read_text().replace("    plinth.dev/openslo", PRIVATE + "    plinth.dev/openslo"))
    from catalog import services as catalog_services
    from catalog.models import Location

    catalog_services.location_refresh(location=Location.objects.get(target=str(descriptor)))
    services.evaluate_entities(now=NOW)
    secret.refresh_from_db()
    assert secret.visibility == "private"
    return {**demo_org, "checkout": checkout, "search": search, "secret": secret}


def test_the_list_filters_by_entity_and_team_and_hides_private_slos(evaluated):
    carol = client_for(evaluated["users"]["carol"])  # not in fraud-ml
    items = carol.get("/api/v1/slos").json()["items"]
    # The demo's SLOs (catalog/demo/*/slo*.yaml): the fraud detector, the scoring service, the product ranker.
    demo, service, ranker = ("model:default/fraud-detector", "component:default/fraud-scoring-service",
                             "model:default/product-ranker")
    assert {i["entity"] for i in items} == {"component:default/checkout", "component:default/search", demo, service,
                                            ranker}
    one = carol.get("/api/v1/slos?entity=component:default/checkout").json()["items"]
    assert [(i["name"], i["sli"], i["errorBudget"]["remaining"]) for i in one] == [
        ("checkout-availability", pytest.approx(0.997), pytest.approx(0.7))]
    assert one[0]["burnRates"]["1h"] == pytest.approx(20) and one[0]["errorBudget"]["unit"] == "events"
    assert carol.get("/api/v1/slos?entity=component:default/secret-ledger").status_code == 404
    assert carol.get("/api/v1/entities/by-name/component/default/secret-ledger/slos").status_code == 404
    alice = client_for(evaluated["users"]["alice"])  # fraud-ml
    mine = alice.get("/api/v1/slos?team=fraud-ml").json()["items"]
    assert {i["entity"] for i in mine} == {"component:default/checkout", "component:default/search",
                                           "component:default/secret-ledger", demo, service}
    assert {i["entity"] for i in alice.get("/api/v1/slos?team=recsys").json()["items"]} == {ranker}
    body = alice.get("/api/v1/entities/by-name/component/default/secret-ledger/slos").json()
    assert body["file"] == "slo.yaml" and body["fileErrors"] == [] and len(body["items"]) == 1


def test_the_list_is_cursor_paged(evaluated):
    alice = client_for(evaluated["users"]["alice"])
    seen, url = [], "/api/v1/slos?limit=1"
    while url:
        body = alice.get(url).json()
        seen += [(i["entity"], i["name"]) for i in body["items"]]
        url = f"/api/v1/slos?limit=1&cursor={body['next']}" if body["next"] else None
    assert len(seen) == len(set(seen)) == SLO.objects.count() == 7  # and the demo's four


@pytest.mark.parametrize(("url", "status", "says"), [
    ("/api/v1/slos?entity=not%20a%20ref", 400, "is not an entity reference"),
    ("/api/v1/slos?limit=0", 400, "between 1 and 500"),
    ("/api/v1/slos?cursor=garbage", 400, "cursor"),
    ("/api/v1/slos?entity=component:default/nothing", 404, "No entity"),
    ("/api/v1/entities/by-name/component/default/nothing/slos", 404, "No entity"),
])
def test_bad_requests_get_clear_errors(evaluated, url, status, says):
    response = client_for(evaluated["users"]["alice"]).get(url)
    assert response.status_code == status
    assert says in response.content.decode()


def test_the_tab_shows_objective_sli_budget_burns_and_charts(evaluated):
    alice = client_for(evaluated["users"]["alice"])
    services.evaluate_entities(entity_ids=[evaluated["checkout"].id], now=NOW.replace(hour=13))
    page = alice.get("/catalog/component/default/checkout/slos/").content.decode()
    assert 'data-testid="slo-checkout-availability"' in page
    assert "99.00 %" in page and "99.700 %" in page and "70.0 %" in page and "70 events" in page
    assert "20.00×" in page and "page</span> 1h / 5m ≥ 14.4×" in page and "holding" in page
    assert 'data-testid="chart-slo-' in page and "<svg" in page and "Error budget remaining" in page
    assert 'data-testid="slo-badge"' in page and "SLOs 1/1 meeting" in page
    assert alice.get("/catalog/component/default/secret-ledger/slos/").status_code == 200
    carol = client_for(evaluated["users"]["carol"])
    assert carol.get("/catalog/component/default/secret-ledger/slos/").status_code == 404


def test_a_file_error_and_a_stale_value_are_shown_on_the_tab(evaluated, tmp_path, settings):
    from tests.services import free_port

    (tmp_path / "checkout" / "slo.yaml").write_text(CHECKOUT_SLO.replace("target: 0.99", "target: 1.5"))
    settings.PLINTH_PROMETHEUS_URL = f"http://127.0.0.1:{free_port()}"
    services.evaluate_entities(entity_ids=[evaluated["checkout"].id])
    page = client_for(evaluated["users"]["alice"]).get("/catalog/component/default/checkout/slos/").content.decode()
    assert 'data-testid="slo-file-errors"' in page and "target: must be between 0 and 1" in page
    assert "Prometheus is unreachable" in page and "The values below are stale" in page


def test_tab_and_api_query_counts_do_not_grow_with_history(evaluated, django_assert_max_num_queries):
    alice = client_for(evaluated["users"]["alice"])
    urls = ["/catalog/component/default/checkout/slos/", "/api/v1/slos",
            "/api/v1/entities/by-name/component/default/checkout/slos"]
    counts = {}
    for url in urls:
        alice.get(url)
        with CaptureQueriesContext(connection) as q:
            assert alice.get(url).status_code == 200
        counts[url] = len(q)
    for hour in range(13, 20):
        services.evaluate_entities(now=NOW.replace(hour=hour))
    for url in urls:
        with CaptureQueriesContext(connection) as q:
            assert alice.get(url).status_code == 200
        assert len(q) == counts[url], url


def test_the_badge_costs_one_query(evaluated):
    with CaptureQueriesContext(connection) as q:
        badge = selectors.badge(evaluated["checkout"])
    assert len(q) == 1 and badge["n"] == 1 and badge["meeting"] == 1 and badge["budget"] == pytest.approx(0.7)


def test_the_scorecard_fact_and_the_slo_defined_check(evaluated):
    facts = selectors.scorecard_facts([evaluated["checkout"].id, evaluated["search"].id, 1])
    assert facts[evaluated["checkout"].id] == {"defined": 1, "meeting": 1, "budget_remaining_min": 0.7,
                                               "stale": False}
    assert facts[evaluated["search"].id]["meeting"] == 0 and facts[evaluated["search"].id]["budget_remaining_min"] == -0.25
    assert 1 not in facts
    scorecard_services.evaluate_entities()
    passed = Result.objects.get(entity=evaluated["checkout"], scorecard="service-basics").checks["slo-defined"]
    failed = Result.objects.get(entity__ref="component:default/mlflow-tracking",  # a demo service without SLOs
                                scorecard="service-basics").checks["slo-defined"]
    assert passed == [True, ""] and failed == [False, ""]
