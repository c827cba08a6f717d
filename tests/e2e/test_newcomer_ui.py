"""The newcomer's pages in a real Chromium at desktop (1280×900) and phone (390×844) sizes: no
horizontal page scroll on a phone, a keyboard-operable disclosure menu, axe-core (from npm, locked in
tests/e2e/js/) finding no serious or critical violation, and a screenshot of each page at both sizes in
test-artifacts/screenshots/newcomer/ for a person to look at. Then the reviewer's safeguards: Enter on a
focused Approve of a tier-1 request does not approve, and a double click records one decision."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from catalog import demo as catalog_demo
from catalog.models import Entity, ModelVersion
from portal.accounts import demo as org_demo
from portal.governance import services as governance
from portal.techdocs import services as techdocs

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = Path("test-artifacts/screenshots/newcomer")
AXE = Path(__file__).parent / "js" / "node_modules" / "axe-core" / "axe.min.js"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
BLOCKING_IMPACTS = {"serious", "critical"}
# Markup of third-party viewers that CSS cannot change, allowed by rule and page (docs/accessibility.md):
# Swagger UI's operation header is a button with the copy-path button inside it.
UPSTREAM = {("api-docs", "nested-interactive")}


@pytest.fixture
def portal(transactional_db):
    """The demo organisation and catalog, fraud-detector's versions, built docs, and alice's tier-1
    promotion request with its gates evaluated (in review for erin)."""
    org = org_demo.load_org()
    catalog_demo.load_catalog()
    entity = Entity.objects.get(ref="model:default/fraud-detector")
    for version, auc, aliases in (("1", 0.88, []), ("2", 0.91, ["champion"]), ("3", 0.93, ["challenger"])):
        ModelVersion.objects.create(entity=entity, version=version, version_number=int(version), aliases=aliases,
                                    metrics={"auc": auc, "log_loss": 0.4 - auc / 4}, run_id=f"run{version}",
                                    status="READY")
    techdocs.entity_docs_build(entity=Entity.objects.select_related("location").get(ref="component:default/plinth"))
    req = governance.request_create(actor=org["users"]["alice"], action="promote-model-version",
                                    target="model:default/fraud-detector", params={"version": "3", "alias": "champion"},
                                    justification="v3 improves AUC on the Q3 hold-out.")
    governance.request_evaluate_gates(request_id=req.pk)
    return {"request": req, "users": org["users"]}


def new_page(browser, viewport):
    context = browser.new_context(viewport=viewport)
    context.set_default_timeout(15_000)
    return context.new_page()


def sign_in(page, live_server, username: str) -> None:
    page.goto(f"{live_server.url}/accounts/sign-in/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(org_demo.DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/")


def axe_violations(page) -> list[str]:
    """Serious and critical axe-core violations of the page, one line each (rule, impact, where)."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        # Evaluated through the DevTools protocol: the page's CSP (script-src 'self') stays as it is.
        page.evaluate(AXE.read_text() + "\n;true")
    result = page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                       nodes: v.nodes.slice(0, 3).map(n => n.target.join(' ') + ' — ' + n.failureSummary)}));
    }""")
    return [f"{v['id']} ({v['impact']}): {v['help']}: {v['nodes']}" for v in result if v["impact"] in BLOCKING_IMPACTS]


def main_pages(req_pk: int) -> dict[str, str]:
    return {
        "home": "/",
        "catalog": "/catalog/",
        "entity": "/catalog/model/default/fraud-detector/",
        "search": "/search/?q=fraud",
        "create": "/create/",
        "create-wizard": "/create/templates/default/ml-model-service/",
        "reviews": "/reviews/",
        "request": reverse("governance:request-detail", args=[req_pk]),
        "docs": "/docs/component/default/plinth/",
        "api-docs": "/api/docs/",
    }


def open_page(page, url: str) -> None:
    page.goto(url)
    page.wait_for_load_state("networkidle")
    if url.endswith("/api/docs/"):
        page.locator(".swagger-ui .opblock").first.wait_for()


@pytest.mark.skipif(not AXE.exists(), reason="axe-core is not installed: run `make setup` (needs npm: `make system-deps`)")
def test_main_pages_at_desktop_and_phone_size(browser, live_server, portal):
    """Every main page: axe finds nothing serious at either size, and on a phone nothing is wider than
    the screen (the page never scrolls sideways; wide tables scroll inside their cards)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    for size, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        page = new_page(browser, viewport)
        sign_in(page, live_server, "erin")  # a reviewer: the request page shows the decision form
        for name, path in main_pages(portal["request"].pk).items():
            open_page(page, live_server.url + path)
            if size == "phone":
                widths = page.evaluate("() => [document.scrollingElement.scrollWidth, window.innerWidth]")
                if widths[0] > widths[1]:
                    problems.append(f"{name} ({path}) at 390 px scrolls sideways: {widths[0]} > {widths[1]}")
            problems += [f"{name} at {size}: {v}" for v in axe_violations(page)
                         if (name, v.split(" ", 1)[0]) not in UPSTREAM]
            # Swagger UI is thousands of pixels long: its first screen is what there is to look at.
            page.screenshot(path=str(SHOTS / f"{name}-{size}.png"), full_page=name != "api-docs")
        page.context.close()
    assert not problems, "\n".join(problems)


def test_phone_menu_is_a_keyboard_disclosure(browser, live_server, portal):
    """Below 800 px the main links fold behind a Menu button: aria-expanded follows it, Enter opens it,
    Escape closes it and gives the focus back; Create and Reviews are reachable."""
    page = new_page(browser, PHONE)
    sign_in(page, live_server, "alice")
    toggle = page.get_by_role("button", name="Menu")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    create = page.locator("#mainnav a", has_text="Create")
    expect(create).to_be_hidden()
    toggle.focus()
    page.keyboard.press("Enter")
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(create).to_be_visible()
    page.keyboard.press("Tab")  # into the menu
    page.keyboard.press("Escape")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    assert page.evaluate("document.activeElement.classList.contains('nav-toggle')")
    toggle.click()
    page.get_by_role("link", name=re.compile("^Reviews")).click()
    page.wait_for_url(re.compile(r".*/reviews/$"))
    expect(page.get_by_role("heading", name="Reviews", exact=True)).to_be_visible()
    # At desktop width there is no Menu button; the links are in the bar, Insights among them (a real page).
    page.set_viewport_size(DESKTOP)
    expect(page.get_by_role("button", name="Menu")).to_be_hidden()
    expect(create).to_be_visible()
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Insights")).to_have_attribute(
        "href", "/insights/")
    page.context.close()


def test_enter_on_approve_does_not_approve_a_tier1_request_and_double_click_counts_once(browser, live_server, portal):
    from portal.governance.models import Decision

    req = portal["request"]
    page = new_page(browser, DESKTOP)
    sign_in(page, live_server, "erin")
    page.goto(live_server.url + reverse("governance:request-detail", args=[req.pk]))
    approve = page.get_by_role("button", name="Approve…")
    approve.focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name=f"Approve request #{req.pk}?")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("risk tier 1")
    box = dialog.get_by_label("Type fraud-detector to confirm")
    expect(box).to_be_focused()
    page.keyboard.press("Enter")  # nothing typed: the confirm button is disabled, so nothing is sent
    page.keyboard.press("Enter")
    confirm = dialog.get_by_role("button", name=f"Approve #{req.pk}")
    expect(confirm).to_be_disabled()
    page.wait_for_timeout(300)
    assert not Decision.objects.filter(request=req).exists()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(approve).to_be_focused()
    page.screenshot(path=str(SHOTS / "request-before-approval.png"), full_page=True)

    approve.click()
    box.fill("fraud-detector")
    expect(confirm).to_be_enabled()
    page.screenshot(path=str(SHOTS / "request-approval-dialog.png"))
    confirm.dblclick()
    expect(page.get_by_test_id("status")).to_contain_text(re.compile("Approved|Executing|Execution failed|Executed"))
    assert Decision.objects.filter(request=req).count() == 1
    assert not page.get_by_test_id("decision-error").is_visible()
    page.context.close()


def test_phone_catalog_shows_results_before_filters(browser, live_server, portal):
    """On a phone the first results are on the first screen and a "Filters" link at their top jumps to
    the facets below them; at desktop width the facets sit beside the results and the link is hidden."""
    page = new_page(browser, PHONE)
    sign_in(page, live_server, "alice")
    for path, facets in (("/catalog/", "#catalog-facets"), ("/search/?q=fraud", "#search-facets")):
        open_page(page, live_server.url + path)
        first_row = page.locator("#results table tbody tr, #results .search-hit").first
        assert first_row.bounding_box()["y"] < page.locator(facets).bounding_box()["y"], path
        assert first_row.bounding_box()["y"] < PHONE["height"], f"{path}: the first result is below the fold"
        jump = page.locator(".to-filters a")
        expect(jump).to_be_visible()
        jump.click()
        page.wait_for_function(f"() => location.hash === '{facets}'")
        assert page.locator(facets).bounding_box()["y"] < PHONE["height"]
    page.set_viewport_size(DESKTOP)
    expect(page.locator(".to-filters a")).to_be_hidden()
    page.context.close()


LONG_NAME = "m" + "x" * 61 + "z"  # the longest name a descriptor may have, with nowhere to break
LONG_WORD = "Pneumonoultramicroscopicsilicovolcanoconiosis" * 4
LONG_TITLE = "Supercalifragilistic" * 10
LONG_URL = "https://wiki.example.com/" + "segment" * 40
LONG_TAG = "t" * 63


def test_long_unbroken_words_never_widen_a_page(browser, live_server, portal, tmp_path):
    """A descriptor's longest allowed name, tag and annotation key, a 200-character title, a link and a
    description of words longer than a phone: each breaks where it must, on every page that shows it,
    at both sizes (tables keep their words and scroll inside their card)."""
    from catalog import services as catalog_services

    (tmp_path / "catalog-info.yaml").write_text(f"""apiVersion: plinth.dev/v1alpha1
kind: Model
metadata:
  name: {LONG_NAME}
  title: {LONG_TITLE}
  description: A model whose description holds {LONG_WORD} and more words after it.
  tags: [{LONG_TAG}, fraud]
  annotations:
    plinth.dev/value-kpi: {LONG_WORD}
    example.com/{"k" * 60}: {LONG_URL}
  links:
    - url: {LONG_URL}
      title: {LONG_WORD}
spec: {{type: classifier, lifecycle: production, owner: fraud-ml, system: fraud-detection,
        trainedOn: [card-transactions-2025]}}
""")
    plan = catalog_services.location_register(target=str(tmp_path / "catalog-info.yaml"), actor=None, file_roots=None)
    assert not plan.errors, plan.errors
    SHOTS.mkdir(parents=True, exist_ok=True)
    pages = {"entity": f"/catalog/model/default/{LONG_NAME}/", "system": "/catalog/system/default/fraud-detection/",
             "search": f"/search/?q={LONG_TITLE[:20]}", "list": "/catalog/?kind=model", "tag": f"/catalog/?tag={LONG_TAG}",
             "home": "/"}
    problems = []
    for size, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        page = new_page(browser, viewport)
        sign_in(page, live_server, "alice")
        page.goto(live_server.url + pages["entity"])  # in alice's recently viewed: the home page lists it
        for name, path in pages.items():
            open_page(page, live_server.url + path)
            expect(page.get_by_text(LONG_TITLE[:40]).first).to_be_visible()
            widths = page.evaluate("() => [document.scrollingElement.scrollWidth, window.innerWidth]")
            if widths[0] > widths[1]:
                problems.append(f"{name} ({path}) at {size} scrolls sideways: {widths[0]} > {widths[1]}")
            page.screenshot(path=str(SHOTS / f"long-words-{name}-{size}.png"), full_page=True)
        page.context.close()
    assert not problems, "\n".join(problems)
