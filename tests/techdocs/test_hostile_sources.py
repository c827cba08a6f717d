"""Hostile docs sources (session 34 review): Markdown that made Python-Markdown scan quadratically,
mkdocs.yml nested too deeply for PyYAML, edit URLs longer than their column, page names the portal's
own routes shadow, and page names that need quoting in URLs. Each must cost at most its own page or
file, named, and never the whole build."""

from __future__ import annotations

import time

import pytest

from catalog import services as catalog_services
from portal.techdocs import builder, rendering
from portal.techdocs.models import BuildStatus, DocPage, DocSite
from tests.factories import write_files

pytestmark = pytest.mark.django_db


# -- 1. the Markdown scan budget -------------------------------------------------------------------
@pytest.mark.parametrize("text", ["[" * 20000, "[a](" * 5000, "![" * 10000, "<a " * 20000,
                                  "[" * 20000 + "]", '<a b="x>" ' * 5000],
                         ids=["brackets", "link-open", "image-open", "tag-open", "one-close", "quoted-gt"])
def test_unclosed_brackets_render_in_linear_time(text):
    """These took from 40 s to 6 min before the budget; now about a second (2 cores, shared)."""
    started = time.monotonic()
    out = rendering.render_markdown(text, rendering.LinkPolicy())
    assert time.monotonic() - started < 10
    assert rendering.TRUNCATED in out.problems
    assert out.text  # the brackets are kept as text


def test_normal_markdown_is_not_cut_short():
    """A page with many links, images, tags and stray brackets reads far less than its budget."""
    text = "".join(f"See [page {i}](https://e.com/{i} \"t\") and ![x](https://e.com/{i}.png) "
                   f"<span>[not a link {i}</span> [a] [b][c]\n\n" for i in range(2000))
    out = rendering.render_markdown(text, rendering.LinkPolicy())
    assert rendering.TRUNCATED not in out.problems
    assert out.html.count('href="https://e.com/') == 2000


def test_a_budget_cut_keeps_what_was_read_and_the_rest_as_text(monkeypatch):
    """Over budget, a scan reads nothing: the `[` stays text (escaped and sanitised as ever)."""
    monkeypatch.setattr(rendering, "SCAN_BUDGET_MIN", 10)
    monkeypatch.setattr(rendering, "SCAN_BUDGET_PER_CHAR", 1)
    out = rendering.render_markdown("[first](https://e.com/1)\n\n" + "[" * 200 + " [last](https://e.com/2)",
                                    rendering.LinkPolicy())
    assert 'href="https://e.com/1"' in out.html  # paragraphs are rendered in order: the first was in budget
    assert 'href="https://e.com/2"' not in out.html and "[last](https://e.com/2)" in out.html
    assert rendering.TRUNCATED in out.problems


def test_model_card_with_unclosed_brackets_is_quick_in_the_request(tmp_path, demo_org, client):
    """A model card not built yet is rendered in the request (selectors.model_card_facts, the model
    page, the API): with the budget that is cheap even for hostile cards."""
    client.force_login(demo_org["users"]["alice"])
    write_files(tmp_path / "m", {
        "catalog-info.yaml": "apiVersion: plinth.dev/v1alpha1\nkind: Model\nmetadata: {name: mc}\n"
                             "spec: {type: classifier, lifecycle: production, owner: fraud-ml, modelCard: card.md}\n",
        "card.md": "## Intended use\n\n" + "[" * 20000})
    plan = catalog_services.location_register(target=str(tmp_path / "m" / "catalog-info.yaml"), actor=None,
                                              file_roots=None)
    assert not plan.errors
    for url in ("/catalog/model/default/mc/", "/api/v1/techdocs/model-cards/default/mc"):
        started = time.monotonic()
        assert client.get(url).status_code == 200
        assert time.monotonic() - started < 10, url


def test_a_slow_page_is_reported_by_name(make_docs, monkeypatch):
    monkeypatch.setattr(builder, "SLOW_PAGE_SECONDS", 0)
    entity = make_docs({"docs/index.md": "# Home\n", "docs/slow.md": "[" * 5000})
    site = DocSite.objects.get(entity=entity)
    assert any(e["path"] == "slow.md" and "seconds to render" in e["message"] for e in site.errors)


def test_pages_past_the_render_budget_are_named_not_rendered(make_docs, monkeypatch):
    monkeypatch.setattr(builder, "RENDER_SECONDS", -1)
    entity = make_docs({"docs/index.md": "# Home\n", "docs/b.md": "# B\n"})
    site = DocSite.objects.get(entity=entity)
    assert site.status == BuildStatus.PARTIAL
    assert {e["path"] for e in site.errors if "rendering budget" in e["message"]} == {"index.md", "b.md"}
    assert DocPage.objects.get(site=site, source_path="b.md").error


# -- 2. mkdocs.yml nested too deeply --------------------------------------------------------------
@pytest.mark.parametrize("mkdocs", ["nav: " + "[" * 3000 + "]" * 3000 + "\n",
                                    "nav:\n" + "".join("  " * i + "- x:\n" for i in range(400))],
                         ids=["flow", "block"])
def test_deeply_nested_mkdocs_is_a_problem_of_that_file(make_docs, client, demo_org, mkdocs):
    client.force_login(demo_org["users"]["alice"])
    entity = make_docs({"docs/mkdocs.yml": mkdocs, "docs/index.md": "# Hi\n"}, name="mk")
    site = DocSite.objects.get(entity=entity)
    assert site.status == BuildStatus.PARTIAL
    assert [e for e in site.errors if e["path"] == "mkdocs.yml" and "nested too deeply" in e["message"]]
    assert site.pages.count() == 1
    html = client.get("/docs/component/default/mk/").content.decode()
    assert "could not be stored" not in html and "Hi" in html


# -- 3. edit URLs longer than their column ---------------------------------------------------------
def test_overlong_repo_url_is_dropped_with_a_problem(make_docs):
    entity = make_docs({"docs/mkdocs.yml": "repo_url: https://git.example.com/" + "a" * 2100 + "\n",
                        "docs/index.md": "# Hi\n"}, name="mk")
    site = DocSite.objects.get(entity=entity)
    assert site.status == BuildStatus.PARTIAL and site.edit_base == ""
    assert [e for e in site.errors if e["path"] == "mkdocs.yml" and "edit URL" in e["message"]]
    assert site.pages.count() == 1


def test_overlong_edit_url_annotation_is_dropped_with_a_problem(make_docs):
    entity = make_docs({"docs/index.md": "# Hi\n"}, name="ed", extra_annotations=(
        "    backstage.io/edit-url: https://git.example.com/" + "a" * 2100 + "\n"))
    site = DocSite.objects.get(entity=entity)
    assert site.edit_url == "" and site.pages.count() == 1
    assert [e for e in site.errors if "backstage.io/edit-url" in e["message"]]


# -- 4. page names the portal's routes take --------------------------------------------------------
def test_reserved_page_names_are_reported(make_docs):
    entity = make_docs({"docs/index.md": "# Home\n\n[r](_rebuild.md)\n", "docs/_rebuild.md": "# R\n",
                        "docs/_definition-source.md": "# D\n", "docs/_assets/setup.md": "# S\n",
                        "docs/_rebuilt.md": "# fine\n"})
    site = DocSite.objects.get(entity=entity)
    named = {e["path"] for e in site.errors if "reserves" in e["message"]}
    assert named == {"_rebuild.md", "_definition-source.md", "_assets/setup.md"}
    assert set(site.pages.values_list("source_path", flat=True)) == {"index.md", "_rebuilt.md"}


# -- 5. page names that need quoting ---------------------------------------------------------------
def test_search_hits_and_edit_links_quote_page_names(make_docs, client, demo_org,
                                                     django_capture_on_commit_callbacks):
    client.force_login(demo_org["users"]["alice"])
    with django_capture_on_commit_callbacks(execute=True):
        make_docs({"docs/mkdocs.yml": "repo_url: https://git.example.com/r\n", "docs/index.md": "# Home\n",
                   "docs/faq#1.md": "# FAQ\n\nplatypusword one\n", "docs/what?.md": "# What\n\nplatypusword two\n"},
                  name="spc")
    hits = client.get("/api/v1/search?q=platypusword").json()
    urls = sorted(h["url"] for h in hits["items"] if "/spc/" in h["url"])
    assert urls == ["/docs/component/default/spc/faq%231/", "/docs/component/default/spc/what%3F/"]
    for url in urls:
        assert client.get(url).status_code == 200
    html = client.get("/docs/component/default/spc/faq%231/").content.decode()
    assert "https://git.example.com/r/edit/main/docs/faq%231.md" in html



def test_stray_tags_do_not_spend_the_links_budget():
    """`a<b` in prose is read by the HTML parser up to the next `>`: a few of them in a long page must
    not leave the page's links unrendered."""
    text = "if a<b then\n\n" * 5 + "Plain words and more words here.\n\n" * 3000 + "[last](https://e.com/z)\n"
    out = rendering.render_markdown(text, rendering.LinkPolicy())
    assert 'href="https://e.com/z"' in out.html
