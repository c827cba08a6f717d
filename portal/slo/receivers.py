"""What this app does when the catalog tells it something (connected in apps.ready)."""

from __future__ import annotations

import logging

log = logging.getLogger("plinth.slo")
CHUNK = 2000


def on_entities_changed(sender, changed=(), removed=(), snapshot=None, **kwargs) -> None:
    """Sent on commit: queue a read of the OpenSLO files (and an evaluation) of changed entities that
    name one, or had SLOs. A broker outage is logged, never raised: the periodic pass catches up."""
    from catalog.models import Entity
    from catalog.services import OBSERVED_SOURCE
    from portal.core.db import values_in

    from . import tasks
    from .models import SLOFile
    from .openslo import ANNOTATION

    # Observed entities just created (the lineage ingest writes thousands a batch, with the snapshot)
    # name no OpenSLO file (their annotations are the observer's) and had no SLOs: nothing to look up.
    snapshot = snapshot or {}
    refs = sorted(ref for ref in set(changed) if ref not in snapshot or snapshot[ref][2].source != OBSERVED_SOURCE)
    for start in range(0, len(refs), CHUNK):
        chunk = refs[start:start + CHUNK]
        # The writer's candidates say which name a file; the others are read.
        ids = {snapshot[ref][0] for ref in chunk if ref in snapshot and ANNOTATION in snapshot[ref][2].annotations}
        unknown = [ref for ref in chunk if ref not in snapshot]
        if unknown:
            ids |= set(Entity.objects.filter(ref__in=values_in(unknown, text=True),
                                             data__metadata__annotations__has_key=ANNOTATION).values_list("id", flat=True))
        ids |= set(SLOFile.objects.filter(entity__ref__in=values_in(chunk, text=True)).values_list("entity_id", flat=True))
        if not ids:
            continue
        try:
            tasks.evaluate_entities.delay(sorted(ids))
        except Exception:
            log.exception("could not queue the SLO evaluation of %d entities; the periodic pass will", len(ids))
