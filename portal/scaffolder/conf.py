"""Scaffolder settings, read when used (never at import time). Override any of them in settings as
`PLINTH_SCAFFOLDER_<NAME>`."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings


def _get(name: str, default):
    return getattr(settings, f"PLINTH_SCAFFOLDER_{name}", default)


def root() -> Path:
    return Path(_get("ROOT", Path(settings.VAR_DIR) / "scaffolder"))


def workspace_root() -> Path:
    """Each run renders into its own folder below this one; the folder is removed afterwards."""
    return Path(_get("WORKSPACE_ROOT", root() / "workspaces"))


def publish_root() -> Path:
    """publish:git creates bare repositories (`repos/`) and a checkout of each (`checkouts/`) here."""
    return Path(_get("PUBLISH_ROOT", root() / "published"))


def secrets_root() -> Path:
    return Path(_get("SECRETS_ROOT", root() / "secrets"))


def run_time_limit() -> int:
    """Seconds a run may take, all steps together; then it fails with a clear message."""
    return int(_get("RUN_TIME_LIMIT", 120))


def stale_seconds() -> int:
    """A running run whose heartbeat is older than this was lost with its worker."""
    return int(_get("STALE_SECONDS", 30))


def max_attempts() -> int:
    """How many times a run is started (first start + resumes after a lost worker)."""
    return int(_get("MAX_ATTEMPTS", 2))


def max_files() -> int:
    return int(_get("MAX_FILES", 500))


def max_bytes() -> int:
    """Total bytes a run may write into its workspace."""
    return int(_get("MAX_BYTES", 10 * 1024 * 1024))


def max_file_bytes() -> int:
    return int(_get("MAX_FILE_BYTES", 2 * 1024 * 1024))


def max_log_lines() -> int:
    return int(_get("MAX_LOG_LINES", 2000))


def dry_run_preview_bytes() -> int:
    """A dry run stores each generated file's content up to this size for the preview."""
    return int(_get("DRY_RUN_PREVIEW_BYTES", 64 * 1024))
