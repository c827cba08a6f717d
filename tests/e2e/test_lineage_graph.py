"""The Lineage tab and the full-page graph in a real Chromium, over real lineage: catalog entities
registered from a descriptor file (a model trained on a dataset that an OpenLineage job writes, an API
that depends on the model, another team's private model) and OpenLineage events posted through the API
with a Plinth token. The journey opens one hop, expands by click and by keyboard, toggles the
direction, opens the side panel, traces a column, and visits the full page; then a 200-node graph.
No CSP violation, axe-core finds nothing serious. Screenshots: test-artifacts/screenshots/lineage-*.png."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from playwright.sync_api import expect

from catalog import demo as catalog_demo
from catalog import services as catalog_services
from portal.accounts import demo as org_demo
from portal.accounts import services as account_services
from tests.e2e.csp_watch import CspWatch
from tests.e2e.test_newcomer_model import SHOTS
from tests.e2e.test_newcomer_ui import AXE, axe_violations

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True),
              pytest.mark.skipif(not (settings.PLINTH_OPENLINEAGE_SPEC_DIR and
                                      (__import__("pathlib").Path(settings.PLINTH_OPENLINEAGE_SPEC_DIR)
                                       / "OpenLineage.json").is_file()),
                                 reason="OpenLineage spec not found (../shared/compat/openlineage/spec)")]

PG = "postgres://db.internal:5432"
LAKE = "s3://lake"
FEATURES = f"dataset:{PG}:analytics.public.churn_features"
ORDERS = f"dataset:{PG}:shop.public.orders"
CHURN_JOB = "job:airflow:etl.churn_features"
MODEL = "/catalog/model/default/churn-model/"

DESCRIPTORS = f"""\
apiVersion: plinth.dev/v1alpha1
kind: Dataset
metadata:
  name: churn-features-2026
  title: Churn features 2026
  annotations:
    openlineage.io/dataset: {PG}/analytics.public.churn_features
spec:
  owner: fraud-ml
  uri: {PG}/analytics.public.churn_features
---
apiVersion: plinth.dev/v1alpha1
kind: Pipeline
metadata:
  name: churn-etl
  title: Churn feature ETL
  annotations:
    openlineage.io/job: airflow/etl.churn_features
spec:
  type: feature-materialisation
  owner: fraud-ml
  schedule: "0 2 * * *"
  orchestrator: airflow
---
apiVersion: plinth.dev/v1alpha1
kind: Model
metadata:
  name: churn-model
  title: Churn model
spec:
  type: classifier
  lifecycle: production
  owner: fraud-ml
  trainedOn: [churn-features-2026]
---
apiVersion: plinth.dev/v1alpha1
kind: Model
metadata:
  name: churn-shadow-experiment
  annotations:
    plinth.dev/visibility: private
spec:
  type: classifier
  lifecycle: experimental
  owner: recsys
  trainedOn: [churn-features-2026]
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: churn-api
  title: Churn scoring service
spec:
  type: service
  lifecycle: production
  owner: fraud-ml
  dependsOn: [model:churn-model]
"""


def _facet(**fields) -> dict:
    return {"_producer": "https://example.org/plinth-tests", "_schemaURL": "https://example.org/schema.json", **fields}


def _schema(*fields) -> dict:
    return {"schema": _facet(fields=[{"name": n, "type": t} for n, t in fields])}


class Sender:
    """OpenLineage events through POST /api/v1/lineage with a Plinth token, as a pipeline sends them."""

    def __init__(self, username: str) -> None:
        user = get_user_model().objects.get(username=username)
        _, raw = account_services.token_create(user=user, name="lineage e2e")
        self.client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
        self.start = datetime.now(UTC) - timedelta(hours=3)

    def run(self, job: str, *, inputs=(), outputs=(), state="COMPLETE", minutes=0, seconds=95, error=None):
        run_id = str(uuid.uuid4())
        begin = self.start + timedelta(minutes=minutes)
        events = []
        for event_type, when in (("START", begin), (state, begin + timedelta(seconds=seconds))):
            run_facets = {"errorMessage": _facet(message=error, programmingLanguage="python")} \
                if error and event_type == "FAIL" else {}
            events.append({
                "eventType": event_type, "eventTime": when.isoformat().replace("+00:00", "Z"),
                "producer": "https://github.com/OpenLineage/OpenLineage/tree/1.54.0/integration/airflow",
                "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
                "run": {"runId": run_id, "facets": run_facets},
                "job": {"namespace": "airflow", "name": job},
                "inputs": [d if isinstance(d, dict) else {"namespace": d[0], "name": d[1]} for d in inputs],
                "outputs": [d if isinstance(d, dict) else {"namespace": d[0], "name": d[1]} for d in outputs],
            })
        response = self.client.post("/api/v1/lineage", data=json.dumps(events), content_type="application/json")
        assert response.status_code == 201, response.content


def _column(field: str, *sources, subtype="IDENTITY") -> dict:
    return {field: {"inputFields": [
        {"namespace": PG, "name": table, "field": column,
         "transformations": [{"type": "DIRECT", "subtype": subtype, "masking": False}]} for table, column in sources]}}


@pytest.fixture
def lineage_site(transactional_db, tmp_path, settings):
    org_demo.load_org()
    catalog_demo.load_catalog()
    (tmp_path / "catalog-info.yaml").write_text(DESCRIPTORS)
    plan = catalog_services.location_register(target=str(tmp_path / "catalog-info.yaml"), actor=None, file_roots=None)
    assert not plan.errors, [str(e) for e in plan.errors]
    send = Sender("bob")
    send.run("etl.orders_clean", inputs=[(PG, "shop.public.orders_raw")], outputs=[
        {"namespace": PG, "name": "shop.public.orders", "facets": _schema(
            ("order_id", "bigint"), ("customer_id", "bigint"), ("amount", "numeric"), ("placed_at", "timestamp"))}])
    features = {"namespace": PG, "name": "analytics.public.churn_features", "facets": {
        **_schema(("customer_id", "bigint"), ("order_count_90d", "int"), ("avg_order_value", "double"),
                  ("country", "string")),
        "columnLineage": _facet(fields={
            **_column("customer_id", ("shop.public.customers", "customer_id")),
            **_column("order_count_90d", ("shop.public.orders", "order_id"), subtype="AGGREGATION"),
            **_column("avg_order_value", ("shop.public.orders", "amount"), subtype="AGGREGATION"),
            **_column("country", ("shop.public.customers", "country"))}),
        "dataQualityMetrics": _facet(rowCount=48210, bytes=3_912_044, columnMetrics={
            "customer_id": {"nullCount": 0, "distinctCount": 48210},
            "avg_order_value": {"nullCount": 12, "min": 3.5, "max": 912.0}})}}
    send.run("etl.churn_features", minutes=30, seconds=412, inputs=[
        {"namespace": PG, "name": "shop.public.customers",
         "facets": _schema(("customer_id", "bigint"), ("country", "string"))},
        (PG, "shop.public.orders")], outputs=[features])
    send.run("etl.churn_report", minutes=60, state="FAIL", error="permission denied for schema reports",
             inputs=[(PG, "analytics.public.churn_features")], outputs=[(LAKE, "reports/churn_weekly")])
    return send


def node(page, node_id: str):
    return page.locator(f'.lineage-svg [data-id="{node_id}"]')


def focused_id(page) -> str | None:
    return page.evaluate("document.activeElement && document.activeElement.getAttribute('data-id')")


def wait_loaded(page):
    expect(page.get_by_test_id("lineage").locator("[data-lineage-status]")).to_have_text(re.compile(r"\d+ nodes?, \d+ edges? shown"))


def in_canvas_view(page, node_id: str) -> bool:
    """The node's box lies wholly inside the scrolled canvas's visible area."""
    return page.evaluate("""(id) => {
        const canvas = document.querySelector('[data-lineage-canvas]');
        const g = [...canvas.querySelectorAll('[data-id]')].find((e) => e.dataset.id === id);
        if (!g) { return false; }
        const box = g.querySelector('.lnode-box').getBoundingClientRect(), view = canvas.getBoundingClientRect();
        const left = view.left + canvas.clientLeft, top = view.top + canvas.clientTop;
        return box.left >= left && box.right <= left + canvas.clientWidth
            && box.top >= top && box.bottom <= top + canvas.clientHeight;
    }""", node_id)


def test_lineage_tab_expand_keyboard_direction_panel_columns_and_full_page(page, live_server, lineage_site):
    SHOTS.mkdir(parents=True, exist_ok=True)
    watch = CspWatch(page)
    watch.sign_in(live_server)
    page.goto(f"{live_server.url}{MODEL}")
    page.get_by_role("tab", name="Lineage").click()
    page.wait_for_url(re.compile(r"/lineage/$"))
    wait_loaded(page)
    # One hop: the training data upstream, the API downstream — not the whole tree.
    root = node(page, "entity:model:default:churn-model")
    expect(root).to_be_visible()
    expect(node(page, FEATURES)).to_be_visible()
    expect(node(page, "entity:component:default:churn-api")).to_be_visible()
    assert node(page, CHURN_JOB).count() == 0, "two hops away: not loaded before an expansion"
    assert "Model Churn model" in root.get_attribute("aria-label")
    page.screenshot(path=str(SHOTS / "lineage-tab-one-hop.png"), full_page=True)

    # Click: the dataset's facts open, and its neighbours are merged into the drawing.
    node(page, FEATURES).click()
    expect(node(page, CHURN_JOB)).to_be_visible()
    expect(node(page, "job:airflow:etl.churn_report")).to_be_visible()
    # What the expansion brought in is scrolled into the canvas's view, not left beyond its edge.
    for brought in (CHURN_JOB, "job:airflow:etl.churn_report", FEATURES):
        assert in_canvas_view(page, brought), brought
    status = page.locator("[data-lineage-status]")
    expect(status).to_contain_text("1 node hidden (not visible to you)")  # recsys's private model
    assert "churn-shadow" not in page.content()
    panel = page.locator("[data-lineage-panel]")
    expect(panel).to_be_visible()
    expect(panel.get_by_role("heading", name="Churn features 2026")).to_be_visible()
    facts = panel.inner_text()
    assert "fraud-ml" in facts and "Succeeded" in facts and "6 min 52 s" in facts, facts
    assert "48,210" in facts and "avg_order_value" in facts, facts
    expect(panel.get_by_role("link", name="Open the entity page")).to_have_attribute(
        "href", "/catalog/dataset/default/churn-features-2026/")
    failing = node(page, "job:airflow:etl.churn_report")
    assert "last run failed" in failing.get_attribute("aria-label")
    assert "✕ failed" in failing.locator(".lnode-state").text_content()

    # Keyboard: the clicked node holds the focus; ← goes upstream to the job, Enter expands it.
    assert focused_id(page) == FEATURES or node(page, FEATURES).get_attribute("tabindex") == "0"
    node(page, FEATURES).focus()
    page.keyboard.press("ArrowLeft")
    assert focused_id(page) == CHURN_JOB
    page.keyboard.press("Enter")
    expect(node(page, ORDERS)).to_be_visible()
    expect(node(page, f"dataset:{PG}:shop.public.customers")).to_be_visible()
    expect(panel.get_by_role("heading", name="Churn feature ETL")).to_be_visible()  # the Pipeline's title
    assert focused_id(page) == CHURN_JOB, "the focus stays on the expanded node"
    page.keyboard.press("ArrowLeft")
    assert focused_id(page) in {ORDERS, f"dataset:{PG}:shop.public.customers"}
    node(page, ORDERS).focus()
    page.keyboard.press("Enter")
    expect(node(page, "job:airflow:etl.orders_clean")).to_be_visible()
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    assert focused_id(page) == ORDERS, "Escape gives the focus back to the node"
    page.keyboard.press("Home")
    assert focused_id(page) == "entity:model:default:churn-model", page.evaluate("document.activeElement.outerHTML.slice(0, 200)")
    # Tab from the controls lands on one node of the graph (a roving tab stop), visibly focused.
    page.get_by_role("button", name="Zoom in").focus()
    page.keyboard.press("Tab")
    if focused_id(page) is None:  # the "Full page" link sits between
        page.keyboard.press("Tab")
    assert focused_id(page) == "entity:model:default:churn-model", page.evaluate("document.activeElement.outerHTML.slice(0, 200)")
    outline = page.evaluate("getComputedStyle(document.activeElement.querySelector('.lnode-box')).strokeWidth")
    assert outline == "4px", outline

    # Column lineage: trace avg_order_value back to orders.amount; orders is highlighted. The dataset,
    # expanded before and clicked again from afar, is shown with its neighbours on both sides.
    node(page, FEATURES).click()
    for near in (CHURN_JOB, "job:airflow:etl.churn_report", FEATURES):
        assert in_canvas_view(page, near), near
    panel.get_by_role("button", name="Trace column avg_order_value").click()
    columns = panel.locator("[data-lineage-columns]")
    expect(columns).to_contain_text("shop.public.orders . amount")
    expect(columns).to_contain_text("AGGREGATION")
    expect(node(page, ORDERS)).to_have_class(re.compile(r"\bcol-hit\b"))
    assert "column lineage: amount" in node(page, ORDERS).get_attribute("aria-label")
    assert "col-hit" not in node(page, f"dataset:{PG}:shop.public.customers").get_attribute("class")
    page.screenshot(path=str(SHOTS / "lineage-tab-expanded-columns.png"), full_page=True)
    if AXE.exists():
        assert axe_violations(page) == []
    watch.check("lineage tab")

    # Colour by last run state: the failed job's box turns red; the icon and word stay.
    page.get_by_label("Colour by").select_option("state")
    fill = page.evaluate("""getComputedStyle(document.querySelector('[data-id="job:airflow:etl.churn_report"] .lnode-box')).fill""")
    assert fill == "rgb(253, 236, 236)", fill
    page.screenshot(path=str(SHOTS / "lineage-tab-by-state.png"), full_page=True)

    # Upstream only: the graph starts again from the model, one hop up.
    page.locator("label[for=lineage-dir-up]").click()
    expect(status).to_contain_text("(upstream only)")
    expect(node(page, FEATURES)).to_be_visible()
    assert node(page, "entity:component:default:churn-api").count() == 0
    node(page, FEATURES).click()
    expect(node(page, CHURN_JOB)).to_be_visible()
    assert node(page, "job:airflow:etl.churn_report").count() == 0, "downstream is not loaded upstream-only"
    page.locator("label[for=lineage-dir-down]").click()
    expect(node(page, "entity:component:default:churn-api")).to_be_visible()
    assert node(page, FEATURES).count() == 0

    # The full page, from the tab's link.
    page.get_by_role("link", name="Full page ↗").click()
    page.wait_for_url(re.compile(r"/lineage/\?nodeId=entity%3Amodel%3Adefault%3Achurn-model$"))
    wait_loaded(page)
    expect(page.get_by_role("heading", level=1, name="Churn model")).to_be_visible()
    node(page, FEATURES).click()
    expect(node(page, CHURN_JOB)).to_be_visible()
    # Five nodes fit beside the open panel at 60 % or more: the whole graph is drawn, none cut off.
    shown = page.evaluate("[...document.querySelectorAll('.lineage-svg [data-id]')].map((g) => g.dataset.id)")
    assert len(shown) == 5, shown
    for drawn in shown:
        assert in_canvas_view(page, drawn), drawn
    page.screenshot(path=str(SHOTS / "lineage-full-page.png"), full_page=True)
    # Closing the panel widens the canvas: the drawing zooms back in (never beyond 100 %).
    width = page.evaluate("() => Number(document.querySelector('.lineage-svg').getAttribute('width'))")
    page.locator("[data-lineage-panel]").get_by_role("button", name=re.compile("Close")).click()
    expect(page.locator("[data-lineage-panel]")).to_be_hidden()
    page.wait_for_function("(w) => Number(document.querySelector('.lineage-svg').getAttribute('width')) > w", arg=width)
    scale = page.evaluate("""() => { const svg = document.querySelector('.lineage-svg');
        return Number(svg.getAttribute('width')) / svg.viewBox.baseVal.width; }""")
    assert 0.6 <= scale <= 1, scale
    for drawn in shown:
        assert in_canvas_view(page, drawn), drawn
    if AXE.exists():
        assert axe_violations(page) == []
    watch.check("lineage full page")

    # An entity without lineage: the empty state says how to get some.
    page.goto(f"{live_server.url}/catalog/group/default/fraud-ml/lineage/")
    empty = page.locator("[data-lineage-empty]")
    expect(empty).to_be_visible()
    expect(empty).to_contain_text("Send OpenLineage events")
    expect(empty.get_by_role("link", name=re.compile("How lineage works"))).to_be_visible()
    page.screenshot(path=str(SHOTS / "lineage-tab-empty.png"), full_page=True)
    watch.check("empty lineage tab")


def test_two_hundred_nodes_stay_readable(page, live_server, lineage_site):
    """A job reading 120 tables and writing 79: one hop is 200 nodes, laid out in three columns that
    scroll inside the canvas; Fit zooms out to the whole graph; names are cut with the full one in a
    title."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    lineage_site.run("etl.warehouse_snapshot", minutes=90,
                     inputs=[(PG, f"warehouse.staging.source_table_with_a_long_name_{i:03d}") for i in range(120)],
                     outputs=[(LAKE, f"snapshots/2026/12/daily_snapshot_of_the_table_{i:03d}") for i in range(79)])
    watch = CspWatch(page)
    watch.sign_in(live_server)
    page.goto(f"{live_server.url}/lineage/?nodeId=job:airflow:etl.warehouse_snapshot")
    wait_loaded(page)
    expect(page.locator("[data-lineage-status]")).to_contain_text("200 nodes, 199 edges shown")
    first = node(page, f"dataset:{PG}:warehouse.staging.source_table_with_a_long_name_000")
    label = first.locator(".lnode-name").text_content()
    assert "…" in label and label.endswith("name_000") and len(label) <= 28, label
    assert "source_table_with_a_long_name_000" in first.locator("title").text_content()
    boxes = page.evaluate("""[...document.querySelectorAll('.lineage-svg [data-id] .lnode-box')].map(g => {
        const r = g.getBoundingClientRect(); return [r.left + scrollX, r.top + scrollY, r.width, r.height]; })""")
    for i, a in enumerate(boxes):  # no two boxes overlap
        for b in boxes[i + 1:]:
            assert a[0] + a[2] <= b[0] + 1 or b[0] + b[2] <= a[0] + 1 or a[1] + a[3] <= b[1] + 1 or b[1] + b[3] <= a[1] + 1
    page.screenshot(path=str(SHOTS / "lineage-200-nodes.png"), full_page=True)
    page.get_by_role("button", name="Fit").click()
    size = page.evaluate("(() => { const c = document.querySelector('[data-lineage-canvas]'); "
                         "return [c.scrollWidth <= c.clientWidth + 1, c.scrollHeight <= c.clientHeight + 1]; })()")
    assert size == [True, False] or size == [True, True], size  # fits the width; at most 5x smaller
    page.screenshot(path=str(SHOTS / "lineage-200-nodes-fit.png"), full_page=True)
    watch.check("200 nodes")
