"""Catalog pages: list with facets and htmx fragments, entity tabs, registration, constant query counts."""

import pytest

from catalog.models import Entity, Star
from tests.factories import EntityFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(client, demo_org):
    client.force_login(demo_org["users"]["alice"])
    return demo_org["users"]["alice"]


def test_list_filters_and_facets(client, alice):
    html = client.get("/catalog/?kind=model").content.decode()
    assert "Fraud detector" in html and "Session features" not in html
    assert 'data-facet="kind" data-value="model"' in html
    fragment = client.get("/catalog/?kind=featureset", HTTP_HX_REQUEST="true")
    assert fragment.status_code == 200 and "<html" not in fragment.content.decode()
    assert 'id="results"' in fragment.content.decode()
    assert "HX-Request" in fragment["Vary"]


def test_private_entities_stay_hidden_from_other_teams(client, demo_org):
    client.force_login(demo_org["users"]["carol"])
    html = client.get("/catalog/?kind=model").content.decode()
    assert "Chargeback predictor" not in html
    assert client.get("/catalog/model/default/chargeback-predictor/").status_code == 404


@pytest.mark.parametrize("tab", ["", "relations/", "versions/", "lineage/"])
def test_model_tabs_render(client, alice, tab):
    response = client.get(f"/catalog/model/default/fraud-detector/{tab}")
    assert response.status_code == 200


def test_relations_graph_is_drawn_with_links(client, alice):
    html = client.get("/catalog/model/default/fraud-detector/relations/?depth=2").content.decode()
    assert "<svg" in html and 'href="/catalog/featureset/default/card-transactions-features/relations/?depth=2"' in html


def test_other_kind_tabs(client, alice):
    assert "card_id" in client.get("/catalog/featureset/default/card-transactions-features/features/").content.decode()
    assert "/v1/score" in client.get("/catalog/api/default/fraud-scoring-api/definition/").content.decode()
    assert "Fraud detector" in client.get("/catalog/group/default/fraud-ml/members/").content.decode()
    assert client.get("/catalog/model/default/fraud-detector/nonsense/").status_code == 404


def test_star_and_unstar(client, alice):
    url = "/catalog/model/default/fraud-detector/star/"
    assert client.post(url, {"starred": "1"}, HTTP_HX_REQUEST="true").status_code == 200
    assert Star.objects.filter(user=alice).count() == 1
    assert "/catalog/?starred=true" and client.get("/catalog/?starred=true").content.decode().count("Fraud detector") == 1
    client.post(url, {"starred": "0"})
    assert not Star.objects.exists()


def test_description_html_is_escaped(client, alice):
    EntityFactory(name="xss", data={"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
                                    "metadata": {"name": "xss", "description": "<script>alert(1)</script>"}, "spec": {}},
                  owner_team=alice.teams.first())
    Entity.objects.filter(name="xss").update(description="<script>alert(1)</script>")
    html = client.get("/catalog/component/default/xss/").content.decode()
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html


def test_register_form_dry_run_then_confirm(client, alice, tmp_path, settings):
    settings.PLINTH_CATALOG_FILE_ROOTS = [str(tmp_path)]
    path = tmp_path / "catalog-info.yaml"
    path.write_text("apiVersion: plinth.dev/v1alpha1\nkind: Dataset\nmetadata: {name: newdata}\nspec: {owner: fraud-ml}\n")
    dry = client.post("/catalog/register/", {"target": str(path)})
    assert "+ Dataset" in dry.content.decode() and not Entity.objects.filter(name="newdata").exists()
    done = client.post("/catalog/register/", {"target": str(path), "confirm": "1"})
    assert done.status_code == 302
    assert Entity.objects.filter(name="newdata").exists()
    bad = client.post("/catalog/register/", {"target": "/nope/nothing.yaml"})
    assert bad.status_code == 400


def _more_entities(team, count):
    for i in range(count):
        EntityFactory(name=f"extra-{team.name}-{i}", kind="Model", owner_team=team, tags=["x", f"t{i}"])


@pytest.mark.parametrize("url", [
    "/catalog/", "/catalog/?kind=model&lifecycle=production", "/catalog/?tag=fraud", "/catalog/?mine=true&q=fraud",
    "/catalog/model/default/fraud-detector/", "/catalog/model/default/fraud-detector/relations/?depth=2",
    "/api/v1/entities?limit=20", "/api/v1/entity-facets?facet=kind&facet=metadata.tags",
    "/api/v1/entities/by-name/model/default/fraud-detector",
])
def test_query_count_does_not_grow_with_the_catalog(client, alice, url, django_assert_max_num_queries):
    """The same page costs the same number of queries with 40 or 200 more entities (caches warm: the
    facet cube costs two more queries once per catalog version)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from catalog import facets

    team = alice.teams.first()
    _more_entities(team, 40)
    facets.bump()
    client.get(url)
    with CaptureQueriesContext(connection) as small:
        assert client.get(url).status_code == 200
    _more_entities(team.__class__.objects.get(name="recsys"), 160)
    facets.bump()
    client.get(url)
    with CaptureQueriesContext(connection) as large:
        assert client.get(url).status_code == 200
    assert len(large.captured_queries) == len(small.captured_queries), url
    assert len(large.captured_queries) <= 21  # 17 with the scorecard badge, +1 SLO badge, +1 cost figure, +1 incident badge, +1 a pending MLflow sync


def test_home_tiles_name_kinds_in_the_plural_unless_one(client, alice):
    """"5 Datasets", "1 AI resource": each tile's kind agrees with its count (the kind table's singular and
    plural, both words: the page never shows the descriptor spelling "AiResource" or "FeatureSet")."""
    import re

    from catalog.descriptors.kinds import kind_label

    assert not Entity.objects.filter(kind_key="airesource").exists()
    EntityFactory(name="only-skill", kind="AiResource", owner_team=alice.teams.first())
    html = client.get("/").content.decode()
    tiles = dict((label, int(n)) for n, label in re.findall(
        r'<span class="stat-n">(\d+)</span><span class="stat-l">([^<]+)</span>', html))
    assert tiles.get("Datasets", 0) > 1 and "Dataset" not in tiles and tiles["AI resource"] == 1
    assert "AiResource" not in tiles and "FeatureSet" not in tiles
    assert all(n == 1 or label.endswith("s") for label, n in tiles.items()), tiles
    assert kind_label("API", 2) == "APIs" and kind_label("featureset", 3) == "Feature sets"
    # One feature set reads "Feature set", as several read "Feature sets" (it read "FeatureSet", the
    # descriptor's spelling, which a badge's capitals turned into "FEATURESET").
    assert kind_label("FeatureSet", 1) == "Feature set" and kind_label("AiResource", 1) == "AI resource"
    assert kind_label("API", 1) == "API" and kind_label("Widget", 0) == "Widgets" and kind_label("Widget", 1) == "Widget"


def test_annotation_keys_break_only_at_slashes_dots_and_dashes(client, alice):
    from catalog.templatetags.catalog_tags import soft_breaks

    assert soft_breaks("mlflow.org/registered-model") == "mlflow.<wbr>org/<wbr>registered-<wbr>model"
    assert soft_breaks("a/<b>-") == "a/<wbr>&lt;b&gt;-"  # escaped; no break after the last character
    html = client.get("/catalog/model/default/fraud-detector/").content.decode()
    assert '<code class="kv-key">mlflow.<wbr>org/<wbr>registered-<wbr>model</code>' in html
