"""An XSS corpus through Markdown, front matter, mkdocs nav, a model card and OpenAPI descriptions, checked in
a real Chromium: any dialog, any executed payload (window.__xss) or any CSP violation caused by the content
fails the test. Swagger UI and Redoc render the hostile OpenAPI document too."""

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from catalog import demo as catalog_demo
from catalog import services as catalog_services
from catalog.models import Entity
from portal.accounts import demo as org_demo
from portal.techdocs import services
from tests.techdocs.conftest import write

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = Path("test-artifacts/screenshots")

PAYLOADS = [
    "<script>window.__xss=1;alert('script')</script>",
    "<img src=x onerror=\"window.__xss=1;alert('img')\">",
    "<svg onload=\"window.__xss=1\"><circle r=5/></svg>",
    "<iframe srcdoc=\"<script>parent.__xss=1</script>\"></iframe>",
    "<object data=\"data:text/html,<script>parent.__xss=1</script>\"></object>",
    "<embed src=\"javascript:window.__xss=1\">",
    "<a href=\"javascript:window.__xss=1;alert('link')\" id=\"js-link\">click me</a>",
    "[md link](javascript:window.__xss=1) [md data](data:text/html,<script>alert(1)</script>)",
    "<details open ontoggle=\"window.__xss=1\"><summary>s</summary>d</details>",
    "<math><mi xlink:href=\"javascript:window.__xss=1\">m</mi></math>",
    "<form action=\"javascript:window.__xss=1\"><button id=\"evil-button\">Submit</button></form>",
    "<base href=\"javascript:window.__xss=1//\">",
    "<meta http-equiv=\"refresh\" content=\"0;url=javascript:window.__xss=1\">",
    "<div style=\"background:url(javascript:window.__xss=1)\" onmouseover=\"window.__xss=1\">hover</div>",
    "<a href=\"&#106;&#97;vascript:window.__xss=1\" id=\"entity-link\">entity</a>",
    "<input autofocus onfocus=\"window.__xss=1\">",
    "<h2 id=\"global-search\">clobber</h2>",
    "``<script>window.__xss=1</script>`` and `<img src=x onerror=alert(1)>`",
    "<noscript><p title=\"</noscript><img src=x onerror=window.__xss=1>\"></noscript>",
    "<style>@import 'javascript:alert(1)';</style>",
]
CORPUS = "\n\n".join(f"Payload {i}:\n\n{p}" for i, p in enumerate(PAYLOADS))
EVIL = "<img src=x onerror=window.__xss=1>"

OPENAPI = f"""openapi: 3.0.3
info:
  title: "Hostile API {EVIL}"
  version: "1"
  description: |
    Markdown description. <script>window.__xss=1</script>
    {EVIL}
    [click](javascript:window.__xss=1)
  contact: {{name: x, url: "javascript:window.__xss=1"}}
externalDocs: {{url: "javascript:window.__xss=1", description: "{EVIL}"}}
tags:
  - name: pets
    description: "<svg onload=window.__xss=1>"
paths:
  /pets:
    get:
      tags: [pets]
      summary: "List {EVIL}"
      description: "<script>window.__xss=1</script> **bold** {EVIL}"
      parameters:
        - name: q
          in: query
          description: "<iframe srcdoc='<script>parent.__xss=1</script>'></iframe>"
          schema: {{type: string, example: "<script>window.__xss=1</script>"}}
      responses:
        '200':
          description: "{EVIL}"
          content:
            application/json:
              schema: {{$ref: '#/components/schemas/Pet'}}
components:
  schemas:
    Pet:
      type: object
      description: "<a href='javascript:window.__xss=1'>pet</a>"
      properties:
        name: {{type: string, description: "{EVIL}"}}
"""


@pytest.fixture
def hostile(transactional_db, tmp_path):
    org_demo.load_org()
    catalog_demo.load_catalog()
    root = write(tmp_path / "hostile", {
        "catalog-info.yaml": (
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: hostile\n"
            "  title: Hostile docs\n  annotations:\n    plinth.dev/techdocs-ref: dir:./docs\n"
            "spec: {type: service, lifecycle: production, owner: fraud-ml}\n---\n"
            "apiVersion: backstage.io/v1alpha1\nkind: API\nmetadata: {name: hostile-api}\n"
            "spec: {type: openapi, lifecycle: production, owner: fraud-ml, definition: {$text: ./openapi.yaml}}\n---\n"
            "apiVersion: plinth.dev/v1alpha1\nkind: Model\nmetadata: {name: hostile-model}\n"
            "spec: {type: classifier, owner: fraud-ml, modelCard: ./card.md}\n"),
        "openapi.yaml": OPENAPI,
        "card.md": f"---\nmodel: \"{EVIL}\"\nowners: [\"<script>window.__xss=1</script>\"]\n---\n# Card\n\n"
                   f"## Intended use\n\n{CORPUS}\n",
        "docs/mkdocs.yml": f"site_name: \"Hostile {EVIL}\"\nnav:\n  - \"Home <script>window.__xss=1</script>\": index.md\n"
                           f"  - \"{EVIL}\": corpus.md\n  - Front: front.md\n",
        "docs/index.md": "# Hostile home\n\nSee [the corpus](corpus.md).\n",
        "docs/corpus.md": f"# Corpus\n\n{CORPUS}\n",
        "docs/front.md": f"---\ntitle: \"{EVIL}<script>window.__xss=1</script>\"\n---\n# Front matter\n\nBody.\n",
    })
    plan = catalog_services.location_register(target=str(root / "catalog-info.yaml"), actor=None, file_roots=None)
    assert not plan.errors, [str(e) for e in plan.errors]
    for ref in ("component:default/hostile", "model:default/hostile-model"):
        services.entity_docs_build(entity=Entity.objects.select_related("location").get(ref=ref))


class Watch:
    """Collects dialogs, CSP violations and page errors; checks the sentinel after each step."""

    def __init__(self, page):
        self.page, self.dialogs, self.csp, self.errors = page, [], [], []
        page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        # Any CSP violation fails: the viewers run clean under the portal's policy (Redoc's blob: worker
        # is allowed and its CDN logo patched out), so a violation can only come from the content.
        page.on("console", lambda m: self.csp.append(m.text) if "Content Security Policy" in m.text else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))

    def check(self, where: str) -> None:
        assert self.page.evaluate("typeof window.__xss") == "undefined", f"script executed on {where}"
        assert self.page.evaluate("typeof parent.__xss") == "undefined", f"script executed on {where}"
        assert self.dialogs == [], f"dialog on {where}: {self.dialogs}"
        assert self.csp == [], f"CSP violations on {where} (the sanitiser let something through): {self.csp}"


def sign_in(page, live_server, username="alice"):
    page.goto(f"{live_server.url}/accounts/sign-in/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(org_demo.DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/")


def test_docs_pages_do_not_execute_hostile_content(page, live_server, hostile):
    watch = Watch(page)
    sign_in(page, live_server)
    base = f"{live_server.url}/docs/component/default/hostile/"
    for path in ["", "corpus/", "front/"]:
        page.goto(base + path)
        page.wait_for_load_state("networkidle")
        watch.check(base + path)
        for selector in ["#js-link", "#doc-js-link", "#evil-button", "#doc-evil-button", "text=hover"]:
            if page.locator(selector).count():
                page.locator(selector).first.click(no_wait_after=True, timeout=2000)
        watch.check(base + path + " after clicks")
    assert page.evaluate("document.getElementById('global-search').tagName") == "INPUT"  # not clobbered
    page.goto(base + "corpus/")
    assert page.get_by_role("heading", name="Corpus").is_visible()
    assert page.locator("nav.td-sidebar a").count() == 3
    page.screenshot(path=str(SHOTS / "techdocs-xss-corpus.png"), full_page=True)
    page.goto(f"{live_server.url}/docs/")
    watch.check("/docs/")
    page.screenshot(path=str(SHOTS / "techdocs-index.png"), full_page=True)
    page.goto(f"{live_server.url}/catalog/model/default/hostile-model/model-card/")
    watch.check("model card")
    page.goto(f"{live_server.url}/catalog/component/default/hostile/docs/")
    watch.check("docs tab")
    assert watch.errors == []


def test_openapi_descriptions_do_not_execute_in_swagger_ui_or_redoc(page, live_server, hostile):
    watch = Watch(page)
    sign_in(page, live_server)
    page.goto(f"{live_server.url}/catalog/api/default/hostile-api/definition/")
    assert page.get_by_test_id("operations").is_visible()  # the server-rendered table
    page.locator(".swagger-ui .opblock").first.wait_for(timeout=15_000)
    page.locator(".swagger-ui .opblock-summary").first.click()
    page.locator(".swagger-ui .opblock-body").first.wait_for()
    page.locator(".swagger-ui section.models h4").first.click()
    page.wait_for_timeout(500)
    watch.check("Swagger UI")
    page.screenshot(path=str(SHOTS / "techdocs-swagger-hostile.png"), full_page=True)
    page.get_by_role("button", name="Redoc").click()
    page.locator("#td-api-viewer .api-content, #td-api-viewer [role=navigation]").first.wait_for(timeout=20_000)
    page.wait_for_timeout(1000)
    watch.check("Redoc")
    page.screenshot(path=str(SHOTS / "techdocs-redoc-hostile.png"), full_page=True)


def test_plinth_docs_and_api_reference_render(page, live_server, hostile):
    """The portal's own docs and the Plinth API definition (Swagger UI, offline assets) in the browser."""
    watch = Watch(page)
    services.entity_docs_build(entity=Entity.objects.select_related("location").get(ref="component:default/plinth"))
    sign_in(page, live_server)
    page.get_by_role("link", name="Docs", exact=True).click()
    page.wait_for_url("**/docs/")
    page.get_by_role("link", name="Plinth", exact=True).click()
    page.wait_for_url("**/docs/component/default/plinth/")
    page.locator("nav.td-sidebar").get_by_role("link", name="Getting started").click()
    page.wait_for_url("**/docs/component/default/plinth/guide/getting-started/")
    expect(page.get_by_role("heading", name="Getting started", exact=True)).to_be_visible()
    assert page.locator(".td-toc a").count() >= 4 and page.locator(".codehilite").count() >= 1
    page.screenshot(path=str(SHOTS / "techdocs-plinth-getting-started.png"), full_page=True)
    page.goto(f"{live_server.url}/catalog/api/default/plinth-api/definition/")
    page.locator(".swagger-ui .opblock").first.wait_for(timeout=15_000)
    assert re.search(r"/api/v1/techdocs/sites", page.locator(".swagger-ui").inner_text())
    page.screenshot(path=str(SHOTS / "techdocs-plinth-api.png"))
    # Its 350 kB source is not in the page: opening the Source section fetches it (htmx), once.
    source = page.get_by_test_id("definition-source")
    assert source.locator(".codehilite").count() == 0
    page.locator("summary", has_text="Source").click()
    source.locator(".codehilite").wait_for(timeout=15_000)
    assert "/api/v1/techdocs/sites" in source.inner_text()
    services.entity_docs_build(entity=Entity.objects.select_related("location").get(ref="model:default/fraud-detector"))
    page.goto(f"{live_server.url}/catalog/model/default/fraud-detector/model-card/")
    assert page.get_by_role("heading", name="Intended use").is_visible()
    page.screenshot(path=str(SHOTS / "techdocs-model-card.png"), full_page=True)
    page.goto(f"{live_server.url}/catalog/model/default/fraud-detector/")
    assert page.get_by_test_id("model-card-panel").is_visible()
    watch.check("Plinth docs")
    assert watch.errors == []
