"""The `incidents` scorecard fact (one query per batch, zeros without incidents), a scorecard check that
passes and fails on it, and the MTTA/MTTR KPIs of the capability canvas."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from catalog.models import Entity
from portal.incidents import selectors, services
from portal.incidents.models import Incident
from portal.insights import canvas, kpis
from portal.scorecards import facts
from portal.scorecards import services as scorecard_services
from portal.scorecards.models import Result
from tests.scorecards.conftest import card_dir, write  # noqa: F401 (the fixture)

from .conftest import API, RANKER, SERVICE

pytestmark = pytest.mark.django_db


def _incident(user, ref, severity, *, opened_ago=None, acked_after=None, resolved_after=None):
    incident, _ = services.incident_open(actor=user, title=f"{ref} down", severity=severity, entities=[ref])
    if opened_ago is not None:
        opened = timezone.now() - opened_ago
        Incident.objects.filter(pk=incident.pk).update(
            opened_at=opened, acknowledged_at=opened + acked_after if acked_after else None,
            resolved_at=opened + resolved_after if resolved_after else None,
            status="resolved" if resolved_after else ("acknowledged" if acked_after else "open"))
    return incident


def test_the_fact_per_entity_in_one_query(demo_org):
    bob, carol = demo_org["users"]["bob"], demo_org["users"]["carol"]
    _incident(bob, SERVICE, "sev1")
    _incident(bob, SERVICE, "sev3", opened_ago=timedelta(days=2), acked_after=timedelta(minutes=30),
              resolved_after=timedelta(hours=4))
    _incident(bob, SERVICE, "sev2", opened_ago=timedelta(days=200), acked_after=timedelta(hours=1),
              resolved_after=timedelta(hours=9))  # outside the 90 days
    _incident(carol, RANKER, "sev2", opened_ago=timedelta(days=5), resolved_after=timedelta(hours=2))
    ids = dict(Entity.objects.filter(ref__in=[SERVICE, RANKER, API]).values_list("ref", "id"))
    with CaptureQueriesContext(connection) as seen:
        out = selectors.scorecard_facts(list(ids.values()))
    assert len(seen) == 1
    assert out[ids[SERVICE]] == {"open": 1, "open_sev1": 1, "last_90d": 2, "mtta_hours_90d": 0.5,
                                 "mttr_hours_90d": 4.0}
    assert out[ids[RANKER]] == {"open": 0, "open_sev1": 0, "last_90d": 1, "mtta_hours_90d": None,
                                "mttr_hours_90d": 2.0}
    assert out[ids[API]] == {"open": 0, "open_sev1": 0, "last_90d": 0, "mtta_hours_90d": None,
                             "mttr_hours_90d": None}
    rows = facts.entity_rows(Entity.objects.filter(pk__in=ids.values()))
    gathered = {r["id"]: f for r, f in zip(rows, facts.gather(rows), strict=True)}
    assert gathered[ids[SERVICE]]["incidents"]["open_sev1"] == 1


SEV1_CARD = """
name: no-fires
title: No fires
filter:
  kinds: [component, api]
levels: [Bronze]
checks:
  - id: no-open-sev1
    level: Bronze
    rule: no_open_sev1_incident.rego
    reads: [incidents.open_sev1]
    message: A SEV1 incident is open.
"""


def test_a_scorecard_check_passes_and_fails_on_the_fact(demo_org, card_dir):  # noqa: F811
    write(card_dir, "no-fires.yaml", SEV1_CARD)
    bob = demo_org["users"]["bob"]
    incident = _incident(bob, SERVICE, "sev1")
    scorecard_services.evaluate_entities()
    failing = Result.objects.get(entity__ref=SERVICE, scorecard="no-fires")
    assert failing.checks["no-open-sev1"] == [False, ""] and failing.level == ""
    assert Result.objects.get(entity__ref=API, scorecard="no-fires").level == "Bronze"  # no incident: passes
    services.incident_transition(actor=bob, incident_id=incident.pk, status="resolved")
    scorecard_services.evaluate_entities()
    assert Result.objects.get(entity__ref=SERVICE, scorecard="no-fires").level == "Bronze"


def test_mtta_and_mttr_kpis_over_a_period_with_the_one_before(demo_org):
    bob = demo_org["users"]["bob"]
    _incident(bob, SERVICE, "sev1", opened_ago=timedelta(days=3), acked_after=timedelta(minutes=12),
              resolved_after=timedelta(hours=2))
    _incident(bob, SERVICE, "sev3", opened_ago=timedelta(days=4), acked_after=timedelta(minutes=48),
              resolved_after=timedelta(hours=6))
    _incident(bob, SERVICE, "sev2", opened_ago=timedelta(days=40), acked_after=timedelta(hours=1),
              resolved_after=timedelta(hours=10))  # the period before
    period = kpis.Period.ending(timezone.now(), 28)
    assert kpis.run("incident_mtta", {}, period) == kpis.KpiValue(0.5, 1.0)
    assert kpis.run("incident_mttr", {}, period) == kpis.KpiValue(4.0, 10.0)
    assert kpis.run("incident_mttr", {"severity": "sev1"}, period) == kpis.KpiValue(2.0, None)
    with pytest.raises(kpis.KpiError, match="severity"):
        kpis.run("incident_mttr", {"severity": "p1"}, period)


def test_the_shipped_canvas_names_the_incident_kpis():
    data = canvas.load()
    assert canvas.unknown_queries(data) == []
    assert {"incident_mtta", "incident_mttr"} <= {kpi["query"] for _, kpi in canvas.iter_kpis(data)}
