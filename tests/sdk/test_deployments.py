"""`client.deployments.report(...)` and `plinth deployments report` against the live server."""

from __future__ import annotations

import json

import pytest
from plinth_sdk import Client
from plinth_sdk.errors import ConflictError

from portal.deployments.models import DeploymentEvent

from .test_cli import one_line_error

pytestmark = pytest.mark.django_db(transaction=True)


def test_client_reports_and_replays_by_idempotency_key(portal, fraud_versions):
    client = Client(portal.url, token=portal.token("bob"))
    first = client.deployments.report("model:default/fraud-detector", 3, "prod", "live", platform="kserve",
                                      endpoint="https://fraud.prod.example.com/v1", idempotency_key="cd-77")
    assert first.status == "live" and first.environment == "prod" and first.drift and not first.replayed
    again = client.deployments.report("fraud-detector", "3", "prod", "live", platform="kserve",
                                      endpoint="https://fraud.prod.example.com/v1", idempotency_key="cd-77")
    assert again.replayed and again.id == first.id
    with pytest.raises(ConflictError):
        client.deployments.report("fraud-detector", "3", "prod", "failed", platform="kserve", idempotency_key="cd-77")
    assert DeploymentEvent.objects.count() == 1


def test_cli_reports_and_names_a_bad_field(portal, plinth, fraud_versions):
    env = {"PLINTH_URL": portal.url, "PLINTH_TOKEN": portal.token("alice")}
    ok = plinth("-o", "json", "deployments", "report", "model:default/fraud-detector", "2", "--env", "staging",
                "--status", "deploying", "--platform", "kserve", env=env)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["deployment"]["environment"] == "staging"  # the API's JSON, as returned
    one_line_error(plinth("deployments", "report", "fraud-detector", "9", "--env", "prod", "--status", "live",
                          "--platform", "kserve", env=env), 2, "version", "no version 9")
