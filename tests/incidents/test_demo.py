"""The demo incidents `manage.py demo insights` adds for `make run`: idempotent, feeding the canvas's
MTTA/MTTR KPIs, one open on the fraud detector, and purged without touching real incidents."""

from __future__ import annotations

from io import StringIO

from django.core.management import call_command
from django.utils import timezone

from catalog import demo as catalog_demo
from portal.incidents import demo
from portal.incidents.models import Incident, Severity, Status
from portal.insights import kpis


def test_demo_incidents_load_once_feed_the_kpis_and_purge_alone(demo_org):
    catalog_demo.load_catalog()
    real = Incident.objects.create(title="Real", severity=Severity.SEV2, opened_at=timezone.now(),
                                   opened_by_label="alice")
    assert demo.load() == len(demo.HISTORY)
    assert demo.load() == 0  # loading again adds nothing
    period = kpis.Period.ending(timezone.now(), 28)
    mtta, mttr = kpis.run("incident_mtta", {}, period), kpis.run("incident_mttr", {}, period)
    assert mtta.current is not None and mtta.previous is not None and mttr.current is not None, (mtta, mttr)
    open_ = Incident.objects.exclude(status=Status.RESOLVED).exclude(pk=real.pk).get()
    assert [link.entity.ref for link in open_.links.all()] == ["model:default/fraud-detector"]
    assert Incident.objects.filter(links__entity__ref="component:default/fraud-scoring-service").exists()
    out = StringIO()
    call_command("demo", "purge-insights", stdout=out)
    assert f"Removed the demo incidents: {len(demo.HISTORY)}" in out.getvalue()
    assert list(Incident.objects.values_list("pk", flat=True)) == [real.pk]
