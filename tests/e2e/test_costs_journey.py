"""FinOps in a real Chromium with a real Celery worker: a platform admin uploads a FOCUS CSV on the
imports page, the worker imports and allocates it, and the team view, the overview (with its charts and
the unallocated bucket) and the model's Cost tab (value vs cost) show it; keyboard reachable. Screenshots
go to test-artifacts/screenshots/costs-*.png."""

from __future__ import annotations

import pytest
from django.db import connection
from playwright.sync_api import expect

from catalog import demo as catalog_demo
from portal.accounts import demo as org_demo
from portal.costs.models import Allocation, CostImport
from tests.conftest import start_celery_worker
from tests.costs.conftest import DETECTOR, PRIVATE, RECSYS_MODEL, annotate, line, write_csv
from tests.e2e.test_newcomer_model import SHOTS, sign_in
from tests.governance.conftest import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def org(transactional_db):
    org = org_demo.load_org()
    catalog_demo.load_catalog()
    annotate(DETECTOR, **{"plinth.dev/cost-resource-ids": "arn:aws:sagemaker:eu-west-1:1:endpoint/fraud-detector-*",
                          "plinth.dev/value-monthly": "25000 USD", "plinth.dev/value-kpi": "Chargeback losses avoided"})
    return org


def test_upload_a_focus_csv_then_see_the_team_view_and_the_models_value_vs_cost(org, page, live_server, redis_url,
                                                                                  tmp_path):
    SHOTS.mkdir(parents=True, exist_ok=True)
    worker = start_celery_worker(redis_url)
    try:
        rows = [line("1200.00", resource="arn:aws:sagemaker:eu-west-1:1:endpoint/fraud-detector-prod"),
                line("640.50", effective="600.50", tags={"plinth-entity": DETECTOR}),
                line("-40.00", category="Credit", resource="arn:aws:sagemaker:eu-west-1:1:endpoint/fraud-detector-prod"),
                line("310.00", tags={"plinth-entity": PRIVATE}),
                line("820.00", tags={"plinth-entity": RECSYS_MODEL}),
                line("150.00", tags={"team": "recsys"}),
                line("400.00", tags={"plinth-shared": "true"}, service="AWS Support"),
                line("95.00", service="Amazon CloudWatch"),
                line("130.00", currency="EUR", tags={"team": "fraud-ml"})]
        path = write_csv(tmp_path / "aws-focus-2026-01.csv", rows)
        sign_in(page, live_server, "grace")
        page.goto(f"{live_server.url}/costs/imports/")
        page.get_by_label("Provider").fill("aws")
        page.get_by_label("File").set_input_files(str(path))
        page.get_by_role("button", name="Import").click()
        page.wait_for_url("**/costs/imports/")
        # The redirect comes back to /costs/imports/: wait_for_url returns at once, so wait for the message.
        expect(page.get_by_text("aws-focus-2026-01.csv is queued for import")).to_be_visible()

        def done():
            connection.close()
            imp = CostImport.objects.first()
            return imp if imp and imp.status in ("done", "failed") else None

        imp = wait_for(done, timeout=90, what="the worker's import")
        assert imp.status == "done", imp.error
        # The allocation follows the import's commit in the same task: wait for it too.
        wait_for(lambda: connection.close() or Allocation.objects.exists(), timeout=60, what="the allocation")
        page.reload()
        assert page.get_by_test_id("imports").get_by_text("done").is_visible()
        page.screenshot(path=str(SHOTS / "costs-imports.png"), full_page=True)

        page.goto(f"{live_server.url}/costs/")
        assert page.get_by_test_id("unallocated-USD").inner_text() == "95.00"
        assert page.get_by_test_id("chart-by-team").is_visible()
        page.screenshot(path=str(SHOTS / "costs-overview.png"), full_page=True)

        page.goto(f"{live_server.url}/costs/teams/fraud-ml/")
        page.get_by_label("Monthly budget").fill("2000")
        page.get_by_label("Currency").fill("USD")
        page.get_by_role("button", name="Save budget").click()
        page.wait_for_url("**/costs/teams/fraud-ml/")  # already this URL: the budget's meter shows the new page
        expect(page.get_by_test_id("budgets").get_by_role("meter")).to_have_count(1)
        entities = page.get_by_test_id("team-entities")
        assert entities.get_by_text("Fraud detector").is_visible() or entities.get_by_role("link").count() >= 2
        page.screenshot(path=str(SHOTS / "costs-team.png"), full_page=True)

        sign_in_as_carol = page.context.new_page()
        sign_in(sign_in_as_carol, live_server, "carol")
        sign_in_as_carol.goto(f"{live_server.url}/costs/teams/fraud-ml/")
        assert "chargeback" not in sign_in_as_carol.content().lower()
        assert sign_in_as_carol.get_by_test_id("hidden-count").is_visible()
        sign_in_as_carol.goto(f"{live_server.url}/catalog/model/default/fraud-detector/")
        badge = sign_in_as_carol.get_by_test_id("cost-badge")
        # 1200 + 600.50 − 40, rounded; the declared value beside it (25,000 ÷ 1,760.50 = 14.2)
        assert badge.inner_text() == "1,761 USD/mo · value 25,000 USD/mo (14.2×)"
        badge.focus()
        sign_in_as_carol.keyboard.press("Enter")
        sign_in_as_carol.wait_for_url("**/cost/")
        value = sign_in_as_carol.get_by_test_id("cost-value")
        assert "25,000.00 USD" in value.inner_text() and "Chargeback losses avoided" in value.inner_text()
        assert sign_in_as_carol.get_by_test_id("roi-ratio").inner_text() == "14.2×"  # 25000 / 1760.50
        sign_in_as_carol.screenshot(path=str(SHOTS / "costs-model-tab.png"), full_page=True)
        sign_in_as_carol.goto(f"{live_server.url}/costs/portfolio/")
        assert sign_in_as_carol.get_by_test_id("portfolio").get_by_text("Chargeback losses avoided").is_visible()
        sign_in_as_carol.screenshot(path=str(SHOTS / "costs-portfolio.png"), full_page=True)
    finally:
        worker.stop()
