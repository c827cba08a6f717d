"""The docs index pages through every visible site and says how many APIs it does not list; a page's URL
without its trailing slash redirects to the page, and only to a page the reader may see."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog.models import Entity
from portal.accounts.models import Team
from portal.techdocs import views
from portal.techdocs.models import DocSite
from tests.factories import EntityFactory
from tests.techdocs.test_pages import DOCS, _main


def _add_sites(count: int, *, prefix: str, team: Team, visibility: str = "internal") -> None:
    """`count` entities with a built-looking docs site each, written in bulk (no Markdown build needed)."""
    entities = Entity.objects.bulk_create(
        EntityFactory.build(name=f"{prefix}-{i:04d}", owner_team=team, visibility=visibility) for i in range(count))
    DocSite.objects.bulk_create(DocSite(entity=e, status="ok", page_count=1) for e in entities)


def _add_apis(count: int, *, prefix: str, team: Team, visibility: str = "internal") -> None:
    Entity.objects.bulk_create(EntityFactory.build(kind="API", spec_type="openapi", name=f"{prefix}-{i:04d}",
                                                   owner_team=team, visibility=visibility) for i in range(count))


def _site_links(html: str) -> set[str]:
    table = html[html.index('data-testid="docs-sites"'):html.index("</table>")]
    return set(re.findall(r'href="/docs/component/default/([^/"]+)/"', table))


# -- a docs page's URL without its trailing slash ---------------------------------------------------

def test_a_page_url_without_its_slash_redirects_to_the_page_keeping_the_query(client, alice, make_docs):
    make_docs(DOCS)
    response = client.get("/docs/component/default/svc/guide")
    assert response.status_code == 301 and response["Location"] == "/docs/component/default/svc/guide/"
    assert "private" in response["Cache-Control"]
    response = client.get("/docs/component/default/svc/guide?q=step%20one&x=1")
    assert response.status_code == 301
    assert response["Location"] == "/docs/component/default/svc/guide/?q=step%20one&x=1"
    assert client.get(response["Location"]).status_code == 200


def test_a_nested_page_url_without_its_slash_redirects_too(client, alice, make_docs):
    make_docs({"docs/index.md": "# Home\n", "docs/how-to/deploy it.md": "# Deploy\n"}, name="nested")
    response = client.get("/docs/component/default/nested/how-to/deploy%20it")
    assert response.status_code == 301
    assert response["Location"] == "/docs/component/default/nested/how-to/deploy%20it/"
    assert client.get(response["Location"]).status_code == 200


def test_the_site_home_without_its_slash_redirects_for_everyone_alike(client, demo_org, make_docs):
    """Django's APPEND_SLASH answers `/docs/<kind>/<ns>/<name>` before any lookup, so it says nothing about
    whether the entity exists."""
    make_docs(DOCS, name="secret-svc", private=True)
    client.force_login(demo_org["users"]["carol"])
    hidden, missing = client.get("/docs/component/default/secret-svc"), client.get("/docs/component/default/no-svc")
    assert hidden.status_code == missing.status_code == 301
    assert client.get(hidden["Location"]).status_code == 404


def test_a_missing_or_hidden_page_without_its_slash_is_the_same_404(client, demo_org, make_docs):
    make_docs(DOCS, name="secret-svc", private=True)
    client.force_login(demo_org["users"]["carol"])  # recsys: may not see fraud-ml's private entity
    hidden = client.get("/docs/component/default/secret-svc/guide")
    missing = client.get("/docs/component/default/no-such-svc/guide")
    assert hidden.status_code == missing.status_code == 404
    assert _main(hidden, "secret-svc") == _main(missing, "no-such-svc")
    client.force_login(demo_org["users"]["bob"])  # fraud-ml: sees it; a page it lacks is a 404 still
    assert client.get("/docs/component/default/secret-svc/guide").status_code == 301
    assert client.get("/docs/component/default/secret-svc/no-such-page").status_code == 404
    assert client.get("/docs/component/default/secret-svc/_rebuild").status_code == 404  # not a page


# -- the index ----------------------------------------------------------------------------------------

@pytest.fixture
def fraud_ml(demo_org):
    return Team.objects.get(name="fraud-ml")


def test_the_index_pages_through_every_site_the_reader_may_see(client, demo_org, fraud_ml, monkeypatch):
    monkeypatch.setattr(views, "SITES_PAGE", 20, raising=False)
    _add_sites(45, prefix="shown", team=fraud_ml)
    _add_sites(5, prefix="secret", team=fraud_ml, visibility="private")
    client.force_login(demo_org["users"]["carol"])  # recsys: the private five are not hers
    total = DocSite.objects.filter(entity__visibility="internal").count()
    seen: set[str] = set()
    pages = -(-total // 20)
    for number in range(1, pages + 1):
        html = client.get("/docs/", {"page": number}).content.decode()
        assert f"of {total} docs." in html and f"Page {number} of {pages}" in html
        seen |= _site_links(html)
        assert "secret-" not in html
    assert {f"shown-{i:04d}" for i in range(45)} <= seen
    assert client.get("/docs/", {"page": "x"}).status_code == 200  # bad or too large: a page still
    assert client.get("/docs/", {"page": "999"}).status_code == 200


def test_the_index_says_how_many_apis_it_does_not_list_and_links_to_them(client, demo_org, fraud_ml,
                                                                          monkeypatch):
    monkeypatch.setattr(views, "APIS_SHOWN", 10, raising=False)
    client.force_login(demo_org["users"]["carol"])
    assert 'data-testid="docs-apis-count"' not in client.get("/docs/").content.decode()
    _add_apis(12, prefix="api", team=fraud_ml)
    _add_apis(4, prefix="hidden-api", team=fraud_ml, visibility="private")
    visible = Entity.objects.filter(kind_key="api", visibility="internal").count()
    html = client.get("/docs/").content.decode()
    assert f"Showing 10 of {visible} APIs." in html and 'href="/catalog/?kind=api"' in html
    assert "hidden-api" not in html
    catalog = client.get("/catalog/", {"kind": "api"}).content.decode()
    assert "api-0011" in catalog and "hidden-api" not in catalog


def test_the_index_is_a_constant_number_of_queries(client, alice, fraud_ml, monkeypatch):
    """Each site row, its entity and each API come with the page's reads, however many there are."""
    monkeypatch.setattr(views, "APIS_SHOWN", Entity.objects.filter(kind_key="api").count() + 5, raising=False)
    monkeypatch.setattr(views, "SITES_PAGE", 50, raising=False)
    _add_sites(1, prefix="one", team=fraud_ml)
    client.get("/docs/")
    with CaptureQueriesContext(connection) as few:
        client.get("/docs/")
    _add_sites(250, prefix="many", team=fraud_ml)
    _add_apis(30, prefix="api", team=fraud_ml)
    client.get("/docs/")
    with CaptureQueriesContext(connection) as many:
        html = client.get("/docs/", {"page": 2}).content.decode()
    assert len(_site_links(html)) == 50
    # one more with a full API list: counting the APIs it does not show (the sites are counted either way)
    assert len(many.captured_queries) == len(few.captured_queries) + 1, [q["sql"] for q in many.captured_queries]
    with CaptureQueriesContext(connection) as again:
        client.get("/docs/", {"page": 3})
    assert len(again.captured_queries) == len(many.captured_queries)
