"""The SLOs tab in a real Chromium, over SLOs evaluated on the real Prometheus: the header badge leads to
the tab by keyboard; objective, SLI, budget, burn rates with their alert thresholds and both charts are
there; no CSP violation. Screenshots: test-artifacts/screenshots/slo-*.png."""

from __future__ import annotations

from datetime import timedelta

import pytest

from catalog import demo as catalog_demo
from portal.accounts import demo as org_demo
from portal.slo import services
from tests.e2e.csp_watch import CspWatch
from tests.e2e.test_newcomer_model import SHOTS, sign_in

from .conftest import CHECKOUT_SLO, NOW, SEARCH_SLO, register

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def evaluated(transactional_db, prometheus, tmp_path):
    org_demo.load_org()
    catalog_demo.load_catalog()
    entity = register(tmp_path / "checkout", "checkout", CHECKOUT_SLO + "---\n" + SEARCH_SLO.replace(
        "name: search-hours", "name: checkout-hours"))
    for minutes in range(-24 * 60, 1, 60):  # a day of hourly evaluations: the chart's history
        services.evaluate_entities(entity_ids=[entity.id], now=NOW + timedelta(minutes=minutes))
    return entity


@pytest.mark.usefixtures("evaluated")
def test_the_slo_tab_shows_budget_burn_rates_and_charts(page, live_server):
    SHOTS.mkdir(parents=True, exist_ok=True)
    watch = CspWatch(page)
    sign_in(page, live_server)
    page.goto(f"{live_server.url}/catalog/component/default/checkout/")
    badge = page.get_by_test_id("slo-badge")
    assert badge.inner_text().startswith("SLOs 1/2 meeting")
    badge.focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/slos/")
    card = page.get_by_test_id("slo-checkout-availability")
    assert card.get_by_test_id("slo-sli").inner_text() == "99.700 %"
    assert card.get_by_test_id("slo-budget").inner_text() == "70.0 %"
    burns = card.get_by_test_id("slo-burns")
    assert burns.get_by_role("row", name="1h").get_by_role("cell", name="20.00×", exact=True).is_visible()
    assert card.get_by_test_id("slo-firing").first.inner_text().startswith("page: 1h/5m")
    assert card.locator("svg[role=img]").count() == 2
    hours = page.get_by_test_id("slo-checkout-hours")
    assert hours.get_by_test_id("slo-budget").inner_text() == "-25.0 %"
    page.screenshot(path=str(SHOTS / "slo-tab.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(SHOTS / "slo-tab-phone.png"), full_page=True)
    watch.check("the SLOs tab")
