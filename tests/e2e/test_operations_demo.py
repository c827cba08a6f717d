"""The operations demo `make run` loads, in a real Chromium: the demo's cost export, incidents, SLOs
evaluated on a real Prometheus over the demo series (portal/slo/demo.py) and scorecards evaluated. The
fraud detector's page shows its scorecard level, its SLOs with the budget left and the burn rate, its
open incident and its monthly cost against its declared value; the badges lead to the tabs by keyboard;
the fraud-ml team page rolls it all up. No CSP violation, no serious axe-core finding. Screenshots: test-artifacts/screenshots/ops-demo-*.png."""

from __future__ import annotations

import re

import pytest

from catalog import demo as catalog_demo
from portal.accounts import demo as org_demo
from portal.costs import demo as costs_demo
from portal.incidents import demo as incidents_demo
from portal.scorecards import services as scorecards
from portal.scorecards.models import Result
from portal.slo import demo as slo_demo
from tests.e2e.csp_watch import CspWatch
from tests.e2e.test_newcomer_model import SHOTS, sign_in
from tests.e2e.test_newcomer_ui import axe_violations
from tests.slo.conftest import demo_prometheus_url  # noqa: F401 (a session fixture, used below)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def operations_demo(transactional_db, demo_prometheus_url, settings, tmp_path):  # noqa: F811
    settings.PLINTH_PROMETHEUS_URL = demo_prometheus_url
    org_demo.load_org()
    catalog_demo.load_catalog()
    incidents_demo.load()
    costs_demo.load(folder=tmp_path)
    slo_demo.evaluate()
    scorecards.evaluate_entities()


@pytest.mark.usefixtures("operations_demo")
def test_the_fraud_detector_page_and_the_team_page_show_operations(page, live_server):
    SHOTS.mkdir(parents=True, exist_ok=True)
    watch = CspWatch(page)
    sign_in(page, live_server, "alice")
    page.goto(f"{live_server.url}/catalog/model/default/fraud-detector/")
    level = Result.objects.get(entity__ref="model:default/fraud-detector", scorecard="production-readiness").level
    assert page.get_by_test_id("scorecard-badge").inner_text() == f"Production readiness: {level or 'no level'}"
    slo = page.get_by_test_id("slo-badge").inner_text()
    assert re.fullmatch(r"SLOs 2/2 meeting · budget 3\d % · ticket alert holding", slo), slo
    assert page.get_by_test_id("incident-badge").inner_text() == "● 1 open incident (SEV3)"
    cost = page.get_by_test_id("cost-badge").inner_text()
    assert re.fullmatch(r"2,145 USD/mo · value 25,000 USD/mo \(11\.7×\)", cost), cost
    page.screenshot(path=str(SHOTS / "ops-demo-model.png"), full_page=False)
    assert axe_violations(page) == []

    page.get_by_test_id("slo-badge").focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/slos/")
    card = page.get_by_test_id("slo-scoring-availability")
    assert card.get_by_test_id("slo-budget").inner_text().startswith("3")
    burns = card.get_by_test_id("slo-burns")
    assert burns.get_by_role("row", name="1h").get_by_role("cell", name="4.40×", exact=True).first.is_visible()
    page.screenshot(path=str(SHOTS / "ops-demo-slos.png"), full_page=True)

    page.goto(f"{live_server.url}/catalog/model/default/fraud-detector/cost/")
    per_1k = page.get_by_test_id("cost-per-1k").first.inner_text()  # the latest month: ~2,145 USD / 2.0–2.2M scores
    assert re.fullmatch(r"[01]\.\d{4}", per_1k), per_1k  # 0.99 for a 30-day month, 1.06 for February
    page.screenshot(path=str(SHOTS / "ops-demo-cost.png"), full_page=True)

    page.goto(f"{live_server.url}/teams/fraud-ml/")
    ops = page.get_by_test_id("team-operations")
    assert "1 burning" in ops.get_by_test_id("team-ops-slos").inner_text()
    assert "1 open (worst SEV3)" in ops.get_by_test_id("team-ops-incidents").inner_text()
    assert ops.get_by_test_id("team-ops-cost").get_by_role("meter").count() == 1
    row = ops.get_by_test_id("team-ops-table").get_by_role("row", name=re.compile("^Fraud detector Model"))
    assert "burn 4.40× (1h)" in row.inner_text() and "25,000 USD/mo" in row.inner_text()
    ops.get_by_role("link", name="Fraud detector", exact=True).focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/catalog/model/default/fraud-detector/")
    page.go_back()
    page.screenshot(path=str(SHOTS / "ops-demo-team.png"), full_page=True)
    assert axe_violations(page) == []

    page.goto(f"{live_server.url}/costs/portfolio/")
    assert page.get_by_role("row", name=re.compile("^Fraud detector")).count() == 1
    page.screenshot(path=str(SHOTS / "ops-demo-portfolio.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/teams/fraud-ml/")
    page.screenshot(path=str(SHOTS / "ops-demo-team-phone.png"), full_page=True)
    watch.check("the operations demo pages")
