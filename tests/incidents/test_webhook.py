"""`POST /api/v1/incidents/alertmanager` with Alertmanager's own payloads: one incident per group, alerts
kept by fingerprint, severity from the label, entities from `plinth_entity`, resolution when every alert
resolves; bad input named and refused whole (400, 413), never a 500, nothing half-written; constant
queries whatever the number of alerts. (A real Alertmanager: test_alertmanager_real.py.)"""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from hypothesis import given

from portal.incidents.models import EntryKind, Incident, IncidentAlert, IncidentEntity, Status, TimelineEntry
from tests import hostile

from .conftest import API, PRIVATE, SERVICE, alert, payload, post

pytestmark = pytest.mark.django_db
URL = "/api/v1/incidents/alertmanager"


@pytest.fixture
def am(api_as):
    return api_as("bob")  # a service account would do: the member role in a team


def _state() -> tuple:
    return (Incident.objects.count(), IncidentAlert.objects.count(), TimelineEntry.objects.count(),
            IncidentEntity.objects.count())


def test_a_firing_group_opens_one_incident_linked_to_its_entity(am):
    response = post(am, URL, payload(alert(instance="a"), alert(instance="b", severity="warning")))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["created"] and body["alerts"] == {"received": 2, "new": 2, "changed": 0, "unchanged": 0}
    incident = Incident.objects.get()
    assert (incident.source, incident.severity, incident.status) == ("alertmanager", "sev1", "open")  # the worst
    assert incident.title == "FraudApiErrors: 5xx above 5 %" and incident.owner_team.name == "fraud-ml"
    assert incident.external_url == "http://alertmanager.example:9093"
    assert list(IncidentEntity.objects.values_list("entity__ref", flat=True)) == [SERVICE]
    assert body["incident"]["entities"] == [SERVICE] and body["unlinked"] == []
    assert IncidentAlert.objects.get(labels__instance="a").starts_at.microsecond == 123456  # nanoseconds cut


def test_repeats_change_nothing_and_resolution_resolves(am):
    a, b = alert(instance="a"), alert(instance="b")
    post(am, URL, payload(a, b))
    before = _state()
    again = post(am, URL, payload(a, b)).json()  # Alertmanager's repeat_interval
    assert not again["created"] and again["alerts"]["unchanged"] == 2 and _state() == before
    half = post(am, URL, payload({**a, "status": "resolved", "endsAt": "2026-12-03T11:00:00Z"}, b)).json()
    assert half["alerts"]["changed"] == 1 and not half["resolved"]
    assert Incident.objects.get().status == Status.OPEN
    done = post(am, URL, payload({**a, "status": "resolved"}, {**b, "status": "resolved"})).json()
    assert done["resolved"] and done["incident"]["status"] == "resolved"
    incident = Incident.objects.get()
    assert incident.resolved_at is not None and incident.acknowledged_at is None  # nobody acknowledged it
    kinds = list(TimelineEntry.objects.filter(incident=incident).values_list("kind", flat=True))
    assert kinds == ["opened", "alert-firing", "alert-firing", "alert-resolved", "alert-resolved", "resolved"]
    # A repeat of the resolved notification, and of alerts the resolved incident knows, opens nothing.
    assert post(am, URL, payload({**a, "status": "resolved"})).json()["created"] is False
    assert Incident.objects.count() == 1


def test_a_new_alert_after_resolution_opens_a_new_incident_and_severity_only_rises(am):
    post(am, URL, payload(alert(instance="a", severity="warning")))
    post(am, URL, payload(alert(instance="a", status="resolved", severity="warning")))
    second = post(am, URL, payload(alert(instance="c", severity="warning"))).json()
    assert second["created"] and Incident.objects.count() == 2
    raised = post(am, URL, payload(alert(instance="c", severity="warning"), alert(instance="d", severity="critical")))
    assert raised.json()["incident"]["severity"] == "sev1"
    assert TimelineEntry.objects.filter(kind=EntryKind.SEVERITY).count() == 1
    post(am, URL, payload(alert(instance="e", severity="info")))  # lower: never lowers
    assert Incident.objects.get(pk=second["incident"]["id"]).severity == "sev1"


def test_unknown_entities_and_labels(am):
    response = post(am, URL, payload(alert(entity="component:default/does-not-exist", team="x", pager="y"),
                                     alert(entity="%%%", instance="q")))
    body = response.json()
    assert response.status_code == 200 and body["created"]
    incident = Incident.objects.get()
    assert incident.owner_team is None and not IncidentEntity.objects.exists()  # kept unlinked
    assert body["unlinked"] == ["component:default/does-not-exist", "%%%"]
    assert TimelineEntry.objects.filter(kind=EntryKind.UNLINKED).count() == 2
    assert IncidentAlert.objects.get(labels__pager="y").labels["team"] == "x"  # kept, not interpreted


def test_another_teams_private_entity_is_unknown_to_its_token(api_as):
    carol = api_as("carol")  # recsys
    body = post(carol, URL, payload(alert(entity=PRIVATE))).json()
    assert body["unlinked"] == [PRIVATE] and body["incident"]["entities"] == []
    assert "chargeback" not in json.dumps(body["incident"])
    # Nor in the timeline every reader sees: the alert's words and the "not linked" entry leave it out.
    texts = list(TimelineEntry.objects.values_list("text", flat=True))
    assert texts and not any("chargeback" in t for t in texts), texts
    assert any("an entity this sender may not see" in t for t in texts)


def test_an_unlinked_incident_takes_its_owner_from_a_later_alert(am):
    post(am, URL, payload(alert(entity=None)))
    body = post(am, URL, payload(alert(entity=None), alert(entity=API, instance="z"))).json()
    assert body["incident"]["entities"] == [API] and body["incident"]["team"] == "fraud-ml"


BAD = [
    ("[1, 2]", "body"),
    ('{"version": "3"}', "version"),
    ({"alerts": "many"}, "alerts"),
    ({"alerts": []}, "alerts"),
    ({"groupKey": ""}, "groupKey"),
    ({"groupKey": 7}, "groupKey"),
    ({"status": "burning"}, "status"),
    ({"truncatedAlerts": -1}, "truncatedAlerts"),
    ({"commonLabels": ["a"]}, "commonLabels"),
    ({"alerts": [7]}, "alerts[0]"),
    ({"alerts": [{**alert(), "status": "pending"}]}, "alerts[0].status"),
    ({"alerts": [{**alert(), "labels": {"alertname": "X", "severity": 3}}]}, "alerts[0].labels.severity"),
    ({"alerts": [{**alert(), "labels": {f"l{i}": "v" for i in range(129)}}]}, "alerts[0].labels"),
    ({"alerts": [{**alert(), "startsAt": "yesterday"}]}, "alerts[0].startsAt"),
    ({"alerts": [{**alert(), "startsAt": "2026-12-03T10:00:00"}]}, "alerts[0].startsAt"),
    ({"alerts": [{**alert(), "startsAt": "0001-01-01T00:30:00+01:00"}]}, "alerts[0].startsAt"),  # no UTC time: was
    ({"alerts": [{**alert(), "startsAt": "9999-12-31T23:59:59-01:00"}]}, "alerts[0].startsAt"),  # an OverflowError
    ({"alerts": [alert(), {**alert(instance="b"), "fingerprint": "<script>"}]}, "alerts[1].fingerprint"),
]


@pytest.mark.parametrize(("change", "field"), BAD)
def test_bad_input_is_named_and_nothing_is_written(am, change, field):
    body = change if isinstance(change, str) else {**payload(alert()), **change}
    response = post(am, URL, body)
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["details"], response.json()
    assert _state() == (0, 0, 0, 0)


def test_malformed_json_is_a_400(am):
    response = am.post(URL, data=b'{"version": "4", "alerts": [', content_type="application/json")
    assert response.status_code == 400 and response.json()["error"]["status"] == 400


def test_ten_thousand_alerts_are_refused_whole_with_413(am, settings):
    settings.PLINTH_INCIDENTS_MAX_BODY_BYTES = 64 * 1024 * 1024  # let the body through to the alert count
    many = [alert(instance=str(i), fingerprint=f"{i:016x}") for i in range(10_000)]
    response = post(am, URL, payload(*many))
    assert response.status_code == 413
    message = response.json()["error"]["message"]
    assert "10,000 alerts" in message and "max_alerts: 1000" in message
    assert _state() == (0, 0, 0, 0)


def test_a_body_over_the_cap_is_refused_before_it_is_read(am, settings):
    settings.PLINTH_INCIDENTS_MAX_BODY_BYTES = 10_000
    response = post(am, URL, payload(*[alert(instance=str(i)) for i in range(100)]))
    assert response.status_code == 413 and _state() == (0, 0, 0, 0)


def test_a_notification_costs_the_same_queries_for_5_or_1000_alerts(am):
    def run(n: int, group: str) -> int:
        alerts = [alert(name=group, instance=str(i), fingerprint=f"{n:04x}{i:012x}") for i in range(n)]
        with CaptureQueriesContext(connection) as opened:
            assert post(am, URL, payload(*alerts, group=group)).status_code == 200
        resolved = [{**a, "status": "resolved"} for a in alerts]
        with CaptureQueriesContext(connection) as closed:
            assert post(am, URL, payload(*resolved, group=group)).json()["resolved"]
        return len(opened), len(closed)

    assert run(5, "Few") == run(1000, "Many")


def test_only_bearer_tokens_and_only_those_who_may_open(demo_org, api_as):
    signed_in = Client(enforce_csrf_checks=True)
    signed_in.force_login(demo_org["users"]["bob"])
    assert post(signed_in, URL, payload(alert())).status_code == 401  # no session here
    assert post(Client(), URL, payload(alert())).status_code == 401
    assert post(api_as("heidi"), URL, payload(alert())).status_code == 403  # a viewer only
    assert not Incident.objects.exists()


@hostile.budget(ci=40)
@given(body=hostile.mutated(payload(alert(), alert(instance="b", entity="component:default/nope")), max_mutations=4))
def test_any_mangled_notification_is_answered_clearly_and_refusals_write_nothing(am, body):
    """Alertmanager's payload taken apart: a 200, or a 400/413 naming the field; never a 5xx; a refused
    notification leaves every incident table as it was."""
    with hostile.rolled_back():
        before = hostile.digest(Incident, IncidentAlert, TimelineEntry, IncidentEntity)
        response = post(am, URL, body)
        hostile.assert_clear(response)
        if response.status_code != 200:
            assert response.status_code in (400, 413), response.content
            assert response.json()["error"]["details"], response.content
            assert hostile.digest(Incident, IncidentAlert, TimelineEntry, IncidentEntity) == before


def test_opened_is_when_plinth_opened_it_in_the_facts_and_the_timeline(am):
    """The detail page's Facts (`opened_at`, `acknowledged_at`) and its Timeline (entries' `at`) read the
    same moments; an alert's own `startsAt` stays the alert's (the Alerts table's "Started")."""
    post(am, URL, payload(alert()))
    incident = Incident.objects.get()
    entries = dict(TimelineEntry.objects.filter(incident=incident).values_list("kind", "at"))
    assert entries[EntryKind.OPENED] == incident.opened_at
    assert IncidentAlert.objects.get().starts_at != incident.opened_at  # the alert started 2026-12-03 10:40
