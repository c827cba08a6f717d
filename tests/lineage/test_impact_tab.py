"""The entity page's Impact tab ("What depends on this?") and its CSV: downstream assets over 1–10 hops
grouped by kind and owning team, production models first and marked, each linked; what the reader may
not see is a count, never a name; a bad `hops` answers 400 naming it; a constant number of queries."""

from __future__ import annotations

import csv
import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.governance import impact_world
from tests.governance.conftest import client_for

pytestmark = pytest.mark.django_db

TAB = "/catalog/dataset/default/{}/impact/"
CSV = "/lineage/impact/dataset/default/{}.csv"


@pytest.fixture
def _spec():
    """Overrides the lineage tests' spec check: the Impact tab reads the graph, not OpenLineage's spec."""


@pytest.fixture
def users(demo_org, tmp_path, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):  # the graph's edges follow the commit
        impact_world.register(tmp_path / "impact")
    return demo_org["users"]


def test_the_tab_lists_downstream_assets_grouped_with_production_first(users):
    response = client_for(users["carol"]).get(TAB.format("impact-hidden-src"))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="impact-tab"' in html
    assert '<a role="tab" href="/catalog/dataset/default/impact-hidden-src/impact/" aria-selected="true">Impact</a>' \
        in html
    assert 'data-critical="production model"' in html
    assert 'href="/catalog/model/default/impact-secret-ranker/"' in html
    assert "team recsys" in html


def test_private_downstream_assets_are_a_hidden_count_never_a_name(users):
    html = client_for(users["alice"]).get(TAB.format("impact-hidden-src")).content.decode()
    assert 'data-testid="impact-hidden">1 hidden' in html
    assert "secret" not in html.lower()
    rows = list(csv.reader(io.StringIO(client_for(users["alice"]).get(CSV.format("impact-hidden-src")).content.decode())))
    assert rows[1][:3] == ["(hidden)", "", "1 downstream asset you may not see"]
    assert "secret" not in str(rows)


def test_hops_choose_how_far_downstream(users):
    client = client_for(users["alice"])
    one = client.get(TAB.format("impact-dev-src") + "?hops=1").content.decode()
    assert "impact-churn-scoring" in one and "impact-churn-scores" not in one
    ten = client.get(TAB.format("impact-dev-src")).content.decode()
    assert "impact-churn-scores" in ten and '<option value="10" selected>' in ten


@pytest.mark.parametrize("value", ["0", "11", "abc", "-1", "2.5", "\u00b2", "\u0663"])  # int() refuses "²" (a 500)
def test_a_bad_hops_value_answers_400_naming_it(users, value):
    client = client_for(users["alice"])
    tab = client.get(TAB.format("impact-dev-src"), {"hops": value})
    assert tab.status_code == 400
    assert "hops: a whole number from 1 to 10" in tab.content.decode()
    download = client.get(CSV.format("impact-dev-src"), {"hops": value})
    assert download.status_code == 400 and download.content.decode().startswith("hops: a whole number from 1 to 10")


def test_csv_download_lists_what_the_page_lists(users):
    response = client_for(users["carol"]).get(CSV.format("impact-dev-src") + "?hops=10")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="impact-dataset-default-impact-dev-src-10hops.csv"' in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert sorted((r["kind"], r["ref"], r["distance"], r["team"]) for r in rows) == [
        ("dataset", "dataset:default/impact-churn-scores", "2", "recsys"),
        ("model", "model:default/impact-churn", "1", "recsys"),
        ("pipeline", "pipeline:default/impact-churn-scoring", "1", "recsys")]
    prod = list(csv.DictReader(io.StringIO(client_for(users["carol"]).get(CSV.format("impact-prod-src")).content.decode())))
    assert prod[0]["critical"] == "true" and prod[0]["reason"] == "production model"


def test_an_entity_the_reader_may_not_see_is_a_404(users):
    """The private model's own tab and CSV: alice gets what a missing entity gets."""
    client = client_for(users["alice"])
    assert client.get("/catalog/model/default/impact-secret-ranker/impact/").status_code == 404
    assert client.get("/lineage/impact/model/default/impact-secret-ranker.csv").status_code == 404
    assert client.get("/lineage/impact/model/default/no-such-model.csv").status_code == 404


def test_request_buttons_for_those_who_may_request(users):
    assert 'data-testid="request-deprecate"' in client_for(users["alice"]).get(TAB.format("impact-dev-src")).content.decode()
    assert 'data-testid="request-deprecate"' not in client_for(users["carol"]).get(TAB.format("impact-dev-src")).content.decode()


def test_query_count_does_not_grow_with_the_list(users, tmp_path, django_capture_on_commit_callbacks):
    """The same number of queries for one downstream asset as for many (graph.impact reads by kind)."""
    client = client_for(users["carol"])
    url = TAB.format("impact-prod-src")
    client.get(url)
    with CaptureQueriesContext(connection) as small:
        assert client.get(url).status_code == 200
    more = "".join(
        f"---\napiVersion: plinth.dev/v1alpha1\nkind: Model\nmetadata: {{name: impact-extra-{n}}}\n"
        f"spec: {{owner: recsys, lifecycle: experimental, trainedOn: [impact-prod-src]}}\n" for n in range(30))
    (tmp_path / "more").mkdir()
    (tmp_path / "more" / "catalog-info.yaml").write_text(more.removeprefix("---\n"), encoding="utf-8")
    from catalog import services

    with django_capture_on_commit_callbacks(execute=True):
        services.location_register(target=str(tmp_path / "more" / "catalog-info.yaml"), actor=None, file_roots=None)
    assert client.get(url).content.decode().count("impact-extra-") >= 30
    with CaptureQueriesContext(connection) as large:
        assert client.get(url).status_code == 200
    assert len(large.captured_queries) == len(small.captured_queries)
    assert len(large.captured_queries) <= 16  # 13 measured: the page, the tab and graph.impact
