"""`client.scorecards` and `plinth scorecards list|results|entity` against the live server."""

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
