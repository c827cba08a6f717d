"""Delivering notifications: the in-app inbox row (idempotent by key) and one e-mail per row not yet
e-mailed. Used by governance's `notify` task and by other apps' tasks (feedback), which queue their
work through the same outbox (`outbox.enqueue(None, key, task, args)`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import IntegrityError, InterfaceError, OperationalError, connection, transaction

from . import conf
from .models import Notification

log = logging.getLogger("plinth.governance")


def write(users: Iterable[Any], *, key: str, kind: str, message: str, url: str = "",
          request: Any = None) -> tuple[list[tuple[Any, Notification]], int]:
    """One inbox row per user for `key` ((user, row) pairs, and how many were new). Written again (a task
    delivered twice), it finds the rows instead of adding second ones."""
    notes, created = [], 0
    for user in users:
        try:
            with transaction.atomic():
                note, new = Notification.objects.get_or_create(
                    user=user, key=key[:120],
                    defaults={"request": request, "url": url[:500], "kind": kind[:30], "message": message[:500]},
                )
        except IntegrityError:
            note, new = Notification.objects.filter(user=user, key=key[:120]).first(), False
        if note is not None:
            notes.append((user, note))
            created += new
    return notes, created


def email(notes: list[tuple[Any, Notification]], text: str, url: str) -> bool:
    """Send the e-mails of `notes` not sent yet (when e-mail notifications are on). False when any failed
    (the caller retries; those already sent are not sent again)."""
    if not conf.get("EMAIL_NOTIFICATIONS"):
        return True
    domain = settings.DEFAULT_FROM_EMAIL.rpartition("@")[2] or "plinth"
    ok = True
    for user, note in notes:
        if note.emailed or not user.email:
            continue
        message = EmailMessage(
            f"[Plinth] {' '.join(text.split())}"[:200],  # a header is one line
            f"{text}\n\n{url}\n",
            settings.DEFAULT_FROM_EMAIL,
            [user.email],
            # One id per notification: a copy sent twice (a worker killed between the server's
            # acceptance and `emailed`) is recognisably the same message.
            headers={"Message-ID": f"<notification-{note.pk}@{domain}>"},
        )
        try:
            message.send()
        except Exception as exc:
            log.warning("email to %s failed: %s", user.email, exc)
            ok = False
            continue
        record_emailed(note.pk)
    return ok


def record_emailed(pk: int, attempts: int = 8) -> None:
    """The server has accepted the e-mail: record that even across a short database outage (a restart
    takes seconds), or a redelivery of the task would send it a second time."""
    for attempt in range(attempts):
        try:
            Notification.objects.filter(pk=pk).update(emailed=True)
            return
        except (OperationalError, InterfaceError):
            if attempt == attempts - 1:
                raise
            connection.close()  # a new connection next time
            time.sleep(min(8.0, 0.5 * 2**attempt))
