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

Pages of one view are fetched a few times each (`PER_SHAPE`, `PER_VIEW`), not once per object, so the
crawl stays bounded as the demo grows; every link found is still *resolved*, and the first ones of each
view fetched.
"""

from __future__ import annotations

from collections import Counter, deque
from html.parser import HTMLParser
from urllib.parse import urldefrag, urljoin, urlsplit

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.db import connection
from django.shortcuts import resolve_url
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import Resolver404, resolve

pytestmark = pytest.mark.django_db

PER_SHAPE = 3  # pages fetched per view and query-string shape (the keys, not their values)…
PER_VIEW = 20  # …and per view, whatever the query (the catalog's filter combinations are many)
IDENTITY_KWARGS = ("kind", "tab")  # an entity page's tabs differ by kind: each (view, kind, tab) is a view
MAX_PAGES = 1500
# No page needs more statements than this on the demo (the most today: 22, an entity page). Pages listing
# 25 entities or more would pass it with one statement per row: a blanket guard against N+1 on pages no
# query-count test of their own covers. The KPI canvas runs one statement per KPI its canvas.yaml
# configures, each in a savepoint (80 for the demo's), bounded by that file, not by the data.
MAX_QUERIES = 30
QUERIES_BY_CONFIGURATION = (["insights", "canvas"], ["insights", "canvas-pdf"])
SKIP_PREFIXES = ("/admin/",)  # Django's own admin pages


class _Page(HTMLParser):
    """The addresses a page names, and the faults a keyboard or screen-reader user would meet on it:
    an id used twice, a label for no field, an image without alt text, a link or button without a name."""

    NAMED = ("a", "button")

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.ids: Counter[str] = Counter()
        self.label_for: set[str] = set()
        self.faults: list[str] = []
        self._open: list[list] = []  # [tag, attrs, name text] of the <a>/<button> being read

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids[a["id"]] += 1
        if tag in ("a", "link") and a.get("href"):
            self.links.append(a["href"])
        elif tag in ("script", "img") and a.get("src"):
            self.links.append(a["src"])
        elif tag == "form" and (a.get("method") or "get").lower() == "get" and a.get("action"):
            self.links.append(a["action"])
        for attribute in ("hx-get", "data-spec-url"):  # fetched by htmx, or by a page's script
            if a.get(attribute):
                self.links.append(a[attribute])
        if tag == "label" and a.get("for"):
            self.label_for.add(a["for"])
        if tag == "img" and a.get("alt") is None:
            self.faults.append(f"<img src={a.get('src')!r}> has no alt text")
        if tag in self.NAMED:
            named = a.get("aria-label") or a.get("aria-labelledby") or a.get("title")
            self._open.append([tag, a, "x" if named else ""])
        elif self._open and tag == "img" and a.get("alt"):
            self._open[-1][2] += a["alt"]

    def handle_data(self, data):
        if self._open:
            self._open[-1][2] += data.strip()

    def handle_endtag(self, tag):
        if tag in self.NAMED and self._open and self._open[-1][0] == tag:
            _tag, a, name = self._open.pop()
            if not name:
                self.faults.append(f"<{tag} {' '.join(f'{k}={v!r}' for k, v in a.items())}> has no accessible name")

    def close(self):
        super().close()
        self.faults += [f'id="{i}" is used {n} times' for i, n in self.ids.items() if n > 1]
        self.faults += [f'<label for="{i}"> names no element' for i in sorted(self.label_for - set(self.ids))]


def _route(path: str, query: str) -> tuple[str, str] | None:
    """(what the page is, the shape of its address): the view and its kind/tab, then the query's keys."""
    try:
        match = resolve(path)
    except Resolver404:
        return None
    view = ":".join([match.view_name, *(str(match.kwargs[k]) for k in IDENTITY_KWARGS if k in match.kwargs)])
    keys = ",".join(sorted({part.split("=", 1)[0] for part in query.split("&") if part}))
    return view, f"{view}?{keys}"


def crawl(client: Client, start: str = "/") -> dict:
    queue: deque[tuple[str, str]] = deque([(start, "(start)")])
    fetched: set[str] = set()
    per_route: Counter[str] = Counter()
    per_view: Counter[str] = Counter()
    problems: list[str] = []
    statics: set[str] = set()
    while queue and len(fetched) < MAX_PAGES:
        url, referrer = queue.popleft()
        if url in fetched:
            continue
        parts = urlsplit(url)
        route = _route(parts.path, parts.query)
        if route is None:
            problems.append(f"{url} (linked from {referrer}): no such route")
            continue
        view, shape = route
        if per_route[shape] >= PER_SHAPE or per_view[view] >= PER_VIEW:
            continue
        per_route[shape] += 1
        per_view[view] += 1
        fetched.add(url)
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url, HTTP_ACCEPT="text/html")
        if len(queries) > MAX_QUERIES and view.split(":")[:2] not in QUERIES_BY_CONFIGURATION:
            problems.append(f"{url}: {len(queries)} queries (a page's count must not grow with the data)")
        status = response.status_code
        if status >= 500 or status in (403, 404, 405):
            problems.append(f"{url} (linked from {referrer}): {status}")
            continue
        if status in (301, 302, 303, 307, 308):
            target = urljoin(url, response["Location"])
            if urlsplit(target).netloc in ("", "testserver"):
                queue.append((urlsplit(target)._replace(scheme="", netloc="").geturl(), url))
            continue
        if "text/html" not in response.get("Content-Type", ""):
            continue
        parser = _Page()
        parser.feed(response.content.decode("utf-8", "replace"))
        parser.close()
        problems += [f"{url}: {fault}" for fault in parser.faults]
        for raw in parser.links:
            link, _fragment = urldefrag(urljoin(url, raw))
            split = urlsplit(link)
            if split.scheme not in ("", "http", "https") or split.netloc not in ("", "testserver"):
                continue
            local = split._replace(scheme="", netloc="").geturl()
            if not split.path or split.path.startswith(SKIP_PREFIXES):
                continue
            if split.path.startswith(settings.STATIC_URL):
                statics.add(split.path)
                continue
            if local not in fetched:
                queue.append((local, url))
    for path in sorted(statics):
        if not finders.find(path.removeprefix(settings.STATIC_URL)):
            problems.append(f"{path}: no such static file")
    return {"fetched": fetched, "routes": per_route, "problems": problems}


# A maintainer, another team's maintainer, a read-only viewer, a reviewer, the platform admin; and nobody.
PERSONAS = ["alice", "carol", "heidi", "erin", "grace", None]


@pytest.fixture
def demo_history(demo_org, tmp_path):
    from catalog.models import Entity
    from portal.costs import demo as costs_demo
    from portal.incidents import demo as incidents_demo
    from portal.insights import demo as insights_demo
    from portal.scorecards import services as scorecard_services
    from portal.techdocs import services as techdocs_services

    for entity in Entity.objects.all():  # what the Celery worker builds after `make run`'s registration
        techdocs_services.entity_docs_build(entity=entity)
    insights_demo.load()
    incidents_demo.load()
    costs_demo.load(folder=tmp_path)
    scorecard_services.evaluate_entities()
    scorecard_services.rollup_today()
    return demo_org


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
    bad = _Page()
    bad.feed('<a href="/x/"></a><a href="/y/"><img src="/static/i.png"></a><button><svg></svg></button>'
             '<p id="a"></p><p id="a"></p><label for="nowhere">Name</label><input id="q">')
    bad.close()
    assert sorted(bad.faults) == sorted([
        "<a href='/x/'> has no accessible name", "<a href='/y/'> has no accessible name",
        "<img src='/static/i.png'> has no alt text", "<button > has no accessible name",
        'id="a" is used 2 times', '<label for="nowhere"> names no element'])
    assert bad.links == ["/x/", "/y/", "/static/i.png"]
    good = _Page()
    good.feed('<a href="/x/">Catalog</a><a href="/y/"><img src="/i.png" alt="Home"></a>'
              '<button aria-label="Close">×</button><label for="q">Find</label><input id="q">')
    good.close()
    assert good.faults == []
