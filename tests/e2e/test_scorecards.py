"""Scorecards in a real Chromium: the model page's badge and Scorecards tab (every check explained, by
keyboard), an owner recording a manual check, the index and scorecard pages with team and domain rollups (desktop
and phone width), and a count followed to the entities it counts. Screenshots go to
test-artifacts/screenshots/scorecards-*.png."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from catalog import demo as catalog_demo
from portal.accounts import demo as org_demo
from portal.scorecards import services
from portal.scorecards.models import DailyRollup, ManualResult
from tests.e2e.test_newcomer_model import SHOTS, sign_in
from tests.e2e.test_newcomer_ui import axe_violations

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def evaluated(transactional_db):
    org = org_demo.load_org()
    catalog_demo.load_catalog()
    services.evaluate_entities()
    services.rollup_today()
    week_ago = (timezone.now() - timedelta(days=7)).date()
    DailyRollup.objects.create(day=week_ago, scorecard="service-basics", owner_team=org["teams"]["fraud-ml"],
                               level="", count=3)
    return org


@pytest.mark.usefixtures("evaluated")
def test_scorecard_tab_explains_every_check_and_takes_a_manual_answer(page, live_server):
    SHOTS.mkdir(parents=True, exist_ok=True)
    sign_in(page, live_server)
    page.goto(f"{live_server.url}/catalog/model/default/fraud-detector/")
    badge = page.get_by_test_id("scorecard-badge")
    assert badge.inner_text() == "Production readiness: no level"
    badge.focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/scorecards/")
    card = page.get_by_test_id("scorecard-production-readiness")
    assert card.get_by_test_id("check-slo-defined").get_by_text("No SLO defined").is_visible()
    assert card.get_by_test_id("check-owner").get_by_text("✓ pass").is_visible()
    assert card.get_by_role("heading", name="Gold").is_visible()
    page.screenshot(path=str(SHOTS / "scorecards-model-tab.png"), full_page=True)

    page.goto(f"{live_server.url}/catalog/api/default/fraud-scoring-api/scorecards/")
    review = page.get_by_test_id("check-security-review")
    review.get_by_label("Justification").fill("AppSec review SEC-311 signed off")
    review.get_by_label("Expires").fill((timezone.now() + timedelta(days=60)).date().isoformat())
    review.get_by_role("button", name="Record").click()
    page.wait_for_url("**/scorecards/")  # already this URL: the message shows the new page
    expect(page.get_by_text("Manual check recorded.")).to_be_visible()
    expect(page.get_by_test_id("check-security-review").get_by_text("✓ pass")).to_be_visible()
    assert ManualResult.objects.get(check_id="security-review").justification == "AppSec review SEC-311 signed off"
    page.screenshot(path=str(SHOTS / "scorecards-manual-check.png"), full_page=True)


@pytest.mark.usefixtures("evaluated")
def test_index_and_scorecard_pages_roll_up_by_team(page, live_server):
    SHOTS.mkdir(parents=True, exist_ok=True)
    sign_in(page, live_server)
    page.goto(f"{live_server.url}/")
    page.get_by_role("link", name="Scorecards", exact=True).first.click()
    page.wait_for_url("**/scorecards/")
    index = page.get_by_test_id("scorecard-index")
    expect(index.get_by_role("link", name="Service basics", exact=True)).to_be_visible()
    expect(index.get_by_role("cell", name="Components, APIs", exact=True)).to_be_visible()
    expect(index.get_by_role("link", name=re.compile(r"^\d+ at Bronze on Service basics: list them$"))).to_be_visible()
    page.screenshot(path=str(SHOTS / "scorecards-index.png"), full_page=True)
    index.get_by_role("link", name="Service basics", exact=True).click()
    page.wait_for_url("**/scorecards/service-basics/")
    rollup = page.get_by_test_id("team-rollup")
    expect(rollup.locator("tr", has_text="Fraud ML")).to_have_count(1)
    expect(rollup.get_by_role("link", name="Fraud ML", exact=True)).to_have_attribute("href", "/teams/fraud-ml/")
    domains = page.get_by_test_id("domain-rollup")
    assert domains.get_by_role("link", name="Payments", exact=True).is_visible()  # the fraud system's domain
    assert domains.get_by_role("rowheader", name="no domain").count() == 1  # the entities in no system
    assert page.get_by_test_id("scorecard-checks").get_by_text("security review", exact=False).first.is_visible()
    page.screenshot(path=str(SHOTS / "scorecards-detail.png"), full_page=True)
    page.get_by_role("link", name="campaign until 2027-03-31").first.click()
    expect(page.get_by_role("heading", name="Campaign: Links to a runbook or dashboard")).to_be_visible()
    assert "fail this check, counted" in page.get_by_test_id("campaign-total").inner_text()
    platform = page.get_by_test_id("campaign-team").filter(has_text="platform")
    assert platform.get_by_role("listitem").count() == 0  # another team's: counted, listed on request
    platform.get_by_role("link", name="Show platform entities failing it").click()
    page.wait_for_url("**/campaigns/links/?team=platform")
    assert page.get_by_test_id("campaign-team").filter(has_text="platform").get_by_role("listitem").count() >= 1
    page.screenshot(path=str(SHOTS / "scorecards-campaign.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/scorecards/service-basics/")
    team = page.get_by_test_id("team-rollup").get_by_role("link", name="Fraud ML", exact=True)
    assert team.evaluate("a => a.getClientRects().length") == 1  # the name kept on one line at phone width
    page.screenshot(path=str(SHOTS / "scorecards-detail-phone.png"), full_page=True)


@pytest.mark.usefixtures("evaluated")
def test_a_count_links_to_the_entities_it_counts(page, live_server):
    SHOTS.mkdir(parents=True, exist_ok=True)
    sign_in(page, live_server)
    page.goto(f"{live_server.url}/scorecards/service-basics/")
    count = page.get_by_test_id("team-rollup").get_by_role("link", name=re.compile(r"^\d+ at Bronze, team Fraud ML"))
    n = int(count.inner_text())
    count.click()
    page.wait_for_url("**/scorecards/service-basics/entities/?level=Bronze&team=fraud-ml")
    expect(page.get_by_role("heading", level=1)).to_have_text("Bronze · Fraud ML")
    assert page.get_by_test_id("drill-count").inner_text().startswith(f"{n} entit")
    rows = page.get_by_test_id("drill-list").locator("tbody tr")
    expect(rows).to_have_count(n)
    first = rows.first
    expect(first.get_by_role("cell").nth(2)).to_have_text("Bronze 4/10 checks")  # kind, owner, then the level
    expect(first.get_by_role("link", name="TechDocs present")).to_be_visible()  # what keeps it from Silver
    page.screenshot(path=str(SHOTS / "scorecards-entities.png"), full_page=True)
    assert axe_violations(page) == []
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(SHOTS / "scorecards-entities-phone.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})

    first.get_by_role("rowheader").get_by_role("link").click()  # the entity's own page
    page.wait_for_url("**/catalog/**")
    page.go_back()
    page.get_by_role("link", name="Service basics").click()  # the breadcrumb back
    page.wait_for_url("**/scorecards/service-basics/")
    payments = page.get_by_test_id("domain-rollup").get_by_role("link", name=re.compile(r"^\d+ .*, domain Payments"))
    n = int(payments.first.inner_text())
    payments.first.click()
    page.wait_for_url(re.compile(r".*/entities/\?level=\w*&domain=domain%3Adefault%2Fpayments$"))
    expect(page.get_by_test_id("drill-list").locator("tbody tr")).to_have_count(n)
