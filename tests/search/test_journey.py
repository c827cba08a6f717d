"""Browser journey: the top search box's typeahead, driven by the keyboard alone."""

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from catalog import demo as catalog_demo
from portal.accounts import demo as org_demo

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = Path("test-artifacts/screenshots")


@pytest.fixture
def demo_site(transactional_db):
    org_demo.load_org()
    catalog_demo.load_catalog()  # commits: entities_changed indexes the catalog on the way


def sign_in(page, live_server, username="alice"):
    page.goto(f"{live_server.url}/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(org_demo.DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/")


def test_typeahead_pick_with_the_keyboard_lands_on_the_entity(page, live_server, demo_site):
    """Type in the top box → options grouped by kind → ArrowDown/Enter → the entity page."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    sign_in(page, live_server)
    page.keyboard.press("/")
    box = page.get_by_role("combobox", name="Search the portal")
    box.press_sequentially("fraud detec", delay=40)
    listbox = page.get_by_role("listbox", name="Suggestions")
    listbox.get_by_role("option").first.wait_for()
    assert box.get_attribute("aria-expanded") == "true"
    assert listbox.get_by_role("group").count() >= 2  # grouped by kind
    page.screenshot(path=str(SHOTS / "search-typeahead.png"))

    box.press("ArrowDown")
    first = listbox.get_by_role("option").first
    assert first.get_attribute("aria-selected") == "true"
    assert box.get_attribute("aria-activedescendant") == first.get_attribute("id")
    assert "Fraud detector" in first.inner_text()
    box.press("ArrowDown")
    box.press("ArrowUp")
    page.screenshot(path=str(SHOTS / "search-typeahead-selected.png"))
    box.press("Enter")
    page.wait_for_url(re.compile(r".*/catalog/model/default/fraud-detector/$"))
    assert page.get_by_role("heading", name="Fraud detector").is_visible()
    page.screenshot(path=str(SHOTS / "search-landed-on-entity.png"))


def test_enter_without_selection_opens_results_and_escape_closes(page, live_server, demo_site):
    """Escape closes the list; Enter with nothing selected opens /search?q=… with facets."""
    sign_in(page, live_server, "carol")
    box = page.get_by_role("combobox", name="Search the portal")
    box.click()
    box.press_sequentially("fruad", delay=40)
    listbox = page.get_by_role("listbox", name="Suggestions")
    listbox.get_by_role("option").first.wait_for()
    box.press("Escape")
    assert listbox.is_hidden() and box.get_attribute("aria-expanded") == "false"
    box.press("Enter")
    page.wait_for_url(re.compile(r".*/search/\?q=fruad$"))
    assert "showing results for fraud" in page.get_by_test_id("corrected").inner_text()
    assert page.locator('a[data-facet="kind"]').count() >= 3
    assert "chargeback-predictor" not in page.content()  # fraud-ml private model stays hidden from carol
    page.screenshot(path=str(SHOTS / "search-results.png"), full_page=True)
    page.locator('a[data-facet="kind"][data-value="model"]').click()
    page.wait_for_url(re.compile(r".*kind=model.*"))
    expect(page.get_by_test_id("result-count")).to_have_text(re.compile(r"^1 "))  # the swapped results
