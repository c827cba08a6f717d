"""Where each version serves, in a real Chromium: the model page's serving table, timeline and drift flag
(desktop and phone width, reachable by keyboard), and the reviewers' drift list. The champion alias puts
v2 in prod (as the MLflow sync does it: tests/deployments/test_aliases.py runs that against the real
server); a CD pipeline reports v3 through the API. Screenshots go to
test-artifacts/screenshots/deployments-*.png."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from playwright.sync_api import expect

from catalog import demo as catalog_demo
from catalog.models import Entity, ModelVersion
from portal.accounts import demo as org_demo
from portal.accounts import services as account_services
from portal.deployments import services
from portal.deployments.models import Drift
from tests.e2e.test_newcomer_model import SHOTS, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
MODEL = "/catalog/model/default/fraud-detector/"


@pytest.fixture
def champion_in_prod(transactional_db):
    """The demo catalog; fraud-detector v1-v3 as the MLflow sync stores them, champion on v2."""
    org_demo.load_org()
    catalog_demo.load_catalog()
    model = Entity.objects.get(ref="model:default/fraud-detector")
    for n in (1, 2, 3):
        ModelVersion.objects.create(entity=model, version=str(n), version_number=n, status="READY",
                                    aliases=["champion"] if n == 2 else [])
    services.deployments_from_aliases(model_ids=[model.pk])


def cd_pipeline(username: str):
    from django.contrib.auth import get_user_model

    _, raw = account_services.token_create(user=get_user_model().objects.get(username=username), name="cd")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")

    def report(**body):
        response = client.post("/api/v1/deployments/events", data=json.dumps(body), content_type="application/json")
        assert response.status_code == 201, response.content
        return response.json()

    return report


@pytest.mark.usefixtures("champion_in_prod")
def test_model_page_shows_where_versions_serve_and_reviewers_see_drift(page, live_server):
    SHOTS.mkdir(parents=True, exist_ok=True)
    report = cd_pipeline("bob")
    start = datetime.now(UTC) - timedelta(hours=2)
    base = {"model": "model:default/fraud-detector", "platform": "kserve"}
    report(**base, version="3", environment="dev", status="live", time=start.isoformat(),
           endpoint="https://fraud.dev.example.com/v1/predict")
    report(**base, version="3", environment="staging", status="deploying", time=(start + timedelta(minutes=30)).isoformat())
    report(**base, version="3", environment="staging", status="live", time=(start + timedelta(minutes=34)).isoformat(),
           endpoint="https://fraud.staging.example.com/v1/predict")
    report(**base, version="1", environment="dev", status="failed", time=(start + timedelta(minutes=50)).isoformat())
    assert set(Drift.objects.filter(cleared_at__isnull=True).values_list("version", "environment")) == \
        {("2", "prod"), ("3", "staging")}, "champion v2 (MLflow alias) in prod; v3 in staging (risk tier 1)"

    sign_in(page, live_server)
    page.goto(f"{live_server.url}{MODEL}")
    serving = page.get_by_test_id("model-serving")
    serving.scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "deployments-model-page.png"), full_page=True)
    assert serving.get_by_role("heading", name="Where each version serves").is_visible()
    flag = serving.get_by_test_id("drift-flag")
    assert re.search(r"v2 is live in prod without an executed approval", flag.inner_text())
    assert re.search(r"v3 is live in staging without an executed approval", flag.inner_text())
    assert page.get_by_test_id("drift-badge").inner_text().startswith("⚠ Compliance drift (2)")
    rows = serving.get_by_test_id("serving-table").locator("tbody tr")
    text = [re.sub(r"\s+", " ", rows.nth(i).inner_text()) for i in range(rows.count())]
    assert any(t.startswith("v3 dev Live") for t in text), text
    assert any("staging Live drift" in t for t in text), text
    assert any("prod Live drift" in t and "MLflow alias" in t for t in text), text
    assert any("dev Failed" in t for t in text), text
    timeline = serving.get_by_test_id("deploy-timeline").locator("li")
    assert timeline.count() == 5
    assert "v2 in prod" in timeline.nth(0).inner_text() and "MLflow alias" in timeline.nth(0).inner_text()  # newest first
    assert "v1 in dev" in timeline.nth(1).inner_text() and "Failed" in timeline.nth(1).inner_text()

    # Keyboard: the header badge leads to the card; Tab reaches the drift's own "Request promotion" link.
    badge = page.get_by_test_id("drift-badge")
    badge.focus()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"#serving$"))
    link = flag.get_by_role("link", name="Request promotion of v2")
    for _ in range(60):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement && document.activeElement.textContent") == "Request promotion of v2":
            break
    assert link.evaluate("el => el === document.activeElement"), "reachable by Tab from the badge"

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}{MODEL}#serving")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways at phone width ({width}px)"
    page.get_by_test_id("model-serving").screenshot(path=str(SHOTS / "deployments-model-page-phone.png"))

    # The reviewer: Reviews -> Compliance drift.
    page.set_viewport_size({"width": 1280, "height": 900})
    page.context.clear_cookies()
    sign_in(page, live_server, "erin")
    page.goto(f"{live_server.url}/reviews/")
    page.get_by_test_id("drift-link").click()
    page.wait_for_url("**/reviews/drift/")
    listing = page.get_by_test_id("drift-list")
    expect(listing.locator("tbody tr")).to_have_count(2)  # waits: count() read the page being left
    assert "Fraud detector" in listing.inner_text() and "staging" in listing.inner_text()
    page.screenshot(path=str(SHOTS / "deployments-drift-list.png"), full_page=True)
