"""Docs builds in the background. Thin and idempotent: they take refs, call the service, and an
unchanged docs folder is not rewritten, so running one twice is harmless."""

from __future__ import annotations

import logging

from celery import shared_task

from catalog.models import Entity

from . import services

log = logging.getLogger("plinth.techdocs")


@shared_task(acks_late=True, bind=True, max_retries=3, default_retry_delay=20, soft_time_limit=600)
def build_entity_docs(self, refs: list[str], force: bool = False) -> dict:
    """Build the docs and model cards of the given entity refs (those without any are skipped)."""
    built = {}
    for entity in Entity.objects.filter(ref__in=refs[:1000]).select_related("location"):
        if not services.needs_build(entity):
            continue
        try:
            built[entity.ref] = services.entity_docs_build(entity=entity, force=force)
        except Exception as exc:
            log.exception("docs build of %s failed", entity.ref)
            raise self.retry(exc=exc) from exc
    return built


@shared_task(acks_late=True, max_retries=0)
def rebuild_all_docs() -> int:
    """Re-check every site (for a beat schedule): unchanged folders cost one hash, changed ones rebuild.
    This catches Markdown edits that did not change the descriptor (so no `entities_changed`)."""
    refs = list(Entity.objects.filter(techdocs_site__isnull=False).values_list("ref", flat=True))
    refs += list(Entity.objects.filter(model_card__isnull=False).values_list("ref", flat=True))
    for start in range(0, len(refs), 200):
        build_entity_docs.delay(refs[start:start + 200])
    return len(refs)
