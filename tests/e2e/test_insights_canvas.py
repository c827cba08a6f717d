"""The capability canvas in a real Chromium, on the demo organisation with its generated usage history
(what `make run` shows): a platform admin opens it from the user menu at desktop and phone size
(axe-core: nothing serious or critical; no sideways scroll at 390 px), sees live KPIs with their
statuses, and downloads the one-page PDF. Screenshots (and the PDF's page as PNG when pdftoppm is
installed) in test-artifacts/screenshots/insights/ for a person to look at."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from playwright.sync_api import expect

from catalog import demo as catalog_demo
from portal.accounts import demo as org_demo
from portal.incidents import demo as incidents_demo
from portal.insights import canvas
from portal.insights import demo as insights_demo
from tests.e2e.test_newcomer_ui import AXE, DESKTOP, PHONE, axe_violations, new_page, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = Path("test-artifacts/screenshots/insights")


@pytest.fixture
def portal(transactional_db):
    org = org_demo.load_org()
    catalog_demo.load_catalog()
    summary = insights_demo.load()
    incidents_demo.load()  # the MTTA/MTTR KPIs: what `manage.py demo insights` adds
    assert summary.created, summary
    return org


@pytest.mark.skipif(not AXE.exists(), reason="axe-core is not installed: run `make setup` (needs npm: `make system-deps`)")
def test_a_platform_admin_reviews_the_canvas_and_downloads_the_pdf(browser, live_server, portal):
    SHOTS.mkdir(parents=True, exist_ok=True)
    kpi_names = [kpi["name"] for _, kpi in canvas.iter_kpis(canvas.load())]
    problems: list[str] = []
    for size, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        page = new_page(browser, viewport)
        sign_in(page, live_server, "grace")
        if size == "desktop":  # reached from the user menu
            page.locator(".usermenu summary").click()
            page.get_by_role("link", name="Capability canvas").click()
        else:
            page.goto(f"{live_server.url}/insights/canvas/")
        expect(page.get_by_role("heading", name="Capability canvas", level=1)).to_be_visible()
        for persona in ("Data scientist", "ML engineer", "Reviewer (risk and compliance)", "Platform admin",
                        "Leadership"):
            expect(page.get_by_role("heading", name=persona, level=2)).to_be_visible()
        statuses = page.locator("tr[data-kpi]").evaluate_all("rows => rows.map(r => r.dataset.status)")
        assert len(statuses) == len(kpi_names)
        assert "broken" not in statuses and statuses.count("nodata") == 0, statuses  # the demo fills every KPI
        assert {"green", "amber", "red"} <= set(statuses), statuses
        wau = page.locator('tr[data-kpi="weekly-active-users"] .canvas-value')
        assert re.fullmatch(r"\d+", wau.inner_text().strip())
        if size == "phone":
            widths = page.evaluate("() => [document.scrollingElement.scrollWidth, window.innerWidth]")
            if widths[0] > widths[1]:
                problems.append(f"canvas at 390 px scrolls sideways: {widths[0]} > {widths[1]}")
        problems += [f"canvas at {size}: {v}" for v in axe_violations(page)]
        page.screenshot(path=str(SHOTS / f"canvas-{size}.png"), full_page=True)
        if size == "desktop":
            with page.expect_download() as info:
                page.get_by_role("link", name="Download PDF").click()
            download = info.value
            assert re.fullmatch(r"plinth-capability-canvas-\d{4}-\d\d-\d\d\.pdf", download.suggested_filename)
            pdf = SHOTS / "canvas.pdf"
            download.save_as(pdf)
            assert pdf.read_bytes().startswith(b"%PDF-")
            if shutil.which("pdfinfo"):
                info_text = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True,  # noqa: S603, S607
                                           check=True).stdout
                assert re.search(r"^Pages:\s+1$", info_text, re.MULTILINE), info_text
            if shutil.which("pdftoppm"):
                subprocess.run(["pdftoppm", "-png", "-r", "100", "-singlefile", str(pdf),  # noqa: S603, S607
                                str(SHOTS / "canvas-pdf")], check=True)
        page.context.close()
    assert not problems, "\n".join(problems)
