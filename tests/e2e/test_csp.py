"""The main pages under the portal's Content-Security-Policy, in a real Chromium: no violation event, no
CSP message in the console, no page error, and nothing recorded by the report endpoint. A violation
provoked at the end proves the three watchers (and the report endpoint) do see one."""

import re

import pytest
from django.urls import reverse

from catalog import demo as catalog_demo
from catalog.models import Entity
from portal.accounts import demo as org_demo
from portal.governance import services as governance
from portal.techdocs import services as techdocs
from tests.e2e.csp_watch import CspWatch

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = "test-artifacts/screenshots"


@pytest.fixture
def portal(transactional_db):
    org = org_demo.load_org()
    catalog_demo.load_catalog()
    techdocs.entity_docs_build(entity=Entity.objects.select_related("location").get(ref="component:default/plinth"))
    request = governance.request_create(actor=org["users"]["alice"], action="deprecate",
                                        target="model:default/fraud-detector", justification="replaced by v2")
    return {"request": request}


def visit(page, watch, url: str) -> None:
    page.goto(url)
    page.wait_for_load_state("networkidle")
    watch.check(url)


def tab_urls(page) -> list[str]:
    return page.eval_on_selector_all("[role=tab][href]", "els => els.map(e => e.href)")


def test_main_pages_run_without_a_csp_violation(page, live_server, portal):
    watch = CspWatch(page)
    base = live_server.url
    visit(page, watch, f"{base}/accounts/sign-in/")
    watch.sign_in(live_server)
    watch.check("home")
    pages = ["/catalog/", "/search/?q=fraud", "/create/", "/create/templates/default/ml-model-service/", "/reviews/",
             reverse("governance:request-detail", args=[portal["request"].pk]), "/docs/component/default/plinth/",
             "/teams/", "/accounts/tokens/", "/scorecards/", "/scorecards/service-basics/",
             "/scorecards/service-basics/campaigns/links/",
             "/scorecards/service-basics/entities/?team=fraud-ml"]
    for path in pages:
        visit(page, watch, base + path)
    page.locator("#global-search").fill("fraud")  # the htmx typeahead
    page.locator("#search-suggestions a, #search-suggestions [role=option]").first.wait_for()
    watch.check("typeahead")

    for entity in ("model/default/fraud-detector", "component/default/plinth"):
        visit(page, watch, f"{base}/catalog/{entity}/")
        tabs = tab_urls(page)
        assert len(tabs) >= 3, tabs
        for url in tabs:
            visit(page, watch, url)

    visit(page, watch, f"{base}/catalog/api/default/plinth-api/definition/")
    page.locator(".swagger-ui .opblock").first.wait_for(timeout=15_000)
    watch.check("the Definition tab, Swagger UI")
    page.get_by_role("button", name="Redoc").click()
    page.locator("#td-api-viewer .api-content h2").first.wait_for(timeout=20_000)
    page.wait_for_timeout(500)  # Redoc starts its search worker after rendering
    watch.check("the Definition tab, Redoc")

    visit(page, watch, f"{base}/api/docs/")
    page.locator(".swagger-ui .opblock").first.wait_for(timeout=15_000)
    assert re.search(r"/api/v1/techdocs/sites", page.locator(".swagger-ui").inner_text())
    watch.check("/api/docs/")
    page.screenshot(path=f"{SHOTS}/csp-api-docs-swagger.png")
    visit(page, watch, f"{base}/api/redoc/")
    page.get_by_role("heading", name=re.compile("Plinth API")).wait_for(timeout=20_000)
    page.wait_for_timeout(500)
    watch.check("/api/redoc/")
    page.screenshot(path=f"{SHOTS}/csp-api-redoc.png")

    assert watch.wait_for_reports(0, timeout=0) == 0

    # The watchers are live: an image from another origin is refused, seen, and reported.
    page.goto(f"{base}/catalog/")
    page.evaluate("""() => { const img = document.createElement('img');
                             img.src = 'https://tracker.example.org/pixel.png'; document.body.append(img); }""")
    page.wait_for_timeout(200)
    assert [e.split(" | ")[:2] for e in watch.events] == [["img-src", "https://tracker.example.org/pixel.png"]]
    assert watch.wait_for_reports(1) == 1, "the report endpoint did not record the provoked violation"
