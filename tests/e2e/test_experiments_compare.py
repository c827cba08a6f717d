"""Experiments in a real Chromium: from the model page's Versions tab tick two versions and compare them
(metric table with differences, params, a chart per metric, training data); from a promotion request,
"Compare with champion". Screenshots go to test-artifacts/screenshots/; axe-core finds nothing serious."""

from __future__ import annotations

import re

import pytest

from catalog import mlflow_sync
from catalog.models import ModelVersion
from portal.accounts import demo as org_demo
from tests.e2e.test_newcomer_model import MODEL, SHOTS, sign_in, synced_site  # noqa: F401 (fixture)
from tests.e2e.test_newcomer_ui import AXE, axe_violations

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
VAL_LOSS = {"2": [0.62, 0.41, 0.33, 0.30], "3": [0.58, 0.36, 0.27, 0.22]}


@pytest.fixture
def with_runs(synced_site):  # noqa: F811 (the imported fixture)
    """fraud-detector's champion (v2) and challenger (v3) runs also logged a val_loss series (once per test
    session: the MLflow server outlives the test); their training data the demo seed logs itself
    (`mlflow.log_input` of card-transactions-2025, portal/site/mlflow_demo.py)."""
    client = synced_site
    for row in ModelVersion.objects.filter(entity__name="fraud-detector", version__in=VAL_LOSS):
        if "val_loss" in client.get_run(row.run_id).data.metrics:
            continue
        for step, value in enumerate(VAL_LOSS[row.version]):
            client.log_metric(row.run_id, "val_loss", value, step=step)
    mlflow_sync.sync(["fraud-detector"])
    return client


def test_compare_two_versions_from_the_model_page_and_the_champion_from_a_request(page, live_server, with_runs):
    from portal.governance import services

    SHOTS.mkdir(parents=True, exist_ok=True)
    sign_in(page, live_server)
    page.goto(f"{live_server.url}{MODEL}versions/")
    page.get_by_label("Compare v2").check()
    page.get_by_label("Compare v3").check()
    page.get_by_role("button", name="Compare selected versions").click()
    # The Versions tab lists the newest first: v3 is the baseline v2 is measured against.
    page.wait_for_url(re.compile(r"/compare/\?versions=3&versions=2$"))
    table = page.get_by_test_id("compare-metrics")
    auc = table.locator("tbody tr", has_text="auc").inner_text()
    assert re.search(r"0\.9300\s+0\.9100\s+-0\.0200 \(-2\.2 %\)", auc), auc
    val_loss = table.locator("tbody tr", has_text="val_loss")
    assert val_loss.locator('[data-verdict="worse"]').inner_text().startswith("+0.0800 (+36 %)")
    params = page.get_by_test_id("compare-params")
    assert params.locator("tr.differs", has_text="n_estimators").is_visible()
    charts = page.get_by_test_id("compare-charts")
    assert charts.get_by_role("img", name=re.compile(r"^val_loss over steps — v3: last 0\.22, v2: last 0\.3\b")).is_visible()
    assert charts.get_by_role("img", name=re.compile(r"^auc by version — v3: 0\.93, v2: 0\.91")).is_visible()
    runs = page.get_by_test_id("compare-runs")
    assert runs.get_by_role("link", name="card-transactions-2025").count() == 2  # the Dataset entity, by name
    page.screenshot(path=str(SHOTS / "compare-versions.png"), full_page=True)
    if AXE.exists():
        assert axe_violations(page) == []

    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    box = page.get_by_test_id("compare-metrics").locator("xpath=ancestor::section").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390, box
    page.screenshot(path=str(SHOTS / "compare-versions-phone.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})

    req = services.request_create(actor=org_demo.load_org()["users"]["alice"], action="promote-model-version",
                                  target="model:default/fraud-detector", params={"version": "3", "alias": "champion"})
    page.goto(f"{live_server.url}/reviews/requests/{req.pk}/")
    page.get_by_role("link", name="Compare with champion").click()
    page.wait_for_url(re.compile(r"/catalog/model/default/fraud-detector/compare/\?versions=2,3$"))
    heads = page.get_by_test_id("compare-metrics").locator("thead th").all_inner_texts()
    assert heads[1].startswith("v2 @champion") and "(baseline)" in heads[1] and heads[2].startswith("v3 @challenger")
    page.screenshot(path=str(SHOTS / "compare-from-request.png"), full_page=True)

    page.goto(f"{live_server.url}{MODEL}compare/?versions=2")
    assert page.get_by_test_id("compare-error").inner_text() == "1 given; compare 2 to 10 versions."
    page.screenshot(path=str(SHOTS / "compare-bad-input.png"), full_page=True)
    if AXE.exists():
        assert axe_violations(page) == []
