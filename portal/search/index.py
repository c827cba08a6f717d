"""Writes to the index: full rebuilds and incremental updates from sources' change signals."""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable
from datetime import timedelta

from django.db import connection, transaction
from django.db.models import Count, Q
from django.db.models.functions import TruncDate
from django.utils import timezone

from portal.core.db import DeferredIndexes, analyze_grown, update_values

from . import registry, scoring
from .backends import get_backend
from .backends.base import BODY_CHARS, DOC, TAG
from .models import SearchDocument, SearchDocumentTag, SearchQuery
from .query import tokens
from .registry import Document

log = logging.getLogger(__name__)
CHUNK = 5000
BULK_THRESHOLD = 2000
WORDS_BATCH = 100


# Kinds whose documents have no type of their own. A docs page's source gives it its entity's kind as
# type (portal/techdocs/search.py): the Type facet showed "component" beside the entities' types
# ("service", "library"), counting docs pages as if a kind were a type. A docs page is filtered as
# kind:doc (and by its entity's owner, lifecycle and tags).
UNTYPED_KINDS = frozenset({"doc"})


def _type(doc: Document) -> str:
    """The type the index stores and facets: none for an untyped kind."""
    return "" if doc.kind in UNTYPED_KINDS else doc.type[:100]


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


def _write(backend, source: str, documents: Iterable[Document], draw_id=None, popular: dict | None = None) -> int:
    """Insert documents (already removed from the index) in chunks; returns how many. `popular`: the
    popularity share of keys that had one before they were removed (see `_popular`).

    Ids are assigned here, from MAX(id): callers hold the write lock (SQLite) or run alone (the
    rebuild), and incremental updates go through `_write_small` instead. `draw_id(document)`, when
    given, draws them instead (ascending in `documents` order: the full-text table takes them so;
    PostgreSQL's staged writes draw them from the sequence)."""
    first = next_id = backend.next_id() if draw_id is None else 0
    written_at = connection.ops.adapt_datetimefield_value(timezone.now())
    drawn: list[int] = []
    rows, tag_rows, texts, vocabulary, total = [], [], [], set(), 0
    for doc in documents:
        if draw_id is None:
            doc_id, next_id = next_id, next_id + 1
        else:
            doc_id = draw_id(doc)
            drawn.append(doc_id)
        tags = _tags(doc)
        rows.append(_row(doc_id, source, doc, tags, written_at, (popular or {}).get(doc.key, 0.0)))
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
        if draw_id is None:  # drawn ids come from the sequence (PostgreSQL) or above it (SQLite's lanes)
            backend.finish_ids()
            backend.after_insert(f"{DOC}.id >= %s", [first])
        else:
            backend.after_insert(*backend.with_ids(drawn))
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
        refresh_popularity()
        backend.analyze()
        backend.flush_pending()
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
        popular = _popular(backend, changed) if changed else {}
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
            written = _write(backend, source.name, sorted(docs, key=static_rank), popular=popular)
            backend.flush_pending()
        elif changed:
            written = _write_small(backend, source.name, list(docs), popular)
    return written


REPAIR_LIMIT = 5000  # keys a source repairs per sweep (each way)
REPAIR_SETTLE_SECONDS = 120  # younger changes may still have their index write on its way


def repair(*, limit: int = REPAIR_LIMIT, settle_seconds: float = REPAIR_SETTLE_SECONDS) -> dict[str, dict[str, int]]:
    """The repair sweep (beat, every few minutes; `manage.py search repair`): objects a source has
    without an up-to-date document — an index update after a commit that failed, or a process that
    died between the commit and it — are indexed, and documents whose object is gone are dropped.
    Changes younger than `settle_seconds` are left to the write on its way. Returns {source:
    {"indexed", "removed"}}."""
    settled_before = timezone.now() - timedelta(seconds=settle_seconds)
    out = {}
    for source in registry.sources():
        changed, removed = source.unindexed(limit, settled_before)
        if changed or removed:
            update(source.name, changed=changed, removed=removed)
            log.warning("search index repaired: %s had %d objects without an up-to-date document and %d "
                        "documents without an object", source.name, len(changed), len(removed))
        out[source.name] = {"indexed": len(changed), "removed": len(removed)}
    return out


def keys_under(source_name: str, prefixes: Iterable[str]) -> list[str]:
    """The indexed keys of a source that start with one of `prefixes` (every page of a removed entity's
    docs, say), read PREFIX_CHUNK prefixes a statement."""
    prefixes = list(dict.fromkeys(prefixes))
    keys: list[str] = []
    for start in range(0, len(prefixes), PREFIX_CHUNK):
        wanted = Q()
        for prefix in prefixes[start:start + PREFIX_CHUNK]:
            wanted |= Q(key__startswith=prefix)
        keys += SearchDocument.objects.filter(wanted, source=source_name).values_list("key", flat=True)
    return keys


PREFIX_CHUNK = 200


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
        # The tag index by document stays: each batch's delete of its keys' old rows uses it; so does
        # the index of popular documents (a handful of rows, read before each batch's delete). The
        # index-version triggers go too: each batch changes the version itself (see the backends' bulk
        # writes), and evaluating their condition for every row cost ~2 s at 250k.
        self.deferred = DeferredIndexes([DOC, TAG], keep=("searchtag_doc", "searchdoc_popular"), triggers=True)
        self.lazy = False  # merging the full-text segments lazily (a bulk load)
        self.base: int | None = None  # a bulk load's first id
        self.used = [0] * len(LIFECYCLE_ORDER)  # ids drawn per lifecycle lane
        self.written = 0  # documents written by this change (fresh statistics after a large one)

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
        self.written += len(documents)
        keys = [d.key for d in documents]
        popular = _popular(backend, keys)
        backend.delete(*backend.with_keys(keys))
        if backend.vendor != "sqlite":  # ids from the sequence; rows by COPY (see PostgresBackend.insert)
            ids = iter(backend.draw_ids(len(documents)))
            return _write(backend, self.source, sorted(documents, key=static_rank),
                          draw_id=lambda _doc: next(ids), popular=popular)
        if not bulk_load:
            return _write(backend, self.source, sorted(documents, key=static_rank), popular=popular)
        if self.base is None:
            self.base = backend.next_id()
        # In rank order, lane by lane: the ids ascend.
        return _write(backend, self.source, sorted(documents, key=static_rank), draw_id=self._lane_id,
                      popular=popular)

    def _lane_id(self, doc: Document) -> int:
        lane = LIFECYCLE_ORDER.get(doc.lifecycle, 1)
        self.used[lane] += 1
        return self.base + (lane << LANE_BITS) + self.used[lane] - 1

    def finish(self) -> None:
        """After the last batch, before the transaction goes on to read the index."""
        analyze_grown([DOC, TAG], self.written)  # before the indexes: see catalog.ingest.writer.Writer.finish
        self.deferred.restore()
        if self.lazy:
            self.backend.merge_lazily(False)
            self.lazy = False
        if self.written > BULK_THRESHOLD:
            # Indexes kept (a large catalog): what they set aside is merged right after the commit, so
            # the writer's locks (its rows, the catalog version) are not held for the merge.
            transaction.on_commit(self.backend.flush_pending)


def _write_small(backend, source: str, documents: list[Document], popular: dict | None = None) -> int:
    """Incremental inserts take ids from the database, so concurrent updates cannot collide."""
    if not documents:
        return 0
    popular = popular or {}
    written_at = timezone.now()
    objs = [
        SearchDocument(
            source=source,
            key=d.key[:250],
            kind=d.kind[:40],
            kind_label=d.kind_label[:40],
            name=d.name.lower()[:200],
            title=d.title[:300],
            description=d.description,
            body=d.body[:BODY_CHARS],
            owner=d.owner[:200],
            lifecycle=d.lifecycle[:100],
            type=_type(d),
            tags=" ".join(_tags(d))[:1000],
            visibility=d.visibility,
            owner_team_id=d.owner_team_id,
            url=d.url[:500],
            **scoring.evidence(d),
            quality=scoring.quality(d),
            popularity=popular.get(d.key, 0.0),
            indexed_at=written_at,
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
    backend.after_insert(*backend.with_ids(ids))  # one parameter, however many documents
    backend.add_terms({w for w in _words([_text(d) for d in documents]) if _is_vocabulary(w)})
    return len(objs)


def _row(doc_id: int, source: str, doc: Document, tags: list[str], written_at, popularity: float = 0.0) -> tuple:
    """The backend's insert row for one document (see Backend.insert); `written_at` as the database
    takes it (connection.ops.adapt_datetimefield_value)."""
    return (doc_id, source, doc.key[:250], doc.kind[:40], doc.kind_label[:40], doc.name.lower()[:200],
            doc.title[:300], doc.description, doc.body[:BODY_CHARS], doc.owner[:200], doc.lifecycle[:100], _type(doc),
            " ".join(tags)[:1000], doc.visibility, doc.owner_team_id, doc.url[:500],
            *scoring.evidence(doc).values(), scoring.quality(doc), popularity, written_at)


def _popular(backend, keys: list[str]) -> dict[str, float]:
    """The popularity share of those of `keys` that have one, before their documents are rewritten
    (popularity comes from search analytics, not from the source: `refresh_popularity`)."""
    if not keys:
        return {}
    where, params = backend.with_keys(keys)
    with connection.cursor() as cur:
        cur.execute(f"SELECT key, popularity FROM {DOC} WHERE {where} AND popularity > 0", params)  # noqa: S608
        return dict(cur.fetchall())


def refresh_popularity(now=None) -> int:
    """Recompute every document's popularity share from the clicked results of the last
    POPULARITY_WINDOW_DAYS (each click worth half as much every HALF_LIFE_DAYS); writes only the
    documents whose share changed. Returns how many changed."""
    now = now or timezone.now()
    since = now - timedelta(days=scoring.POPULARITY_WINDOW_DAYS)
    decayed: dict[str, float] = defaultdict(float)
    clicks = (
        SearchQuery.objects.filter(created_at__gte=since)
        .exclude(clicked_key="")
        .annotate(day=TruncDate("created_at"))
        .values_list("clicked_key", "day")
        .annotate(n=Count("id"))
    )
    today = now.date()
    for key, day, n in clicks:
        decayed[key] += n * 0.5 ** ((today - day).days / scoring.HALF_LIFE_DAYS)
    shares = {key: scoring.popularity(value) for key, value in decayed.items()}
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(f"SELECT key, id, popularity FROM {DOC} WHERE popularity > 0")  # noqa: S608
        current = {key: (pk, share) for key, pk, share in cur.fetchall()}
        wanted = {key: share for key, share in shares.items() if share > 0}
        ids = {key: pk for key, (pk, _) in current.items()}
        unread = [key for key in wanted if key not in ids]
        if unread:  # clicked documents without a share yet (one statement, however many)
            where, params = get_backend().with_keys(unread)
            cur.execute(f"SELECT key, id FROM {DOC} WHERE {where}", params)  # noqa: S608
            ids.update(cur.fetchall())
        changes = [(0.0, pk) for key, (pk, _) in current.items() if key not in wanted]
        changes += [(share, ids[key]) for key, share in wanted.items()
                    if key in ids and (key not in current or current[key][1] != share)]
        # By id, several hundred rows a statement on PostgreSQL (it was one UPDATE per document).
        update_values(SearchDocument, ["popularity"], sorted(changes, key=lambda row: row[1]))
    return len(changes)


def _tags(doc: Document) -> list[str]:
    return list(dict.fromkeys([t.lower()[:63] for t in doc.tags if t]))


def _text(doc: Document) -> str:
    return f"{doc.name} {doc.title} {' '.join(doc.tags)} {doc.owner} {doc.description}"
