"""Catalog signal receivers: queue docs builds for changed entities (after commit, never before)."""

from __future__ import annotations

import logging

from django.db import transaction

log = logging.getLogger("plinth.techdocs")
CHUNK = 500
# Sent by name: the services queue builds through `enqueue`, and the tasks call the services, so
# importing the tasks here would close a loop (tasks.py registers the task under this name).
BUILD_TASK = "portal.techdocs.tasks.build_entity_docs"


def on_entities_changed(sender, changed=(), removed=(), snapshot=None, **kwargs) -> None:
    """Removed entities' sites and cards went with them (on_delete=CASCADE): their pages leave the search
    index (sent on commit, so at once). Those a refresh kept as orphans keep their sites, and their pages
    stay (they are not in `removed`). Changed ones' pages follow their entity at once (its visibility,
    owner, tags), and they are queued for a build after commit."""
    from . import search

    if removed:
        search.drop(removed)
    refs = list(changed or ())
    if not refs:
        return
    if snapshot is not None and set(refs) <= snapshot.keys():
        refs, with_sites = _needing_build(refs, snapshot)
        search.follow(with_sites)
    else:
        search.follow(refs)
    if refs:
        transaction.on_commit(lambda: enqueue(refs))


def _needing_build(refs: list[str], snapshot: dict) -> tuple[list[str], list[str]]:
    """Of entities just written, those with docs or a model card to build, or a site or card to drop
    (its annotation or path was removed): a 250k-entity registration queues tasks for these only. And
    those of them that have a docs site."""
    from .builder import TECHDOCS_ANNOTATIONS
    from .models import DocSite, ModelCard

    sites = set(DocSite.objects.values_list("entity_id", flat=True))
    built = sites | set(ModelCard.objects.values_list("entity_id", flat=True))
    keep, with_sites = [], []
    for ref in refs:
        pk, _team, cand = snapshot[ref]
        annotations = cand.annotations  # most have none: no per-key lookups then
        if pk in built or cand.model_card or (annotations and any(annotations.get(k) for k in TECHDOCS_ANNOTATIONS)):
            keep.append(ref)
        if pk in sites:
            with_sites.append(ref)
    return keep, with_sites


def enqueue(refs: list[str]) -> None:
    from portal.celery import app

    for start in range(0, len(refs), CHUNK):
        try:
            app.send_task(BUILD_TASK, args=(refs[start:start + CHUNK],))
        except Exception:  # a broker outage must not break the catalog write that already committed
            log.exception("could not queue docs builds for %d entities", len(refs[start:start + CHUNK]))
