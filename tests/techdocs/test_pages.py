"""Docs pages, images, the index, entity tabs and the docs API; a hidden entity 404s like a missing one."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog.models import Entity
from portal.techdocs import services
from portal.techdocs.models import DocSite
from tests.techdocs.test_build import PNG

pytestmark = pytest.mark.django_db

DOCS = {
    "docs/mkdocs.yml": "nav:\n  - Home: index.md\n  - Guide: guide.md\n  - Broken: broken.md\n",
    "docs/index.md": "# Scoring docs\n\n## Overview\n\n![logo](logo.png)\n\n[Guide](guide.md)\n",
    "docs/guide.md": "# Guide\n\n## Step one\n\n### Detail\n\n## Step two\n",
    "docs/broken.md": "# Broken\n\n[nowhere](nowhere.md)\n",
    "docs/logo.png": PNG,
}


def _main(response, name: str) -> str:
    """The response body without what legitimately differs per request (request id, CSRF token)."""
    text = response.content.decode().replace(name, "X")
    text = re.sub(r"request [0-9a-f-]+|csrfmiddlewaretoken\" value=\"[^\"]+|\"X-CSRFToken\": \"[^\"]+", "", text)
    return text


@pytest.fixture
def docs_entity(make_docs, demo_org):
    return make_docs(DOCS)


def test_page_has_sidebar_toc_build_time_edit_link_and_csp(client, alice, docs_entity):
    response = client.get("/docs/component/default/svc/guide/")
    html = response.content.decode()
    assert response.status_code == 200
    assert 'aria-current="page"' in html and 'href="/docs/component/default/svc/guide/" data-path="guide/" aria-current="page"' in html
    assert '<a href="#doc-step-one">Step one</a>' in html and '<a href="#doc-detail">Detail</a>' in html
    assert 'data-testid="built-at">Built <time datetime="20' in html
    assert 'data-testid="edit-source">Source: <code>' in html and "/docs/guide.md</code>" in html
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("style-src")[0] and "img-src 'self';" in csp


def test_build_errors_are_shown_on_the_docs_and_on_the_page(client, alice, docs_entity):
    html = client.get("/docs/component/default/svc/broken/").content.decode()
    assert 'data-testid="build-errors"' in html
    assert "Broken link: &#x27;nowhere.md&#x27; is not a page of these docs." in html


def test_edit_url_annotation_becomes_the_edit_link(client, alice, make_docs):
    make_docs({"docs/index.md": "# Hi\n"}, name="edited",
              extra_annotations="    backstage.io/edit-url: https://git.example.com/x/edit/main/catalog-info.yaml\n")
    html = client.get("/docs/component/default/edited/").content.decode()
    assert 'href="https://git.example.com/x/edit/main/catalog-info.yaml"' in html and "Edit source" in html


def test_failed_build_without_pages_shows_the_error(client, alice, make_docs):
    make_docs({}, name="nodocs")
    html = client.get("/docs/component/default/nodocs/").content.decode()
    assert "build failed" in html and "does not exist" in html


def test_docs_without_an_index_open_their_first_page(client, alice, make_docs):
    make_docs({"docs/mkdocs.yml": "nav: [b.md, a.md]\n", "docs/a.md": "# A\n", "docs/b.md": "# B\n"}, name="noindex")
    response = client.get("/docs/component/default/noindex/")
    assert response.status_code == 302 and response["Location"] == "/docs/component/default/noindex/b/"


def test_not_built_yet(client, alice, make_docs):
    make_docs({"docs/index.md": "# x\n"}, name="later", build=False)
    response = client.get("/docs/component/default/later/")
    assert response.status_code == 200 and 'data-testid="not-built"' in response.content.decode()


def test_images_are_served_with_a_safe_type(client, alice, docs_entity):
    response = client.get("/docs/component/default/svc/_assets/logo.png")
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff" and "sandbox" in response["Content-Security-Policy"]
    assert client.get("/docs/component/default/svc/_assets/mkdocs.yml").status_code == 404


def test_a_private_entity_of_another_team_404s_like_a_missing_one(client, demo_org, make_docs):
    make_docs(DOCS, name="secret-svc", private=True)
    client.force_login(demo_org["users"]["carol"])  # recsys, not fraud-ml
    for url in ["/docs/component/default/secret-svc/", "/docs/component/default/secret-svc/guide/",
                "/docs/component/default/secret-svc/_assets/logo.png",
                "/api/v1/techdocs/sites/component/default/secret-svc",
                "/api/v1/techdocs/sites/component/default/secret-svc/page?path=guide/"]:
        hidden, missing = client.get(url), client.get(url.replace("secret-svc", "no-such-svc"))
        assert hidden.status_code == missing.status_code == 404, url
        assert _main(hidden, "secret-svc") == _main(missing, "no-such-svc"), url
    assert client.post("/docs/component/default/secret-svc/_rebuild/").status_code == 404
    assert "secret-svc" not in client.get("/docs/").content.decode()
    client.force_login(demo_org["users"]["bob"])  # fraud-ml member: may see it
    assert client.get("/docs/component/default/secret-svc/guide/").status_code == 200


def test_index_lists_visible_docs_with_plinth_first(client, alice, docs_entity):
    plinth = Entity.objects.get(ref="component:default/plinth")
    services.entity_docs_build(entity=plinth)
    html = client.get("/docs/").content.decode()
    assert html.index("/docs/component/default/plinth/") < html.index("/docs/component/default/svc/")
    assert "/catalog/api/default/plinth-api/definition/" in html


def test_the_portal_documents_itself(client, alice):
    plinth = Entity.objects.get(ref="component:default/plinth")
    site = services.docs_build(entity=plinth)
    assert site.status == "ok", site.errors
    titles = set(site.pages.values_list("title", flat=True))
    assert {"Getting started", "Register an entity", "Request an approval", "API tokens", "Command line"} <= titles
    html = client.get("/docs/component/default/plinth/guide/api-tokens/").content.decode()
    assert "Bearer" in html and "/accounts/tokens/" in html


def test_rebuild_needs_the_edit_right(client, demo_org, docs_entity, monkeypatch):
    queued = []
    monkeypatch.setattr("portal.techdocs.receivers.enqueue", queued.append)
    client.force_login(demo_org["users"]["heidi"])  # fraud-ml viewer
    assert client.post("/docs/component/default/svc/_rebuild/").status_code == 403
    client.force_login(demo_org["users"]["bob"])  # fraud-ml member
    assert client.post("/docs/component/default/svc/_rebuild/").status_code == 302
    assert queued == [["component:default/svc"]]


def test_docs_tab_on_the_entity_page(client, alice, docs_entity):
    html = client.get("/catalog/component/default/svc/").content.decode()
    assert 'href="/catalog/component/default/svc/docs/"' in html
    html = client.get("/catalog/component/default/svc/docs/").content.decode()
    assert 'data-testid="docs-tab"' in html and "Scoring docs" in html and "Open the docs" in html


def test_serving_a_page_is_a_constant_handful_of_queries(client, alice, docs_entity, make_docs):
    """Entity lookup (permission-filtered) + one indexed read for the page with its site."""
    client.get("/docs/component/default/svc/guide/")
    with CaptureQueriesContext(connection) as small:
        client.get("/docs/component/default/svc/guide/")
    big = make_docs({f"docs/p{i}.md": f"# Page {i}\n" for i in range(120)} | {"docs/index.md": "# I\n"}, name="big")
    assert DocSite.objects.get(entity=big).page_count == 121
    with CaptureQueriesContext(connection) as large:
        client.get("/docs/component/default/big/p7/")
    own = [q["sql"] for q in large.captured_queries if "techdocs_" in q["sql"]]
    assert len(own) == 1, own
    assert len(large.captured_queries) == len(small.captured_queries)


def test_docs_api(client, alice, docs_entity, monkeypatch):
    queued = []
    monkeypatch.setattr("portal.techdocs.receivers.enqueue", queued.append)
    site = client.get("/api/v1/techdocs/sites/component/default/svc").json()
    assert site["status"] == "partial" and site["pageCount"] == 3 and site["nav"][0] == {"title": "Home", "path": ""}
    page = client.get("/api/v1/techdocs/sites/component/default/svc/page", {"path": "guide/"}).json()
    assert page["title"] == "Guide" and "doc-step-one" in page["html"]
    listing = client.get("/api/v1/techdocs/sites").json()
    assert [s["entityRef"] for s in listing["items"]] == ["component:default/svc"]
    assert client.post("/api/v1/techdocs/sites/component/default/svc/build").status_code == 202
    assert queued == [["component:default/svc"]]
    client.force_login(alice.__class__.objects.get(username="heidi"))  # a viewer
    assert client.post("/api/v1/techdocs/sites/component/default/svc/build").status_code == 403
