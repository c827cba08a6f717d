"""Settings of the lineage app, read per call (never at import time)."""

from django.conf import settings


def max_body_bytes() -> int:
    """`POST /api/v1/lineage`'s body cap: a CI batch of events (default 32 MiB)."""
    return settings.PLINTH_LINEAGE_MAX_BODY_BYTES
