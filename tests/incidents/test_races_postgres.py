"""Incident writes racing each other on PostgreSQL (READ COMMITTED): one unresolved incident per dedup
key holds whoever comes first, and the loser gets the answer it would get one after the other. Before,
a reopen that passed its "is another incident open for the key?" check while an SLO (or an alert) opened
one crashed on the partial unique index (IntegrityError, a 500 from the API)."""

import contextlib
import threading
import time

import pytest
from django.db import connections

from catalog.models import Entity
from portal.incidents import services
from portal.incidents.models import Incident, Status

from .conftest import SERVICE

pytestmark = [pytest.mark.prod_smoke, pytest.mark.usefixtures("postgres_only"),
              pytest.mark.django_db(transaction=True)]
KEY = "slo:fraud-availability"


def _run(*jobs):
    """Run each (name, callable) in its own thread and connection → (results by name, errors by name)."""
    results, errors = {}, {}

    def run(name, job):
        try:
            results[name] = job()
        except Exception as exc:  # noqa: BLE001 (returned to the test)
            errors[name] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=job, name=job[0]) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results, errors


def _meet_after(monkeypatch, name: str, *, late: str = "", parties: int = 2):
    """Wrap services.`name` so that both threads meet right after it (the check-then-write window held
    open); a thread that waits for a lock instead lets the barrier time out. `late` starts its write a
    moment after the other's."""
    barrier = threading.Barrier(parties, timeout=3)
    original = getattr(services, name)

    def wrapped(*args, **kwargs):
        found = original(*args, **kwargs)
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait()
        if threading.current_thread().name == late:
            time.sleep(0.5)
        return found

    monkeypatch.setattr(services, name, wrapped)


def test_a_reopen_racing_a_new_incident_for_the_key_is_a_409_not_a_crash(demo_org, monkeypatch):
    bob = demo_org["users"]["bob"]
    service = Entity.objects.get(ref=SERVICE)

    def slo_open():
        return services.open_incident(title="Error budget burning", severity="sev2", source="slo", dedup_key=KEY,
                                      entities=[service], summary="burning again")

    first = slo_open()
    services.incident_transition(actor=bob, incident_id=first.pk, status="resolved")
    # Both see no unresolved incident for the key; the SLO's new incident is written first.
    _meet_after(monkeypatch, "_active_with_key", late="reopen")
    results, errors = _run(
        ("slo", slo_open),
        ("reopen", lambda: services.incident_transition(actor=bob, incident_id=first.pk, status="open")),
    )
    assert "slo" not in errors, errors
    assert Incident.objects.filter(dedup_key=KEY).exclude(status=Status.RESOLVED).count() == 1
    refused = errors.get("reopen")
    assert isinstance(refused, services.IncidentError), errors
    assert refused.status == 409 and f"#{results['slo'].pk}" in refused.message
    assert Incident.objects.get(pk=first.pk).status == Status.RESOLVED
