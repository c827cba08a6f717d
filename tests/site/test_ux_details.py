"""Details a UX review found on the demo's pages: times people compare say they are UTC, a count of zero
is not in the alarm colour, impact groups are named like the rest of the portal ("APIs", "MLflow runs"),
the docs index links the portal's own docs, an incident's header says how it was opened once."""

from __future__ import annotations

import pytest
from django.test import Client

from catalog.models import Entity
from catalog.templatetags.catalog_tags import kind_count
from portal.incidents import services as incidents
from portal.techdocs import services as techdocs

pytestmark = pytest.mark.django_db


def signed_in(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


def test_an_incident_page_gives_exact_utc_times_and_one_opened_by(demo_org):
    alice = demo_org["users"]["alice"]
    incident, _ = incidents.incident_open(actor=alice, title="Scores stale", severity="sev2",
                                          entities=["model:default/fraud-detector"])
    html = signed_in(alice).get(f"/incidents/{incident.pk}/").content.decode()
    facts = html.split('data-testid="incident-facts"', 1)[1].split("</dl>", 1)[0]
    assert f"{incident.opened_at:%Y-%m-%d %H:%M:%S} UTC</time>" in facts
    header = html.split('data-testid="incident-title"', 1)[1].split("</p>", 1)[0]
    assert "opened by Alice" in header or "opened by alice" in header
    assert header.count("pened by") == 1


def test_the_audit_page_shows_exact_times_and_the_inbox_zero_is_calm(demo_org):
    grace = signed_in(demo_org["users"]["grace"])
    assert " UTC</time>" in grace.get("/reviews/audit/").content.decode()
    inbox = signed_in(demo_org["users"]["alice"]).get("/reviews/").content.decode()
    assert 'class="count count-zero" data-testid="waiting-count">0<' in inbox


def test_impact_groups_are_named_like_the_portal_names_kinds():
    assert [kind_count("api", 2), kind_count("api", 1), kind_count("featureset", 3)] == ["APIs", "API", "Feature sets"]
    assert [kind_count("run", 1), kind_count("version", 2), kind_count("job", 2)] == \
        ["MLflow run", "Model versions", "Jobs"]


def test_the_docs_index_links_the_portals_own_docs_when_they_are_built(demo_org):
    alice = signed_in(demo_org["users"]["alice"])
    assert "Start with" not in alice.get("/docs/").content.decode()
    techdocs.entity_docs_build(entity=Entity.objects.select_related("location").get(ref="component:default/plinth"))
    html = alice.get("/docs/").content.decode()
    assert 'Start with <a href="/docs/component/default/plinth/">the portal\'s own user guide</a>' in html


def test_the_catalog_says_what_it_sorts_by_and_shows_the_name_under_a_title(demo_org):
    """The list sorts and filters by metadata.name while it shows titles: the menu says so, and a row whose
    title differs shows its name (an observed 's3://…' dataset sat among names starting with 'ch')."""
    html = signed_in(demo_org["users"]["alice"]).get("/catalog/?kind=all").content.decode()
    assert ">Name (metadata.name), A–Z<" in html and ">Updated, newest first<" in html and "(desc)" not in html
    entity = Entity.objects.exclude(title="").exclude(visibility="private").first()
    assert entity is not None and entity.title != entity.name
    assert f'<code class="muted">{entity.name}</code>' in html
