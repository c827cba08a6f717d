"""What this app does when the catalog tells it something (connected in apps.ready)."""

from __future__ import annotations

import logging

from django.core.cache import cache

log = logging.getLogger("plinth.costs")
DEBOUNCE_SECONDS = 10


def on_entities_changed(sender, changed=(), removed=(), **kwargs) -> None:
    """A descriptor changed (its ResourceId mapping, owner or system may have): recompute every month's
    allocation once the burst of changes is over. Skipped while there is no cost data at all."""
    from .models import CostLine

    if not (changed or removed) or not CostLine.objects.exists():
        return
    from . import tasks

    if not cache.add("plinth:costs:reallocate-queued", 1, timeout=DEBOUNCE_SECONDS):
        return
    try:
        tasks.allocate.apply_async(args=[None], countdown=DEBOUNCE_SECONDS + 1)
    except Exception:
        cache.delete("plinth:costs:reallocate-queued")
        log.exception("could not queue the cost reallocation; the next import will recompute it")
