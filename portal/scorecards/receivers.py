"""What this app does when the catalog tells it something (connected in apps.ready)."""

from __future__ import annotations

import logging

from django.core.cache import cache

from . import conf

log = logging.getLogger("plinth.scorecards")
CHUNK = 2000
DEBOUNCED_UP_TO = 1000  # larger writes (a registration) are queued as they are: one task per chunk


def on_entities_changed(sender, changed=(), removed=(), **kwargs) -> None:
    """Sent on commit: queue an evaluation of the changed entities a few seconds later. Debounced: a
    ref changed again while its evaluation is queued joins that evaluation (the task reads the entity
    when it runs) instead of queuing another. Removed entities' results go with them (cascade); today's counts are refreshed soon after. A
    broker outage is logged, never raised (the catalog write has committed): the nightly pass catches up."""
    from . import tasks

    refs = sorted(set(changed))
    if removed:
        from . import services

        services.refresh_soon()  # their results went with them (cascade): today's counts follow
    if not refs:
        return
    delay = int(conf.get("DEBOUNCE_SECONDS"))
    if len(refs) <= DEBOUNCED_UP_TO:
        marks = {f"plinth:scorecards:queued:{r}": r for r in refs}
        # The mark expires before the task runs (countdown delay + 1): a change after it queues anew.
        refs = [r for key, r in marks.items() if cache.add(key, 1, timeout=delay)]
    for start in range(0, len(refs), CHUNK):
        chunk = refs[start:start + CHUNK]
        try:
            tasks.evaluate_refs.apply_async(args=[chunk], countdown=delay + 1)
        except Exception:
            cache.delete_many([f"plinth:scorecards:queued:{r}" for r in chunk])
            log.exception("could not queue the scorecard evaluation of %d entities; the nightly pass will",
                          len(chunk))
