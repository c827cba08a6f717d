"""Feedback notifications, queued through governance's outbox and delivered like its own: an inbox row
per recipient (idempotent by key) and one e-mail each. Safe to run twice."""

from __future__ import annotations

from celery import shared_task
from django.db import InterfaceError, OperationalError

from portal.governance import notifications

from . import selectors
from .models import FeedbackItem, Status

MESSAGES = {
    "new": "New feedback for {team}: {heading}",
    "answered": "Your feedback is {status}: {heading}",
}


@shared_task(
    acks_late=True, bind=True, max_retries=3,
    autoretry_for=(OperationalError, InterfaceError), retry_backoff=2, retry_backoff_max=60, retry_jitter=False,
)
def notify(self, item_id: int, event: str, seq: int = 0, status: str = "") -> int:
    """`new`: the owning team's maintainers and admins (no team: platform admins); `answered`: the author."""
    item = FeedbackItem.objects.select_related("owner_team", "author").filter(pk=item_id).first()
    if item is None or event not in MESSAGES:
        return 0
    recipients = selectors.answerers(item) if event == "new" else [item.author]
    text = MESSAGES[event].format(team=item.owner_team.name if item.owner_team else "the platform admins",
                                  heading=item.heading[:200], status=Status(status or item.status).label.lower())
    url = item.get_absolute_url()
    notes, created = notifications.write(recipients, key=f"feedback:{event}:{item.pk}:{seq}", kind=f"feedback-{event}",
                                         message=text, url=url)
    if not notifications.email(notes, text, url):
        raise self.retry(countdown=5 * 2**self.request.retries)
    return created
