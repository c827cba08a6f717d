"""The ML-first model page: aliases with versions, headline metrics and age, a chart per metric, links
into MLflow, full run ids; and the number of queries does not grow with the number of versions."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from catalog.models import Entity, MlflowSyncState, ModelVersion

pytestmark = pytest.mark.django_db
PAGE = "/catalog/model/default/fraud-detector/"


def add_versions(entity: Entity, count: int) -> list[ModelVersion]:
    rows = []
    for n in range(1, count + 1):
        aliases = ["champion"] if n == count - 1 else ["challenger"] if n == count else []
        rows.append(ModelVersion.objects.create(
            entity=entity, version=str(n), version_number=n, aliases=aliases, status="READY",
            run_id=uuid.uuid4().hex, metrics={"auc": 0.8 + n / 100, "recall": 0.7, "note": "text is not charted"},
            params={"n_estimators": str(100 * n)}, created_at_mlflow=timezone.now() - timedelta(days=count - n)))
    return rows


@pytest.fixture
def alice(demo_org, client, settings):
    settings.PLINTH_MLFLOW_UI_URL = "https://mlflow.example.com"
    client.force_login(demo_org["users"]["alice"])
    return client


def test_overview_shows_aliases_metrics_age_chart_and_mlflow_links(alice):
    rows = add_versions(Entity.objects.get(name="fraud-detector"), 3)
    html = alice.get(PAGE).content.decode()
    card = html[html.index('data-testid="model-mlflow"'):html.index("</section>", html.index('data-testid="model-mlflow"'))]
    champion = card.index("@champion")
    assert champion < card.index("@challenger"), "champion first"
    assert re.search(r"@champion</span></th>\s*<td><a href=\"https://mlflow.example.com/#/models/fraud-detector/versions/2\"", card)
    assert "0.8200" in card and "0.8300" in card  # auc of v2 and v3
    assert '<th scope="col" class="num">auc</th>' in card and "note" not in card  # text metrics are not headlines
    assert "1\xa0day ago</time>" in card  # v2's age, in the portal's one date format
    assert f'href="https://mlflow.example.com/#/runs/{rows[1].run_id}"' in card
    assert 'href="https://mlflow.example.com/#/models/fraud-detector"' in card
    svg = re.search(r'<svg role="img" aria-label="auc by version — v1: 0\.81, v2 @champion: 0\.82, v3 @challenger: 0\.83"', card)
    assert svg, "one chart per headline metric, described for screen readers"
    assert card.count("<svg") == 2  # auc and recall
    assert "cdn" not in html.lower() and "<script>" not in card


def test_versions_tab_shows_full_copyable_run_ids(alice):
    rows = add_versions(Entity.objects.get(name="fraud-detector"), 3)
    html = alice.get(f"{PAGE}versions/").content.decode()
    for row in rows:
        assert f'<code data-testid="run-id">{row.run_id}</code>' in html
        assert f'data-copy="{row.run_id}"' in html
    assert html.count('class="metric-chart"') == 2


def mlflow_card(html: str) -> str:
    start = html.index('data-testid="model-mlflow"')
    return html[start:html.index("</section>", start)]


def test_a_model_without_versions_says_so_and_shows_no_chart(alice):
    MlflowSyncState.objects.create(last_success_at=timezone.now())
    card = mlflow_card(alice.get(PAGE).content.decode())
    assert "MLflow has no versions of this model yet" in card and "MLflow data as of" in card
    assert "<svg role=\"img\"" not in card and "@champion" not in card
    assert 'data-testid="versions-link"' not in card and "All 0 versions" not in card  # no link to nothing


def test_before_any_sync_the_card_claims_nothing_about_mlflow(alice):
    card = mlflow_card(alice.get(PAGE).content.decode())
    assert "Not synced from MLflow yet" in card and "No versions known yet" in card
    assert "MLflow has no versions" not in card and 'data-testid="versions-link"' not in card


@pytest.mark.parametrize("path", ["", "versions/"])
def test_versions_stored_before_any_sync_are_not_called_unsynced(alice, path):
    """Versions that did not come from a sync of this portal (seeded) are dated by when they were
    stored; the page does not say "Not synced" above a table of them."""
    add_versions(Entity.objects.get(name="fraud-detector"), 3)
    html = alice.get(PAGE + path).content.decode()
    freshness = re.search(r'data-testid="mlflow-freshness">(.*?)</p>', html, re.S).group(1)
    assert "Not synced" not in freshness and freshness.startswith("Versions stored <time")
    assert "no MLflow sync has succeeded yet: a sync runs when a worker starts" in freshness
    MlflowSyncState.objects.create(last_success_at=timezone.now() - timedelta(hours=2), last_error="ConnectionError: down")
    freshness = re.search(r'data-testid="mlflow-freshness">(.*?)</p>', alice.get(PAGE + path).content.decode(), re.S).group(1)
    assert freshness.startswith("MLflow data as of") and "the last sync failed: ConnectionError: down" in freshness


def test_a_sync_that_never_succeeded_names_its_error(alice):
    MlflowSyncState.objects.create(last_attempt_at=timezone.now(), last_error="ConnectionError: refused")
    card = mlflow_card(alice.get(PAGE).content.decode())
    assert "Not synced from MLflow yet — the last sync failed: ConnectionError: refused" in card


@pytest.mark.parametrize(("count", "label"), [(1, "Its version with its run →"), (3, "All 3 versions with their runs →"),
                                              (50, "The newest 50 versions with their runs →")])
def test_the_versions_link_counts_what_it_leads_to(alice, count, label):
    add_versions(Entity.objects.get(name="fraud-detector"), count)
    card = mlflow_card(alice.get(PAGE).content.decode())
    assert re.search(r'data-testid="versions-link">([^<]*)</a>', card).group(1) == label


@pytest.mark.parametrize("path", ["", "versions/"])
def test_query_count_does_not_grow_with_versions(alice, path):
    entity = Entity.objects.get(name="fraud-detector")
    add_versions(entity, 3)
    alice.get(PAGE + path)  # warm per-process caches (facet cube, roles)
    with CaptureQueriesContext(connection) as few:
        assert alice.get(PAGE + path).status_code == 200
    ModelVersion.objects.filter(entity=entity).delete()
    add_versions(entity, 25)
    with CaptureQueriesContext(connection) as many:
        assert alice.get(PAGE + path).status_code == 200
    assert len(many) == len(few), [q["sql"][:120] for q in many.captured_queries]
    assert len(few) <= 25
