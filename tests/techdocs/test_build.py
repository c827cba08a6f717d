"""Building a docs folder: navigation, links and images, containment, per-file errors, idempotence."""

import os

import pytest

from portal.techdocs import services
from portal.techdocs.models import BuildStatus, DocAsset, DocPage, DocSite

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 40


def pages(entity) -> dict[str, DocPage]:
    return {p.source_path: p for p in DocPage.objects.filter(site__entity=entity)}


def errors(entity) -> list[str]:
    site = DocSite.objects.get(entity=entity)
    return [f"{e['path']}: {e['message']}" for e in site.errors]


def test_nav_order_and_titles_come_from_mkdocs_yml_and_nothing_else(make_docs):
    """nav sets order and titles; plugins, hooks and python tags are ignored, never executed."""
    entity = make_docs({
        "docs/mkdocs.yml": (
            "site_name: Scoring\n"
            "plugins: [techdocs-core, {hooks: evil.py}]\n"
            "hooks: [evil.py]\n"
            "markdown_extensions:\n  - pymdownx.emoji:\n      emoji_index: !!python/name:os.system\n"
            "theme: {name: material, custom_dir: ../../}\n"
            "nav:\n  - Start here: index.md\n  - Guides:\n      - Zeta first: guide/zeta.md\n      - guide/alpha.md\n"
            "  - Elsewhere: https://example.com/\n"
        ),
        "docs/index.md": "# Home\n",
        "docs/guide/alpha.md": "# Alpha page\n",
        "docs/guide/zeta.md": "# Zeta\n",
        "docs/unlisted.md": "# Unlisted\n",
    })
    site = DocSite.objects.get(entity=entity)
    assert site.status == BuildStatus.OK, site.errors
    assert site.site_name == "Scoring"
    assert site.nav == [
        {"title": "Start here", "path": ""},
        {"title": "Guides", "children": [{"title": "Zeta first", "path": "guide/zeta/"},
                                         {"title": "Alpha page", "path": "guide/alpha/"}]},
        {"title": "Elsewhere", "url": "https://example.com/"},
    ]
    ordered = list(DocPage.objects.filter(site=site).order_by("order").values_list("path", flat=True))
    assert ordered == ["", "guide/zeta/", "guide/alpha/", "unlisted/"]
    assert pages(entity)["guide/zeta.md"].title == "Zeta first"


def test_without_mkdocs_the_nav_follows_the_folders(make_docs):
    entity = make_docs({"docs/index.md": "# Home\n", "docs/b.md": "# Bee\n", "docs/a/index.md": "# A section\n",
                        "docs/a/x.md": "---\ntitle: From front matter\n---\n# Heading\n"})
    site = DocSite.objects.get(entity=entity)
    assert site.nav[0] == {"title": "Home", "path": ""}
    assert {"title": "Bee", "path": "b/"} in site.nav
    section = next(item for item in site.nav if "children" in item)
    assert {"title": "From front matter", "path": "a/x/"} in section["children"]


def test_links_and_images_resolve_inside_the_docs_folder(make_docs):
    entity = make_docs({
        "docs/index.md": "# Home\n\n[Guide](guide/start.md#usage) [Dir](guide/) ![logo](img/logo.png) "
                         "[img link](img/logo.png)\n",
        "docs/guide/index.md": "# Guide index\n\n[back](../index.md) [sibling](start.md)\n",
        "docs/guide/start.md": "# Start\n\n## Usage\n",
        "docs/img/logo.png": PNG,
    })
    html = pages(entity)["index.md"].html
    base = "/docs/component/default/svc/"
    assert f'href="{base}guide/start/#doc-usage"' in html
    assert f'href="{base}guide/"' in html
    assert f'src="{base}_assets/img/logo.png"' in html
    assert f'href="{base}_assets/img/logo.png"' in html
    assert f'href="{base}"' in pages(entity)["guide/index.md"].html
    asset = DocAsset.objects.get(site__entity=entity)
    assert asset.path == "img/logo.png" and asset.content_type == "image/png"
    assert DocSite.objects.get(entity=entity).status == BuildStatus.OK


def test_broken_and_escaping_links_are_removed_and_reported(make_docs, tmp_path):
    (tmp_path / "secret.md").write_text("# Secret\n")
    entity = make_docs({
        "docs/index.md": "# Home\n\n[gone](missing.md) [out](../../secret.md) ![no](nope.png) "
                         "![fake](fake.png) [ok](other.md)\n",
        "docs/other.md": "# Other\n",
        "docs/fake.png": b"<html><script>alert(1)</script></html>",
    })
    html = pages(entity)["index.md"].html
    assert "missing.md" not in html and "secret" not in html and "nope.png" not in html
    found = errors(entity)
    assert any("Broken link: 'missing.md'" in e for e in found)
    assert any("Link escapes the docs folder" in e for e in found)
    assert any("Broken image: 'nope.png'" in e for e in found)
    assert any("fake.png: This file is not a valid image/png image" in e for e in found)
    assert not DocAsset.objects.filter(site__entity=entity).exists()
    site = DocSite.objects.get(entity=entity)
    assert site.status == BuildStatus.PARTIAL and site.page_count == 2


def test_docs_folder_escaping_the_location_is_refused(make_docs, tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "index.md").write_text("# Not yours\n")
    entity = make_docs({}, ref="dir:../elsewhere")
    site = DocSite.objects.get(entity=entity)
    assert site.status == BuildStatus.FAILED
    assert "outside the registered location's folder" in site.errors[0]["message"]
    assert not DocPage.objects.filter(site=site).exists()


def test_symlinks_out_of_the_docs_folder_are_refused(make_docs, tmp_path):
    outside = tmp_path / "outside.md"
    outside.write_text("# Leaked /etc/passwd\n")
    entity = make_docs({"docs/index.md": "# Home\n[leak](leak.md)\n"}, build=False)
    docs_dir = os.path.dirname(entity.source) + "/docs"
    os.symlink(outside, docs_dir + "/leak.md")
    os.symlink("/etc/hostname", docs_dir + "/host.md")
    services.docs_build(entity=entity)
    found = errors(entity)
    assert any(e.startswith("leak.md: Symbolic link pointing outside") for e in found)
    assert any(e.startswith("host.md: Symbolic link pointing outside") for e in found)
    assert set(pages(entity)) == {"index.md"}
    assert "Leaked" not in pages(entity)["index.md"].html


def test_a_symlinked_docs_folder_pointing_outside_is_refused(make_docs, tmp_path):
    (tmp_path / "real-docs").mkdir()
    (tmp_path / "real-docs" / "index.md").write_text("# Outside\n")
    entity = make_docs({}, build=False)
    os.symlink(tmp_path / "real-docs", os.path.dirname(entity.source) + "/docs")
    site = services.docs_build(entity=entity)
    assert site.status == BuildStatus.FAILED and "outside" in site.errors[0]["message"]


def test_bad_files_get_an_error_page_and_the_rest_of_the_site_builds(make_docs, settings):
    entity = make_docs({
        "docs/index.md": "# Home\n",
        "docs/huge.md": "# Huge\n" + "x" * (1024 * 1024 + 10),
        "docs/binary.md": b"# Bin\x00\x01\x02",
        "docs/latin1.md": "# Caf\xe9\n".encode("latin-1"),
        "docs/front.md": "---\ntitle: [broken\n---\n# Body still renders\n",
        "docs/good.md": "# Good\n",
    })
    by = pages(entity)
    assert "larger than 1024 KiB" in by["huge.md"].error
    assert "looks binary" in by["binary.md"].error
    assert "not valid UTF-8" in by["latin1.md"].error
    assert "Malformed YAML front matter" in by["front.md"].error and "Body still renders" in by["front.md"].html
    assert by["good.md"].error == "" and "<h1" in by["good.md"].html
    site = DocSite.objects.get(entity=entity)
    assert site.status == BuildStatus.PARTIAL and site.page_count == 6


def test_a_missing_folder_fails_and_keeps_the_last_good_pages(make_docs):
    entity = make_docs({"docs/index.md": "# Home\n"})
    docs_dir = os.path.dirname(entity.source) + "/docs"
    os.rename(docs_dir, docs_dir + "-moved")
    site = services.docs_build(entity=entity)
    assert site.status == BuildStatus.FAILED and "does not exist" in site.errors[0]["message"]
    assert DocPage.objects.filter(site=site).count() == 1  # still served


def test_url_locations_get_a_clear_error(make_docs):
    entity = make_docs({"docs/index.md": "# Home\n"}, build=False)
    entity.location.type = "url"
    entity.location.save()
    site = services.docs_build(entity=entity)
    assert site.status == BuildStatus.FAILED
    assert "only be built from local file locations" in site.errors[0]["message"]


@pytest.mark.parametrize("ref, message", [
    ("url:https://github.com/x/y", "only 'dir:<relative path>'"),
    ("dir:/etc", "must be a path relative"),
    ("nonsense", "only 'dir:<relative path>'"),
    ("dir://[x", "must be a path relative"),  # urllib cannot read it as a URL: a message, not a crash
])
def test_unsupported_references(make_docs, ref, message):
    entity = make_docs({"docs/index.md": "# Home\n"}, ref=ref)
    site = DocSite.objects.get(entity=entity)
    assert site.status == BuildStatus.FAILED and message in site.errors[0]["message"]


def test_unchanged_docs_are_not_rewritten_and_changes_are(make_docs):
    """The build is idempotent (a task may run twice) and cheap when nothing changed."""
    entity = make_docs({"docs/index.md": "# One\n"})
    first = DocPage.objects.get(site__entity=entity)
    services.docs_build(entity=entity)
    assert DocPage.objects.get(site__entity=entity).pk == first.pk
    with open(os.path.dirname(entity.source) + "/docs/index.md", "w") as fh:
        fh.write("# Two\n")
    services.docs_build(entity=entity)
    page = DocPage.objects.get(site__entity=entity)
    assert page.pk != first.pk and page.title == "Two"


def test_removing_the_annotation_removes_the_site(make_docs):
    entity = make_docs({"docs/index.md": "# One\n"})
    entity.data["metadata"]["annotations"] = {}
    entity.save()
    services.entity_docs_build(entity=entity)
    assert not DocSite.objects.filter(entity=entity).exists()


def test_backstage_annotation_and_mkdocs_docs_dir(make_docs):
    entity = make_docs({"mkdocs.yml": "site_name: Legacy\nnav:\n  - Intro: intro.md\n",
                        "docs/intro.md": "# Intro\n", "docs/index.md": "# Index\n"},
                       ref="dir:.", extra_annotations="    backstage.io/techdocs-ref: dir:.\n")
    site = DocSite.objects.get(entity=entity)
    assert site.status == BuildStatus.OK, site.errors
    assert site.nav[0] == {"title": "Intro", "path": "intro/"}
    assert set(pages(entity)) == {"intro.md", "index.md"}


def test_text_urllib_cannot_read_is_a_problem_of_the_page_not_a_failed_build(make_docs):
    """An unbalanced bracket in mkdocs.yml's repo_url or a nav entry, in a Markdown link or image, and a
    NUL in a page's front matter: the site builds and says what it left out (before, urllib's
    ValueError failed the whole build, and on PostgreSQL the NUL failed storing the page)."""
    entity = make_docs({
        "docs/mkdocs.yml": "site_name: S\nrepo_url: 'https://[github.example/org/repo'\n"
                           "nav:\n  - Home: index.md\n  - Grafana: 'https://[grafana/d'\n",
        "docs/index.md": '# Home\n\nSee <a href="https://[grafana/d">the board</a> and ![x](//[cdn/x.png).\n',
        "docs/other.md": '---\ntitle: "Intro\\0"\n---\n# Other\n',
    })
    site = DocSite.objects.get(entity=entity)
    assert site.status == BuildStatus.PARTIAL, site.errors
    assert site.edit_url == ""  # the repo_url could not be read: no edit link
    text = "\n".join(errors(entity))
    assert "index.md: Invalid URL removed: //[cdn/x.png" in text
    assert "nav entry 'https://[grafana/d' is not a page of these docs" in text
    assert "other.md: Front matter holds a NUL character" in text
    found = pages(entity)
    assert found["other.md"].title == "Other" and "\x00" not in found["other.md"].title
    assert 'href="https://[grafana/d"' not in found["index.md"].html


def test_a_nul_in_mkdocs_docs_dir_fails_the_build_with_a_message(make_docs):
    entity = make_docs({"docs/mkdocs.yml": 'docs_dir: "do\\0cs"\n', "docs/index.md": "# Home\n"})
    site = DocSite.objects.get(entity=entity)
    assert site.status == BuildStatus.FAILED and "docs_dir holds a NUL character" in site.errors[0]["message"]


def test_a_batch_builds_every_other_site_when_one_fails_and_retries_only_that_one(make_docs, monkeypatch):
    """The build task takes up to 1,000 entities (the sweep sends 200): one that fails unforeseen (the
    fault is injected) is recorded on its site and retried alone; before, the first failure retried
    the whole batch and the entities after it were not built."""
    from celery.exceptions import Retry

    from portal.techdocs import tasks

    first = make_docs({"docs/index.md": "# One\n"}, name="first", build=False)
    broken = make_docs({"docs/index.md": "# Two\n"}, name="broken", build=False)
    last = make_docs({"docs/index.md": "# Three\n"}, name="last", build=False)
    build = services.entity_docs_build

    def failing(*, entity, force=False):
        if entity.pk == broken.pk:
            raise RuntimeError("unforeseen")
        return build(entity=entity, force=force)

    monkeypatch.setattr(services, "entity_docs_build", failing)
    retried = {}
    monkeypatch.setattr(tasks.build_entity_docs, "retry", lambda **kwargs: retried.update(kwargs) or Retry())
    with pytest.raises(Retry):
        tasks.build_entity_docs.run([first.ref, broken.ref, last.ref])
    assert retried["args"] == [[broken.ref], False]
    assert DocSite.objects.get(entity=first).status == DocSite.objects.get(entity=last).status == BuildStatus.OK
    assert "RuntimeError: unforeseen" in DocSite.objects.get(entity=broken).errors[0]["message"]
