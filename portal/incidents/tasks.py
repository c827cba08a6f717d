"""Incident notifications, queued through governance's outbox and delivered like its own: an inbox row
per recipient (idempotent by key) and one e-mail each. Safe to run twice."""

from __future__ import annotations

from celery import shared_task
from django.db import InterfaceError, OperationalError

from portal.governance import notifications

from . import selectors
from .models import Incident

MESSAGES = {
    "opened": "{severity} incident for {team}: {title}",
    "reopened": "{severity} incident reopened for {team}: {title}",
}


@shared_task(
    acks_late=True, bind=True, max_retries=3,
    autoretry_for=(OperationalError, InterfaceError), retry_backoff=2, retry_backoff_max=60, retry_jitter=False,
)
def notify(self, incident_id: int, event: str, seq: int = 0) -> int:
    """The owning team's members, maintainers and admins (no team: platform admins), not the opener."""
    incident = Incident.objects.select_related("owner_team").filter(pk=incident_id).first()
    if incident is None or event not in MESSAGES:
        return 0
    recipients = selectors.responders(incident, exclude=incident.opened_by_id if event == "opened" else None)
    text = MESSAGES[event].format(severity=incident.severity.upper(), title=incident.title[:200],
                                  team=incident.owner_team.name if incident.owner_team else "the platform admins")
    url = incident.get_absolute_url()
    notes, created = notifications.write(recipients, key=f"incident:{event}:{incident.pk}:{seq}",
                                         kind=f"incident-{event}", message=text, url=url)
    if not notifications.email(notes, text, url):
        raise self.retry(countdown=5 * 2**self.request.retries)
    return created
