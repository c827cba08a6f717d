"""What the docs contribute to the portal's search: one document per built docs page, carrying its
entity's visibility and owner team so that search hides exactly what the catalog hides.

Imported by portal.search at startup (autodiscovered `search` module). Keys are
`techdocs:<entity ref>#<page path>`. The index is updated on commit after each build, when a site is
dropped (its annotation removed), when entities change (`follow`: the pages carry their entity's
visibility) and when entities are removed from the catalog (`drop`)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator

from django.db import transaction
from django.db.models import CharField, Exists, OuterRef, Value
from django.db.models.functions import Coalesce, Concat, Greatest, StrIndex, Substr

from .models import DocPage, docs_url

log = logging.getLogger("plinth.techdocs")
SOURCE = "techdocs"
PREFIX = "techdocs:"

try:
    from portal.search import index, registry
    from portal.search.models import SearchDocument
except ImportError:  # pragma: no cover - the search app is part of the project
    index = registry = SearchDocument = None  # type: ignore[assignment]


def page_key(ref: str, path: str) -> str:
    return f"{PREFIX}{ref}#{path}"


def _split(key: str) -> tuple[str, str] | None:
    if not key.startswith(PREFIX) or "#" not in key:
        return None
    ref, _, path = key[len(PREFIX):].partition("#")
    return ref, path


def _pages(keys: Iterable[str] | None):
    qs = DocPage.objects.select_related("site__entity").defer("html", "toc").order_by("site_id", "order")
    if keys is None:
        yield from qs.iterator(chunk_size=500)
        return
    wanted: dict[str, set[str]] = {}
    for key in keys:
        parts = _split(key)
        if parts:
            wanted.setdefault(parts[0], set()).add(parts[1])
    refs = list(wanted)
    for start in range(0, len(refs), 200):
        for page in qs.filter(site__entity__ref__in=refs[start:start + 200]):
            if page.path in wanted.get(page.site.entity.ref, ()):
                yield page


if registry is not None:
    class DocsSource(registry.SearchSource):
        name = SOURCE

        def documents(self, keys: Iterable[str] | None = None) -> Iterator[registry.Document]:
            for page in _pages(keys):
                e = page.site.entity
                yield registry.Document(
                    key=page_key(e.ref, page.path), kind="doc", kind_label="Docs", name=page.title,
                    title=page.title, description=f"{e.title or e.name} docs", body=page.text,
                    owner=e.owner_ref.split("/")[-1] if e.owner_ref else "", lifecycle=e.lifecycle,
                    type=e.kind_key, tags=list(e.tags or []), visibility=e.visibility, owner_team_id=e.owner_team_id,
                    url=docs_url(e, page.path),  # quoted: a page may be named faq#1.md or what?.md
                )

        def unindexed(self, limit: int, settled_before) -> tuple[list[str], list[str]]:
            """Pages without an up-to-date document — none, or one written before the page's last build
            or its entity's last change (whose visibility and owner the page carries) — and documents of
            pages that are gone: one anti-join each, probing the unique key, ref and (site, path)
            indexes. An entity's ref holds no `#`, so a key splits at its first."""
            changed_at = Greatest(Coalesce("site__built_at", "site__entity__updated_at"), "site__entity__updated_at")
            key = Concat(Value(PREFIX), "site__entity__ref", Value("#"), "path", output_field=CharField())
            fresh = SearchDocument.objects.filter(source=self.name, key=OuterRef("key"),
                                                  indexed_at__gte=OuterRef("changed_at"))
            missing = (DocPage.objects.annotate(key=key, changed_at=changed_at)
                       .filter(changed_at__lt=settled_before).exclude(Exists(fresh)))
            split = StrIndex("key", Value("#"))
            documents = SearchDocument.objects.filter(source=self.name).annotate(
                ref=Substr("key", len(PREFIX) + 1, split - len(PREFIX) - 1), path=Substr("key", split + 1))
            gone = documents.exclude(Exists(DocPage.objects.filter(site__entity__ref=OuterRef("ref"),
                                                                   path=OuterRef("path"))))
            return (list(missing.order_by("id").values_list("key", flat=True)[:limit]),
                    list(gone.order_by("id").values_list("key", flat=True)[:limit]))

    registry.register(DocsSource())


def follow(refs: Iterable[str]) -> None:
    """The pages of changed entities are indexed again from their entity as it is now: its visibility,
    owner team and tags are the pages' too, so a page of an entity made private is hidden at the
    entity's commit, not when a worker gets round to the rebuild the change queues (or never, if the
    broker is down). Called on commit by the catalog's `entities_changed` (receivers.py); entities
    without docs pages cost their share of one query per 500."""
    refs = list(refs)
    if index is None or not refs:
        return
    try:
        keys = [page_key(ref, path) for start in range(0, len(refs), 500)
                for ref, path in DocPage.objects.filter(site__entity__ref__in=refs[start:start + 500])
                .values_list("site__entity__ref", "path")]
        if keys:
            index.update(SOURCE, changed=keys)
    except Exception:  # the change is committed; the rebuild it queued, or `search reindex`, repairs it
        log.exception("search index update failed for the docs of %d changed entities", len(refs))


def sync(ref: str, *, current: list[str], previous: list[str]) -> None:
    """After a build (on commit): re-index the site's pages, drop pages that disappeared."""
    if index is None:
        return
    changed = [page_key(ref, p) for p in current]
    removed = [page_key(ref, p) for p in previous if p not in set(current)]

    def run() -> None:
        try:
            index.update(SOURCE, changed=changed, removed=removed)
        except Exception:  # the docs are built; `manage.py search reindex` repairs a failed update
            log.exception("search index update failed for the docs of %s", ref)

    transaction.on_commit(run)


def drop(refs: Iterable[str]) -> None:
    """The docs pages of removed entities leave the index: their sites went with them (on_delete=CASCADE).
    Called on commit by the catalog's `entities_changed` (receivers.py): one read of the keys per 200
    entities and one delete, however many sites (a receiver per deleted site read its entity and pages
    and updated the index once per site: minutes for a large unregistration)."""
    refs = list(refs)
    if index is None or not refs:
        return
    try:
        index.update(SOURCE, removed=index.keys_under(SOURCE, [page_key(ref, "") for ref in refs]))
    except Exception:  # the entities are gone already; `manage.py search reindex` repairs a failed update
        log.exception("search index update failed for the docs of %d removed entities", len(refs))
