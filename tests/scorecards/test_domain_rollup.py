"""Per-domain rollups with trends on a scorecard's page: an entity's domain is its system's `spec.domain`
(a system's its own, a domain's itself), counted per level for what the reader may see, with the change
at the top level against the nightly rollup of 7 and 30 days ago — checked against a row-by-row count."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from catalog import selectors as catalog_selectors
from catalog.models import Entity
from portal.accounts import permissions
from portal.scorecards import definitions, selectors, services
from portal.scorecards.models import DailyRollup, Result

pytestmark = pytest.mark.django_db
PAYMENTS = "domain:default/payments"


@pytest.fixture
def evaluated(demo_org):
    services.evaluate_entities()
    return demo_org


def _by_hand(user, card) -> Counter:
    """(domain, level) → entities, one result at a time."""
    out = Counter()
    for result in permissions.filter_visible(Result.objects.filter(scorecard=card), user).select_related("entity"):
        entity = result.entity
        if entity.kind_key == "domain":
            domain = entity.ref
        elif entity.kind_key == "system":
            domain = catalog_selectors.domain_ref(entity.spec.get("domain"))
        else:
            system = Entity.objects.filter(ref=entity.system_ref).first() if entity.system_ref else None
            domain = catalog_selectors.domain_ref(system.spec.get("domain")) if system else ""
        out[(domain, result.level)] += 1
    return out


@pytest.mark.parametrize("username", ["alice", "carol", "grace"])
@pytest.mark.parametrize("card", ["production-readiness", "service-basics"])
def test_domain_counts_equal_a_row_by_row_count_for_each_reader(evaluated, username, card):
    user = evaluated["users"][username]
    rows = selectors.domain_rollup(user, definitions.get(card))
    got = Counter({(r["domain"], level): n for r in rows for level, n in r["levels"].items() if n})
    assert got == _by_hand(user, card)
    assert sum(r["total"] for r in rows) == permissions.filter_visible(Result.objects.filter(scorecard=card), user).count()


def test_another_teams_private_model_is_not_counted_in_its_domain(evaluated):
    card = definitions.get("production-readiness")
    alice = {r["domain"]: r["total"] for r in selectors.domain_rollup(evaluated["users"]["alice"], card)}
    carol = {r["domain"]: r["total"] for r in selectors.domain_rollup(evaluated["users"]["carol"], card)}
    assert alice[PAYMENTS] == carol[PAYMENTS] + 1  # fraud-ml's private chargeback predictor


def test_trends_compare_the_top_level_with_the_nightly_rollups(evaluated):
    card = definitions.get("service-basics")
    top = card.levels[-1]
    now = timezone.now()
    services.rollup_today(now=now - timedelta(days=7))  # the same results a week ago: no change
    assert DailyRollup.objects.filter(day=(now - timedelta(days=7)).date()).exclude(domain_ref="").exists()
    month_ago = (now - timedelta(days=30)).date()
    DailyRollup.objects.create(day=month_ago, scorecard=card.name, domain_ref=PAYMENTS, level=top, count=5,
                               owner_team=evaluated["teams"]["fraud-ml"])
    rows = {r["domain"]: r for r in selectors.domain_rollup(evaluated["users"]["alice"], card)}
    assert all(r["trend_7"] == 0 for r in rows.values()), rows
    assert rows[PAYMENTS]["trend_30"] == rows[PAYMENTS]["top_now"] - 5
    assert all(r["trend_30"] is None for d, r in rows.items() if d != PAYMENTS)  # no rollup then: no trend


def test_the_scorecard_page_shows_the_domains_in_constant_queries(evaluated):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = Client()
    client.force_login(evaluated["users"]["alice"])
    url = "/scorecards/production-readiness/"
    client.get(url)
    with CaptureQueriesContext(connection) as before:
        html = client.get(url).content.decode()
    assert 'data-testid="domain-rollup"' in html and '<a href="/catalog/domain/default/payments/">Payments</a>' in html
    for days in range(1, 40):  # more history, more rollup rows: the same queries
        services.rollup_today(now=timezone.now() - timedelta(days=days))
    with CaptureQueriesContext(connection) as after:
        client.get(url)
    assert len(after) == len(before) <= 13, [q["sql"][:120] for q in after.captured_queries]


def test_a_domain_shows_by_its_title_unless_the_reader_may_not_see_it(evaluated):
    card = definitions.get("production-readiness")
    rows = {r["domain"]: r for r in selectors.domain_rollup(evaluated["users"]["carol"], card)}
    assert rows[PAYMENTS]["title"] == "Payments"
    Entity.objects.filter(ref=PAYMENTS).update(visibility="private", owner_team=evaluated["teams"]["fraud-ml"])
    rows = {r["domain"]: r for r in selectors.domain_rollup(evaluated["users"]["carol"], card)}
    assert rows[PAYMENTS]["title"] == ""  # carol (recsys) may not see it: its name only, as before
    client = Client()
    client.force_login(evaluated["users"]["carol"])
    html = client.get("/scorecards/production-readiness/").content.decode()
    assert '<a href="/catalog/domain/default/payments/">payments</a>' in html and ">Payments<" not in html


def test_the_rollup_api_gives_teams_and_domains_with_trends(evaluated):
    client = Client()
    client.force_login(evaluated["users"]["carol"])
    body = client.get("/api/v1/scorecards/production-readiness/rollup").json()
    card = definitions.get("production-readiness")
    expected = selectors.domain_rollup(evaluated["users"]["carol"], card)
    assert [(d["domain"], d["total"], d["trend7"]) for d in body["domains"]] == [
        (r["domain"] or None, r["total"], r["trend_7"]) for r in expected]
    assert body["levels"] == card.levels and body["error"] == ""
    assert {t["team"] for t in body["teams"]} >= {"fraud-ml"}
    assert sum(t["total"] for t in body["teams"]) == sum(d["total"] for d in body["domains"])
    assert client.get("/api/v1/scorecards/nope/rollup").status_code == 404
