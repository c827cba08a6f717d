"""Docs pages are searchable through the portal's search service, with the entity's visibility."""

import re
from pathlib import Path

import pytest

from catalog import services as catalog_services
from catalog.models import Entity
from portal.search import selectors as search
from portal.search.snippets import SNIPPET_CHARS
from portal.techdocs import services

pytestmark = pytest.mark.django_db


def test_docs_pages_are_found_and_hidden_like_their_entity(make_docs, demo_org, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        make_docs({"docs/index.md": "# Home\n", "docs/runbook.md": "# Runbook\n\nRestart the quokkatron gently.\n"},
                  name="open-svc")
        make_docs({"docs/index.md": "# Secret\n\nThe zebraphone protocol.\n"}, name="hidden-svc", private=True)
    alice, carol = demo_org["users"]["alice"], demo_org["users"]["carol"]
    hits = search.search(alice, "quokkatron").hits
    assert [(h.kind, h.title, h.url) for h in hits] == [("doc", "Runbook", "/docs/component/default/open-svc/runbook/")]
    assert [h.url for h in search.search(alice, "zebraphone").hits] == ["/docs/component/default/hidden-svc/"]
    assert search.search(carol, "zebraphone").hits == []
    assert search.search(carol, "quokkatron").hits


def test_rebuilds_and_unregistering_update_the_index(make_docs, demo_org, django_capture_on_commit_callbacks):
    alice = demo_org["users"]["alice"]
    with django_capture_on_commit_callbacks(execute=True):
        entity = make_docs({"docs/index.md": "# Home\n\nAbout the wombatizer.\n"}, name="moving")
    assert search.search(alice, "wombatizer").hits
    Path(entity.source).with_name("docs").joinpath("index.md").write_text("# Home\n\nNow otters.\n")
    with django_capture_on_commit_callbacks(execute=True):
        services.docs_build(entity=entity)
    assert not search.search(alice, "wombatizer").hits and search.search(alice, "otters").hits
    with django_capture_on_commit_callbacks(execute=True):
        catalog_services.location_unregister(location=entity.location, actor=None)
    assert not Entity.objects.filter(ref="component:default/moving").exists()
    assert not search.search(alice, "otters").hits


def test_a_removed_annotation_takes_the_pages_out_of_search(make_docs, demo_org, django_capture_on_commit_callbacks):
    alice = demo_org["users"]["alice"]
    with django_capture_on_commit_callbacks(execute=True):
        entity = make_docs({"docs/index.md": "# Home\n\nThe capybarometer.\n"}, name="dropping")
    assert search.search(alice, "capybarometer").hits
    data = entity.data
    del data["metadata"]["annotations"]["plinth.dev/techdocs-ref"]
    Entity.objects.filter(pk=entity.pk).update(data=data)
    entity.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        services.entity_docs_build(entity=entity)
    assert not search.search(alice, "capybarometer").hits


def test_removed_entities_pages_leave_search_in_a_constant_number_of_queries(
        make_docs, demo_org, django_capture_on_commit_callbacks):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from portal.techdocs import search as docs_search

    alice = demo_org["users"]["alice"]
    refs = []
    with django_capture_on_commit_callbacks(execute=True):
        for n in range(4):
            refs.append(make_docs({"docs/index.md": f"# Home\n\nPlatypod number{n}.\n",
                                   "docs/more.md": "# More\n\nPlatypod extras.\n"}, name=f"gone-{n}").ref)
    assert len(search.search(alice, "platypod").hits) == 8
    counts = []
    for chosen in (refs[:1], refs[1:]):
        with CaptureQueriesContext(connection) as queries:
            docs_search.drop(chosen)
        counts.append(len(queries))
    assert counts[0] == counts[1], counts  # one entity or three: the same statements
    assert search.search(alice, "platypod").hits == []


def test_a_kept_orphans_pages_stay_in_search(make_docs, demo_org, settings, django_capture_on_commit_callbacks):
    """Gone from its file under the `keep` strategy, an entity stays in the catalog (flagged orphan) with
    its docs site: its pages stay findable."""
    from catalog.models import Location

    settings.PLINTH_CATALOG_ORPHAN_STRATEGY = "keep"
    alice = demo_org["users"]["alice"]
    with django_capture_on_commit_callbacks(execute=True):
        entity = make_docs({"docs/index.md": "# Home\n\nThe narwhalometer.\n"}, name="left-behind")
    assert search.search(alice, "narwhalometer").hits
    path = Path(entity.location.target)
    path.write_text("apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: newcomer}\n"
                    "spec: {type: service, lifecycle: production, owner: fraud-ml}\n")
    with django_capture_on_commit_callbacks(execute=True):
        catalog_services.location_refresh(location=Location.objects.get(pk=entity.location_id))
    assert Entity.objects.get(pk=entity.pk).orphan
    assert [h.url for h in search.search(alice, "narwhalometer").hits] == ["/docs/component/default/left-behind/"]


def test_a_page_is_hidden_as_soon_as_its_entity_becomes_private(make_docs, demo_org,
                                                                  django_capture_on_commit_callbacks):
    """The docs pages' search documents carry their entity's visibility: a refresh that makes the entity
    private hides its pages at the commit, not when a worker gets round to the rebuild it queues."""
    from catalog.models import Location

    alice, carol = demo_org["users"]["alice"], demo_org["users"]["carol"]
    with django_capture_on_commit_callbacks(execute=True):
        entity = make_docs({"docs/index.md": "# Home\n\nThe okapiscope.\n"}, name="going-private")
    assert search.search(carol, "okapiscope").hits
    path = Path(entity.location.target)
    path.write_text(path.read_text().replace("  annotations:\n", "  annotations:\n    plinth.dev/visibility: private\n"))
    with django_capture_on_commit_callbacks(execute=True):
        catalog_services.location_refresh(location=Location.objects.get(pk=entity.location_id))
    assert Entity.objects.get(pk=entity.pk).visibility == "private"
    assert search.search(carol, "okapiscope").hits == []
    assert [h.url for h in search.search(alice, "okapiscope").hits] == ["/docs/component/default/going-private/"]


@pytest.mark.parametrize("engine", [pytest.param("sqlite", id="sqlite"),
                                    pytest.param("postgresql", id="postgresql", marks=pytest.mark.prod_smoke)])
def test_the_repair_sweep_mends_docs_pages_whose_index_write_was_lost(engine, make_docs, demo_org,
                                                                      django_capture_on_commit_callbacks):
    """The docs' half of the search repair sweep (`index.repair`): a page whose document was lost is
    indexed, a page whose entity changed after its document was written (made private, say, and that
    index write lost) is rewritten, a document whose page is gone is dropped; changes younger than the
    settle time are left to the write on its way, and a second sweep finds nothing."""
    from django.db import connection
    from django.utils import timezone

    from portal.search import index
    from portal.search.backends import get_backend
    from portal.search.models import SearchDocument
    from portal.search.registry import get as source
    from portal.techdocs.models import DocPage
    from portal.techdocs.search import page_key

    if connection.vendor != engine:
        pytest.skip(f"runs on {engine}; this run uses {connection.vendor}")
    alice, carol = demo_org["users"]["alice"], demo_org["users"]["carol"]
    with django_capture_on_commit_callbacks(execute=True):
        entity = make_docs({"docs/index.md": "# Home\n\nThe axolotlmeter.\n", "docs/guide.md": "# Guide\n\nThe tapirgraph.\n",
                            "docs/old.md": "# Old\n\nThe dodoscope.\n"}, name="mended")
    assert index.repair(settle_seconds=0)["techdocs"] == {"indexed": 0, "removed": 0}, "a build leaves nothing to mend"
    backend = get_backend()
    backend.delete(*backend.with_keys([page_key(entity.ref, "")]))  # its document lost
    DocPage.objects.filter(site__entity=entity, path="old/").delete()  # gone without telling search
    Entity.objects.filter(pk=entity.pk).update(visibility="private", updated_at=timezone.now())  # no signal
    assert search.search(alice, "axolotlmeter").hits == []
    assert search.search(carol, "tapirgraph").hits and search.search(carol, "dodoscope").hits

    assert index.repair(settle_seconds=3600)["techdocs"] == {"indexed": 0, "removed": 1}  # the others are too young
    assert search.search(alice, "dodoscope").hits == []
    assert index.repair(settle_seconds=0)["techdocs"] == {"indexed": 2, "removed": 0}
    assert [h.url for h in search.search(alice, "axolotlmeter").hits] == ["/docs/component/default/mended/"]
    assert search.search(carol, "tapirgraph").hits == [], "the page follows its entity into private"
    assert [h.url for h in search.search(alice, "tapirgraph").hits] == ["/docs/component/default/mended/guide/"]
    assert index.repair(settle_seconds=0)["techdocs"] == {"indexed": 0, "removed": 0}
    assert source("techdocs").unindexed(10, timezone.now()) == ([], [])
    assert SearchDocument.objects.filter(source="techdocs").count() == DocPage.objects.count() == 2


ENGINES = [pytest.param("sqlite", id="sqlite"), pytest.param("postgresql", id="postgresql", marks=pytest.mark.prod_smoke)]
# Text enough that the matched sentence sits deep in the page (beyond the first 1,000 characters).
PROSE = " ".join(f"Paragraph word{i} about serving." for i in range(60))


@pytest.mark.parametrize("engine", ENGINES)
def test_a_docs_hit_shows_the_sentence_of_its_page_that_matched(engine, make_docs, demo_org, client,
                                                                   django_capture_on_commit_callbacks):
    """A phrase found only in a docs page's text: the hit's snippet (page, API) is the window of the
    page around it, marked, escaped (a `<script>` in the page is text), without Markdown, cut at word
    boundaries; the page's entity stays named beside it. A private page's text never shows to a reader
    who may not see it, not even as a snippet."""
    from django.db import connection

    if connection.vendor != engine:
        pytest.skip(f"runs on {engine}; this run uses {connection.vendor}")
    page = (f"# Monitoring\n\n{PROSE}\n\n## Alerts\n\nWhen the **drift threshold** is crossed, page "
            f"`<script>alert(1)</script>` the on-call.\n\n{PROSE}\n")
    with django_capture_on_commit_callbacks(execute=True):
        make_docs({"docs/index.md": "# Home\n", "docs/monitoring.md": page}, name="drift-svc", title="Drift service")
        make_docs({"docs/index.md": "# Secret\n\nThe drift threshold of the zebraphone is 0.4.\n"},
                  name="hidden-svc", private=True)
    alice, carol = demo_org["users"]["alice"], demo_org["users"]["carol"]
    hits = search.search(alice, "drift threshold").hits
    hit = next(h for h in hits if h.url == "/docs/component/default/drift-svc/monitoring/")
    html = str(hit.snippet)
    assert "When the <mark>drift</mark> <mark>threshold</mark> is crossed" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script" not in html
    assert "**" not in html and "`" not in html and "##" not in html
    assert html.startswith("…") and html.endswith("…")
    text = html.replace("<mark>", "").replace("</mark>", "").replace("&lt;", "<").replace("&gt;", ">")
    assert len(text) <= SNIPPET_CHARS + 2
    page_words = {w.strip(".,`*") for w in page.split()}
    assert {w.strip(".,") for w in text.strip("…").split()} <= page_words  # whole words only
    assert str(hit.context) == "<mark>Drift</mark> service docs"  # one query word: the page's window has two

    client.force_login(alice)
    body = client.get("/search/", {"q": "drift threshold"}).content.decode()
    assert "When the <mark>drift</mark> <mark>threshold</mark> is crossed" in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body and "<script>alert" not in body
    assert "zebraphone" in body  # alice's team owns the private page
    api = client.get("/api/v1/search", {"q": "drift threshold"}).json()
    snippets = {item["url"]: item["snippet"] for item in api["items"]}
    assert snippets["/docs/component/default/drift-svc/monitoring/"] == html

    client.force_login(carol)
    assert "zebraphone" not in client.get("/search/", {"q": "drift threshold"}).content.decode()
    assert "zebraphone" not in str(client.get("/api/v1/search", {"q": "drift threshold"}).content)
    assert not [h for h in search.search(carol, "drift threshold").hits if "hidden-svc" in h.url]


@pytest.mark.parametrize("engine", ENGINES)
def test_docs_snippets_cost_no_query_per_hit(engine, make_docs, demo_org, client, django_capture_on_commit_callbacks):
    """The page's snippets come with its hits, in the search's one statement: a page of one docs hit
    and one of twelve cost the same queries (page and API)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    if connection.vendor != engine:
        pytest.skip(f"runs on {engine}; this run uses {connection.vendor}")
    with django_capture_on_commit_callbacks(execute=True):
        make_docs({"docs/index.md": f"# Home\n\n{PROSE} The lone quokkameter.\n"}, name="one-svc")
        for n in range(3):
            make_docs({f"docs/p{i}.md": f"# Page {i}\n\n{PROSE} The many wallabometer {i}.\n" for i in range(4)},
                      name=f"many-{n}")
    client.force_login(demo_org["users"]["alice"])
    counts = {}
    for word, expected in (("quokkameter", 1), ("wallabometer", 12)):
        for url in ("/search/", "/api/v1/search"):
            with CaptureQueriesContext(connection) as queries:
                response = client.get(url, {"q": word})
            assert response.status_code == 200
            counts.setdefault(url, []).append(len(queries))
        hits = search.search(demo_org["users"]["alice"], word).hits
        assert len(hits) == expected and all(f"<mark>{word}</mark>" in str(h.snippet) for h in hits)
    assert counts["/search/"][0] == counts["/search/"][1], counts
    assert counts["/api/v1/search"][0] == counts["/api/v1/search"][1], counts


def test_a_docs_hit_reads_as_the_page_does(make_docs, demo_org, client, django_capture_on_commit_callbacks):
    """On the search page and in the typeahead a docs hit shows its title once (not again as a lowercased
    name), its snippet has no spaces inside `(**blocked**)` or before the comma after `code`, and the kind
    filter names kinds in words ("Docs", "Feature sets") while its parameter stays the kind's key."""
    with django_capture_on_commit_callbacks(execute=True):
        make_docs({"docs/index.md": "# Home\n",
                   "docs/gate.md": "# Request an Approval\n\nThe gate stops the numbat request (**blocked**) and "
                                   "says why: see `discovery.py`, and [Feast](https://feast.dev).\n"},
                  name="gate-svc")
    client.force_login(demo_org["users"]["alice"])
    body = client.get("/search/", {"q": "numbat"}).content.decode()
    assert "Request an Approval" in body and "request an approval" not in body
    assert "<mark>numbat</mark> request (blocked) and says why: see discovery.py, and Feast." in body
    assert re.search(r'data-facet="kind" data-value="doc"><span>Docs</span><span class="n">1</span>', body)
    assert "kind=doc" in body
    ahead = client.get("/search/typeahead/", {"q": "request an approval"}).content.decode()
    titles = [re.sub(r"</?mark>", "", t) for t in re.findall(r'<span class="ta-title">(.*?)</span>', ahead)]
    metas = re.findall(r'<span class="ta-meta">(.*?)</span>', ahead)
    assert "Request an Approval" in titles and metas
    assert not [m for m in metas if "request an approval" in m or m.startswith(" · ")], metas

    body = client.get("/search/", {"q": "feature"}).content.decode()
    assert 'data-facet="kind" data-value="featureset"><span>Feature sets</span>' in body
    assert ">featureset<" not in body
