"""The one place where Plinth reads its environment.

Every setting that can vary between machines is read here and nowhere else, so that
`docs/deployment.md` can list them all and a typo in a variable name fails loudly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]


class ImproperEnvironment(RuntimeError):
    """Raised when a required variable is missing or malformed."""


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperEnvironment(f"{name}={raw!r} is not a boolean (use true/false)")


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperEnvironment(f"{name}={raw!r} is not an integer") from exc


def _list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


@dataclass(frozen=True)
class Environment:
    secret_key: str | None
    debug: bool | None
    database_url: str | None
    redis_url: str | None
    broker_url: str | None
    var_dir: Path
    allowed_hosts: list[str]
    csrf_trusted_origins: list[str]
    mlflow_tracking_uri: str
    mlflow_ui_url: str
    worker_stale_seconds: int
    heartbeat_seconds: int
    log_level: str
    secure_ssl_redirect: bool
    catalog_allowed_hosts: list[str]
    catalog_allow_private_urls: bool
    catalog_file_roots: list[str]
    catalog_read_processes: int
    catalog_admin_locations_org_wide: bool
    scaffolder_root: str | None


def read() -> Environment:
    var_dir = Path(os.environ.get("PLINTH_VAR_DIR") or BASE_DIR / "var")
    mlflow = os.environ.get("MLFLOW_TRACKING_URI") or "http://127.0.0.1:5001"
    return Environment(
        secret_key=os.environ.get("SECRET_KEY") or None,
        debug=_bool("DEBUG", False) if os.environ.get("DEBUG") else None,
        database_url=os.environ.get("DATABASE_URL") or None,
        redis_url=os.environ.get("REDIS_URL") or None,
        broker_url=os.environ.get("CELERY_BROKER_URL") or None,
        var_dir=var_dir,
        allowed_hosts=_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"]),
        csrf_trusted_origins=_list("CSRF_TRUSTED_ORIGINS", []),
        mlflow_tracking_uri=mlflow,
        mlflow_ui_url=os.environ.get("MLFLOW_UI_URL") or mlflow,
        worker_stale_seconds=_int("PLINTH_WORKER_STALE_SECONDS", 30),
        heartbeat_seconds=_int("PLINTH_HEARTBEAT_SECONDS", 5),
        log_level=os.environ.get("LOG_LEVEL", "INFO").upper(),
        secure_ssl_redirect=_bool("SECURE_SSL_REDIRECT", True),
        catalog_allowed_hosts=_list("PLINTH_CATALOG_ALLOWED_HOSTS", []),
        catalog_allow_private_urls=_bool("PLINTH_CATALOG_ALLOW_PRIVATE_URLS", False),
        # Folders that users may register file/directory locations from (the server operator's
        # `manage.py catalog register` is not limited). Default: the folder holding this checkout.
        catalog_file_roots=_list("PLINTH_CATALOG_FILE_ROOTS", [str(BASE_DIR.parent)]),
        # Processes that parse and validate the files of a large directory location in parallel
        # (1 = in the registering process only).
        catalog_read_processes=_int("PLINTH_CATALOG_READ_PROCESSES", min(8, os.cpu_count() or 1)),
        # A location registered by a platform admin is org-wide: its refreshes store any owner its
        # descriptors name (docs/security.md). Off: refreshed with the registrant's current rights.
        catalog_admin_locations_org_wide=_bool("PLINTH_CATALOG_ADMIN_LOCATIONS_ORG_WIDE", True),
        scaffolder_root=os.environ.get("PLINTH_SCAFFOLDER_ROOT") or None,
    )


ENV = read()
