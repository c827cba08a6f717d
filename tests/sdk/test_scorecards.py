"""`client.scorecards` and `plinth scorecards list|results|entity|rollup|team` against the live server."""

from __future__ import annotations

import json

import pytest
from plinth_sdk import Client
from plinth_sdk.errors import NotFoundError

from portal.scorecards import services

pytestmark = pytest.mark.django_db(transaction=True)


def test_client_lists_pages_and_explains(portal, demo_org):
    services.evaluate_entities()
    client = Client(portal.url, token=portal.token("bob"))
    names = [c["name"] for c in client.scorecards.list()]
    assert names == ["production-readiness", "service-basics"]
    results = list(client.scorecards.results("service-basics", page_size=2))
    assert len(results) >= 3 and len({r["entity"] for r in results}) == len(results)  # several pages, no repeat
    checks = client.scorecards.entity("model:default/fraud-detector")[0]["checks"]
    assert {c["id"]: c["passed"] for c in checks}["slo-defined"] is False
    with pytest.raises(NotFoundError):
        Client(portal.url, token=portal.token("carol")).scorecards.entity("model:default/chargeback-predictor")


def test_cli_lists_results_and_an_entity(portal, plinth, demo_org):
    services.evaluate_entities()
    env = {"PLINTH_URL": portal.url, "PLINTH_TOKEN": portal.token("alice")}
    listed = plinth("-o", "json", "scorecards", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    assert {c["name"] for c in json.loads(listed.stdout)} == {"production-readiness", "service-basics"}
    results = plinth("scorecards", "results", "production-readiness", "--team", "fraud-ml", env=env)
    assert results.returncode == 0 and "model:default/fraud-detector" in results.stdout
    entity = plinth("scorecards", "entity", "model:default/fraud-detector", env=env)
    assert entity.returncode == 0 and "slo-defined" in entity.stdout and "FAIL" in entity.stdout


def test_rollups_and_team_operations_from_the_client_and_the_cli(portal, plinth, demo_org):
    services.evaluate_entities()
    services.rollup_today()
    client = Client(portal.url, token=portal.token("carol"))
    rollup = client.scorecards.rollup("production-readiness")
    assert {d["domain"] for d in rollup["domains"]} == {"domain:default/payments", "domain:default/personalisation"}
    assert all(d["trend7"] is None for d in rollup["domains"])  # no rollup a week ago yet
    ops = client.scorecards.team_operations("fraud-ml")
    refs = {e["entity"] for e in ops["entities"]}
    assert "model:default/fraud-detector" in refs and "model:default/chargeback-predictor" not in refs  # private
    with pytest.raises(NotFoundError):
        client.scorecards.team_operations("no-such-team")
    env = {"PLINTH_URL": portal.url, "PLINTH_TOKEN": portal.token("alice")}
    by_domain = plinth("scorecards", "rollup", "production-readiness", "--by", "domain", env=env)
    assert by_domain.returncode == 0 and "domain:default/payments" in by_domain.stdout, by_domain.stderr
    team = plinth("-o", "json", "scorecards", "team", "fraud-ml", env=env)
    assert team.returncode == 0, team.stderr
    assert "model:default/chargeback-predictor" in {e["entity"] for e in json.loads(team.stdout)}
