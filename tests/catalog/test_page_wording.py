"""Pages name an entity kind one way, in words ("Feature set", "Feature sets", "AI resource", "API"),
wherever they show one — badges, the list's Kind column and facet, breadcrumbs, the relations graph,
lineage and impact groups — while links, filters and refs keep the descriptor's key (`featureset`).
Buttons say what they fetch: the MLflow sync, and the scaffolder run page's downloads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.template.loader import render_to_string
from django.urls import reverse

from catalog.descriptors.kinds import KINDS, kind_label
from portal.scaffolder.models import Run

pytestmark = pytest.mark.django_db

FEATURES = "/catalog/featureset/default/card-transactions-features/"
MODEL = "/catalog/model/default/fraud-detector/"
BADGE = re.compile(r'<span class="kind kind-[a-z]+">([^<]*)</span>')
# Every singular the kind table gives, and lineage's own nodes as its legend names them.
IN_WORDS = {kind_label(k, 1) for k in KINDS} | {"Job", "MLflow run", "Model version"}
# The descriptor's spellings shown as a kind's name (the bug: a badge's capitals made "FEATURESET").
RAW = ("FEATURESET", ">FeatureSet<", ">featureset<", ">AiResource<", ">airesource<", "FEATURE SET")


@pytest.fixture
def alice(client, demo_org):
    client.force_login(demo_org["users"]["alice"])
    return demo_org["users"]["alice"]


def _kind_names_in_words(html: str, where: str) -> list[str]:
    shown = BADGE.findall(html)
    assert set(shown) <= IN_WORDS, (where, set(shown) - IN_WORDS)
    for raw in RAW:
        assert raw not in html, (where, raw)
    return shown


def test_the_kind_table_names_one_and_several_in_words():
    assert [kind_label("FeatureSet", 1), kind_label("featureset", 2)] == ["Feature set", "Feature sets"]
    assert [kind_label("AiResource", 1), kind_label("airesource", 3)] == ["AI resource", "AI resources"]
    assert [kind_label("API", 1), kind_label("api", 2), kind_label("Model", 1), kind_label("group", 2)] == [
        "API",
        "APIs",
        "Model",
        "Groups",
    ]
    assert KINDS["FeatureSet"].kind == "FeatureSet"  # what descriptors, refs and the API spell


@pytest.mark.parametrize(
    "url",
    [
        "/catalog/?kind=featureset",
        "/catalog/?kind=all",
        FEATURES,
        f"{FEATURES}features/",
        MODEL,
        "/",
        "/docs/",
    ],
)
def test_badges_name_kinds_in_words(client, alice, url):
    response = client.get(url)
    assert response.status_code == 200, url
    _kind_names_in_words(response.content.decode(), url)


def test_a_teams_page_badges_what_it_owns_in_words(client, alice):
    # Only the badges: the page's scorecard operations table (templates/scorecards/) still shows the key.
    shown = BADGE.findall(client.get("/teams/fraud-ml/").content.decode())
    assert "Feature set" in shown and set(shown) <= IN_WORDS, shown


def test_feature_sets_read_feature_set_on_the_list_its_page_and_where_models_use_them(client, alice):
    listed = client.get("/catalog/?kind=featureset").content.decode()
    assert _kind_names_in_words(listed, "list").count("Feature set") >= 2
    page = client.get(FEATURES).content.decode()
    assert '<span class="kind kind-featureset">Feature set</span>' in page
    model = client.get(MODEL).content.decode()
    assert _kind_names_in_words(model, "model").count("Feature set") == 2  # consumesFeatures: two sets


def test_the_kind_facet_reads_in_words_and_filters_by_the_key(client, alice):
    html = client.get("/catalog/?kind=all").content.decode()
    assert 'data-facet="kind" data-value="featureset"><span>Feature sets</span>' in html
    assert 'data-facet="kind" data-value="api"><span>APIs</span>' in html
    href = re.search(r'<a href="([^"]*)"[^>]*data-facet="kind" data-value="featureset">', html).group(1)
    assert href == "?kind=featureset"
    fragment = client.get(f"/catalog/{href}", HTTP_HX_REQUEST="true").content.decode()
    assert 'data-facet="kind" data-value="featureset"><span>Feature sets</span>' in fragment
    assert set(_kind_names_in_words(fragment, "facet")) == {"Feature set"}


def test_crumbs_name_the_kind_list_they_lead_to_in_the_plural(client, alice):
    assert (
        '<a href="/catalog/?kind=featureset">Feature sets</a> / default'
        in client.get(FEATURES).content.decode()
    )
    assert '<a href="/catalog/?kind=model">Models</a> / default' in client.get(MODEL).content.decode()
    compare = client.get(f"{MODEL}compare/").content.decode()
    assert '<a href="/catalog/?kind=model">Models</a>' in compare


def test_the_relations_graph_labels_boxes_in_words(client, alice):
    html = client.get(f"{MODEL}relations/").content.decode()
    labels = re.findall(r'class="kind-label"[^>]*>([^<]*)</text>', html)
    assert "Feature set" in labels and "Model" in labels and set(labels) <= IN_WORDS, labels
    _kind_names_in_words(html, "relations")


def test_the_lineage_page_names_its_root_in_words(client, alice):
    html = client.get(
        "/lineage/", {"nodeId": "entity:featureset:default:card-transactions-features"}
    ).content.decode()
    assert '<span class="kind kind-featureset">Feature set</span>' in html
    _kind_names_in_words(html, "lineage")


def test_impact_groups_name_their_kind_in_words_in_the_heading_and_for_screen_readers():
    item = {"id": "x", "name": "x", "ref": "featureset:default/x", "distance": 1}
    html = render_to_string(
        "inc/impact_groups.html",
        {
            "groups": [
                {"kind": "FeatureSet", "team": "fraud-ml", "items": [item], "critical": 0},
                {"kind": "featureset", "team": None, "items": [item, item], "critical": 0},
                {"kind": "job", "team": None, "items": [item, item], "critical": 0},
            ]
        },
    )
    heads = [
        h.split("<span", 1)[0].strip() for h in re.findall(r'<h3 class="impact-group-head">(.*?)</h3>', html)
    ]
    assert heads == ["Feature set", "Feature sets", "Jobs"]
    assert (
        'aria-label="Feature sets owned by fraud-ml"' in html and 'aria-label="Jobs owned by no team"' in html
    )
    _kind_names_in_words(html, "impact")


def test_kind_badges_are_not_set_in_capitals():
    """The badge shows the name as written: capitals turned "Feature set" back into a shout and, on the
    descriptor spelling, into "FEATURESET"."""
    css = (Path(settings.BASE_DIR) / "static" / "css" / "plinth.css").read_text()
    rule = re.search(r"^\.kind \{([^}]*)\}", css, re.M).group(1)
    assert "uppercase" not in rule
    js = (Path(settings.BASE_DIR) / "static" / "js" / "lineage.js").read_text()
    assert "kindLabel(node).toUpperCase()" not in js and 'airesource: "AI resource"' in js


def test_the_sync_button_says_it_syncs_from_mlflow_and_what_it_reads(client, demo_org):
    client.force_login(demo_org["users"]["bob"])  # fraud-ml member: may sync its models
    for url in (MODEL, f"{MODEL}versions/"):
        html = client.get(url).content.decode()
        button = re.search(
            r'<button class="button small" type="submit" aria-describedby="([^"]+)">([^<]+)</button>', html
        )
        assert button is not None and button.group(2) == "Sync from MLflow now", url
        hint = re.search(rf'id="{button.group(1)}"[^>]*>([^<]+)<', html).group(1)
        assert "versions, aliases, tags" in hint and "metrics" in hint
        assert "Sync now" not in html


def test_a_queued_sync_says_it_waits_in_plinth_and_survives_a_reload(client, demo_org):
    """The job waits in Plinth's queue, not MLflow's; a reload while it waits or runs keeps polling it
    (the button and "press Sync from MLflow now" came back and the pending sync was forgotten)."""
    from catalog.models import Entity, MlflowSyncJob

    client.force_login(demo_org["users"]["bob"])
    entity = Entity.objects.get(ref="model:default/fraud-detector")
    posted = client.post(f"{MODEL}mlflow-sync/", HTTP_HX_REQUEST="true").content.decode()
    job = MlflowSyncJob.objects.get(entity=entity)
    assert "Queued in Plinth…" in posted and "with MLflow" not in posted
    for url in (MODEL, f"{MODEL}versions/"):
        html = client.get(url).content.decode()
        assert f"mlflow-sync/{job.pk}/" in html and "Queued in Plinth…" in html, url
        assert "Sync from MLflow now</button>" not in html and "press Sync from MLflow now" not in html, url
    assert "a sync is under way" in client.get(MODEL).content.decode()
    MlflowSyncJob.objects.filter(pk=job.pk).update(state=MlflowSyncJob.State.RUNNING)
    assert "Syncing with MLflow…" in client.get(MODEL).content.decode()
    MlflowSyncJob.objects.filter(pk=job.pk).update(state=MlflowSyncJob.State.DONE)
    html = client.get(MODEL).content.decode()  # finished: the button is back, no status is polled
    assert f"mlflow-sync/{job.pk}/" not in html and "Sync from MLflow now</button>" in html


def test_a_pending_sync_costs_the_model_page_one_query(client, demo_org):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(demo_org["users"]["bob"])
    client.get(MODEL)
    with CaptureQueriesContext(connection) as before:
        client.get(MODEL)
    client.post(f"{MODEL}mlflow-sync/", HTTP_HX_REQUEST="true")
    with CaptureQueriesContext(connection) as after:
        client.get(MODEL)
    assert len(after.captured_queries) == len(before.captured_queries)


def test_the_feature_set_template_says_feature_set_in_words():
    text = (Path(settings.BASE_DIR) / "portal/scaffolder/builtin/feature-set/template.yaml").read_text()
    assert "as a feature set." in text and "as a FeatureSet" not in text


def test_the_run_page_says_what_each_download_is(client, alice):
    run = Run.objects.create(
        template_ref="template:default/ml-model-service",
        template_title="ML model service",
        template_source="-",
        template={},
        created_by=alice,
        status="succeeded",
    )
    run.output = {
        "links": [
            {
                "title": "Open the model in the catalog",
                "url": MODEL,
                "entityRef": "model:default/fraud-detector",
            },
            {"title": "Repository", "url": "/create/repositories/fraud-ml/fraud-scorer.bundle"},
            {"title": "Download", "url": reverse("scaffolder:download", args=[run.uid])},
        ]
    }
    run.save(update_fields=["output"])
    html = client.get(run.get_absolute_url()).content.decode()
    repo = re.search(
        r'<a class="button" href="/create/repositories/fraud-ml/fraud-scorer.bundle" download '
        r'data-testid="download-repository" aria-describedby="(dl-\d)">([^<]*)</a>',
        html,
    )
    assert repo is not None and repo.group(2) == "Download repository (.bundle)"
    what = re.search(rf'id="{repo.group(1)}"[^>]*>(.*?)</span>', html, re.S).group(1)
    assert "generated repository as a git bundle" in what and "<code>fraud-scorer.bundle</code>" in what
    files = re.search(
        r'data-testid="download-files" aria-describedby="(dl-\d)">Download files \(\.zip\)</a>',
        html,
    )
    assert files is not None
    assert "generated files as a .zip archive" in re.search(
        rf'id="{files.group(1)}"[^>]*>(.*?)</span>', html
    ).group(1)
    catalog_link = f'<a class="button primary" href="{MODEL}">Open the model in the catalog</a>'
    assert catalog_link in html and html.count(" download ") == 2  # only the downloads download
