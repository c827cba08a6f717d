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


@pytest.fixture
def look_alikes(users):
    """fraud-ml's private model `quuxalpha-secret` and recsys's internal `quuxalphz`: one letter apart."""
    from portal.accounts.models import Team
    from portal.search import index
    from tests.factories import EntityFactory

    teams = {t.name: t for t in Team.objects.filter(name__in=["fraud-ml", "recsys"])}
    EntityFactory(kind="Model", name="quuxalpha-secret", visibility="private", owner_team=teams["fraud-ml"])
    EntityFactory(kind="Model", name="quuxalphz", visibility="internal", owner_team=teams["recsys"])
    index.rebuild()
    selectors.clear_cache()
    return users


def test_spelling_corrections_never_name_a_hidden_word(look_alikes, client: Client):
    """`quuxalphc` is one edit from both names; carol is offered the word she may see, on the page, in
    the typeahead and in the API, and nothing of the private model's. alice, who sees both, gets the
    first in the alphabet."""
    carol = look_alikes["carol"]
    results = selectors.search(carol, "quuxalphc")
    assert results.corrected == "quuxalphz"
    assert [h.key for h in results.hits] == ["model:default/quuxalphz"]
    client.force_login(carol)
    body = client.get("/api/v1/search", {"q": "quuxalphc"}).json()
    assert body["query"]["correctedQuery"] == "quuxalphz"
    for path in ("/search/", "/search/typeahead/"):
        html = client.get(path, {"q": "quuxalphc"}).content.decode().lower()
        assert "quuxalphz" in html and "quuxalpha" not in html, path
    assert selectors.search(look_alikes["alice"], "quuxalphc").corrected == "quuxalpha"


def test_a_hidden_word_cannot_be_probed_through_corrections(look_alikes):
    """Typed exactly, the private word is corrected like any word carol's documents do not know: as
    if the private model did not exist (before, a word anywhere in the index was never corrected,
    which told her it existed)."""
    carol = look_alikes["carol"]
    for text in ("quuxalpha", "quuxalpha-secret"):
        results = selectors.search(carol, text)
        assert "model:default/quuxalpha-secret" not in [h.key for h in results.hits]
    assert selectors.search(carol, "quuxalpha").corrected == "quuxalphz"
    # What the private word finds for alice, it finds as typed: no correction.
    assert selectors.search(look_alikes["alice"], "quuxalpha").corrected == ""
