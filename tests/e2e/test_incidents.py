"""Incidents in a real Chromium: open one from an entity's Incidents tab, see the header badge, acknowledge
and resolve it by keyboard, then read MTTA and MTTR on the incident, the entity's tab and the Incidents
list (desktop and phone width; axe-core finds nothing serious). Screenshots go to
test-artifacts/screenshots/incidents-*.png."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db.models import F

from catalog import demo as catalog_demo
from portal.accounts import demo as org_demo
from portal.incidents.models import EntryKind, Incident, TimelineEntry
from tests.e2e.test_newcomer_model import SHOTS, sign_in
from tests.e2e.test_newcomer_ui import AXE, axe_violations

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SERVICE = "/catalog/component/default/fraud-scoring-service/"


@pytest.fixture
def demo_site(transactional_db):
    org_demo.load_org()
    catalog_demo.load_catalog()


@pytest.mark.usefixtures("demo_site")
def test_open_acknowledge_resolve_and_read_mtta_mttr(page, live_server):
    SHOTS.mkdir(parents=True, exist_ok=True)
    sign_in(page, live_server, "bob")
    page.goto(f"{live_server.url}{SERVICE}incidents/")
    tab = page.get_by_test_id("incident-tab")
    assert tab.get_by_text("No open incident.").is_visible()
    form = page.get_by_test_id("incident-open-form")
    form.get_by_label("Title").fill("Scoring answers 503 for a fifth of calls")
    form.get_by_label("Severity").select_option("sev1")
    form.get_by_label("Summary").fill("Since 10:40, after the v3 rollout.")
    page.screenshot(path=str(SHOTS / "incidents-entity-tab-form.png"), full_page=True)
    form.get_by_role("button", name="Open incident").click()
    page.wait_for_url(re.compile(r"/incidents/\d+/$"))
    assert page.get_by_text(re.compile(r"Incident #\d+ is open; fraud-ml will be notified")).is_visible()
    assert page.get_by_test_id("incident-status").first.inner_text() == "Open"
    incident = Incident.objects.get()
    # Back-date the opening so the figures read like a real incident (MTTA about 12 min): the column and
    # its timeline entry together, as every write path sets them.
    Incident.objects.filter(pk=incident.pk).update(opened_at=F("opened_at") - timedelta(minutes=12))
    TimelineEntry.objects.filter(incident=incident, kind=EntryKind.OPENED).update(at=F("at") - timedelta(minutes=12))

    page.goto(f"{live_server.url}{SERVICE}")
    badge = page.get_by_test_id("incident-badge")
    assert badge.inner_text() == "● 1 open incident (SEV1)"
    badge.focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/incidents/")
    page.get_by_test_id("incident-open-list").get_by_role("link").first.click()
    page.wait_for_url(re.compile(r"/incidents/\d+/$"))

    acknowledge = page.get_by_role("button", name="Acknowledge")
    acknowledge.focus()
    with page.expect_navigation():
        page.keyboard.press("Enter")  # by keyboard
    assert page.get_by_text(f"Incident #{incident.pk} is acknowledged.").is_visible()
    assert re.fullmatch(r"1[12] min", page.get_by_test_id("incident-mtta").inner_text())
    page.get_by_label("Note for the timeline").fill("Rolled back to v2; error rate back under 0.1 %.")
    with page.expect_navigation():
        page.get_by_role("button", name="Add note").click()
    resolve = page.get_by_role("button", name="Resolve")
    resolve.focus()
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.get_by_test_id("incident-status").first.inner_text() == "Resolved"
    assert re.fullmatch(r"1[12] min", page.get_by_test_id("incident-mttr").inner_text())
    timeline = page.get_by_test_id("incident-timeline").locator("li")
    kinds = [timeline.nth(i).inner_text() for i in range(timeline.count())]
    assert len(kinds) == 4 and "Acknowledged" in kinds[1] and "Rolled back" in kinds[2] and "Resolved" in kinds[3]
    page.screenshot(path=str(SHOTS / "incidents-detail.png"), full_page=True)
    if AXE.exists():
        assert axe_violations(page) == []

    page.goto(f"{live_server.url}{SERVICE}incidents/")
    figures = page.get_by_test_id("entity-incident-figures")
    assert re.search(r"MTTA, last 90 days\s+1[12] min", figures.inner_text(), re.IGNORECASE)
    history = page.get_by_test_id("incident-history")
    assert history.get_by_role("link", name=re.compile("Scoring answers 503")).is_visible()
    assert page.get_by_test_id("incident-badge").count() == 0  # resolved: no badge
    page.screenshot(path=str(SHOTS / "incidents-entity-tab.png"), full_page=True)

    page.goto(f"{live_server.url}/")
    page.get_by_role("link", name="Incidents", exact=True).first.click()
    assert page.get_by_test_id("incident-count").inner_text() == "0 incidents"  # open ones by default
    # ... but the response times count the resolved one already (they read "—" under the default filter).
    assert re.search(r"MTTR, last 90 days\s+1[12] min", page.get_by_test_id("incident-figures").inner_text(), re.IGNORECASE)
    page.get_by_label("Status").select_option("")  # any status: htmx swaps the results
    page.wait_for_url(re.compile(r"\?status=&"))
    listing = page.get_by_test_id("incident-list")
    assert listing.locator("tbody tr").count() == 1 and "SEV1" in listing.inner_text()
    assert re.search(r"MTTR, last 90 days\s+1[12] min", page.get_by_test_id("incident-figures").inner_text(), re.IGNORECASE)
    page.screenshot(path=str(SHOTS / "incidents-list.png"), full_page=True)
    if AXE.exists():
        assert axe_violations(page) == []
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways at phone width ({width}px)"
    page.screenshot(path=str(SHOTS / "incidents-list-phone.png"), full_page=True)
