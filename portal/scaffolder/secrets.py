"""Secrets entered in a template's form (fields with `ui:field: Secret` or `ui:widget: password`).

They never reach the task arguments or the logs, and the database only encrypted: the view stores them
Fernet-encrypted (key derived from SECRET_KEY) in a `RunSecret` row keyed by the run's uid, in the
transaction that creates the run; the worker reads the row when the run starts and the row is deleted
when the run ends (the reaper deletes it when it fails a lost run). The database, not a file, because
the web node that took the form and the worker that runs it share no disk (docs/deployment.md), and
not the cache, because the development and test caches are per process; the encryption means a
database dump or backup is useless without SECRET_KEY.
"""

from __future__ import annotations

import base64
import hashlib
import json

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings

from .models import RunSecret


def _fernet() -> Fernet:
    key = hashlib.sha256(b"plinth.scaffolder.secrets:" + settings.SECRET_KEY.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def store(run_uid, secrets: dict[str, str]) -> None:
    if not secrets:
        return
    token = _fernet().encrypt(json.dumps(secrets).encode())
    RunSecret.objects.update_or_create(run_uid=run_uid, defaults={"token": token})


def load(run_uid, *, ttl: int | None = None) -> dict[str, str]:
    token = RunSecret.objects.filter(run_uid=run_uid).values_list("token", flat=True).first()
    if token is None:
        return {}
    try:
        return json.loads(_fernet().decrypt(bytes(token), ttl=ttl))
    except (InvalidToken, ValueError):
        return {}


def discard(run_uid) -> None:
    RunSecret.objects.filter(run_uid=run_uid).delete()


def redact(text: str, secrets: dict[str, str]) -> str:
    for value in secrets.values():
        if value and len(str(value)) >= 3:
            text = text.replace(str(value), "•••")
    return text
