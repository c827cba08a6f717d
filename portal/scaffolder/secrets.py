"""Secrets entered in a template's form (fields with `ui:field: Secret` or `ui:widget: password`).

They never reach the database, the task arguments or the logs. The view writes them, encrypted
(Fernet, key derived from SECRET_KEY), to a per-run file readable only by the portal's user
(mode 0600) under PLINTH_SCAFFOLDER_SECRETS_ROOT; the worker reads the file when the run starts and
deletes it when the run ends (the reaper deletes it when it fails a lost run). A file on disk was
chosen over the cache because the test and development cache is per process (LocMem/file), while
the web process and the worker always share VAR_DIR; the encryption means a copied file or backup
of var/ is useless without SECRET_KEY.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings

from . import conf


def _fernet() -> Fernet:
    key = hashlib.sha256(b"plinth.scaffolder.secrets:" + settings.SECRET_KEY.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def _path(run_uid) -> Path:
    return conf.secrets_root() / f"{run_uid}.bin"


def store(run_uid, secrets: dict[str, str]) -> None:
    if not secrets:
        return
    path = _path(run_uid)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    token = _fernet().encrypt(json.dumps(secrets).encode())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(token)


def load(run_uid, *, ttl: int | None = None) -> dict[str, str]:
    path = _path(run_uid)
    if not path.exists():
        return {}
    try:
        return json.loads(_fernet().decrypt(path.read_bytes(), ttl=ttl))
    except (InvalidToken, ValueError):
        return {}


def discard(run_uid) -> None:
    _path(run_uid).unlink(missing_ok=True)


def redact(text: str, secrets: dict[str, str]) -> str:
    for value in secrets.values():
        if value and len(str(value)) >= 3:
            text = text.replace(str(value), "•••")
    return text
