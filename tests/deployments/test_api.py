"""POST /api/v1/deployments/events: what a CD pipeline reports, and every way it can be wrong."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from catalog.models import Entity
from portal.core.models import AuditEvent
from portal.deployments.models import Deployment, DeploymentEvent

from .conftest import event

pytestmark = pytest.mark.django_db
URL = "/api/v1/deployments/events"


def post(client, body, **extra):
    return client.post(URL, data=json.dumps(body), content_type="application/json", **extra)


def counts() -> tuple[int, int, int, int]:
    return (DeploymentEvent.objects.count(), Deployment.objects.count(),
            Entity.objects.filter(kind_key="deployment").count(), AuditEvent.objects.count())


def test_a_live_event_stores_history_and_the_deployment_entity(detector, api_as, django_capture_on_commit_callbacks):
    """A 201 with the event and the deployment; the Deployment entity is owned like its model, relates to
    it and to its ModelVersion row, and is findable at once (the catalog's search follows)."""
    with django_capture_on_commit_callbacks(execute=True):
        response = post(api_as("bob"), event(time="2026-12-01T10:00:00Z"))
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["deployment"]["status"] == "live" and body["deployment"]["environment"] == "prod"
    assert body["event"]["reporter"] == "bob" and body["replayed"] is False
    entity = Entity.objects.get(ref=body["deployment"]["ref"])
    assert entity.kind == "Deployment" and entity.owner_team.name == "fraud-ml"
    assert entity.spec["model"] == "model:default/fraud-detector" and entity.spec["version"] == "3"
    assert Deployment.objects.get().model_version.version == "3", "joins ModelVersion for the lineage graph"
    got = api_as("bob").get(f"/api/v1/entities/by-name/deployment/default/{entity.name}").json()
    assert {"type": "deploymentOf", "targetRef": "model:default/fraud-detector"} in [
        {"type": r["type"], "targetRef": r["targetRef"]} for r in got["relations"]]
    found = api_as("bob").get("/api/v1/search", {"q": entity.name}).json()
    assert entity.ref in json.dumps(found["items"])
    assert AuditEvent.objects.filter(action="deployments.event", target=entity.ref).count() == 1


def test_idempotency_key_replays_and_refuses_a_different_event(detector, api_as):
    client = api_as("bob")
    first = post(client, event(idempotencyKey="run-4711"))
    assert first.status_code == 201
    before = counts()
    again = post(client, event(idempotencyKey="run-4711"))
    assert again.status_code == 200 and again.json()["replayed"] is True
    assert again.json()["event"]["id"] == first.json()["event"]["id"]
    other = post(client, event(idempotencyKey="run-4711", status="failed"))
    assert other.status_code == 409 and "run-4711" in other.json()["error"]["message"]
    assert counts() == before


def test_an_older_event_joins_the_history_without_moving_the_state(detector, api_as):
    client = api_as("bob")
    now = datetime.now(UTC)
    assert post(client, event(time=now.isoformat())).status_code == 201
    late = post(client, event(status="deploying", time=(now - timedelta(minutes=5)).isoformat()))
    assert late.status_code == 201 and late.json()["event"]["current"] is False
    assert Deployment.objects.get().status == "live" and DeploymentEvent.objects.count() == 2


FUTURE = (datetime.now(UTC) + timedelta(days=2)).isoformat()


@pytest.mark.parametrize(("overrides", "field"), [
    ({"version": "9"}, "version"),
    ({"version": "abc"}, "version"),
    ({"version": None}, "version"),
    ({"environment": "moon"}, "environment"),
    ({"status": "exploded"}, "status"),
    ({"endpoint": "ftp://fraud.example.com/x"}, "endpoint"),
    ({"endpoint": "https://user:secret@fraud.example.com/x"}, "endpoint"),
    ({"endpoint": "not a url"}, "endpoint"),
    ({"endpoint": "https://[fraud.example.com/x"}, "endpoint"),  # urllib cannot read it: 400, not 500
    ({"endpoint": "https://x.example.com/" + "a" * 3000}, "endpoint"),
    ({"platform": "Ka Serve!"}, "platform"),
    ({"platform": None}, "platform"),
    ({"time": "9999-01-01T00:00:00Z"}, "time"),
    ({"time": "1969-12-31T23:59:59Z"}, "time"),
    ({"time": FUTURE}, "time"),
    ({"time": "2026-12-01T10:00:00"}, "time"),
    ({"time": "yesterday"}, "time"),
    ({"time": 12345}, "time"),
    ({"model": "dataset:default/card-transactions-2025"}, "model"),
    ({"model": "model:default/bad name!"}, "model"),
    ({"model": 42}, "model"),
    ({"servedBy": "dataset:default/card-transactions-2025"}, "servedBy"),
    ({"servedBy": "component:default/nothing-here"}, "servedBy"),
    ({"environment": "prod\u0007"}, "environment"),
    ({"idempotencyKey": "k" * 101}, "idempotencyKey"),
    ({"surprise": 1}, "surprise"),
])
def test_bad_input_is_400_with_the_field_and_changes_nothing(detector, api_as, overrides, field):
    client = api_as("bob")
    before = counts()
    response = post(client, event(**overrides))
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert field in error["details"], error
    assert error["message"].startswith(f"{field}:")
    assert counts() == before


def test_not_json_object_nul_and_huge_bodies_are_refused(detector, api_as):
    client = api_as("bob")
    before = counts()
    assert client.post(URL, data="[1, 2]", content_type="application/json").status_code == 400
    assert client.post(URL, data="{not json", content_type="application/json").status_code == 400
    assert post(client, event(platform="kserve\u0000")).status_code == 400
    huge = post(client, event(endpoint="https://x.example.com/" + "a" * 40_000))
    assert huge.status_code == 413 and "limit" in huge.json()["error"]
    assert counts() == before


def test_unknown_and_invisible_models_answer_alike(detector, chargeback, api_as):
    """carol (recsys) may not see fraud-ml's private chargeback-predictor: it answers like a missing model."""
    client = api_as("carol")
    before = counts()
    hidden = post(client, event(model="model:default/chargeback-predictor", version="1"))
    missing = post(client, event(model="model:default/no-such-model", version="1"))
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["error"]["message"].replace("chargeback-predictor", "X") == \
        missing.json()["error"]["message"].replace("no-such-model", "X")
    assert counts() == before


def test_who_may_report(detector, api_as):
    clients = {name: api_as(name) for name in ("heidi", "carol", "erin", "alice", "grace")}
    before = counts()
    for username in ("heidi", "carol", "erin"):  # viewer, another team's maintainer, a reviewer
        assert post(clients[username], event()).status_code == 403, username
    assert counts() == before
    assert post(clients["alice"], event()).status_code == 201  # maintainer
    assert post(clients["grace"], event(environment="staging")).status_code == 201  # platform admin
    anonymous = post(__import__("django.test").test.Client(), event())
    assert anonymous.status_code == 401
