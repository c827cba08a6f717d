"""What the catalog contributes to the portal's search: one document per entity, with the
kind-specific text (feature names, dataset columns, model metric names…) in its body.
Imported by portal.search at startup; keeps the index fresh from `entities_changed`."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator

from django.db.models import Exists, OuterRef, QuerySet
from django.urls import reverse

from portal.search import index, registry
from portal.search.models import SearchDocument
from portal.search.registry import Document

from .descriptors.text import MAX_WORDS_CHARS, descriptor_words
from .ingest.reader import DOCS_ANNOTATIONS
from .models import Entity, ModelVersion, Star
from .signals import entities_changed, entities_staged

COLUMNS = (
    "id",
    "ref",
    "kind",
    "kind_key",
    "namespace",
    "name",
    "title",
    "description",
    "spec_type",
    "lifecycle",
    "owner_ref",
    "owner_team_id",
    "visibility",
    "tags",
    "data",
)
CHUNK = 2000
logger = logging.getLogger(__name__)


def body_text(words: str, metrics: Iterable[str] = ()) -> str:
    """A document's body: its descriptor_words, then the metric names of a model's versions."""
    return " ".join(p for p in (words, *metrics) if p)[:MAX_WORDS_CHARS]


def _url_base() -> str:
    return reverse("catalog:entity-detail", args=["k", "n", "x"]).rsplit("k/n/x", 1)[0]


def has_docs(annotations: dict, spec: dict) -> bool:
    """Docs exist for the entity: a docs folder (techdocs) or a Model's model card."""
    card = spec.get("modelCard") if isinstance(spec, dict) else None
    return any(annotations.get(a) for a in DOCS_ANNOTATIONS) or (isinstance(card, str) and bool(card.strip()))


def _document(row: tuple, metrics: dict[int, set[str]], base: str, words: str | None = None,
              docs: bool | None = None) -> Document:
    """One index document from an Entity row in COLUMNS order (`words`: its descriptor_words, and
    `docs`: whether it has docs, when known already; else they are taken from the row's data)."""
    (pk, ref, kind, kind_key, namespace, name, title, description, spec_type, lifecycle, owner_ref,
     owner_team_id, visibility, tags, data) = row
    if words is None or docs is None:
        spec = (data or {}).get("spec") or {}
        meta = (data or {}).get("metadata") or {}
        spec = spec if isinstance(spec, dict) else {}
        if words is None:
            words = descriptor_words(kind_key, spec, meta)
        if docs is None:
            docs = has_docs(meta.get("annotations") or {}, spec)
    return Document(
        key=ref,
        kind=kind_key,
        kind_label=kind,
        name=name,
        title=title,
        description=description,
        body=body_text(words, sorted(metrics.get(pk, ()))),
        owner=owner_ref.split("/")[-1].split(":")[-1] if owner_ref else "",
        lifecycle=lifecycle,
        type=spec_type,
        tags=list(tags or []),
        visibility=visibility,
        owner_team_id=owner_team_id,
        url=f"{base}{kind_key}/{namespace}/{name}/",
        has_docs=docs,
    )


class CatalogSource(registry.SearchSource):
    name = "catalog"

    def _rows(self, keys: Iterable[str] | None) -> Iterator[tuple]:
        qs: QuerySet = Entity.objects.order_by("id")
        if keys is not None:
            keys = list(keys)
            for start in range(0, len(keys), CHUNK):
                yield from qs.filter(ref__in=keys[start : start + CHUNK]).values_list(*COLUMNS)
            return
        last = 0
        while True:  # keyset pagination: a constant memory footprint at any catalog size
            batch = list(qs.filter(id__gt=last).values_list(*COLUMNS)[:CHUNK])
            if not batch:
                return
            yield from batch
            last = batch[-1][0]

    def documents(self, keys: Iterable[str] | None = None) -> Iterator[Document]:
        metrics: dict[int, set[str]] = defaultdict(set)
        versions = (
            ModelVersion.objects.all()
            if keys is None
            else ModelVersion.objects.filter(entity__ref__in=list(keys or []))
        )
        for entity_id, values in versions.values_list("entity_id", "metrics"):
            metrics[entity_id].update(values or {})
        base = _url_base()
        for row in self._rows(keys):
            yield _document(row, metrics, base)

    def documents_from_snapshot(self, snapshot: dict) -> list[Document]:
        """Documents for entities just written (see catalog.signals), without reading them back."""
        return self.documents_written(list(snapshot.values()))

    def documents_written(self, written: list[tuple]) -> list[Document]:
        """Documents for [(entity id, owner team id, Candidate)] just written, not read back."""
        ids = {pk for pk, _team, _cand in written}
        metrics: dict[int, set[str]] = defaultdict(set)
        if ids:  # model versions are few next to entities: filter them here, not in SQL
            for entity_id, values in ModelVersion.objects.values_list("entity_id", "metrics"):
                if entity_id in ids:
                    metrics[entity_id].update(values or {})
        base = _url_base()
        documents = []
        for pk, team_id, cand in written:
            cols = cand.row
            row = (pk, cols["ref"], cols["kind"], cols["kind_key"], cols["namespace"], cols["name"], cols["title"],
                   cols["description"], cols["spec_type"], cols["lifecycle"], cols["owner_ref"], team_id,
                   cols["visibility"], cols["tags"], None)
            docs = any(cand.annotations.get(a) for a in DOCS_ANNOTATIONS) or bool(cand.model_card)
            documents.append(_document(row, metrics, base, words=cand.words, docs=docs))
        return documents

    def unindexed(self, limit: int, settled_before) -> tuple[list[str], list[str]]:
        """Entities without an up-to-date document — none, or one written before the entity's last
        change (an index write after a commit that failed or never ran) — and documents of entities
        that are gone: one anti-join each, by the unique ref and key indexes."""
        fresh = SearchDocument.objects.filter(source=self.name, key=OuterRef("ref"),
                                              indexed_at__gte=OuterRef("updated_at"))
        missing = Entity.objects.filter(updated_at__lt=settled_before).exclude(Exists(fresh))
        gone = SearchDocument.objects.filter(source=self.name).exclude(Exists(Entity.objects.filter(ref=OuterRef("key"))))
        return (list(missing.order_by("id").values_list("ref", flat=True)[:limit]),
                list(gone.order_by("id").values_list("key", flat=True)[:limit]))

    def boosted_keys(self, user) -> set[str]:
        if not (user and user.is_authenticated):
            return set()
        return set(Star.objects.filter(user=user).values_list("entity__ref", flat=True)[:200])


registry.register(CatalogSource())


def _on_entities_staged(sender, written=(), state=None, done=False, **kwargs) -> None:
    """A location's written entities, indexed inside its transaction (see catalog.signals)."""
    writer = state.get("search")
    if done:
        if writer is not None:
            writer.finish()
        return
    if writer is None:
        writer = state["search"] = index.Staged(CatalogSource.name)
    writer.write(CatalogSource().documents_written(list(written)), bulk_load=state.get("bulk_load", False))


def _on_entities_changed(sender, changed=(), removed=(), orphaned=(), snapshot=None, staged=False,
                         **kwargs) -> None:
    if staged:
        changed = ()  # indexed before the commit (entities_staged)
    # A kept orphan is still in the catalog and in search: its document is rewritten (it changed).
    changed = [*changed, *orphaned]
    if not changed and not removed:
        return
    try:
        documents = None
        if snapshot is not None and set(changed) <= snapshot.keys():
            documents = CatalogSource().documents_from_snapshot({ref: snapshot[ref] for ref in changed})
        index.update(CatalogSource.name, changed=changed, removed=removed, documents=documents)
    except Exception:
        # The catalog change is committed already; a failed index update must not turn it into an
        # error page. The repair sweep (`index.repair`, on the beat) indexes what it missed.
        logger.exception(
            "search index update failed for %d changed, %d removed entities", len(changed), len(removed)
        )


entities_changed.connect(_on_entities_changed, dispatch_uid="search.catalog")
entities_staged.connect(_on_entities_staged, dispatch_uid="search.catalog.staged")
