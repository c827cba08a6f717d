"""A platform admin's Insights journey in a real Chromium: open Insights from the menu, see active users,
the funnel, top templates and searches and the governance flow; change the date range; download a
CSV (escaped against formula injection). Every dashboard at 1280 and 390 px: axe-core finds nothing
serious or critical, nothing scrolls sideways on a phone, no CSP violation; screenshots in
test-artifacts/screenshots/insights/ for a person to look at."""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from catalog import demo as catalog_demo
from portal.accounts import demo as org_demo
from portal.accounts.models import Team
from portal.governance.models import ApprovalRequest, PolicyResult, Stage
from portal.insights.models import ActiveUserDay, EventType, Grain, Milestone, Rollup, TeamMilestone
from tests.e2e.csp_watch import CspWatch
from tests.e2e.test_newcomer_ui import AXE, DESKTOP, PHONE, axe_violations, new_page, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = Path("test-artifacts/screenshots/insights")
INJECTION = "=cmd|' /C calc'!A0"
DASHBOARDS = ("", "active-users/", "funnel/", "usage/", "searches/", "governance/", "catalog-health/")


def _history(org) -> None:
    """Five weeks of rollups for the demo teams, with known shapes (a rising week, a zero-result
    query that looks like a formula, a stage that breaches its SLA)."""
    teams, users = org["teams"], org["users"]
    today = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    org_rows: dict[tuple, list[dict]] = defaultdict(list)
    for d in range(35):
        day = today - timedelta(days=d)
        for i, user in enumerate(users.values()):
            if (d + i) % 3 != 0 or d < 7 and i < 5:
                ActiveUserDay.objects.create(day=day.date(), user=user, events=3 + i)
        for name, runs in (("fraud-ml", 4), ("recsys", 2)):
            team = teams[name]
            add = [
                (EventType.TEMPLATE_RUN_STARTED, "template:default/ml-model-service", runs, []),
                (EventType.TEMPLATE_RUN_SUCCEEDED, "template:default/ml-model-service", runs - 1, [240, 300, 420][: runs - 1]),
                (EventType.TEMPLATE_RUN_FAILED, "template:default/ml-model-service", 1, [60]),
                (EventType.TEMPLATE_RUN_STARTED, "template:default/feature-pipeline", 1, []),
                (EventType.ENTITY_VIEW, "model:default/fraud-detector", 9 + d % 4, []),
                (EventType.DOCS_VIEW, "component:default/plinth/guide/", 3, []),
                (EventType.SEARCH, "fraud detector", 6, []),
                (EventType.SEARCH, INJECTION, 1, []),
            ]
            for type_, subject, count, values in add:
                numbers = {"count": count, "users": min(count, 3), "values": values,
                           "value_sum": 0 if subject == INJECTION else sum(values) or count * 5,
                           "value_count": len(values) or count}
                Rollup.objects.create(grain=Grain.DAILY, bucket=day, type=type_, team=team, subject=subject, **numbers)
                org_rows[day, type_, subject].append(numbers)
    # The organisation-wide rows the rollup task writes next to the teams' (what "All teams" reads).
    for (day, type_, subject), parts in org_rows.items():
        Rollup.objects.create(grain=Grain.ORG_DAILY, bucket=day, type=type_, team=None, subject=subject,
                              values=sorted(v for p in parts for v in p["values"]),
                              **{k: sum(p[k] for p in parts) for k in ("count", "users", "value_sum", "value_count")})
    _approvals(org, today)
    for name, offset in (("fraud-ml", 20), ("recsys", 12), ("risk-governance", 40), ("platform", 60)):
        Team.objects.filter(pk=teams[name].pk).update(created_at=today - timedelta(days=offset, hours=1))
        steps = list(Milestone)[: {"fraud-ml": 6, "recsys": 3, "risk-governance": 2, "platform": 5}[name]]
        for i, milestone in enumerate(steps):
            TeamMilestone.objects.create(team=teams[name], milestone=milestone,
                                         reached_at=today - timedelta(days=offset) + timedelta(days=i, hours=5))


def _approvals(org, today) -> None:
    """A month of closed promotion requests: two review stages each, some escalated, some blocked."""
    for d in range(1, 30, 2):
        submitted = today - timedelta(days=d, hours=-9)
        hours = 2 + d % 7
        req = ApprovalRequest.objects.create(
            action="promote-model-version", target_ref="model:default/fraud-detector",
            owner_team=org["teams"]["fraud-ml"], requester=org["users"]["alice"],
            workflow_name="promote-model-version", state="executed" if d % 9 else "expired", escalated=d % 5 == 0,
            submitted_at=submitted, closed_at=submitted + timedelta(hours=hours + 1))
        Stage.objects.create(request=req, index=0, name="Model risk review", started_at=submitted,
                             completed_at=submitted + timedelta(hours=hours))
        Stage.objects.create(request=req, index=1, name="Platform check", started_at=submitted + timedelta(hours=hours),
                             completed_at=submitted + timedelta(hours=hours + 1))
        if d % 6 == 1:
            PolicyResult.objects.create(request=req, gate="model_card", policy_file="model_card.rego",
                                        policy_hash="demo", passed=False, enforcement="block")


@pytest.fixture
def insights_demo(transactional_db):
    org = org_demo.load_org()
    catalog_demo.load_catalog()
    _history(org)
    return org


@pytest.mark.skipif(not AXE.exists(), reason="axe-core is not installed: run `make setup` (needs npm: `make system-deps`)")
def test_every_dashboard_at_desktop_and_phone_size(browser, live_server, insights_demo):
    SHOTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    for size, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        page = new_page(browser, viewport)
        watch = CspWatch(page)
        sign_in(page, live_server, "grace")
        for path in DASHBOARDS:
            page.goto(f"{live_server.url}/insights/{path}")
            page.wait_for_load_state("networkidle")
            name = path.strip("/") or "overview"
            if size == "phone":
                widths = page.evaluate("() => [document.scrollingElement.scrollWidth, window.innerWidth]")
                if widths[0] > widths[1]:
                    problems.append(f"{name} at 390 px scrolls sideways: {widths[0]} > {widths[1]}")
            problems += [f"{name} at {size}: {v}" for v in axe_violations(page)]
            page.screenshot(path=str(SHOTS / f"{name}-{size}.png"), full_page=True)
            watch.check(f"/insights/{path} at {size}")
        page.context.close()
    assert not problems, "\n".join(problems)


def test_admin_journey_through_insights(browser, live_server, insights_demo):
    page = new_page(browser, DESKTOP)
    sign_in(page, live_server, "grace")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Insights").click()
    page.wait_for_url(re.compile(r".*/insights/$"))
    expect(page.get_by_role("heading", name=re.compile("^Insights"))).to_be_visible()
    # The overview: active users chart, the funnel, top templates and searches, the governance flow.
    expect(page.get_by_test_id("chart-active-users")).to_be_visible()
    expect(page.get_by_test_id("chart-funnel")).to_contain_text("First sign-in")
    expect(page.get_by_test_id("table-templates")).to_contain_text("template:default/ml-model-service")
    expect(page.get_by_test_id("table-searches")).to_contain_text("fraud detector")
    expect(page.get_by_test_id("table-stages")).to_contain_text("Model risk review")

    # Charts are keyboard reachable and carry their data as a table.
    chart = page.get_by_test_id("chart-active-users").locator("svg")
    chart.focus()
    assert page.evaluate("document.activeElement.tagName.toLowerCase()") == "svg"
    page.get_by_test_id("chart-active-users").get_by_text("Data table").click()
    expect(page.get_by_test_id("chart-active-users").locator("table")).to_be_visible()

    # Active users: 30 days by default, then the 7-day preset, then an explicit range.
    page.get_by_role("tab", name="Active users").or_(page.get_by_role("link", name="Active users", exact=True)).first.click()
    page.wait_for_url(re.compile(r".*/insights/active-users/.*"))
    assert page.get_by_test_id("chart-active-users").locator("circle").count() == 30
    page.get_by_role("link", name="7 days").click()
    page.wait_for_url(re.compile(r".*days=7.*"))
    assert page.get_by_test_id("chart-active-users").locator("circle").count() == 7
    today = timezone.now().date()
    page.get_by_label("From", exact=True).fill((today - timedelta(days=13)).isoformat())
    page.get_by_label("To", exact=True).fill(today.isoformat())
    page.get_by_label("Grouping").select_option("weekly")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url(re.compile(r".*grouping=weekly.*"))
    expect(page.get_by_text("(14 days)")).to_be_visible()
    page.screenshot(path=str(SHOTS / "journey-weekly.png"), full_page=True)

    # A reversed range: a clear message, no chart.
    page.get_by_label("From", exact=True).fill(today.isoformat())
    page.get_by_label("To", exact=True).fill((today - timedelta(days=3)).isoformat())
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_test_id("filter-errors")).to_contain_text("is after end")
    page.screenshot(path=str(SHOTS / "journey-bad-range.png"), full_page=True)

    # Searches: download the CSV; the formula-like query is defused.
    page.goto(f"{live_server.url}/insights/searches/?days=30")
    expect(page.get_by_test_id("chart-zero-searches")).to_contain_text(INJECTION)
    with page.expect_download() as download_info:
        page.get_by_test_id("csv-download").click()
    download = download_info.value
    assert re.fullmatch(r"insights-searches-\d{4}-\d\d-\d\d-\d{4}-\d\d-\d\d\.csv", download.suggested_filename)
    rows = list(csv.reader(io.StringIO(Path(download.path()).read_text())))
    cells = [c for row in rows for c in row]
    assert "'" + INJECTION in cells and INJECTION not in cells
    assert ["top searches", "fraud detector", "360", "0", "0", "5.0", ""] in rows
    page.context.close()
