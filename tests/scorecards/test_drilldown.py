"""The drill-down from a scorecard page's counts to the entities behind them (/scorecards/<name>/entities/):
every count links to a list of exactly the entities it counts, for each reader (another team's private
entity is neither counted nor listed), a page at a time in a constant number of queries, each row with
the first check that keeps it from the next level; bad filters answer 400 or 404 naming the filter."""

from __future__ import annotations

import html
import re
from collections import Counter
from urllib.parse import unquote, urlencode

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from catalog import selectors as catalog_selectors
from catalog.models import Entity
from portal.accounts import permissions
from portal.accounts.models import Team
from portal.scorecards import definitions, selectors, services, views
from portal.scorecards.models import DailyRollup, Result

from .conftest import write

pytestmark = pytest.mark.django_db
PRIVATE = "model:default/chargeback-predictor"  # fraud-ml's private model, in the payments domain
PAYMENTS = "domain:default/payments"
LINK = re.compile(r'<a href="([^"]+)" data-testid="rollup-count" aria-label="([^"]*)">(\d+)</a>')
COUNT = re.compile(r'data-testid="drill-count">([\d,]+) entit')
REF = re.compile(r'<code class="muted">([^<]+)</code>')


@pytest.fixture
def evaluated(demo_org):
    services.evaluate_entities()
    return demo_org


def client_for(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


def count_links(page: str) -> list[tuple[str, str, int]]:
    """(href, accessible name, count) of every linked count on a scorecard page."""
    return [(html.unescape(href), html.unescape(label), int(n)) for href, label, n in LINK.findall(page)]


def listed(client: Client, url: str) -> tuple[int, list[str]]:
    """The count a drill-down page states and the entity refs it lists."""
    response = client.get(url)
    assert response.status_code == 200, url
    page = response.content.decode()
    return int(COUNT.search(page).group(1).replace(",", "")), REF.findall(page)


def by_hand(user, card: str) -> list[tuple[str, str, str, str]]:
    """(ref, level, team name, domain) of every result the user may see, one result at a time."""
    out = []
    for result in permissions.filter_visible(Result.objects.filter(scorecard=card), user).select_related(
            "entity", "owner_team"):
        entity = result.entity
        if entity.kind_key == "domain":
            domain = entity.ref
        elif entity.kind_key == "system":
            domain = catalog_selectors.domain_ref(entity.spec.get("domain"))
        else:
            system = Entity.objects.filter(ref=entity.system_ref).first() if entity.system_ref else None
            domain = catalog_selectors.domain_ref(system.spec.get("domain")) if system else ""
        out.append((entity.ref, result.level, result.owner_team.name if result.owner_team else "", domain))
    return out


def expected_refs(rows, *, level: str, team: str | None = None, domain: str | None = None) -> list[str]:
    return sorted(ref for ref, lvl, t, d in rows
                  if lvl == level and (team is None or t == team) and (domain is None or d == domain))


EVERY_KIND = """
name: every-kind
title: Every kind
filter:
  kinds: [system, domain, component, api, model, dataset]
levels: [Bronze, Silver]
checks:
  - id: owner
    level: Bronze
    rule: owner_team.rego
    reads: [owner.team]
    message: no owner team
  - id: described
    level: Silver
    rule: description.rego
    reads: [descriptor.description]
    message: no description
"""


@pytest.mark.parametrize("username", ["alice", "carol", "grace"])
@pytest.mark.parametrize("card", ["production-readiness", "service-basics"])
def test_every_count_links_to_exactly_the_entities_it_counts(evaluated, username, card):
    check_every_link(evaluated["users"][username], card)


@pytest.mark.parametrize("username", ["carol", "grace"])
def test_systems_and_domains_are_listed_in_their_own_domain(demo_org, card_dir, username):
    """Systems count in their own `spec.domain`, domains in themselves, a system naming none in no domain."""
    write(card_dir, "every-kind.yaml", EVERY_KIND)
    services.evaluate_entities()
    kinds = set(Result.objects.filter(scorecard="every-kind").values_list("entity__kind_key", flat=True))
    assert {"system", "domain", "component", "model"} <= kinds
    check_every_link(demo_org["users"][username], "every-kind")
    rows = by_hand(demo_org["users"][username], "every-kind")
    assert ("system:default/fraud-detection", PAYMENTS) in {(ref, d) for ref, _, _, d in rows}
    assert ("system:default/ml-platform", "") in {(ref, d) for ref, _, _, d in rows}
    assert (PAYMENTS, PAYMENTS) in {(ref, d) for ref, _, _, d in rows}


def check_every_link(user, card: str) -> None:
    client = client_for(user)
    page = client.get(f"/scorecards/{card}/").content.decode()
    links = count_links(page)
    scorecard = definitions.get(card)
    nonzero = sum(1 for rows in (selectors.team_rollup(user, scorecard), selectors.domain_rollup(user, scorecard))
                  for r in rows for _, n in r["per_level"] if n)
    assert len(links) == nonzero > 0  # every count but the zeros is a link
    rows = by_hand(user, card)
    for href, label, n in links:
        stated, refs = listed(client, href)
        assert stated == n == len(refs), (href, label)
        query = dict(re.findall(r"[?&](\w+)=([^&]*)", href))
        level = unquote(query["level"])
        team = unquote(query["team"]) if "team" in query else None
        domain = unquote(query["domain"]) if "domain" in query else None
        assert sorted(refs) == expected_refs(rows, level=level, team=team, domain=domain), (href, label)
        assert label.startswith(f"{n} ")  # the link's name starts with what it shows
    assert sum(n for href, _, n in links if "team=" in href) == len(rows)


def test_another_teams_private_entity_is_neither_counted_nor_listed(evaluated):
    result = Result.objects.get(entity__ref=PRIVATE, scorecard="production-readiness")
    alice, carol = (client_for(evaluated["users"][u]) for u in ("alice", "carol"))
    for by, value in (("team", "fraud-ml"), ("domain", PAYMENTS)):
        url = f"/scorecards/production-readiness/entities/?{urlencode({'level': result.level, by: value})}"
        shown = {h: n for h, _, n in count_links(alice.get("/scorecards/production-readiness/").content.decode())}
        seen = {h: n for h, _, n in count_links(carol.get("/scorecards/production-readiness/").content.decode())}
        count, refs = listed(alice, url)
        assert PRIVATE in refs and shown[url] == count
        count_carol, refs_carol = listed(carol, url)
        assert PRIVATE not in refs_carol and count_carol == count - 1 == len(refs_carol)
        assert seen.get(url, 0) == count_carol  # carol's page shows what her list holds (no link for a 0)
    assert "chargeback" not in carol.get("/scorecards/production-readiness/entities/").content.decode()


def test_the_list_makes_the_same_queries_for_one_row_as_for_a_page(evaluated, monkeypatch,
                                                                    django_assert_num_queries):
    client = client_for(evaluated["users"]["alice"])
    url = f"/scorecards/production-readiness/entities/?team=fraud-ml&domain={PAYMENTS}"  # every filter's query
    client.get(url)
    monkeypatch.setattr(views, "PAGE", 1)
    with CaptureQueriesContext(connection) as one:
        assert len(listed(client, url)[1]) == 1
    monkeypatch.setattr(views, "PAGE", 50)
    with django_assert_num_queries(len(one)):
        count, refs = listed(client, url)
    assert count == len(refs) >= 2
    assert len(one) <= 9, [q["sql"][:100] for q in one.captured_queries]


def test_pages_walk_every_entity_once_in_name_order(evaluated, monkeypatch):
    monkeypatch.setattr(views, "PAGE", 2)
    client = client_for(evaluated["users"]["carol"])
    url, seen = "/scorecards/service-basics/entities/", []
    while url:
        page = client.get(url).content.decode()
        seen += REF.findall(page)
        following = re.search(r'rel="next" href="([^"]+)"', page)
        url = "/scorecards/service-basics/entities/" + html.unescape(following.group(1)) if following else None
    rows = by_hand(evaluated["users"]["carol"], "service-basics")
    assert sorted(seen) == sorted(ref for ref, *_ in rows) and len(seen) == len(set(seen)) > 2
    names = list(Entity.objects.filter(ref__in=seen).values_list("ref", "name_key"))
    order = {ref: name for ref, name in names}
    assert [order[ref] for ref in seen] == sorted(order[ref] for ref in seen)


def test_each_row_names_the_first_check_that_keeps_it_from_the_next_level(evaluated):
    card = definitions.get("production-readiness")
    result = Result.objects.get(entity__ref="model:default/fraud-detector", scorecard=card.name)
    step = selectors.next_step(card, result)
    assert step["level"] == card.levels[result.rank]
    first = next(c for c in card.checks if c.level == step["level"] and not result.checks[c.id][0])
    assert step["check"] == first
    page = client_for(evaluated["users"]["alice"]).get(
        f"/scorecards/production-readiness/entities/?level={result.level}&team=fraud-ml").content.decode()
    row = page[page.index("model:default/fraud-detector"):]
    row = row[:row.index("</tr>")]
    assert f'{step["level"]}: <a href="/catalog/model/default/fraud-detector/scorecards/">{html.escape(first.title)}</a>' in row


def test_next_step_is_none_at_the_top_and_reads_no_database(evaluated, django_assert_num_queries):
    card = definitions.get("production-readiness")
    top = Result(scorecard=card.name, level=card.levels[-1], rank=len(card.levels), checks={})
    bottom = Result(scorecard=card.name, level="", rank=0, checks={"owner": [True, ""], "description": [False, ""]})
    with django_assert_num_queries(0):
        assert selectors.next_step(card, top) is None
        step = selectors.next_step(card, bottom)
    assert (step["level"], step["check"].id) == (card.levels[0], "description")


@pytest.mark.parametrize(("query", "status", "says"), [
    ("?level=Platinum", 400, "Level: &#x27;Platinum&#x27; is not a level of Production readiness (Bronze, Silver, Gold)"),
    ("?level=Bronze&level=Gold", 400, "Level: Give one level (got 2)."),
    ("?team=no-such-team", 404, "No team &#x27;no-such-team&#x27;."),
    ("?team=%3Cscript%3E", 404, "No team &#x27;&lt;script&gt;&#x27;."),
    ("?domain=component:default/x", 400, "Domain: &#x27;component:default/x&#x27; is not a domain reference"),
    ("?domain=a:b:c/d/e", 400, "is not a domain reference"),
    ("?level=" + "x" * 5000, 400, "is not a level of"),
])
def test_bad_filters_answer_400_or_404_naming_the_filter(evaluated, query, status, says):
    response = client_for(evaluated["users"]["carol"]).get(f"/scorecards/production-readiness/entities/{query}")
    assert response.status_code == status
    assert says in response.content.decode()


@pytest.mark.parametrize(("query", "level"), [("?level=bronze", "Bronze"), ("?level=none", ""), ("?level=", ""),
                                               ("?page=garbage", None), ("?page=999", None), ("?domain=payments", None)])
def test_forgiving_spellings_are_read_as_meant(evaluated, query, level):
    client = client_for(evaluated["users"]["grace"])
    count, refs = listed(client, f"/scorecards/production-readiness/entities/{query}")
    rows = by_hand(evaluated["users"]["grace"], "production-readiness")
    if "domain" in query:
        assert sorted(refs) == sorted(r for r, _, _, d in rows if d == PAYMENTS)
    else:
        want = Counter(lvl for _, lvl, *_ in rows)
        assert count == (want[level] if level is not None else len(rows))


def test_unknown_scorecard_is_404_and_signed_out_readers_sign_in(evaluated):
    assert client_for(evaluated["users"]["carol"]).get("/scorecards/nope/entities/").status_code == 404
    response = Client().get("/scorecards/production-readiness/entities/?level=Bronze")
    assert response.status_code == 302 and "/accounts/sign-in/" in response["Location"]


def test_a_broken_scorecards_list_says_why_it_is_empty(evaluated, card_dir):
    write(card_dir, "service-basics.yaml", "name: service-basics\nchecks: [{id: x, rule: nope.rego, reads: [salary]}]\n")
    services.evaluate_entities()  # a broken definition keeps no results
    response = client_for(evaluated["users"]["alice"]).get("/scorecards/service-basics/entities/?level=")
    assert response.status_code == 200
    page = response.content.decode()
    assert "This scorecard cannot be used" in page and COUNT.search(page).group(1) == "0"


INDEX_LINK = re.compile(r'<a (?:class="[^"]*" )?href="([^"]+)" data-testid="index-count" aria-label="([^"]*)">[^<]*?(\d+)</a>')


@pytest.mark.parametrize("username", ["alice", "carol"])
def test_the_index_links_each_non_zero_level_count_to_its_entities(evaluated, username):
    """The index's per-level counts ("No level 4", "Bronze 6") link to the drill-down by level, as the
    scorecard page's; a zero stays text."""
    user = evaluated["users"][username]
    client = client_for(user)
    page = client.get("/scorecards/").content.decode()
    links = [(html.unescape(h), html.unescape(label), int(n)) for h, label, n in INDEX_LINK.findall(page)]
    nonzero = sum(1 for card in definitions.load_all() if not card.error
                  for n in selectors.level_counts(user, card)[0].values() if n)
    assert len(links) == nonzero > 0
    for href, label, n in links:
        assert re.fullmatch(r"/scorecards/[\w-]+/entities/\?level=\w*", href), href
        assert label.startswith(f"{n} ") and label.endswith(": list them")
        stated, refs = listed(client, href)
        assert stated == n == len(refs), href


def test_kinds_read_as_words_on_the_index_and_the_scorecard(evaluated):
    alice = client_for(evaluated["users"]["alice"])
    index = alice.get("/scorecards/").content.decode()
    assert "<td>Models</td>" in index and "<td>Components, APIs</td>" in index
    detail = alice.get("/scorecards/service-basics/").content.decode()
    assert "Applies to: Components, APIs; levels Bronze → Silver → Gold." in detail
    assert "kinds component" not in detail


def test_the_team_rollup_names_teams_by_title_linking_to_their_page(evaluated, django_assert_num_queries):
    """"Fraud ML", kept whole, linking to /teams/fraud-ml/; the titles come with the counts (no query per team)."""
    page = client_for(evaluated["users"]["alice"]).get("/scorecards/service-basics/").content.decode()
    assert '<th scope="row"><a class="nowrap" href="/teams/fraud-ml/">Fraud ML</a></th>' in page
    assert any(label.endswith("team Fraud ML: list them") for _, label, _ in count_links(page))
    alice, card = evaluated["users"]["alice"], definitions.get("service-basics")
    selectors.team_rollup(alice, card)  # the reader's teams, read once
    with CaptureQueriesContext(connection) as before:
        selectors.team_rollup(alice, card)
    current = DailyRollup.objects.filter(scorecard=card.name).latest("day")
    for i in range(3):  # more teams in the counts: no more queries
        team = Team.objects.create(name=f"extra-{i}", title=f"Extra team {i}")
        DailyRollup.objects.create(day=current.day, scorecard=card.name, owner_team=team, level="", count=1)
    with django_assert_num_queries(len(before)):
        rows = selectors.team_rollup(alice, card)
    titles = {r["team"]: r["title"] for r in rows}
    assert titles["fraud-ml"] == "Fraud ML" and titles["extra-2"] == "Extra team 2"


def test_an_unknown_team_answers_404_in_the_page_with_its_way_back(evaluated):
    response = client_for(evaluated["users"]["bob"]).get("/scorecards/production-readiness/entities/?team=nope")
    assert response.status_code == 404
    page = response.content.decode()
    assert 'data-testid="drill-problems"' in page and "Team: No team &#x27;nope&#x27;." in page
    assert '<p class="crumbs"><a href="/scorecards/">Scorecards</a> / <a href="/scorecards/production-readiness/">' in page
    assert "← Back to Production readiness" in page


def test_an_empty_list_says_so_neutrally_and_names_a_changed_count_only(evaluated):
    """A combination the scorecard page counts 0 is plainly empty; one it counted but that has since emptied
    says what it counted."""
    alice = client_for(evaluated["users"]["alice"])
    url = "/scorecards/service-basics/entities/?level=Gold&team=fraud-ml"
    page = alice.get(url).content.decode()
    assert "No entity of Fraud ML is at Gold on this scorecard now." in page
    assert "counted" not in page.split('data-testid="drill-empty"')[1].split("</p>")[0]
    links = {h: n for h, _, n in count_links(alice.get("/scorecards/service-basics/").content.decode())}
    url = "/scorecards/service-basics/entities/?level=Bronze&team=fraud-ml"
    n = links[url]
    assert n > 0
    Result.objects.filter(scorecard="service-basics", level="Bronze", owner_team__name="fraud-ml").update(level="Silver")
    empty = alice.get(url).content.decode().split('data-testid="drill-empty">')[1].split("</p>")[0]
    assert empty.startswith(f"No entity of Fraud ML is at Bronze on this scorecard now. The scorecard page counted {n} here ")
    assert "changed since" in empty
    page = alice.get("/scorecards/service-basics/entities/?level=&team=").content.decode()
    assert "No entity owned by no team is without a level on this scorecard now." in page
