"""A Feast feature repository registered in a real Chromium: the Register page's dry run lists the
feature views, and the FeatureSet page's Schema & consumers tab shows freshness, stores, feature services,
features and the consuming model, reachable by keyboard. The repository is the real one
tests/catalog/test_feast_sync.py builds with `feast apply` and `feast materialize-incremental`.
Screenshots: test-artifacts/screenshots/feast-*.png."""

from __future__ import annotations

import re
import shutil

import pytest

from catalog import demo as catalog_demo
from catalog.models import Entity
from portal.accounts import demo as org_demo
from tests.e2e.test_newcomer_model import SHOTS, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_register_a_feast_repository_and_read_its_freshness(page, live_server, feast_repos, tmp_path,
                                                            settings):
    org_demo.load_org()
    catalog_demo.load_catalog()
    settings.PLINTH_CATALOG_FILE_ROOTS = [str(tmp_path)]
    repo = tmp_path / "features"
    shutil.copytree(feast_repos["v1"], repo)
    SHOTS.mkdir(parents=True, exist_ok=True)
    # The first Feast read in a process imports the SDK (seconds on a busy machine: docs/lineage.md).
    page.set_default_timeout(120_000)

    sign_in(page, live_server)
    page.goto(f"{live_server.url}/catalog/register/")
    page.get_by_label("Location").fill(f"feast:{repo}")
    page.get_by_role("button", name="Analyse").click()
    plan = page.get_by_test_id("dry-run").inner_text()
    assert "customer_stats" in plan and "merchant_risk" in plan
    page.screenshot(path=str(SHOTS / "feast-register.png"), full_page=True)
    page.get_by_role("button", name=re.compile("Register 2 new")).click()
    page.wait_for_url(re.compile(r".*/catalog/locations/\d+/"))
    assert Entity.objects.filter(kind_key="featureset", location__type="feast").count() == 2

    page.goto(f"{live_server.url}/catalog/featureset/default/customer_stats/features/")
    card = page.locator("section[aria-labelledby=feast-heading]")
    text = card.inner_text()
    assert "fresh" in text and "sqlite" in text and "fraud_scoring" in text and "customer_stats_source" in text
    assert "within the TTL (1 day)" in text
    assert "86400s (1 day)" in page.locator(".about dd").filter(has_text="86400s").first.inner_text()
    assert page.get_by_role("cell", name="txn_count_7d").is_visible()
    page.screenshot(path=str(SHOTS / "feast-featureset.png"), full_page=True)
    # Keyboard: the tab list reaches the Schema & consumers tab.
    page.goto(f"{live_server.url}/catalog/featureset/default/customer_stats/")
    for _ in range(60):
        page.keyboard.press("Tab")
        if "Schema" in (page.evaluate("document.activeElement.textContent") or ""):
            break
    else:
        pytest.fail("the Schema & consumers tab is not reachable by keyboard")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/customer_stats/features/"))
    assert page.locator("#feast-heading").is_visible()
