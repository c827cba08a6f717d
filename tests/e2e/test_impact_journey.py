"""Impact analysis in a real Chromium with a real Celery worker: alice opens a dataset's Impact tab
("What depends on this?"), sees the production model that depends on it listed first and marked, asks
for the dataset's deprecation from there and reads the downstream_impact gate's verdict on the request
page, with the snapshot of the list. A second dataset feeds a private model of another team: the tab
and the request say "1 hidden" / "1 production model you cannot see" and never its name.
Screenshots: test-artifacts/screenshots/impact-*.png."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.conftest import start_celery_worker
from tests.e2e.test_newcomer_model import SHOTS, sign_in
from tests.governance import impact_world

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def impact_site(transactional_db, tmp_path, redis_url):
    from catalog import demo as catalog_demo
    from portal.accounts import demo as org_demo

    org_demo.load_org()
    catalog_demo.load_catalog()
    impact_world.register(tmp_path / "impact")
    worker = start_celery_worker(redis_url)
    try:
        yield
    finally:
        worker.stop()


def request_deprecation(page, reason: str) -> None:
    page.get_by_test_id("request-deprecate").click()
    page.get_by_label("Reason").fill(reason)
    page.get_by_role("button", name="Submit for approval").click()
    page.wait_for_url(re.compile(r".*/reviews/requests/\d+/"))


@pytest.mark.usefixtures("impact_site")
def test_impact_tab_then_deprecation_blocked_by_the_gate(page, live_server):
    SHOTS.mkdir(parents=True, exist_ok=True)
    sign_in(page, live_server, "alice")
    page.goto(f"{live_server.url}/catalog/dataset/default/impact-prod-src/")
    page.get_by_role("tab", name="Impact").click()
    tab = page.get_by_test_id("impact-tab")
    expect(tab.get_by_role("heading", name="What depends on this?")).to_be_visible()
    expect(tab.get_by_test_id("impact-counts")).to_contain_text("1 downstream asset you may see, 1 in production or live")
    first = tab.locator(".impact-items li").first
    expect(first).to_contain_text("production model")
    expect(first.get_by_role("link", name="Impact ranker")).to_have_attribute("href", "/catalog/model/default/impact-ranker/")
    # Keyboard: the hops picker is a labelled select with a real submit button.
    page.get_by_label("Downstream within").select_option("1")
    page.get_by_role("button", name="Show").press("Enter")
    page.wait_for_url(re.compile(r".*/impact/\?hops=1$"))
    expect(page.get_by_label("Downstream within")).to_have_value("1")
    page.screenshot(path=str(SHOTS / "impact-1-tab.png"), full_page=True)

    request_deprecation(page, "Replaced by the 2026 extract.")
    expect(page.get_by_test_id("status")).to_contain_text("Blocked", timeout=30_000)
    gate = page.locator('[data-gate="downstream_impact"]')
    expect(gate).to_contain_text("blocks")
    expect(gate).to_contain_text("production model model:default/impact-ranker (team recsys) depends on the target")
    expect(page.get_by_test_id("gate-error")).to_contain_text("Blocked by downstream_impact")
    impact = page.get_by_test_id("request-impact")
    expect(impact).to_contain_text("1 downstream asset")
    expect(impact.get_by_role("link", name="Impact ranker")).to_be_visible()
    page.screenshot(path=str(SHOTS / "impact-2-request-blocked.png"), full_page=True)


@pytest.mark.usefixtures("impact_site")
def test_hidden_production_model_is_counted_never_named(page, live_server):
    SHOTS.mkdir(parents=True, exist_ok=True)
    sign_in(page, live_server, "alice")
    page.goto(f"{live_server.url}/catalog/dataset/default/impact-hidden-src/impact/")
    expect(page.get_by_test_id("impact-hidden")).to_have_text("1 hidden")
    page.screenshot(path=str(SHOTS / "impact-3-tab-hidden.png"), full_page=True)
    request_deprecation(page, "Nobody should use this any more.")
    expect(page.get_by_test_id("status")).to_contain_text("Blocked", timeout=30_000)
    expect(page.locator('[data-gate="downstream_impact"]')).to_contain_text(
        "1 production model you cannot see depends on the target")
    expect(page.get_by_test_id("impact-hidden")).to_contain_text("1 hidden")
    assert "secret" not in page.content().lower()
    page.screenshot(path=str(SHOTS / "impact-4-request-hidden.png"), full_page=True)
