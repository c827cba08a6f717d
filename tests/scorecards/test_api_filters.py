"""The results API filters like the scorecard's entity list (filters.parse, selectors.filtered_results):
`domain` (a ref or a name; empty: in no domain), `team` (empty: the unowned entities) and `level`, each
answering exactly the entities the page counts for the reader; another team's private entity is never
listed; a bad value is a 400 (or 404 for no such team) naming the parameter."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from django.test import Client

from portal.scorecards import services
from portal.scorecards.models import Result
from tests.factories import EntityFactory

from .test_drilldown import PAYMENTS, PRIVATE, by_hand

pytestmark = pytest.mark.django_db


@pytest.fixture
def evaluated(demo_org):
    EntityFactory(kind="Component", name="orphan-svc", owner_team=None, owner_ref="", spec_type="service")
    services.evaluate_entities()
    return demo_org


def api_refs(client: Client, card: str, **query) -> list[str]:
    refs, url = [], f"/api/v1/scorecards/{card}/results?{urlencode({**query, 'limit': 7})}"
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.content
        body = response.json()
        refs += [r["entity"] for r in body["items"]]
        url = (f"/api/v1/scorecards/{card}/results?{urlencode({**query, 'limit': 7, 'cursor': body['next']})}"
               if body["next"] else None)
    return sorted(refs)


@pytest.mark.parametrize("username", ["alice", "carol"])
@pytest.mark.parametrize("card", ["production-readiness", "service-basics"])
def test_domain_and_unowned_filters_list_what_the_page_counts(evaluated, username, card):
    user = evaluated["users"][username]
    client = Client()
    client.force_login(user)
    rows = by_hand(user, card)
    for query, keep in [
        ({"domain": PAYMENTS}, lambda t, d: d == PAYMENTS),
        ({"domain": "payments"}, lambda t, d: d == PAYMENTS),
        ({"domain": ""}, lambda t, d: d == ""),
        ({"team": ""}, lambda t, d: t == ""),
        ({"team": "", "domain": ""}, lambda t, d: t == "" and d == ""),
        ({"team": "fraud-ml", "domain": PAYMENTS}, lambda t, d: t == "fraud-ml" and d == PAYMENTS),
    ]:
        want = sorted(ref for ref, _, t, d in rows if keep(t, d))
        assert api_refs(client, card, **query) == want, query
    assert any(d == PAYMENTS for *_, d in rows)  # the domain filter is tried on a non-empty answer
    if card == "service-basics":
        assert any(t == "" for _, _, t, _ in rows)  # and the unowned one


def test_another_teams_private_entity_is_never_listed_by_domain(evaluated):
    assert Result.objects.filter(entity__ref=PRIVATE, scorecard="production-readiness").exists()
    alice, carol = Client(), Client()
    alice.force_login(evaluated["users"]["alice"])
    carol.force_login(evaluated["users"]["carol"])
    assert PRIVATE in api_refs(alice, "production-readiness", domain=PAYMENTS)
    for query in ({"domain": PAYMENTS}, {"team": "fraud-ml"}, {"domain": ""}, {"team": ""}):
        assert PRIVATE not in api_refs(carol, "production-readiness", **query)


@pytest.mark.parametrize(("query", "status", "field"), [
    ({"domain": "component:default/x"}, 400, "domain"),
    ({"domain": "a:b:c/d/e"}, 400, "domain"),
    ({"level": "Platinum"}, 400, "level"),
    ({"level": ["Bronze", "Gold"]}, 400, "level"),
    ({"team": "no-such-team"}, 404, None),
])
def test_bad_filters_answer_400_or_404_naming_the_parameter(evaluated, query, status, field):
    client = Client()
    client.force_login(evaluated["users"]["carol"])
    response = client.get("/api/v1/scorecards/production-readiness/results", query)
    assert response.status_code == status, response.content
    error = response.json()["error"]
    if field:
        assert set(error["details"]) == {field}
    else:
        assert "no-such-team" in error["message"]
