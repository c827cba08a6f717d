"""Demo incidents for `make run` (`manage.py demo insights`, after the usage history): a few weeks of
resolved incidents on the demo organisation's services and models, so the Incidents list, the entity
tabs and the canvas's MTTA/MTTR KPIs have figures, and one open incident on the fraud detector. Demo
rows are marked by their dedup key (`demo:`…) and opener label, never mixed with real ones: loading
again adds nothing, `purge()` (`manage.py demo purge-insights`) removes exactly them."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from catalog.models import Entity
from portal.accounts.models import Team

from .models import EntryKind, Incident, IncidentEntity, Severity, Status, TimelineEntry

PREFIX = "demo:"
LABEL = "demo data"
# (days ago, hours to acknowledge, hours to resolve or None while open, severity, entity ref, title)
HISTORY = [
    (52, 0.5, 6.0, Severity.SEV3, "component:default/fraud-scoring-service", "Scoring latency above 300 ms"),
    (44, 0.2, 2.5, Severity.SEV2, "component:default/fraud-scoring-service", "5xx above 2 % after a deploy"),
    (35, 1.5, 20.0, Severity.SEV4, "model:default/fraud-detector", "Feature drift on card_amount"),
    (27, 0.3, 4.0, Severity.SEV3, "model:default/fraud-detector", "Scores missing for new merchants"),
    (20, 0.1, 1.2, Severity.SEV1, "component:default/fraud-scoring-service", "Scoring API down in eu-west"),
    (14, 0.8, 9.0, Severity.SEV3, "model:default/fraud-detector", "Precision below the tier's floor"),
    (9, 0.4, 3.0, Severity.SEV2, "component:default/fraud-scoring-service", "Error budget burning at 14×"),
    (5, 2.0, 30.0, Severity.SEV4, "model:default/fraud-detector", "Nightly evaluation job failed"),
    (0.1, 0.05, None, Severity.SEV3, "model:default/fraud-detector", "Latency p95 above the SLO target"),
]


def load(now: datetime | None = None) -> int:
    """Add the demo incidents that are not there yet; the number added (0 without the demo organisation)."""
    now = now or timezone.now()
    team = Team.objects.filter(name="fraud-ml").first()
    if team is None:
        return 0
    have = set(Incident.objects.filter(dedup_key__startswith=PREFIX).values_list("dedup_key", flat=True))
    entities = {e.ref: e for e in Entity.objects.filter(ref__in={row[4] for row in HISTORY})}
    added = 0
    with transaction.atomic():
        for n, (days, ack_h, resolve_h, severity, ref, title) in enumerate(HISTORY):
            key = f"{PREFIX}{n}"
            if key in have:
                continue
            opened = now - timedelta(days=days)
            acked = opened + timedelta(hours=ack_h)
            resolved = opened + timedelta(hours=resolve_h) if resolve_h is not None else None
            entity = entities.get(ref)
            incident = Incident.objects.create(
                title=title, summary="Demo data: a made-up incident for the demo organisation.", severity=severity,
                status=Status.RESOLVED if resolved else Status.ACKNOWLEDGED, dedup_key=key, owner_team=team,
                visibility=entity.visibility if entity else Incident._meta.get_field("visibility").default, opened_at=opened, acknowledged_at=acked,
                resolved_at=resolved, opened_by_label=LABEL)
            if entity is not None:
                IncidentEntity.objects.create(incident=incident, entity=entity, position=0)
            entries = [(opened, EntryKind.OPENED, f"Opened as {severity.upper()} (demo data)"),
                       (acked, EntryKind.ACKNOWLEDGED, "")]
            if resolved:
                entries.append((resolved, EntryKind.RESOLVED, ""))
            TimelineEntry.objects.bulk_create([TimelineEntry(incident=incident, at=at, kind=kind, actor_label=LABEL,
                                                             text=text) for at, kind, text in entries])
            added += 1
    return added


def purge() -> int:
    """Remove the demo incidents (and their links and timelines); real incidents stay."""
    demo = Incident.objects.filter(dedup_key__startswith=PREFIX, opened_by_label=LABEL)
    count = demo.count()
    demo.delete()
    return count
