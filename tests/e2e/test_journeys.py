"""User journeys in a real Chromium (Playwright), against the live test server."""

import re

import pytest
from playwright.sync_api import expect

from catalog import demo as catalog_demo
from portal.accounts import demo as org_demo

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def demo_site(transactional_db):
    org_demo.load_org()
    catalog_demo.load_catalog()


def sign_in(page, live_server, username="alice"):
    page.goto(f"{live_server.url}/")
    assert "/accounts/sign-in/" in page.url
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(org_demo.DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/")


def test_sign_in_reaches_the_home_page(page, live_server, demo_site):
    page.goto(f"{live_server.url}/accounts/sign-in/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").inner_text().startswith("Sign-in failed")
    sign_in(page, live_server)
    assert page.get_by_role("heading", name="Welcome, Alice").is_visible()
    assert page.get_by_role("link", name="Fraud ML").first.is_visible()
    assert page.get_by_test_id("pending-reviews").is_visible()
    page.screenshot(path="test-artifacts/screenshots/home.png", full_page=True)


def test_keyboard_search_shortcut_and_catalog_filters(page, live_server, demo_site):
    sign_in(page, live_server)
    page.goto(f"{live_server.url}/catalog/")
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "global-search"
    page.locator('a[data-facet="kind"][data-value="model"]').click()
    page.wait_for_url(re.compile(r".*kind=model.*"))
    assert page.get_by_test_id("result-count").inner_text().startswith("4 ")
    page.screenshot(path="test-artifacts/screenshots/catalog-models.png", full_page=True)
    page.get_by_role("link", name="Fraud detector").click()
    page.wait_for_url(re.compile(r".*/catalog/model/default/fraud-detector/$"))
    page.get_by_role("tab", name="Relations").click()
    page.wait_for_url(re.compile(r".*/fraud-detector/relations/$"))
    expect(page.locator("svg.graph .node").nth(4)).to_be_attached()  # the click only starts the navigation
    page.screenshot(path="test-artifacts/screenshots/relations.png", full_page=True)


def test_kinds_read_the_same_way_as_rendered(page, live_server, demo_site):
    """What the reader sees after CSS: one feature set is "Feature set" on the list, its own page and the
    model that uses it, several are "Feature sets" in the facet and the crumb — never "FEATURESET"."""
    sign_in(page, live_server)
    page.goto(f"{live_server.url}/catalog/?kind=all")
    facet = page.locator('a[data-facet="kind"][data-value="featureset"] span').first
    assert facet.inner_text() == "Feature sets"
    facet.click()
    page.wait_for_url(re.compile(r".*kind=featureset.*"))
    badges = page.locator("#results td .kind")
    expect(badges.first).to_be_visible()
    assert set(badges.all_inner_texts()) == {"Feature set"}
    page.screenshot(path="test-artifacts/screenshots/catalog-feature-sets.png", full_page=True)
    page.goto(f"{live_server.url}/catalog/featureset/default/card-transactions-features/")
    assert page.locator(".entity-head .kind").inner_text() == "Feature set"
    assert page.locator("p.crumbs").inner_text().startswith("Catalog / Feature sets / ")
    page.goto(f"{live_server.url}/catalog/model/default/fraud-detector/relations/")
    assert "Feature set" in page.locator("svg.graph .kind-label").all_text_contents()
    shown = page.locator("main").inner_text()  # as rendered: a text-transform would show here
    assert "FEATURESET" not in shown and "FeatureSet" not in shown and "FEATURE SET" not in shown


def test_register_with_dry_run_in_the_browser(page, live_server, demo_site, tmp_path, settings):
    settings.PLINTH_CATALOG_FILE_ROOTS = [str(tmp_path)]
    path = tmp_path / "catalog-info.yaml"
    path.write_text("apiVersion: plinth.dev/v1alpha1\nkind: Dataset\nmetadata: {name: browser-data, title: Browser data}\n"
                    "spec: {owner: fraud-ml, classification: internal}\n")
    sign_in(page, live_server)
    page.goto(f"{live_server.url}/catalog/register/")
    page.get_by_label("Location").fill(str(path))
    page.get_by_role("button", name="Analyse").click()
    assert "+ Dataset" in page.get_by_test_id("dry-run").inner_text()
    page.screenshot(path="test-artifacts/screenshots/register-dry-run.png", full_page=True)
    page.get_by_role("button", name=re.compile("Register 1 new")).click()
    page.wait_for_url(re.compile(r".*/catalog/locations/\d+/"))
    page.get_by_role("link", name="Browser data").click()
    expect(page.get_by_role("heading", name="Browser data")).to_be_visible()
