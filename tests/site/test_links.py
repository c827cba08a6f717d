"""Every link the portal renders works, for every persona of the demo organisation.

A crawl from the home page over the demo organisation (`make run`'s data: teams, catalog, usage history,
incidents, costs, scorecards), signed in as each demo user in turn. Every internal link, form action
(GET forms), script, stylesheet and image the pages name is followed or checked:

* no page answers 5xx;
* no link the portal rendered for a user answers 404 or 403 to that user: a page must not offer what the
  reader cannot open (a broken link, or a private object's name leaking into a link);
* every static file a page names exists (served by WhiteNoise/the finders in production);
* no page runs more than `MAX_QUERIES` statements;
* no page has an id twice, a label for nothing, an image without alt text or a link or button without
  an accessible name.

Every page without a query string is fetched: each object's page and each of its tabs. Addresses that
differ only by their query (filters, sorting, a list's pages) are fetched a few times per view
(`PER_SHAPE`, `PER_VIEW`): the catalog's filter combinations alone are unbounded; every such link is
still *resolved* to a route.
"""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import connection
from django.shortcuts import resolve_url
from django.test import Client

from .crawl import Page, crawl

# A maintainer, another team's maintainer, a read-only viewer, a reviewer, the platform admin; and nobody.
pytestmark = pytest.mark.django_db

PERSONAS = ["alice", "carol", "heidi", "erin", "grace", None]


def _crawl_as(users: dict, username: str | None) -> None:
    client = Client()
    if username is None:
        result = crawl(client)  # signed out: the sign-in page and what it links to
        assert any(url.startswith(resolve_url(settings.LOGIN_URL)) for url in result["fetched"]), result["fetched"]
    else:
        client.force_login(users[username])
        result = crawl(client)
        # Every entity kind's page and the main sections were reached (the crawl found the portal).
        views = {shape.split("?")[0] for shape in result["routes"]}
        assert {"catalog:entity-detail:model", "catalog:entity-tab:model:lineage", "catalog:entity-tab:dataset:impact",
                "insights:usage", "techdocs:page:component", "search:page"} <= views, sorted(views)
    assert not result["problems"], "\n".join(result["problems"])


@pytest.mark.parametrize("username", PERSONAS)
def test_every_link_a_persona_is_shown_opens(demo_history, username):
    _crawl_as(demo_history["users"], username)


@pytest.mark.prod_smoke
@pytest.mark.parametrize("username", ["alice", "grace"])
def test_every_link_opens_on_postgresql(demo_history, username):
    """The same crawl on the production profile's database: its raw SQL (lineage, search, insights)
    differs by engine."""
    if connection.vendor != "postgresql":
        pytest.skip("the production profile's run (DATABASE_URL on PostgreSQL)")
    _crawl_as(demo_history["users"], username)


def test_the_demo_usage_history_names_docs_pages_the_demo_has(demo_history):
    """The demo's top docs pages are links: each page its history says was read is one the demo builds."""
    from catalog.models import Entity
    from portal.insights import demo as insights_demo
    from portal.techdocs import selectors as techdocs_selectors

    ids = dict(Entity.objects.values_list("ref", "pk"))
    named = set()
    for subject in insights_demo.DOCS:
        kind_ns, name_page = subject.split("/", 1)
        name, _, page = name_page.partition("/")
        named.add((ids[f"{kind_ns}/{name}"], page))
    assert techdocs_selectors.existing_pages(named) == named


def test_the_page_checker_finds_each_fault():
    """The crawl's checks can fail: each fault on a made-up page is reported, and a clean page has none."""
    bad = Page()
    bad.feed('<a href="/x/"></a><a href="/y/"><img src="/static/i.png"></a><button><svg></svg></button>'
             '<p id="a"></p><p id="a"></p><label for="nowhere">Name</label><input id="q">')
    bad.close()
    assert sorted(bad.faults) == sorted([
        "<a href='/x/'> has no accessible name", "<a href='/y/'> has no accessible name",
        "<img src='/static/i.png'> has no alt text", "<button > has no accessible name",
        'id="a" is used 2 times', '<label for="nowhere"> names no element'])
    assert bad.links == ["/x/", "/y/", "/static/i.png"]
    good = Page()
    good.feed('<a href="/x/">Catalog</a><a href="/y/"><img src="/i.png" alt="Home"></a>'
              '<button aria-label="Close">×</button><label for="q">Find</label><input id="q">')
    good.close()
    assert good.faults == []
