"""Docs builds in the background. Thin and idempotent: they take refs, call the service, and an
unchanged docs folder is not rewritten, so running one twice is harmless."""

from __future__ import annotations

import contextlib
import logging

from celery import shared_task
from django.db.models import Q

from catalog.models import Entity

from . import builder, receivers, services

log = logging.getLogger("plinth.techdocs")


@shared_task(name=receivers.BUILD_TASK, acks_late=True, bind=True, max_retries=3, soft_time_limit=600)
def build_entity_docs(self, refs: list[str], force: bool = False) -> dict:
    """Build the docs and model cards of the given entity refs (those without any are skipped). A
    build that cannot be stored (the database restarted, its disk is full) says so on the site,
    keeps the last good pages, and is retried with backoff — only the entities that failed: the
    others of the batch are built meanwhile; then the Rebuild button or the sweep."""
    built, failed, error = {}, [], None
    for entity in Entity.objects.filter(ref__in=refs[:1000]).select_related("location"):
        if not services.needs_build(entity):
            continue
        try:
            built[entity.ref] = services.entity_docs_build(entity=entity, force=force)
        except Exception as exc:
            log.exception("docs build of %s failed", entity.ref)
            final = self.request.retries >= self.max_retries
            with contextlib.suppress(Exception):  # recording it needs the database that may have failed
                services.docs_build_failed(entity=entity, error=_describe(exc), final=final)
            failed.append(entity.ref)
            error = error or exc
    if failed:
        raise self.retry(args=[failed, force], exc=error, countdown=5 * 2**self.request.retries) from error
    return built


def _describe(exc: Exception) -> str:
    text = " ".join(str(exc).split())[:600]
    if "No space left on device" in text or "could not extend file" in text:
        return f"the database's disk is full ({text})"
    return f"{type(exc).__name__}: {text}"


@shared_task(acks_late=True, max_retries=0)
def rebuild_all_docs() -> int:
    """Re-check every site (for a beat schedule): unchanged folders cost one hash, changed ones rebuild.
    This catches Markdown edits that did not change the descriptor (so no `entities_changed`), and
    first builds whose message was lost (a broker restarted empty, a worker killed with it): entities
    that ask for docs or a model card and have none yet."""
    refs = list(Entity.objects.filter(techdocs_site__isnull=False).values_list("ref", flat=True))
    refs += list(Entity.objects.filter(model_card__isnull=False).values_list("ref", flat=True))
    asks = Q(data__spec__has_key="modelCard", kind_key="model", model_card__isnull=True)
    for key in builder.TECHDOCS_ANNOTATIONS:
        asks |= Q(**{"data__metadata__annotations__has_key": key}, techdocs_site__isnull=True)
    refs += list(Entity.objects.filter(asks).values_list("ref", flat=True).distinct())
    for start in range(0, len(refs), 200):
        build_entity_docs.delay(refs[start:start + 200])
    return len(refs)
