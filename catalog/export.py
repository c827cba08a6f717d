"""The catalog as a stream (`GET /api/v1/entities/export`): one JSON document per line (NDJSON).

Why a second way to list: a page of the paged list costs its counts (`selectors.list_counts`), the
name-ordered walk and the DRF response machinery, ~225 ms per 500 entities at 250k — 2,000 entities/s
for a client that wants all of them (a notebook, a nightly export, a CI check). The stream walks the
primary-key index in server-side chunks (`WHERE id > last ORDER BY id LIMIT CHUNK`: every chunk is
an index range, however deep into the catalog), counts nothing, and writes each entity as the paged
list would show it (`body`, the one envelope both use) straight into the response.

The lines, in order:
    {entity}                         as an item of `GET /api/v1/entities` (same `fields` projection)
    …
    {"nextCursor": "<cursor>"}       after each chunk: `cursor=` resumes after everything above it
    …
    {"nextCursor": null, "count": n} the end (n entity lines in this response); a stream without it
                                     was cut off: resume from the last checkpoint.
    {"nextCursor": "<c>", "count": n} instead, after MAX_SECONDS: this response ends here by design,
                                     the next one continues with `cursor=<c>` (a web worker is not held
                                     past its timeout — gunicorn's 60 s in docs/deployment.md — however
                                     large the catalog).

Visibility is the list's: the queryset comes from `selectors.entity_list` (permissions.visible_q),
relations from `selectors.visible_relations`."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator

from django.db import connections
from django.db.models import F, Func, QuerySet, TextField
from django.urls import reverse

from portal.core import pagination

from . import selectors

CHUNK = 1000
MAX_SECONDS = 20.0  # per response; the client goes on with the last line's cursor
MEDIA_TYPE = "application/x-ndjson"
COLUMNS = ("id", "ref", "uid", "content_hash", "data", "orphan", "error_count", "visibility", "kind_key",
           "namespace", "name")
RAW_COLUMNS = ("id", "ref", "stored", "orphan", "error_count", "visibility", "kind_key", "namespace", "name")
_PLAIN = re.compile(r"^[A-Za-z0-9._-]+$")  # path parts that `reverse` would not quote


def body(data: dict, *, uid, content_hash: str, orphan: bool, error_count: int, visibility: str, url: str,
         relations: list[dict] | None) -> dict:
    """An entity as the API shows it: the stored descriptor, `metadata.uid`/`etag`, `relations` and
    `status` added (the paged list, by-name and the stream all answer with this)."""
    out = dict(data)
    meta = dict(out.get("metadata") or {})
    meta.update(uid=str(uid), etag=content_hash[:16])
    out["metadata"] = meta
    out["relations"] = relations or []
    out["status"] = {"orphan": orphan, "errorCount": error_count, "visibility": visibility, "url": url}
    return out


def decode_cursor(raw: str) -> int:
    """The last id a stream sent before its checkpoint; a cursor of the paged list is refused (400)."""
    return pagination.decode_cursor(raw, {"s": pagination.constant("export"), "id": pagination.integer})["id"]


def encode_cursor(pk: int) -> str:
    return pagination.encode_cursor({"s": "export", "id": pk})


def project(doc: dict, fields: list[str]) -> dict:
    """Only the dotted paths in `fields` (all of it when empty)."""
    if not fields:
        return doc
    out: dict = {}
    for path in fields:
        parts = path.split(".")
        src = doc
        for part in parts:  # the whole path first: a path that ends nowhere adds nothing, not an empty parent
            if not isinstance(src, dict) or part not in src:
                break
            src = src[part]
        else:
            dst = out
            for part in parts[:-1]:
                dst = dst.setdefault(part, {})
            dst[parts[-1]] = src
    return out


class Stored(Func):
    """The stored descriptor as JSON text with `metadata.uid` and `metadata.etag` set (and no top-level
    `relations`/`status`, which `body` replaces), composed by the database: a full listing then never
    decodes and re-encodes a descriptor in Python (two thirds of a row's cost, measured at 250k)."""

    output_field = TextField()

    def __init__(self):
        super().__init__(F("data"), F("uid"), F("content_hash"))

    def as_sql(self, compiler, connection, **extra):
        raise NotImplementedError(f"no stored-JSON composition for {connection.vendor}")  # see `lines`

    def as_sqlite(self, compiler, connection, **extra):
        (data, p1), (uid, p2), (digest, p3) = (compiler.compile(e) for e in self.source_expressions)
        # SQLite keeps a UUID as 32 hex digits; the API writes it with its dashes.
        dashed = "||'-'||".join(f"substr({uid}, {a}, {n})" for a, n in ((1, 8), (9, 4), (13, 4), (17, 4), (21, 12)))
        sql = (f"json_remove(json_set({data}, '$.metadata.uid', lower({dashed}), '$.metadata.etag', "
               f"substr({digest}, 1, 16)), '$.relations', '$.status')")
        return sql, [*p1, *p2 * 5, *p3]

    def as_postgresql(self, compiler, connection, **extra):
        (data, p1), (uid, p2), (digest, p3) = (compiler.compile(e) for e in self.source_expressions)
        sql = (f"(jsonb_set(jsonb_set({data}, '{{metadata,uid}}', to_jsonb(({uid})::text)), '{{metadata,etag}}', "
               f"to_jsonb(left({digest}, 16))) - 'relations' - 'status')::text")
        return sql, [*p1, *p2, *p3]


COMPOSED_VENDORS = frozenset({"sqlite", "postgresql"})  # where `Stored` has SQL


class EntityUrls:
    """Entity page addresses without a `reverse` per row (a third of a row's cost): one reverse per
    kind and namespace, the name put in its place (a name `reverse` would quote takes the slow way)."""

    def __init__(self) -> None:
        self._prefix: dict[tuple[str, str], str] = {}

    def __call__(self, kind_key: str, namespace: str, name: str) -> str:
        if not _PLAIN.match(name):
            return reverse("catalog:entity-detail", args=[kind_key, namespace, name])
        prefix = self._prefix.get((kind_key, namespace))
        if prefix is None:
            prefix = reverse("catalog:entity-detail", args=[kind_key, namespace, "x"])[:-2]
            self._prefix[kind_key, namespace] = prefix
        return f"{prefix}{name}/"


def _composed(user, rows: list[tuple], urls: EntityUrls, dumps) -> list[str]:
    """Lines of whole bodies from `Stored` text: the descriptor, then `relations`, then `status`, as
    `body` builds them."""
    rels = selectors.visible_relations_json(user, [row[1] for row in rows])
    return [f'{stored[:-1]},"relations":{rels.get(ref, "[]")},"status":{{"orphan":'
            f'{"true" if orphan else "false"},"errorCount":{int(error_count)},"visibility":'
            f'{dumps(visibility)},"url":{dumps(urls(kind_key, namespace, name))}}}}}'
            for _pk, ref, stored, orphan, error_count, visibility, kind_key, namespace, name in rows]


def _projected(user, rows: list[tuple], fields: list[str], urls: EntityUrls, dumps) -> list[str]:
    """Lines of projected bodies (all of each without `fields`), picked from parsed descriptors."""
    rels: dict = {}
    if not fields or any(f.startswith("relations") for f in fields):
        rels = {source: [{"type": t, "targetRef": target} for t, target in found] for source, found in
                selectors.visible_relations(user, [row[1] for row in rows]).items()}
    return [dumps(project(body(data, uid=uid, content_hash=content_hash, orphan=orphan, error_count=error_count,
                               visibility=visibility, url=urls(kind_key, namespace, name),
                               relations=rels.get(ref)), fields))
            for _pk, ref, uid, content_hash, data, orphan, error_count, visibility, kind_key, namespace, name in rows]


def lines(user, queryset: QuerySet, *, after: int = 0, fields: list[str] | None = None,
          chunk: int | None = None) -> Iterator[bytes]:
    """The stream's bytes, one chunk of lines at a time (constant memory on both ends). `queryset` is
    already filtered and limited to what `user` may see. Whole bodies come composed by the database
    (`Stored`); a projection picks from parsed ones."""
    chunk = chunk or CHUNK
    composed = not fields and connections[queryset.db].vendor in COMPOSED_VENDORS
    urls = EntityUrls()
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    sent = 0
    deadline = time.monotonic() + MAX_SECONDS
    while True:
        page = queryset.filter(pk__gt=after).order_by("pk")
        if composed:
            rows = list(page.annotate(stored=Stored()).values_list(*RAW_COLUMNS)[:chunk])
        else:
            rows = list(page.values_list(*COLUMNS)[:chunk])
        if not rows:
            break
        out = _composed(user, rows, urls, dumps) if composed else _projected(user, rows, fields or [], urls, dumps)
        after = rows[-1][0]
        sent += len(rows)
        if len(rows) == chunk and time.monotonic() >= deadline:  # more may follow: in the next response
            out.append(dumps({"nextCursor": encode_cursor(after), "count": sent}))
            yield ("\n".join(out) + "\n").encode()
            return
        out.append(dumps({"nextCursor": encode_cursor(after)}))
        yield ("\n".join(out) + "\n").encode()
        if len(rows) < chunk:
            break
    yield (dumps({"nextCursor": None, "count": sent}) + "\n").encode()
