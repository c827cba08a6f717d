"""Writes to the index: full rebuilds and incremental updates from sources' change signals."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable

from django.db import connection, transaction

from portal.core.db import DeferredIndexes

from . import registry
from .backends import get_backend
from .backends.base import DOC, TAG
from .models import SearchDocument, SearchDocumentTag
from .query import tokens
from .registry import Document

log = logging.getLogger(__name__)
CHUNK = 5000
BULK_THRESHOLD = 2000
WORDS_BATCH = 100


def _is_vocabulary(word: str) -> bool:
    return 3 <= len(word) <= 40 and not word.isdigit() and any(c.isalpha() for c in word)


def _words(texts: list[str]) -> set[str]:
    """The words of many texts, as `tokens` finds them in each (uncapped: the vocabulary filter caps
    them, once per distinct word instead of once per occurrence), tokenized a hundred texts per call:
    joined by a newline, which no word spans, and the ASCII texts apart from the others so that one
    accented text does not send its neighbours down the slower path. One call per text spent more
    on the call than on the text; one per 5,000-document chunk is slower again (large strings)."""
    found: set[str] = set()
    for group in ([t for t in texts if t.isascii()], [t for t in texts if not t.isascii()]):
        for start in range(0, len(group), WORDS_BATCH):
            found.update(tokens("\n".join(group[start : start + WORDS_BATCH])))
    return found


def _write(backend, source: str, documents: Iterable[Document], draw_id=None) -> int:
    """Insert documents (already removed from the index) in chunks; returns how many.

    Ids are assigned here, from MAX(id): callers hold the write lock (SQLite) or run alone (the
    rebuild), and incremental updates go through `_write_small` instead. `draw_id(document)`, when
    given, draws them instead (ascending in `documents` order: the full-text table takes them so)."""
    first = next_id = backend.next_id() if draw_id is None else 0
    drawn: list[int] = []
    rows, tag_rows, texts, vocabulary, total = [], [], [], set(), 0
    for doc in documents:
        if draw_id is None:
            doc_id, next_id = next_id, next_id + 1
        else:
            doc_id = draw_id(doc)
            drawn.append(doc_id)
        tags = _tags(doc)
        rows.append(_row(doc_id, source, doc, tags))
        tag_rows += [(doc_id, t) for t in tags]
        texts.append(_text(doc))
        if len(rows) >= CHUNK:
            backend.insert(rows, tag_rows)
            vocabulary.update(_words(texts))
            total += len(rows)
            rows, tag_rows, texts = [], [], []
    if rows:
        backend.insert(rows, tag_rows)
        vocabulary.update(_words(texts))
        total += len(rows)
    if total:
        backend.finish_ids()
        if draw_id is None:
            backend.after_insert(f"{DOC}.id >= %s", [first])
        else:
            backend.after_insert(f"{DOC}.id IN (SELECT value FROM json_each(%s))", [json.dumps(drawn)])  # noqa: S608
        backend.add_terms({w for w in vocabulary if _is_vocabulary(w)})
    return total


LIFECYCLE_ORDER = {"production": 0, "": 1, "experimental": 2, "deprecated": 3}


def static_rank(doc: Document) -> tuple:
    """The order documents are stored in, which is the order the SQLite backend reads matches in:
    production first, then the shortest (most canonical) names."""
    return LIFECYCLE_ORDER.get(doc.lifecycle, 1), len(doc.name), doc.name


def rebuild(source_names: list[str] | None = None) -> dict:
    """Drop and rebuild the index for the given sources (all when None), in one transaction."""
    backend = get_backend()
    started = time.perf_counter()
    counts = {}
    with transaction.atomic():
        if source_names is None:
            backend.clear()
        for source in registry.sources():
            if source_names is not None and source.name not in source_names:
                continue
            if source_names is not None:
                backend.delete(f"{DOC}.source = %s", [source.name])
            counts[source.name] = _write(backend, source.name, sorted(source.documents(), key=static_rank))
    return {"documents": counts, "seconds": round(time.perf_counter() - started, 2)}


def update(
    source_name: str,
    *,
    changed: Iterable[str] = (),
    removed: Iterable[str] = (),
    documents: list[Document] | None = None,
) -> int:
    """Re-read `changed` keys from their source (or take their `documents`, when the caller has
    them at hand) and drop `removed` ones. Call it on commit."""
    source = registry.get(source_name)
    changed, removed = list(dict.fromkeys(changed)), list(dict.fromkeys(removed))
    backend = get_backend()
    written = 0
    with transaction.atomic():
        if changed or removed:  # one statement per table, however many keys
            backend.delete(*backend.with_keys(changed + removed))
        docs = documents if documents is not None else (source.documents(changed) if changed else [])
        if len(changed) > BULK_THRESHOLD:
            # A large registration (thousands of entities in one location) takes the bulk path, which
            # assigns ids itself: take the table lock that makes that safe on PostgreSQL (SQLite's
            # IMMEDIATE transaction already holds the only write lock).
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute(f"LOCK TABLE {DOC} IN SHARE ROW EXCLUSIVE MODE")
            written = _write(backend, source.name, sorted(docs, key=static_rank))
        elif changed:
            written = _write_small(backend, source.name, list(docs))
    return written


LANE_BITS = 32  # ids per lifecycle lane in one bulk load: a load spans 4 * 2**32 ids


class Staged:
    """Index writes inside the caller's transaction, batch after batch of one source's documents
    (a streamed catalog registration): the documents commit, or roll back, with the change they
    index, and a failure here fails that change. No savepoint: SQLite would journal every page
    each batch touches.

    On SQLite each batch takes the bulk path (ids from MAX(id) under the transaction's write lock,
    in static rank order within the batch). A bulk load (`write(..., bulk_load=True)`) defers the
    document and tag indexes to `finish` and merges full-text segments lazily until then; and it
    draws ids from one lane per lifecycle (LANE_BITS wide, above MAX(id) at its start), so that the
    whole load is in lifecycle order — production first — as one `_write` of it would be, though it
    is written batch by batch (broad queries rank the first matches in id order: without the lanes a
    250k load's top 20 for "customer churn" held 3 production entities instead of 20). Names are in
    rank order within each batch. PostgreSQL ranks every match, so its ids come from the sequence,
    without a table lock held until commit."""

    def __init__(self, source: str):
        self.source = source
        self.backend = get_backend()
        # The tag index by document stays: each batch's delete of its keys' old rows uses it. The
        # index-version triggers go too: each batch changes the version itself (see the backends' bulk
        # writes), and evaluating their condition for every row cost ~2 s at 250k.
        self.deferred = DeferredIndexes([DOC, TAG], keep=("searchtag_doc",), triggers=True)
        self.lazy = False  # merging the full-text segments lazily (a bulk load)
        self.base: int | None = None  # a bulk load's first id
        self.used = [0] * len(LIFECYCLE_ORDER)  # ids drawn per lifecycle lane

    def write(self, documents: list[Document], *, bulk_load: bool = False) -> int:
        if not connection.in_atomic_block:
            raise RuntimeError("Staged index writes belong inside the transaction of the change they index")
        if not documents:
            return 0
        if bulk_load and not self.lazy:
            self.deferred.drop()
            self.backend.merge_lazily(True)
            self.lazy = True
        backend = self.backend
        backend.delete(*backend.with_keys([d.key for d in documents]))
        if backend.vendor != "sqlite":
            return _write_small(backend, self.source, documents)
        if not bulk_load:
            return _write(backend, self.source, sorted(documents, key=static_rank))
        if self.base is None:
            self.base = backend.next_id()
        # In rank order, lane by lane: the ids ascend.
        return _write(backend, self.source, sorted(documents, key=static_rank), draw_id=self._lane_id)

    def _lane_id(self, doc: Document) -> int:
        lane = LIFECYCLE_ORDER.get(doc.lifecycle, 1)
        self.used[lane] += 1
        return self.base + (lane << LANE_BITS) + self.used[lane] - 1

    def finish(self) -> None:
        """After the last batch, before the transaction goes on to read the index."""
        self.deferred.restore()
        if self.lazy:
            self.backend.merge_lazily(False)
            self.lazy = False


def _write_small(backend, source: str, documents: list[Document]) -> int:
    """Incremental inserts take ids from the database, so concurrent updates cannot collide."""
    if not documents:
        return 0
    objs = [
        SearchDocument(
            source=source,
            key=d.key[:250],
            kind=d.kind[:40],
            kind_label=d.kind_label[:40],
            name=d.name.lower()[:200],
            title=d.title[:300],
            description=d.description,
            body=d.body,
            owner=d.owner[:200],
            lifecycle=d.lifecycle[:100],
            type=d.type[:100],
            tags=" ".join(_tags(d))[:1000],
            visibility=d.visibility,
            owner_team_id=d.owner_team_id,
            url=d.url[:500],
        )
        for d in documents
    ]
    SearchDocument.objects.bulk_create(objs, batch_size=500)
    ids = [o.pk for o in objs]
    SearchDocumentTag.objects.bulk_create(
        [
            SearchDocumentTag(document_id=o.pk, tag=t)
            for o, d in zip(objs, documents, strict=True)
            for t in _tags(d)
        ],
        batch_size=1000,
    )
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        backend.after_insert(f"{DOC}.id IN ({', '.join(['%s'] * len(chunk))})", chunk)
    backend.add_terms({w for w in _words([_text(d) for d in documents]) if _is_vocabulary(w)})
    return len(objs)


def _row(doc_id: int, source: str, doc: Document, tags: list[str]) -> tuple:
    """The backend's insert row for one document (see Backend.insert)."""
    return (doc_id, source, doc.key[:250], doc.kind[:40], doc.kind_label[:40], doc.name.lower()[:200],
            doc.title[:300], doc.description, doc.body, doc.owner[:200], doc.lifecycle[:100], doc.type[:100],
            " ".join(tags)[:1000], doc.visibility, doc.owner_team_id, doc.url[:500])


def _tags(doc: Document) -> list[str]:
    return list(dict.fromkeys([t.lower()[:63] for t in doc.tags if t]))


def _text(doc: Document) -> str:
    return f"{doc.name} {doc.title} {' '.join(doc.tags)} {doc.owner} {doc.description}"
