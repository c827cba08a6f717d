"""The team page's Owns card lists the first 50 entities its reader may see; past 50 it says how many
there are ("50 of 60 shown") and links to the catalog list of them all (the `owner` filter, every
kind). Another team's private entity is neither listed nor counted. At most one count query more."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests.factories import EntityFactory, MembershipFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db

OWNS_SHOWN = 50  # catalog.apps.OWNS_SHOWN

ROW = re.compile(r'<a href="/catalog/[^"]+/">(own-\d+)</a>')


def _own(team, count: int, start: int = 0, **fields) -> None:
    for i in range(start, start + count):
        EntityFactory(name=f"own-{i:03d}", owner_team=team, **fields)


def _card(client: Client, team) -> str:
    html = client.get(f"/teams/{team.name}/").content.decode()
    card = html[html.index("<h2>Owns</h2>"):]
    return card[:card.index("</section>")]


@pytest.fixture
def team():
    return TeamFactory(name="owners")


@pytest.fixture
def member(team) -> Client:
    client = Client()
    client.force_login(MembershipFactory(team=team).user)
    return client


@pytest.fixture
def outsider() -> Client:
    client = Client()
    client.force_login(MembershipFactory(team=TeamFactory(name="others")).user)
    return client


def test_past_50_the_card_says_how_many_and_links_to_them_all(team, member):
    _own(team, 55)
    _own(team, 5, start=55, kind="Template", spec_type="service")  # a kind the list leaves out by default
    card = _card(member, team)
    assert len(ROW.findall(card)) == OWNS_SHOWN == 50
    assert "50 of 60 shown" in card
    link = re.search(r'<a href="([^"]+)">All 60 in the catalog', card)
    assert link, card[-600:]
    url = link.group(1).replace("&amp;", "&")
    assert "owner=group%3Adefault%2Fowners" in url and "kind=all" in url
    listed = member.get(url).content.decode()
    assert re.search(r'data-testid="result-count">60 entities', listed), listed[:2000]


def test_up_to_50_there_is_no_count(team, member):
    _own(team, OWNS_SHOWN)
    card = _card(member, team)
    assert len(ROW.findall(card)) == 50
    assert " shown" not in card and "in the catalog" not in card


def test_another_teams_private_entities_are_not_counted(team, member, outsider):
    _own(team, 52)
    _own(team, 3, start=52, visibility="private")
    assert "50 of 55 shown" in _card(member, team)
    card = _card(outsider, team)
    assert "50 of 52 shown" in card and "55" not in card


def test_the_page_makes_one_count_query_more_past_50_whatever_the_number(team, member):
    def queries() -> list[str]:
        with CaptureQueriesContext(connection) as captured:
            assert member.get(f"/teams/{team.name}/").status_code == 200
        return [q["sql"] for q in captured.captured_queries]

    _own(team, OWNS_SHOWN)
    at_50 = queries()
    _own(team, 10, start=OWNS_SHOWN)
    at_60 = queries()
    _own(team, 140, start=OWNS_SHOWN + 10)
    at_200 = queries()
    assert len(at_60) == len(at_50) + 1 and len(at_200) == len(at_60)
    assert sum("COUNT(" in sql.upper() for sql in at_60) == sum("COUNT(" in sql.upper() for sql in at_50) + 1


def test_a_user_outside_every_team_sees_the_card_too(team):
    _own(team, 51)
    client = Client()
    client.force_login(UserFactory())
    assert "50 of 51 shown" in _card(client, team)
