"""Cost settings with their defaults (PLINTH_COSTS_<NAME>). Read at call time (docs/finops.md)."""

from __future__ import annotations

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    # Tag keys naming the catalog entity a cost line belongs to (first present wins): a ref such as
    # `model:default/fraud-scorer`, `model:fraud-scorer` or a name unique across the catalog.
    "ENTITY_TAG_KEYS": ["plinth-entity"],
    # Tag keys naming the team (Team.name) of a line no entity claims.
    "TEAM_TAG_KEYS": ["team", "plinth-team"],
    # A line whose tag SHARED_TAG_KEY is "true" is a shared cost, split across teams (docs/finops.md).
    "SHARED_TAG_KEY": "plinth-shared",
    # Where files dropped for import are picked up by beat (None: no scheduled location). Files are named
    # <provider>__<anything>.csv|.parquet; queued ones leave the directory, refused ones go to failed/.
    "DROP_DIR": None,
    # Largest upload (bytes) the page and the API accept; larger answers 413. Files are streamed to disk.
    "MAX_UPLOAD_BYTES": 4 * 1024**3,
    # Rows per INSERT batch (SQLite executemany) or COPY block (PostgreSQL).
    "BATCH_ROWS": 20_000,
    # Budget alert thresholds, per cent of the month's budget.
    "BUDGET_THRESHOLDS": [80, 100],
}


def get(name: str) -> Any:
    return getattr(settings, f"PLINTH_COSTS_{name}", DEFAULTS[name])


def drop_dir():
    from pathlib import Path

    value = get("DROP_DIR")
    return Path(value) if value else None
