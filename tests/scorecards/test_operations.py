"""The team rollup (portal/scorecards/operations.py) on the demo organisation, with the demo's costs,
incidents, SLOs evaluated on the real demo Prometheus and scorecards evaluated: each entity's level, SLO
budget and burn, open incidents and cost vs declared value, the team's totals against its budget — in
a constant number of queries, on the team page and on the team's Group entity page, following the
reader's visibility."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from catalog import services as catalog_services
from portal.costs import demo as costs_demo
from portal.incidents import demo as incidents_demo
from portal.scorecards import operations, services
from portal.slo import demo as slo_demo
from tests.slo.conftest import demo_prometheus_url  # noqa: F401 (a session fixture, used below)

pytestmark = pytest.mark.django_db
MORE = """apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: extra-{n}
spec:
  type: service
  lifecycle: production
  owner: fraud-ml
"""
MODEL = """apiVersion: plinth.dev/v1alpha1
kind: Model
metadata:
  name: extra-model
  annotations:
    plinth.dev/value-monthly: "10 USD"
    plinth.dev/value-kpi: Nothing much
spec:
  type: classifier
  lifecycle: experimental
  owner: fraud-ml
"""


@pytest.fixture
def loaded(demo_org, demo_prometheus_url, settings, tmp_path):  # noqa: F811 (the imported fixture)
    settings.PLINTH_PROMETHEUS_URL = demo_prometheus_url
    costs_demo.load(folder=tmp_path)
    incidents_demo.load()
    slo_demo.evaluate()
    services.evaluate_entities()
    return demo_org


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_fraud_teams_rollup_joins_levels_slos_incidents_and_cost(loaded):
    alice = loaded["users"]["alice"]
    ops = operations.team_operations(alice, loaded["teams"]["fraud-ml"])
    lines = {line.entity.ref: line for line in ops["lines"]}
    detector = lines["model:default/fraud-detector"]
    assert [title for title, _, _ in detector.levels] == ["Production readiness"]
    # Both met over their windows (99.66 % ≥ 99.5 %), but availability burns its budget: the ticket alerts hold.
    assert len(detector.slos) == 2 and detector.slo_met == 2 and detector.burning
    assert detector.burn_max == pytest.approx(4.4, rel=1e-3) and 0.30 < detector.budget_min < 0.36
    assert len(detector.incidents) == 1 and detector.worst == "sev3"  # the demo's open incident
    month = costs_demo.months()[-1]
    assert ops["month"] == month and detector.cost["USD"] > 0
    assert detector.value.amount == Decimal("25000") and detector.ratio == pytest.approx(
        25000 / float(detector.cost["USD"]))
    assert "model:default/chargeback-predictor" in lines  # alice's team's private model: she sees it
    assert ops["slo"] == {"entities": 2, "objectives": 3, "met": 3, "burning": 1,
                          "budget_min": detector.budget_min}
    assert ops["incidents"] == {"open": 1, "worst": "sev3"}
    [usd] = ops["cost"]
    assert usd["budget"] == costs_demo.BUDGET_AMOUNT and 75 < usd["percent"] < 95, usd
    levels = dict(ops["scorecards"])["Production readiness"]
    assert sum(n for _, n in levels) == sum(1 for x in ops["lines"] if x.entity.kind_key == "model")


def test_other_teams_see_no_private_entity_and_no_private_incident(loaded):
    carol = loaded["users"]["carol"]
    ops = operations.team_operations(carol, loaded["teams"]["fraud-ml"])
    assert "model:default/chargeback-predictor" not in {line.entity.ref for line in ops["lines"]}


def test_the_rollup_takes_the_same_queries_whatever_the_number_of_entities(loaded, tmp_path):
    alice, team = loaded["users"]["alice"], loaded["teams"]["fraud-ml"]
    operations.team_operations(alice, team)  # the user's memberships, remembered on the user after one ask
    with CaptureQueriesContext(connection) as few:
        first = operations.team_operations(alice, team)
    descriptor = tmp_path / "more.yaml"
    descriptor.write_text("---\n".join(MORE.format(n=n) for n in range(12)) + "---\n" + MODEL, encoding="utf-8")
    catalog_services.location_register(target=str(descriptor), actor=None, file_roots=None)
    services.evaluate_entities()
    with CaptureQueriesContext(connection) as many:
        second = operations.team_operations(alice, team)
    assert len(second["lines"]) == len(first["lines"]) + 13
    assert next(x for x in second["lines"] if x.entity.name == "extra-model").value.amount == Decimal("10")
    assert len(many) == len(few) <= 9, "\n".join([q["sql"][:90] for q in few.captured_queries] + ["--"] +
                                                  [q["sql"][:90] for q in many.captured_queries])


def test_the_team_page_and_the_group_page_show_the_rollup(loaded):
    client = _client(loaded["users"]["alice"])
    html = client.get("/teams/fraud-ml/").content.decode()
    section = html.split('data-testid="team-operations"', 1)[1]
    assert "Production readiness" in section and "1 burning" in section
    assert "● 1 open (worst SEV3)" in section
    assert "of 6,000 budget" in section and "25,000 USD/mo" in section
    with CaptureQueriesContext(connection) as fraud:
        assert client.get("/teams/fraud-ml/").status_code == 200
    with CaptureQueriesContext(connection) as platform:
        assert client.get("/teams/platform/").status_code == 200
    assert len(fraud) == len(platform)
    group = client.get("/catalog/group/default/fraud-ml/").content.decode()
    assert 'data-testid="team-operations"' in group and "1 burning" in group
    department = client.get("/catalog/group/default/ml-org/").content.decode()  # a team owning nothing itself
    assert "This team owns no models, services, APIs" in department and "No cost allocated." in department


def test_the_model_header_shows_burn_rate_and_value_against_cost(loaded):
    html = _client(loaded["users"]["alice"]).get("/catalog/model/default/fraud-detector/").content.decode()
    slo = html.split('data-testid="slo-badge"', 1)[1].split("</a>", 1)[0]
    assert "SLOs 2/2 meeting · budget 3" in slo and "ticket alert holding" in slo and "burn rate over 1h 4.40×" in slo
    cost = html.split('data-testid="cost-badge"', 1)[1].split("</a>", 1)[0]
    assert "USD/mo · value 25,000 USD/mo (" in cost


def test_the_month_is_the_latest_with_cost(loaded):
    assert operations.team_operations(loaded["users"]["grace"], loaded["teams"]["recsys"])["month"] == max(
        costs_demo.months())
    assert isinstance(costs_demo.months(date(2027, 1, 15))[-1], date)


def test_the_api_gives_the_team_rollup_as_data_for_what_the_reader_may_see(loaded):
    alice_ops = operations.team_operations(loaded["users"]["alice"], loaded["teams"]["fraud-ml"])
    body = _client(loaded["users"]["alice"]).get("/api/v1/teams/fraud-ml/operations").json()
    assert body["team"] == "fraud-ml" and body["month"] == f"{alice_ops['month']:%Y-%m}" and not body["more"]
    lines = {e["entity"]: e for e in body["entities"]}
    assert list(lines) == [line.entity.ref for line in alice_ops["lines"]]
    detector = lines["model:default/fraud-detector"]
    assert detector["slos"]["objectives"] == 2 and detector["slos"]["met"] == 2 and detector["slos"]["alerting"]
    assert detector["slos"]["burnMax"] == pytest.approx(4.4, rel=1e-3)
    assert detector["incidents"] == {"open": 1, "worst": "sev3"}
    assert Decimal(detector["value"]["monthly"]) == 25000 and detector["value"]["kpi"] == "Card fraud losses avoided"
    assert detector["ratio"] == pytest.approx(25000 / float(detector["cost"]["USD"]))
    assert [s["title"] for s in detector["scorecards"]] == ["Production readiness"]
    assert body["slo"]["burning"] == 1 and body["incidents"] == {"open": 1, "worst": "sev3"}
    [usd] = body["cost"]
    assert usd["currency"] == "USD" and Decimal(usd["budget"]) == costs_demo.BUDGET_AMOUNT and 75 < usd["percent"] < 95
    carol = _client(loaded["users"]["carol"]).get("/api/v1/teams/fraud-ml/operations").json()
    assert "model:default/chargeback-predictor" in lines  # alice's team's private model...
    assert "model:default/chargeback-predictor" not in {e["entity"] for e in carol["entities"]}  # ...not carol's
    missing = _client(loaded["users"]["alice"]).get("/api/v1/teams/no-such-team/operations")
    assert missing.status_code == 404 and "no-such-team" in missing.json()["error"]["message"]
