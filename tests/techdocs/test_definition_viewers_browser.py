"""Swagger UI and Redoc on the Definition tab, in a real Chromium, for a definition with templated,
relative and hostile servers and script links in Markdown and the logo (issue 14's two Redoc defects:
a blank page with `TypeError ... startsWith` for a server that lost its url, and live `javascript:`
links). Each viewer must render its operations with no page error, no `javascript:`/`data:` link in the
DOM and no CSP violation."""

import pytest

from catalog import services as catalog_services
from portal.accounts import demo as org_demo
from tests.e2e.csp_watch import CspWatch
from tests.techdocs.conftest import write

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DEFINITION = """openapi: 3.0.3
info:
  title: Scoring with servers
  version: "1.0"
  description: |
    Read [the guide](https://docs.example.org/guide) — or [run this](javascript:window.__xss=1),
    [vb](vbscript:msgbox(1)), [data](data:text/html,<b>x</b>) and [ref link][evil].

    [evil]: javascript:window.__xss=2
  x-logo: {url: /static/img/plinth.svg, href: "javascript:window.__xss=3", altText: Plinth}
externalDocs: {url: "javascript:window.__xss=4", description: "[more](javascript:window.__xss=5)"}
servers:
  - url: "{scheme}://api.example.org/v1"
    variables: {scheme: {default: https, enum: [http, https]}}
  - url: "{scheme}://mirror.example.org/v1"
  - url: /v1
  - url: "javascript:window.__xss=6"
    description: hostile
  - url: "data:text/html,<script>window.__xss=7</script>"
tags:
  - name: scores
    description: "Scores. [tag link](JaVaScRiPt:window.__xss=8)"
paths:
  /score:
    post:
      tags: [scores]
      operationId: scoreOne
      summary: Score one transaction
      description: "Returns a score. [details](javascript&#58;window.__xss=9)"
      parameters:
        - {name: explain, in: query, description: "[why](vbscript:x)", schema: {type: boolean}}
      responses:
        '200': {description: "The score", content: {application/json: {schema: {$ref: '#/components/schemas/Score'}}}}
  /health:
    servers: [{url: "javascript:window.__xss=10"}, {url: "/internal"}]
    get:
      tags: [scores]
      operationId: health
      summary: Health of the scorer
      responses: {'200': {description: ok}}
components:
  schemas:
    Score:
      type: object
      description: "![pixel](https://tracker.example.org/p.png) [schema](javascript:window.__xss=11)"
      properties: {value: {type: number, description: "[v](data:,x)"}}
"""

# Every href/src/action/xlink:href in the document, the viewers' shadow-free DOM included.
UNSAFE_URLS = """() => [...document.querySelectorAll('[href],[src],[action],[formaction]')]
  .flatMap(el => ['href', 'src', 'action', 'formaction'].map(a => el.getAttribute(a)).filter(Boolean))
  .concat([...document.querySelectorAll('*')].map(el => el.getAttributeNS('http://www.w3.org/1999/xlink', 'href'))
  .filter(Boolean))
  .filter(u => /^(javascript|vbscript|data):/i.test(u.replace(/[\\u0000-\\u0020]/g, '')) && u !== 'data:,')"""


@pytest.fixture
def servers_api(transactional_db, tmp_path):
    org_demo.load_org()
    root = write(tmp_path / "servers", {
        "catalog-info.yaml": "apiVersion: backstage.io/v1alpha1\nkind: API\nmetadata: {name: servers-api}\n"
                             "spec: {type: openapi, lifecycle: production, owner: fraud-ml,"
                             " definition: {$text: ./openapi.yaml}}\n",
        "openapi.yaml": DEFINITION,
    })
    plan = catalog_services.location_register(target=str(root / "catalog-info.yaml"), actor=None, file_roots=None)
    assert not plan.errors, [str(e) for e in plan.errors]


def test_swagger_ui_and_redoc_render_servers_and_strip_script_links(page, live_server, servers_api):
    watch = CspWatch(page)
    watch.sign_in(live_server)
    page.goto(f"{live_server.url}/catalog/api/default/servers-api/definition/")
    page.locator(".swagger-ui .opblock").first.wait_for(timeout=15_000)
    assert page.locator(".swagger-ui .opblock").count() == 2
    servers = page.locator(".swagger-ui .servers select").first.locator("option").all_inner_texts()
    assert servers == ["{scheme}://api.example.org/v1", "{scheme}://mirror.example.org/v1", "/v1"]
    page.locator(".swagger-ui .opblock-summary").first.click()
    page.locator(".swagger-ui .opblock-body").first.wait_for()
    assert page.get_by_text("run this", exact=False).first.is_visible()  # the link's text stays
    assert page.evaluate(UNSAFE_URLS) == []
    watch.check("Swagger UI")
    page.screenshot(path="test-artifacts/screenshots/definition-servers-swagger.png", full_page=True)

    page.get_by_role("button", name="Redoc").click()
    content = page.locator("#td-api-viewer .api-content")
    content.get_by_role("heading", name="Score one transaction").wait_for(timeout=20_000)
    assert content.get_by_role("heading", name="Health of the scorer").is_visible()
    assert content.get_by_text("or run this, vb, data and ref link").is_visible()  # the links' text stays
    assert page.locator("#td-api-viewer img[src='/static/img/plinth.svg']").count() == 1  # same-origin logo
    # Redoc lists each operation's servers (expanded against the page for relative ones): hostile ones are gone.
    assert _redoc_servers(page, "scoreOne") == ["{scheme}://api.example.org/v1", "{scheme}://mirror.example.org/v1",
                                                f"{live_server.url}/v1"]
    assert _redoc_servers(page, "health") == [f"{live_server.url}/internal"]
    page.wait_for_timeout(300)
    assert page.evaluate(UNSAFE_URLS) == []
    watch.check("Redoc")
    assert page.evaluate("typeof window.__xss") == "undefined"
    page.screenshot(path="test-artifacts/screenshots/definition-servers-redoc.png", full_page=True)


def _redoc_servers(page, operation_id: str) -> list[str]:
    section = page.locator(f"#td-api-viewer [data-section-id='operation/{operation_id}']")
    return [text.strip() for text in section.locator("div[role=button] span").all_text_contents()]
