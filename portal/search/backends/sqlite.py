"""SQLite FTS5: a separate `search_fts` table keyed by document id, a prefix index for partial
words, bm25 with column weights, and a range scan of the vocabulary for spelling corrections."""

# SQL is assembled from constant table/column names and backend-built fragments; every user value
# is a query parameter (%s). Hence S608 (string-built SQL) is a false positive throughout this module.
# ruff: noqa: S608

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from django.db import connection, transaction

from .base import DOC, FACET_COLUMNS, FACET_SCAN, RESULT_COLUMNS, TAG, Backend, Spec

FTS = "search_fts"
# bm25 is computed for at most this many matches (in index order, which `index.rebuild` makes a
# static quality order: production first, short names first), plus every document whose name
# starts with the query (the name index). A broad word in a 250k catalog matches ~30k documents,
# and scoring all of them costs 40-70 ms; this bound keeps queries at a few ms.
RANK_SCAN = 1000
# Typeahead ranks on names, titles and tags only and shows 8 suggestions, most of them name matches
# found through the name index anyway: a smaller window of text matches is enough there.
TYPEAHEAD_SCAN = 250
NAME_CANDIDATES = 200
# The name prefix candidates are read through this index, whatever filters the query has: left to
# itself the planner may prefer the `kind` index and walk 40,000 rows of one kind.
NAME_INDEX = "searchdoc_name"
# What ranking needs of each candidate (the display columns are read for the page of hits only).
RANK_COLUMNS = ("id", "key", "name", "title", "lifecycle", "owner_team_id")
# bm25 weights per FTS column: name, title, tags, owner, description, body.
WEIGHTS = {"all": "10.0, 5.0, 3.0, 2.0, 1.5, 1.0", "names": "10.0, 5.0, 3.0, 0.0, 0.0, 0.0"}
# The FTS5 table itself is created by migration 0002_fulltext (prefix indexes 2-10: 0004); `clear`
# recreates it with the same definition.
FTS_DDL = (
    f"CREATE VIRTUAL TABLE {FTS} USING fts5(name, title, tags, owner, description, body, "
    "tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3 4 5 6 7 8 9 10')"
)
# FTS5's segment merging: its defaults, and what a bulk write uses meanwhile (merge_lazily).
AUTOMERGE, CRISISMERGE = 4, 16
LAZY_AUTOMERGE, LAZY_CRISISMERGE = 16, 32
# Changed by triggers on every write to the index tables, or once per bulk write below (0004).
VERSION = "search_searchindexversion"


def _term(term: str, prefix: bool) -> str:
    # Tokens are runs of \w from query.words(): no quotes or operators can occur in them.
    return f'"{term}"*' if prefix and len(term) >= 2 else f'"{term}"'


class SqliteBackend(Backend):
    vendor = "sqlite"
    fixed_join = "CROSS JOIN"

    def match_expression(self, spec: Spec) -> str:
        q = spec.query
        parts = []
        for term in q.terms:
            alts = [_term(term, True)] + [_term(a, False) for a in spec.alternatives.get(term, [])]
            parts.append(alts[0] if len(alts) == 1 else "(" + " OR ".join(alts) + ")")
        parts += ['"' + " ".join(p) + '"' for p in q.phrases]
        expr = " AND ".join(parts)
        if spec.fields == "names":
            expr = "{name title tags}: (" + expr + ")"
        return expr

    def match_sql(self, spec: Spec) -> tuple[str, str, list, str, list]:
        # CROSS JOIN fixes the join order: the full-text match drives, then each hit's row is read.
        # Left to itself, the planner may walk an index on a filter column (kind, owner) and run the
        # match once per row, which is seconds instead of milliseconds.
        frm = f"{FTS} CROSS JOIN {DOC} ON {DOC}.id = {FTS}.rowid"
        return (
            frm,
            f"{FTS} MATCH %s",
            [self.match_expression(spec)],
            f"bm25({FTS}, {WEIGHTS[spec.fields]})",
            [],
        )

    def run(self, spec: Spec, with_facets: bool) -> tuple[list[dict], tuple[dict, int] | None]:
        """Ranking, the page of hits and (optionally) the facet counts in one statement.

        `m` reads the first matches in index order (a static quality order, see `index.rebuild`),
        narrow: only what ranking and facets need, with bm25 computed once per match. `r` ranks them
        together with the documents whose name starts with the query (read through the name index),
        and only the page it keeps is joined back for the wide display columns. The facet counts are
        grouped from the same `m`, so the match runs once per search instead of twice."""
        if not spec.query.has_text:
            return super().run(spec, with_facets)
        frm, where, params, score, sparams = self._base(spec)
        doc_where, doc_params = self._where(spec)
        tier, tparams = self._tier(spec)
        boost, bparams = self._boost(spec)
        tier, boost = tier.replace(DOC + ".", "c."), boost.replace(DOC + ".", "c.")
        prefix = "-".join(spec.query.positive_words)
        window = RANK_SCAN if spec.fields == "all" else TYPEAHEAD_SCAN
        scan = max(window, FACET_SCAN + 1) if with_facets else window
        narrow = ", ".join(f"{DOC}.{c}" for c in RANK_COLUMNS)
        ranked = ", ".join(RANK_COLUMNS)
        facet_cols = ", ".join(f"{DOC}.{c}" for c in FACET_COLUMNS.values() if c not in RANK_COLUMNS)
        m_cols = narrow + (", " + facet_cols if with_facets else "")
        m_rows = "m" if scan == window else f"(SELECT * FROM m LIMIT {window})"
        wide = ", ".join(f"{DOC}.{c}" for c in RESULT_COLUMNS)
        n_wide = len(RESULT_COLUMNS) + 2
        # Documents whose name starts with the query's words match it by construction; they join the
        # scored candidates with the worst score (0) unless the scan scored them already.
        sql = (
            f"WITH m AS MATERIALIZED (SELECT {m_cols}, {score} AS bm FROM {frm} WHERE {where} LIMIT {scan}), "
            f"c AS (SELECT {ranked}, bm FROM {m_rows} "
            f"UNION ALL SELECT * FROM (SELECT {narrow}, 0 FROM {DOC} INDEXED BY {NAME_INDEX} "
            f"WHERE {DOC}.name >= %s AND {DOC}.name < %s "
            f"AND {doc_where} LIMIT {NAME_CANDIDATES})), "
            f"r AS (SELECT c.id, {tier} AS tier, MIN(c.bm) * {boost} AS score FROM c GROUP BY c.id "
            f"ORDER BY tier, score, c.name, c.id LIMIT %s OFFSET %s) "
            f"SELECT NULL, NULL, NULL, {wide}, r.tier, r.score FROM r {self.fixed_join} {DOC} ON {DOC}.id = r.id"
        )
        if with_facets:
            pad = ", ".join(["NULL"] * n_wide)
            sql += "".join(
                f" UNION ALL SELECT '{name}', {col}, COUNT(*), {pad} FROM m WHERE {col} <> '' GROUP BY {col}"
                for name, col in FACET_COLUMNS.items()
            )
            sql += (
                f" UNION ALL SELECT 'tag', t.tag, COUNT(*), {pad} FROM m {self.fixed_join} {TAG} t "
                "ON t.document_id = m.id GROUP BY t.tag"
            )
        with connection.cursor() as cur:
            cur.execute(
                sql,
                sparams
                + params
                + [prefix, prefix + "\U0010ffff"]
                + doc_params
                + tparams
                + bparams
                + [spec.limit, spec.offset],
            )
            names = [*RESULT_COLUMNS, "tier", "score"]
            rows, counts = [], []
            for row in cur.fetchall():
                if row[0] is None:
                    rows.append(dict(zip(names, row[3:], strict=True)))
                else:
                    counts.append(row[:3])
        rows.sort(key=lambda r: (r["tier"], r["score"], r["name"], r["id"]))
        return rows, (self.group_facets(counts) if with_facets else None)

    def index_version(self) -> int | None:
        """Set to a new random value by triggers on every write to the index tables (migration 0004).
        None, so nothing is cached, while this connection is inside one of the bulk writes below."""
        with connection.cursor() as cur:
            cur.execute(f"SELECT version FROM {VERSION} WHERE id = 1 AND NOT bulk")
            row = cur.fetchone()
        return row[0] if row else None

    @contextmanager
    def _bulk(self) -> Iterator[None]:
        """The backend's own writes: the version triggers skip their rows (a trigger per row adds a
        third to a 250k rebuild) and the version changes once instead, in the same transaction.

        Inside the caller's transaction, not a savepoint of its own: a savepoint per chunk makes
        SQLite journal every page a chunk touches, and a rebuild slows down chunk after chunk. If
        the write fails and the caller commits anyway, `bulk` stays set: the fail-safe direction
        (`index_version()` is None, nothing is cached) until the next bulk write resets it."""
        if not connection.in_atomic_block:
            with transaction.atomic(), self._bulk():
                yield
            return
        with connection.cursor() as cur:
            cur.execute(f"UPDATE {VERSION} SET bulk = 1 WHERE id = 1")
        yield
        with connection.cursor() as cur:
            cur.execute(f"UPDATE {VERSION} SET bulk = 0, version = random() WHERE id = 1")

    def insert(self, rows: list[tuple], tag_rows: list[tuple]) -> None:
        with self._bulk():
            super().insert(rows, tag_rows)

    def delete(self, where: str, params: list) -> None:
        with self._bulk():
            super().delete(where, params)

    def excluded_sql(self, spec: Spec) -> tuple[str, list]:
        expr = " OR ".join(f'"{w}"' for w in spec.query.excluded)
        return f"{DOC}.id NOT IN (SELECT rowid FROM {FTS} WHERE {FTS} MATCH %s)", [expr]

    def after_insert(self, where: str, params: list) -> None:
        with connection.cursor() as cur:
            cur.execute(
                f"INSERT OR REPLACE INTO {FTS} (rowid, name, title, tags, owner, description, body) "
                f"SELECT id, name, title, tags, owner, description, body FROM {DOC} WHERE {where}",
                params,
            )

    def with_keys(self, keys: Sequence[str]) -> tuple[str, list]:
        """The keys as one JSON array, walked by json_each (CROSS JOIN: it drives) with a probe of
        the key index per key. Not `key IN (SELECT value FROM json_each(...))`: that first sorts all
        the keys into a temporary index, 0.5 s per statement for 250k keys even when none is indexed
        (a first registration); this costs 0.05 s then."""
        return (
            f"{DOC}.id IN (SELECT d.id FROM json_each(%s) AS j CROSS JOIN {DOC} AS d ON d.key = j.value)",
            [json.dumps(list(keys))],
        )

    def merge_lazily(self, lazy: bool) -> None:
        """FTS5 merges a level's segments once AUTOMERGE of them exist (4 by default), so a 250k load
        rewrites each posting several times; 16 (crisis merges at 32) fills the table ~40% faster
        (FTS alone: 6.5-8.9 s -> 4.2-4.5 s at 250k). The setting is stored in the table: it goes back
        to the defaults before the commit, and later writes merge the extra segments little by
        little; a prefix query meanwhile reads a few more segments (~1 ms)."""
        automerge, crisis = (LAZY_AUTOMERGE, LAZY_CRISISMERGE) if lazy else (AUTOMERGE, CRISISMERGE)
        with connection.cursor() as cur:
            cur.execute(f"INSERT INTO {FTS} ({FTS}, rank) VALUES ('automerge', %s)", [automerge])
            cur.execute(f"INSERT INTO {FTS} ({FTS}, rank) VALUES ('crisismerge', %s)", [crisis])

    def before_delete(self, where: str, params: list) -> None:
        with connection.cursor() as cur:
            cur.execute(f"DELETE FROM {FTS} WHERE rowid IN (SELECT id FROM {DOC} WHERE {where})", params)

    def clear(self) -> None:
        """Empty the index. The full-text table is dropped and created again (inside the caller's
        transaction): deleting 250k rows from it one by one, each from nine prefix indexes, takes
        longer than filling it."""
        with self._bulk():
            super().clear()
            with connection.cursor() as cur:
                cur.execute(f"DROP TABLE {FTS}")
                cur.execute(FTS_DDL)

    def add_terms(self, terms: set[str]) -> None:
        with self._bulk(), connection.cursor() as cur:
            cur.executemany(
                "INSERT OR IGNORE INTO search_searchterm (term) VALUES (%s)", [(t,) for t in terms]
            )

    def known_terms(self, terms: list[str]) -> set[str]:
        known = set()
        with connection.cursor() as cur:
            for term in terms:
                cur.execute(
                    "SELECT 1 FROM search_searchterm WHERE term >= %s AND term < %s LIMIT 1",
                    [term, term + "\U0010ffff"],
                )
                if cur.fetchone():
                    known.add(term)
        return known

    def term_candidates(self, term: str) -> list[str]:
        """Words of similar length starting with the same letter (or the second one, for swaps)."""
        out: list[str] = []
        with connection.cursor() as cur:
            for first in dict.fromkeys(term[:2]):
                cur.execute(
                    "SELECT term FROM search_searchterm WHERE term >= %s AND term < %s "
                    "AND length(term) BETWEEN %s AND %s LIMIT 5000",
                    [first, chr(ord(first) + 1), len(term) - 2, len(term) + 2],
                )
                out += [row[0] for row in cur.fetchall()]
        return out
