"""A real Alertmanager (Debian's prometheus-alertmanager, started once for this module) whose webhook
receiver posts to the live server with a Plinth token as bearer: alerts posted to its /api/v2/alerts, as
Prometheus posts them, open an incident linked to the entity their label names; posted again resolved,
they resolve it. Polls with a deadline (group_wait and group_interval are 1 s)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from catalog import demo as catalog_demo
from portal.accounts import demo as org_demo
from portal.accounts import services as account_services
from portal.incidents.models import AlertStatus, Incident, IncidentAlert, Status

from .conftest import SERVICE

pytestmark = pytest.mark.django_db(transaction=True)
DEADLINE = 20.0  # seconds; a notification normally arrives within 1-2 s


def wait_for(check, what: str, alertmanager):
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"{what} within {DEADLINE:.0f} s; Alertmanager's log:\n{alertmanager.log()}")


@pytest.fixture
def token(transactional_db, alertmanager):
    org = org_demo.load_org()
    catalog_demo.load_catalog()
    _, raw = account_services.token_create(user=org["users"]["bob"], name="alertmanager")
    alertmanager.use_token(raw)
    return raw


def _alert(name: str, instance: str, *, ends: datetime | None = None, severity: str = "critical") -> dict:
    body = {"labels": {"alertname": name, "instance": instance, "severity": severity, "plinth_entity": SERVICE,
                       "job": "fraud-scoring"},
            "annotations": {"summary": f"{name} on {instance}"},
            "startsAt": (datetime.now(UTC) - timedelta(minutes=5)).isoformat(),
            "generatorURL": "http://prometheus.example:9090/graph"}
    if ends is not None:
        body["endsAt"] = ends.isoformat()
    return body


@pytest.mark.usefixtures("token")
def test_alertmanager_opens_and_resolves_an_incident(alertmanager):
    started = time.monotonic()
    alertmanager.post_alerts([_alert("FraudScoringDown", "a"), _alert("FraudScoringDown", "b", severity="warning")])
    incident = wait_for(lambda: Incident.objects.filter(source="alertmanager", alerts__isnull=False)
                        .distinct().first() if IncidentAlert.objects.count() == 2 else None,
                        "an incident with both alerts", alertmanager)
    assert incident.severity == "sev1" and incident.status == Status.OPEN
    assert list(incident.links.values_list("entity__ref", flat=True)) == [SERVICE]
    assert incident.owner_team.name == "fraud-ml" and incident.title.startswith("FraudScoringDown")
    assert incident.group_key and incident.external_url.startswith("http")
    assert IncidentAlert.objects.filter(incident=incident, status=AlertStatus.FIRING).count() == 2

    past = datetime.now(UTC) - timedelta(seconds=1)
    alertmanager.post_alerts([_alert("FraudScoringDown", "a", ends=past)])
    wait_for(lambda: IncidentAlert.objects.filter(incident=incident, status=AlertStatus.RESOLVED).count() == 1,
             "one alert resolved", alertmanager)
    assert Incident.objects.get(pk=incident.pk).status == Status.OPEN  # the other one still fires

    alertmanager.post_alerts([_alert("FraudScoringDown", "b", ends=past, severity="warning")])
    resolved = wait_for(lambda: Incident.objects.filter(pk=incident.pk, status=Status.RESOLVED).first(),
                        "the incident resolved", alertmanager)
    assert resolved.resolved_at is not None and resolved.mttr_seconds is not None
    texts = list(resolved.timeline.values_list("kind", flat=True))
    assert texts.count("alert-firing") == 2 and texts.count("alert-resolved") == 2 and texts[-1] == "resolved"
    assert Incident.objects.count() == 1  # one group, one incident, whatever Alertmanager repeated
    assert time.monotonic() - started < 30


@pytest.mark.usefixtures("token")
def test_an_alert_naming_an_unknown_entity_is_kept_unlinked(alertmanager):
    body = _alert("LonelyAlert", "x")
    body["labels"]["plinth_entity"] = "component:default/not-in-the-catalog"
    alertmanager.post_alerts([body])
    incident = wait_for(lambda: Incident.objects.filter(title__startswith="LonelyAlert").first(),
                        "the unlinked incident", alertmanager)
    assert incident.owner_team is None and not incident.links.exists()
    assert incident.timeline.filter(kind="unlinked").exists()
    alertmanager.post_alerts([{**body, "endsAt": (datetime.now(UTC) - timedelta(seconds=1)).isoformat()}])
    wait_for(lambda: Incident.objects.filter(pk=incident.pk, status=Status.RESOLVED).exists(),
             "the unlinked incident resolved", alertmanager)
