"""Property-based hostile Markdown: a docs page generated from nested lists, links of every scheme, raw
HTML with scripts and event handlers, entity refs, huge tables, unterminated fences and bad front matter
is registered, built as the worker builds it, and served through the docs page and the page API. Every
example: the page answers 200 (never a 5xx), and its content carries no script, event handler,
dangerous URL or active element (tests/hostile.py, docs/security.md)."""

from __future__ import annotations

import itertools
import re

import pytest
from django.test import Client
from hypothesis import given

from catalog import services as catalog_services
from catalog.models import Entity
from portal.accounts.models import Role
from portal.techdocs import services
from tests import hostile
from tests.factories import MembershipFactory, TeamFactory, UserFactory, write_files

pytestmark = pytest.mark.django_db

OWNER = "docs-team"
DESCRIPTOR = ("apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: hostile-docs\n"
              "  annotations: {plinth.dev/techdocs-ref: 'dir:./docs'}\n"
              f"spec: {{type: service, lifecycle: production, owner: {OWNER}}}\n")
ACTIVE = re.compile(r"<\s*/?\s*(script|iframe|object|embed|form|base|meta|style|svg|math|link|frame|input|button)\b", re.I)
HANDLER = re.compile(r"<[^>]*\son[a-z]+\s*=", re.I)
# Inside a tag only: escaped text (a code block showing `<a href="javascript:...">`) is harmless.
BAD_URL = re.compile(r"""<[^>]*\b(?:href|src|action|formaction|xlink:href|srcset)\s*=\s*["']?\s*"""
                     r"(?:javascript|vbscript|data):", re.I)
_repos = itertools.count()


@pytest.fixture
def reader(settings, tmp_path):
    settings.PLINTH_CATALOG_FILE_ROOTS = [str(tmp_path)]
    user = UserFactory(username="docs-reader")
    MembershipFactory(user=user, team=TeamFactory(name=OWNER), role=Role.MEMBER)
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch):
    """Builds run in-process here (as the worker runs them); nothing may be queued to a broker."""
    monkeypatch.setattr("portal.techdocs.receivers.enqueue", lambda refs: None)




def content_of(html: str) -> str:
    match = re.search(r'<div class="td-content">(.*)</article>', html, re.S)
    assert match, "no docs content on the page"
    return match.group(1)


@hostile.budget(ci=12)
@given(index=hostile.MARKDOWN, other=hostile.MARKDOWN)
def test_any_markdown_builds_into_a_page_without_active_content(reader, tmp_path, index, other):
    root = tmp_path / f"repo{next(_repos)}"
    write_files(root, {"catalog-info.yaml": DESCRIPTOR, "docs/index.md": index, "docs/guide/other.md": other})
    with hostile.rolled_back():
        plan = catalog_services.location_register(target=str(root / "catalog-info.yaml"), actor=None, file_roots=None)
        assert not plan.errors, [str(e) for e in plan.errors]
        services.entity_docs_build(entity=Entity.objects.get(ref="component:default/hostile-docs"))
        for path in ("", "guide/other/"):
            response = reader.get(f"/docs/component/default/hostile-docs/{path}", follow=True)
            hostile.assert_clear(response)
            assert response.status_code == 200
            assert "Content-Security-Policy" in response
            content = content_of(hostile.response_text(response))
            for pattern in (ACTIVE, HANDLER, BAD_URL):
                found = pattern.search(content)
                assert found is None, f"{pattern.pattern!r} found: {content[max(0, found.start() - 80):found.end() + 80]}"
        api = reader.get("/api/v1/techdocs/sites/component/default/hostile-docs/page", {"path": "guide/other/"})
        hostile.assert_clear(api)
        assert api.status_code == 200
        for pattern in (ACTIVE, HANDLER, BAD_URL):
            assert pattern.search(api.json()["html"]) is None
