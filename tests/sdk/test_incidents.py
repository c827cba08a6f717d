"""`client.incidents` and `plinth incidents …` against the live server: open, list, acknowledge,
resolve, reopen, note; another team's private incident is NotFoundError, a refused move exit code 5."""

from __future__ import annotations

import json

import pytest
from plinth_sdk import Client
from plinth_sdk.errors import ConflictError, NotFoundError, PermissionDeniedError

pytestmark = pytest.mark.django_db(transaction=True)
SERVICE = "component:default/fraud-scoring-service"


def test_client_opens_lists_and_moves_an_incident(portal, demo_org):
    client = Client(portal.url, token=portal.token("bob"))
    opened = client.incidents.open("Scoring 503s", "sev2", entities=[SERVICE], summary="since 10:40")
    assert (opened["team"], opened["status"], opened["entities"]) == ("fraud-ml", "open", [SERVICE])
    assert client.incidents.open("Scoring 503s", "sev2", entities=[SERVICE], dedup_key="k")["id"] != opened["id"]
    assert client.incidents.open("again", "sev2", entities=[SERVICE], dedup_key="k")["title"] == "Scoring 503s"
    assert [i["id"] for i in client.incidents.list(status="active", page_size=1)] == [opened["id"] + 1, opened["id"]]
    assert client.incidents.acknowledge(opened["id"], note="on it")["mttaSeconds"] is not None
    assert client.incidents.note(opened["id"], "rolled back")["timeline"][-1]["text"] == "rolled back"
    assert client.incidents.resolve(opened["id"])["status"] == "resolved"
    with pytest.raises(ConflictError):
        client.incidents.acknowledge(opened["id"])
    assert client.incidents.reopen(opened["id"])["status"] == "open"
    assert client.incidents.get(opened["id"])["timeline"][-1]["kind"] == "reopened"
    private = Client(portal.url, token=portal.token("alice")).incidents.open(
        "Chargeback scoring stale", "sev3", entities=["model:default/chargeback-predictor"])
    carol = Client(portal.url, token=portal.token("carol"))
    with pytest.raises(NotFoundError):
        carol.incidents.get(private["id"])
    with pytest.raises(PermissionDeniedError):
        carol.incidents.resolve(opened["id"])  # visible, but not hers to answer


def test_cli_open_list_ack_resolve(portal, plinth, demo_org):
    env = {"PLINTH_URL": portal.url, "PLINTH_TOKEN": portal.token("bob")}
    opened = plinth("-o", "json", "incidents", "open", "Scoring 503s", "--severity", "sev1", "--entity", SERVICE,
                    env=env)
    assert opened.returncode == 0, opened.stderr
    pk = str(json.loads(opened.stdout)["id"])
    listed = plinth("incidents", "list", "--status", "active", env=env)
    assert listed.returncode == 0 and "Scoring 503s" in listed.stdout and "SEV1" in listed.stdout
    assert plinth("incidents", "ack", pk, "--note", "on it", env=env).returncode == 0
    resolved = plinth("incidents", "resolve", pk, env=env)
    assert resolved.returncode == 0 and "resolved" in resolved.stdout and "MTTR" in resolved.stdout
    assert plinth("incidents", "ack", pk, env=env).returncode == 5  # a resolved incident: conflict
    assert plinth("incidents", "show", "987654", env=env).returncode == 4
