"""The template owner filter (the Create page's `owner` and its Owner facet) matches the owner ref
exactly: `team` is group:default/team, never group:default/otherteam (it matched by suffix). Full refs,
`<namespace>/<name>` and bare names are read as the catalog's owner filter reads them."""

from __future__ import annotations

import pytest
from django.test import Client

from portal.scaffolder import selectors
from tests.factories import EntityFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def templates(db):
    team, other = TeamFactory(name="team"), TeamFactory(name="otherteam")
    made = {
        "team": EntityFactory(kind="Template", name="tpl-team", title="Team template", owner_team=team,
                              spec_type="service"),
        "otherteam": EntityFactory(kind="Template", name="tpl-other", title="Otherteam template", owner_team=other,
                                   spec_type="service"),
        "ops": EntityFactory(kind="Template", name="tpl-ops", title="Ops namespace template", owner_team=None,
                             owner_ref="group:ops/team", spec_type="service"),
        "alice": EntityFactory(kind="Template", name="tpl-alice", title="Alice template", owner_team=None,
                               owner_ref="user:default/alice", spec_type="service"),
    }
    client = Client()
    client.force_login(UserFactory(username="reader"))
    return client, made


# Owner spellings and the templates each shows; the templates API filters by the same rule
# (tests/scaffolder/test_api_owner_filter.py).
EXACT_CASES = [
    ("team", {"tpl-team"}),
    ("TEAM", {"tpl-team"}),
    ("default/team", {"tpl-team"}),
    ("group:default/team", {"tpl-team"}),
    ("otherteam", {"tpl-other"}),
    ("eam", set()),
    ("ops/team", {"tpl-ops"}),
    ("group:ops/team", {"tpl-ops"}),
]


@pytest.mark.parametrize(("owner", "shown"), [
    *EXACT_CASES,
    ("user:default/alice", {"tpl-alice"}),
    ("alice", set()),  # a bare name is a group's
])
def test_the_create_page_owner_filter_is_exact(templates, owner, shown):
    client, _ = templates
    page = client.get("/create/", {"owner": owner}).content.decode()
    results = page[page.index('id="template-results"'):]
    assert {name for name in ("tpl-team", "tpl-other", "tpl-ops", "tpl-alice")
            if f"/create/templates/default/{name}/" in results} == shown


def test_the_owner_facet_links_name_each_owner_exactly(templates):
    """Each facet link filters to its own owner only, and is the one marked active there."""
    client, _ = templates
    page = client.get("/create/").content.decode()
    for ref in ("group:default/team", "group:default/otherteam", "group:ops/team", "user:default/alice"):
        label = selectors.owner_label(ref)
        assert selectors.owner_ref(label) == ref
        assert f'data-facet="owner" data-value="{label}"' in page, label
        filtered = client.get("/create/", {"owner": label}).content.decode()
        assert f'class="active" data-facet="owner" data-value="{label}"' in filtered
        assert filtered.count('class="active" data-facet="owner"') == 1
