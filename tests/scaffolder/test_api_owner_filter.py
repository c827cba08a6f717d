"""`GET /api/v1/scaffolder/templates?owner=` filters like the Create page's Owner filter (same parser,
exact ref), refuses a malformed ref with a 400 naming `owner`, and never shows or hints at another
team's private template: its team's ref answers exactly like an unknown one."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.factories import EntityFactory, TeamFactory, UserFactory
from tests.scaffolder.test_owner_filter import EXACT_CASES

pytestmark = pytest.mark.django_db

URL = "/api/v1/scaffolder/templates"


@pytest.fixture
def reader(db):
    team, other, secret = TeamFactory(name="team"), TeamFactory(name="otherteam"), TeamFactory(name="secret")
    EntityFactory(kind="Template", name="tpl-team", owner_team=team, spec_type="service")
    EntityFactory(kind="Template", name="tpl-other", owner_team=other, spec_type="service")
    EntityFactory(kind="Template", name="tpl-ops", owner_team=None, owner_ref="group:ops/team", spec_type="service")
    EntityFactory(kind="Template", name="tpl-secret", owner_team=secret, spec_type="service", visibility="private")
    client = Client()
    client.force_login(UserFactory(username="reader"))
    return client


def names(response) -> set[str]:
    assert response.status_code == 200, response.content
    return {item["name"] for item in response.json()["items"]}


@pytest.mark.parametrize(("owner", "shown"), EXACT_CASES)
def test_owner_filter_is_exact_and_matches_the_create_page(reader, owner, shown):
    assert names(reader.get(URL, {"owner": owner})) == shown
    page = reader.get("/create/", {"owner": owner}).content.decode()
    results = page[page.index('id="template-results"'):]
    assert {n for n in ("tpl-team", "tpl-other", "tpl-ops") if f"/create/templates/default/{n}/" in results} == shown


@pytest.mark.parametrize("owner", ["", "a:b:c", "group:default/", "bad name!"])
def test_a_malformed_owner_is_a_400_naming_owner(reader, owner):
    response = reader.get(URL, {"owner": owner})
    assert response.status_code == 400, response.content
    assert set(response.json()["error"]["details"]) == {"owner"}


def test_a_private_teams_ref_answers_like_an_unknown_one(reader):
    assert "tpl-secret" not in names(reader.get(URL))
    secret, unknown = reader.get(URL, {"owner": "secret"}), reader.get(URL, {"owner": "nosuchteam"})
    assert secret.status_code == unknown.status_code == 200
    assert secret.json() == unknown.json() == {"items": [], "pageInfo": {"nextCursor": None}}
