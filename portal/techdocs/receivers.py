"""Catalog signal receivers: queue docs builds for changed entities (after commit, never before)."""

from __future__ import annotations

import logging

from django.db import transaction

log = logging.getLogger("plinth.techdocs")
CHUNK = 500


def on_entities_changed(sender, changed=(), removed=(), **kwargs) -> None:
    """Removed entities need nothing: their sites and cards go with them (on_delete=CASCADE)."""
    refs = list(changed or ())
    if not refs:
        return
    transaction.on_commit(lambda: enqueue(refs))


def enqueue(refs: list[str]) -> None:
    from .tasks import build_entity_docs

    for start in range(0, len(refs), CHUNK):
        try:
            build_entity_docs.delay(refs[start:start + CHUNK])
        except Exception:  # a broker outage must not break the catalog write that already committed
            log.exception("could not queue docs builds for %d entities", len(refs[start:start + CHUNK]))
