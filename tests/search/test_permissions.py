"""A private entity of another team never shows: not in results, facet counts, totals or typeahead."""

import pytest
from django.test import Client

from portal.search import selectors

PRIVATE = "model:default/chargeback-predictor"  # private to fraud-ml


def test_results_hide_private_entities_of_other_teams(users):
    """carol (recsys) does not find fraud-ml's private model; alice (fraud-ml) and the admin do."""
    assert PRIVATE not in [h.key for h in selectors.search(users["carol"], "chargeback").hits]
    assert PRIVATE not in [h.key for h in selectors.search(users["carol"], "kind:model").hits]
    assert PRIVATE in [h.key for h in selectors.search(users["alice"], "chargeback").hits]
    assert PRIVATE in [h.key for h in selectors.search(users["grace"], "chargeback").hits]


def test_facet_counts_and_totals_exclude_what_is_hidden(users):
    """The private model is not counted in kind, lifecycle, owner, type or tag facets for carol."""
    alice = selectors.search(users["alice"], "kind:model")
    carol = selectors.search(users["carol"], "kind:model")
    assert alice.total == 4 and carol.total == 3
    assert {f["value"]: f["count"] for f in carol.facets["kind"]} == {"model": 3}
    assert {f["value"]: f["count"] for f in carol.facets["lifecycle"]}.get("experimental") == 1  # churn only
    assert {f["value"]: f["count"] for f in carol.facets["owner"]}.get("fraud-ml") == 1
    alice_tags = {f["value"]: f["count"] for f in alice.facets["tag"]}
    carol_tags = {f["value"]: f["count"] for f in carol.facets["tag"]}
    assert alice_tags["classification"] == 3 and carol_tags["classification"] == 2


def test_typeahead_hides_private_entities(users, client: Client):
    """Neither the typeahead selector nor its fragment mention the private model to carol."""
    _, groups = selectors.typeahead(users["carol"], "charge")
    assert PRIVATE not in [h.key for _, hits in groups for h in hits]
    client.force_login(users["carol"])
    html = client.get("/search/typeahead/", {"q": "chargeback pred"}).content.decode()
    assert "chargeback-predictor" not in html
    client.force_login(users["alice"])
    assert (
        "chargeback-predictor" in client.get("/search/typeahead/", {"q": "chargeback pred"}).content.decode()
    )


def test_spelling_corrections_do_not_leak_hidden_words(users):
    """A correction towards a hidden entity's word finds nothing that carol may not see."""
    results = selectors.search(users["carol"], "chargebak predictor")
    assert PRIVATE not in [h.key for h in results.hits]


def test_api_and_click_through_respect_permissions(users, client: Client):
    """The API never returns the private model to carol; the click-through 404s for it."""
    client.force_login(users["carol"])
    body = client.get("/api/v1/search", {"q": "chargeback"}).json()
    assert PRIVATE not in [i["key"] for i in body["items"]]
    assert client.get("/search/go/", {"key": PRIVATE}).status_code == 404


@pytest.mark.parametrize("username", ["carol", "heidi"])
def test_anonymous_and_users_see_only_internal_or_own(users, username, client: Client):
    """Signed-out API calls get 401; signed-in users only ever see internal entities or their teams'."""
    assert Client().get("/api/v1/search", {"q": "fraud"}).status_code in (401, 403)
    from portal.accounts import permissions

    client.force_login(users[username])
    body = client.get("/api/v1/search", {"q": "kind:model", "limit": 100}).json()
    mine = set(permissions.team_ids(users[username]))
    from catalog.models import Entity

    for item in body["items"]:
        e = Entity.objects.get(ref=item["key"])
        assert e.visibility == "internal" or e.owner_team_id in mine
