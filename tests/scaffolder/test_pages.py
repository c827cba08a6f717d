"""Create pages: the template list with filters, the wizard rendered from the schema and validated
on the server, the review page, and run pages visible only to whom they belong."""

import json
import re

import pytest

from portal.scaffolder.models import Run

from .conftest import ml_values, run_inline, start, unique

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice_client(client, org):
    client.force_login(org["users"]["alice"])
    return client


def post_page(client, url, page, values, fields, action="next"):
    data = {"_page": page, "_values": json.dumps(values), "_action": action}
    data.update({f"p.{k}": v for k, v in fields.items()})
    return client.post(url, data)


def test_index_lists_templates_with_type_and_owner_filters(alice_client):
    page = alice_client.get("/create/").content.decode()
    for title in ("ML model service", "Feature set", "Training pipeline"):
        assert title in page
    only = alice_client.get("/create/?type=pipeline").content.decode()
    assert "Training pipeline" in only and "Feature set" not in only
    assert "ML model service" in alice_client.get("/create/?owner=platform").content.decode()
    assert "No template matches" in alice_client.get("/create/?owner=nobody").content.decode()


def test_wizard_renders_widgets_from_the_schema(alice_client):
    html = alice_client.get("/create/templates/default/ml-model-service/").content.decode()
    assert 'name="p.name"' in html and 'pattern="[a-z0-9]+(-[a-z0-9]+)*"' in html
    assert '<option value="fraud-ml"' in html  # team picker: alice's team
    assert '<option value="recsys"' not in html  # not hers
    assert '<option value="classifier"' in html  # enum
    url = "/create/templates/default/ml-model-service/"
    page2 = post_page(
        alice_client,
        url,
        0,
        {},
        {"name": "x-model", "owner": "fraud-ml", "modelType": "classifier", "riskTier": "2"},
    ).content.decode()
    assert 'value="featureset:default/card-transactions-features"' in page2  # entity picker
    values = json.loads(re.search(r'name="_values" value="([^"]*)"', page2).group(1).replace("&quot;", '"'))
    assert values["riskTier"] == 2 and values["name"] == "x-model"
    page3 = post_page(alice_client, url, 1, values, {}).content.decode()
    assert 'type="password"' in page3 and 'type="checkbox"' in page3  # secret, boolean


def test_server_side_validation_refuses_bad_values(alice_client):
    url = "/create/templates/default/ml-model-service/"
    html = post_page(
        alice_client, url, 0, {}, {"name": "Bad Name!", "owner": "recsys", "modelType": "classifier"}
    ).content.decode()
    assert "Not in the expected format: it has spaces, capital letters, the character(s) &#x27;!&#x27;" in html
    assert "Choose one of the offered values" in html  # recsys is not alice's team
    html = post_page(alice_client, url, 0, {}, {"name": "", "modelType": "classifier"}).content.decode()
    assert "This field is required." in html
    # A tampered final submit is validated again, page by page: nothing is created.
    tampered = {**ml_values("ok-name"), "owner": "recsys"}
    response = post_page(alice_client, url, "review", tampered, {}, action="create")
    assert response.status_code == 200 and Run.objects.count() == 0


def test_review_then_create_starts_a_run(alice_client, scaffolder_root):
    url = "/create/templates/default/ml-model-service/"
    values = ml_values(unique("rev"))
    review = post_page(alice_client, url, 2, values, {"port": "8080", "includeDocs": "on"}).content.decode()
    assert 'data-testid="review"' in review and "Fraud ML" in review
    response = post_page(alice_client, url, "review", values, {}, action="dry-run")
    run = Run.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/create/runs/{run.uid}/"
    assert run.dry_run and run.owner_team.name == "fraud-ml"


def test_run_page_polls_until_finished_and_is_private(client, org, scaffolder_root):
    run = start(org["users"]["alice"], "ml-model-service", ml_values(unique("pg")), dry_run=True)
    client.force_login(org["users"]["alice"])
    live = client.get(run.get_absolute_url(), HTTP_HX_REQUEST="true").content.decode()
    assert 'hx-trigger="every 1s"' in live and "<html" not in live
    run_inline(run)
    done = client.get(run.get_absolute_url()).content.decode()
    assert (
        'hx-trigger="every 1s"' not in done and "would be generated" in done and "training/train.py" in done
    )
    client.force_login(org["users"]["dan"])  # recsys: not his run, not his team
    assert client.get(run.get_absolute_url()).status_code == 404
    client.force_login(org["users"]["bob"])  # fraud-ml member: his team's run
    assert client.get(run.get_absolute_url()).status_code == 200


def test_create_pages_end_their_breadcrumb_and_meta_line_with_content(client, org, scaffolder_root):
    """No "Create /" or "Create / Runs /" with an empty last crumb, and the run's "Started by … · when"
    line does not end in a separator (its parameters follow it, not inside the paragraph)."""
    from tests.site.crawl import Page

    run = run_inline(start(org["users"]["alice"], "ml-model-service", ml_values(unique("meta")), dry_run=True))
    client.force_login(org["users"]["alice"])
    for url in ("/create/templates/default/ml-model-service/", "/create/runs/", run.get_absolute_url()):
        html = client.get(url).content.decode()
        parser = Page()
        parser.feed(html)
        parser.close()
        assert not parser.faults, (url, parser.faults)
        crumbs = " ".join(re.sub(r"<[^>]+>", "", re.search(r'<p class="crumbs">(.*?)</p>', html).group(1)).split())
        assert crumbs in ("Create / ML model service", "Create / runs", "Create / Runs / ML model service"), crumbs
    assert re.search(r'data-testid="run-meta">Started by alice · <time[^>]*>[^<]*</time></p>', html)
    assert '<details class="run-parameters' in html
