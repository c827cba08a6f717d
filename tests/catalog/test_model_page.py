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

from catalog.models import Entity, ModelVersion

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
    assert "<th scope=\"col\">auc</th>" in card and "note" not in card  # text metrics are not headlines
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


def test_a_model_without_versions_says_so_and_shows_no_chart(alice):
    html = alice.get(PAGE).content.decode()
    assert "MLflow has no versions of this model yet" in html
    assert "<svg role=\"img\"" not in html and "@champion" not in html


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
