"""Deleting an orphan in a real Chromium, by keyboard: the entity page's note says its location no longer
defines it and offers the deletion to its team's maintainer; the confirmation page names the entity that
still refers to it; deleting lands on the catalog with a message, and the entity is gone. Screenshots:
test-artifacts/screenshots/orphan-*.png."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from catalog import services
from catalog.models import Entity, Location
from portal.accounts import demo as org_demo
from tests.e2e.test_newcomer_model import SHOTS, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MODEL = ("apiVersion: plinth.dev/v1alpha1\nkind: Model\nmetadata: {name: retired-ranker, title: Retired ranker}\n"
         "spec: {type: ranker, lifecycle: deprecated, owner: fraud-ml}\n")
SERVICE = ("apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: ranking-api}\n"
           "spec: {type: service, lifecycle: production, owner: fraud-ml, dependsOn: [model:retired-ranker]}\n")


def test_a_maintainer_deletes_an_orphan_by_keyboard(page, live_server, tmp_path, settings):
    org_demo.load_org()
    settings.PLINTH_CATALOG_ORPHAN_STRATEGY = "keep"
    path = tmp_path / "catalog-info.yaml"
    path.write_text(MODEL + "---\n" + SERVICE)
    assert not services.location_register(target=str(path), actor=None, file_roots=None).errors
    path.write_text(SERVICE)
    services.location_refresh(location=Location.objects.get(target=str(path)))
    SHOTS.mkdir(parents=True, exist_ok=True)

    sign_in(page, live_server)
    # The catalog's Orphans box: on, only the orphan; off again (from a page loaded with it on), all.
    page.goto(f"{live_server.url}/catalog/?orphan=true")
    results = page.locator("#results")
    assert "Retired ranker" in results.inner_text() and "ranking-api" not in results.inner_text()
    page.get_by_label("Orphans").uncheck()
    expect(results).to_contain_text("ranking-api")
    page.get_by_label("Orphans").check()
    expect(results).not_to_contain_text("ranking-api")
    page.goto(f"{live_server.url}/catalog/model/default/retired-ranker/")
    note = page.get_by_role("note")
    assert "no longer defines this entity" in note.inner_text()
    page.screenshot(path=str(SHOTS / "orphan-note.png"), full_page=True)
    link = note.get_by_role("link", name="Delete this orphan…")
    link.focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/delete-orphan/")
    assert "ranking-api" in page.get_by_role("heading", name="Entities that name it in a relation (1)").locator(
        "xpath=..").inner_text()
    page.screenshot(path=str(SHOTS / "orphan-confirm.png"), full_page=True)
    page.get_by_role("button", name="Delete Retired ranker").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server.url}/catalog/")
    assert "Deleted the orphan model:default/retired-ranker" in page.content()
    assert not Entity.objects.filter(ref="model:default/retired-ranker").exists()
