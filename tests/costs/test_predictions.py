"""Cost per 1,000 predictions (portal/costs/usage.py): the demo's fraud detector names its predictions
counter; a real Prometheus over the demo series (portal/slo/demo.py, as `make run` serves them) answers
how many it served each month, and the Cost tab and the entity costs API divide the month's cost by it.

Worked out by hand: the demo detector scores 50 a minute on average, with a daily cycle that sums to
zero over whole days, so a whole 30-day month is 50 × 43,200 = 2,160,000 predictions (31 days:
2,232,000). A malformed selector is an error naming the annotation, never a query; Prometheus refusing
the query or down is said on the tab and in the API, and the page still answers."""

from __future__ import annotations

import calendar
from decimal import Decimal

import pytest
from django.test import Client

from portal.costs import demo as costs_demo
from portal.costs import usage
from tests.services import free_port
from tests.slo.conftest import demo_prometheus_url  # noqa: F401 (a session fixture, used below)

pytestmark = pytest.mark.django_db
URL = "/catalog/model/default/fraud-detector/cost/"
API = "/api/v1/entities/by-name/model/default/fraud-detector/costs"


@pytest.mark.parametrize("selector", [
    'model_predictions_total{model="fraud-detector"}', "requests_total", 'a:b_c{x!="1", y=~"a|b",}',
    'x{path="with \\" quote"}'])
def test_a_metric_selector_is_accepted(selector):
    assert usage.selector_of({usage.ANNOTATION: selector}) == (selector, "")


@pytest.mark.parametrize("selector", [
    "sum(x)", "x[5m]", 'x{a="1"} or vector(1)', 'x{a="1"}) or (y', "x offset 1d", "1x", "", "   ",
    'x{a=1}', "x" * 501, 12, ["x"]])
def test_anything_but_a_selector_is_an_error_naming_the_annotation(selector):
    found, error = usage.selector_of({usage.ANNOTATION: selector})
    assert found is None and usage.ANNOTATION in error
    result = usage.monthly_predictions({usage.ANNOTATION: selector}, [costs_demo.months()[-1]])
    assert result.declared and result.error == error and not result.counts


def test_no_annotation_is_no_usage_and_no_query(settings):
    settings.PLINTH_PROMETHEUS_URL = f"http://127.0.0.1:{free_port()}"  # would fail if asked
    result = usage.monthly_predictions({}, costs_demo.months())
    assert not result.declared and not result.error and not result.counts


@pytest.fixture
def served(demo_org, demo_prometheus_url, settings, tmp_path):  # noqa: F811 (the imported fixture)
    settings.PLINTH_PROMETHEUS_URL = demo_prometheus_url
    costs_demo.load(folder=tmp_path)
    client = Client()
    client.force_login(demo_org["users"]["alice"])
    return client


def test_the_cost_tab_and_the_api_divide_the_months_cost_by_its_predictions(served):
    month = costs_demo.months()[-1]  # the last complete month: whole in the demo series
    expected = 50 * 60 * 24 * calendar.monthrange(month.year, month.month)[1]
    body = served.get(API).json()
    assert body["predictions"] == {"metric": 'model_predictions_total{model="fraud-detector"}', "error": None}
    row = next(r for r in body["months"] if r["month"] == f"{month:%Y-%m}")
    assert row["predictions"] == pytest.approx(expected, rel=0.005), row
    per_1k = Decimal(row["effective"]) / Decimal(str(row["predictions"])) * 1000
    assert Decimal(row["costPer1kPredictions"]) == per_1k.quantize(Decimal("0.0001"))
    assert Decimal("0.1") < per_1k < Decimal("10"), per_1k  # a couple of thousand USD over ~2.2M scores
    html = served.get(URL).content.decode()
    assert "Cost per 1,000 predictions" in html and 'data-testid="cost-per-1k"' in html
    shown = html.split('data-testid="cost-per-1k">', 1)[1].split("<", 1)[0]
    assert shown.replace(",", "") == f"{per_1k:.4f}", shown
    assert f"{round(row['predictions']):,}" in html  # the predictions column, grouped


def test_a_query_prometheus_refuses_is_said_on_the_tab_and_in_the_api(served, demo_org):
    from catalog.models import Entity

    detector = Entity.objects.get(ref="model:default/fraud-detector")
    detector.data["metadata"]["annotations"][usage.ANNOTATION] = 'model_predictions_total{model=~"("}'
    detector.save(update_fields=["data"])
    body = served.get(API).json()
    assert body["predictions"]["error"].startswith("Prometheus refused the predictions query: bad_data")
    assert all(r["costPer1kPredictions"] is None for r in body["months"]) and body["months"]
    page = served.get(URL)
    assert page.status_code == 200 and 'data-testid="predictions-error"' in page.content.decode()


def test_prometheus_down_is_said_and_the_costs_are_still_served(served, settings):
    settings.PLINTH_PROMETHEUS_URL = f"http://127.0.0.1:{free_port()}"
    body = served.get(API).json()
    assert body["predictions"]["error"].startswith("Predictions unavailable: cannot reach")
    assert body["months"] and all(r["predictions"] is None for r in body["months"])
    page = served.get(URL).content.decode()
    assert "Predictions unavailable" in page and 'data-testid="cost-tab"' in page


def test_a_portal_without_prometheus_says_so_and_still_serves_the_costs(served, settings):
    settings.PLINTH_PROMETHEUS_URL = ""
    body = served.get(API).json()
    assert body["predictions"]["error"] == ("Predictions unavailable: this portal is not connected to Prometheus "
                                            "(an administrator sets PLINTH_PROMETHEUS_URL)")
    assert body["months"] and all(r["predictions"] is None for r in body["months"])
    assert "is not set" not in served.get(URL).content.decode()
