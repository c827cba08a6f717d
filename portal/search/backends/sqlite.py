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

from ..query import stem
from ..scoring import EV_COLUMNS
from .base import DOC, Backend, Spec

FTS = "search_fts"
# Exact names are read through this index, whatever filters the query has: left to itself the
# planner may prefer the `kind` index and walk 40,000 rows of one kind.
NAME_INDEX = "searchdoc_name"
# bm25 weights per FTS column (name, title, tags, owner, description, body): only for the bare query
# the benchmark compares against; ranking is portal/search/scoring.py.
WEIGHTS = {"all": "10.0, 5.0, 3.0, 2.0, 1.5, 1.0", "names": "10.0, 5.0, 3.0, 0.0, 0.0, 0.0"}
# The FTS5 table itself is created by migration 0002_fulltext (prefix indexes 2-10: 0004); `clear`
# recreates it with the same definition.
FTS_DDL = (
    f"CREATE VIRTUAL TABLE {FTS} USING fts5(name, title, tags, owner, description, body, "
    "tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3 4 5 6 7 8 9 10')"
)
# The title and tags of the documents that have any, apart (migration 0007): the candidate list of
# label matches reads these short doclists. A column filter on `search_fts` ({title tags}: …) read
# every position of the word's whole doclist, 2-3 ms at 250k even when nothing matched.
LABELS = "search_labels"
LABELS_DDL = (
    f"CREATE VIRTUAL TABLE {LABELS} USING fts5(title, tags, "
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

    name_index_hint = f" INDEXED BY {NAME_INDEX}"

    def _group(self, spec: Spec, term: str) -> str:
        alts = [_term(stem(term), True)] + [_term(a, False) for a in spec.alternatives.get(term, [])]
        return alts[0] if len(alts) == 1 else "(" + " OR ".join(alts) + ")"

    def match_expression(self, spec: Spec) -> str:
        q = spec.query
        parts = [self._group(spec, term) for term in q.terms]
        parts += ['"' + " ".join(p) + '"' for p in q.phrases]
        expr = " AND ".join(parts)
        if spec.fields == "names":
            expr = "{name title tags}: (" + expr + ")"
        return expr

    def _labels_any(self, spec: Spec) -> str:
        """Some query word — each as a prefix, as the evidence reads it, so that a document outside
        the list has no title or tags evidence."""
        return " OR ".join(_term(w, True) for group in spec.scored_words() for w in group)

    def _name_start_expression(self, spec: Spec) -> str:
        """The name's first words are the query's (the last one as a prefix): a superset of the
        names the name signal's LIKE 'word-word%' finds, and every one of them matches the query."""
        words = spec.name_words()
        return "{name}: ^" + '"' + " ".join(words) + '"' + ("*" if len(words[-1]) >= 2 else "")

    def candidates_sql(self, spec: Spec, kind: str) -> tuple[str, str, list]:
        # CROSS JOIN fixes the join order: the full-text match drives, then each hit's row is read.
        # Left to itself, the planner may walk an index on a filter column (kind, owner) and run the
        # match once per row, which is seconds instead of milliseconds.
        frm = f"{FTS} CROSS JOIN {DOC} ON {DOC}.id = {FTS}.rowid"
        if kind == "name_start" and len(spec.name_words()) > 1:
            # Several words: the names the name signal looks for (LIKE 'word-word%'), read through the
            # name index — FTS5's phrase at the start of a column reads every position of each word
            # (~1 ms at 250k). Each of these names holds the query's words: it matches.
            dashed = "-".join(spec.name_words())
            return (
                f"{DOC} INDEXED BY {NAME_INDEX}",
                f"{DOC}.name >= %s AND {DOC}.name < %s",
                [dashed, dashed + "\U0010ffff"],
            )
        if kind == "labels":
            frm = f"{LABELS} CROSS JOIN {DOC} ON {DOC}.id = {LABELS}.rowid"
            q = spec.query
            if len(q.terms) == 1 and not q.phrases and not spec.alternatives:
                return frm, f"{LABELS} MATCH %s", [self._labels_any(spec)]  # a label match is a match
            # The query's matches are read (once, on the first label match; `+` keeps the rowid test
            # out of FTS5, which would run the query once per row) only when some label matches.
            return (
                frm,
                f"{LABELS} MATCH %s AND +{LABELS}.rowid IN (SELECT rowid FROM {FTS} WHERE {FTS} MATCH %s)",
                [self._labels_any(spec), self.match_expression(spec)],
            )
        expr = self.match_expression(spec) if kind == "all" else self._name_start_expression(spec)
        return frm, f"{FTS} MATCH %s", [expr]

    def matches_sql(self, spec: Spec) -> tuple[str, list]:
        """A lookup of this row in the full-text index (about 0.1 ms each: only for a few rows). The
        evidence columns answer first, where they can, that a query word is missing."""
        checks, params = [], []
        columns = [f"{DOC}.{c}" for c in EV_COLUMNS]
        for group in spec.scored_words():
            found = " OR ".join(f"instr({c}, %s) > 0" for c in columns for _ in group)
            checks.append(f"({found} OR instr({DOC}.ev_b, '~') > 0)")
            params += [f" {w}" for _ in columns for w in group]
        checks.append(f"EXISTS (SELECT 1 FROM {FTS} AS f WHERE f.{FTS} MATCH %s AND f.rowid = {DOC}.id)")
        params.append(self.match_expression(spec))
        return " AND ".join(checks), params

    def match_sql(self, spec: Spec) -> tuple[str, str, list, str, list]:
        frm, cond, params = self.candidates_sql(spec, "all")
        return frm, cond, params, f"bm25({FTS}, {WEIGHTS[spec.fields]})", []

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
            cur.execute(
                f"INSERT OR REPLACE INTO {LABELS} (rowid, title, tags) SELECT id, title, tags FROM {DOC} "
                f"WHERE ({where}) AND ({DOC}.title <> '' OR {DOC}.tags <> '')",
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

    def with_ids(self, ids: Sequence[int]) -> tuple[str, list]:
        return f"{DOC}.id IN (SELECT value FROM json_each(%s))", [json.dumps(list(ids))]

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
            cur.execute(f"DELETE FROM {LABELS} WHERE rowid IN (SELECT id FROM {DOC} WHERE {where})", params)

    def clear(self) -> None:
        """Empty the index. The full-text table is dropped and created again (inside the caller's
        transaction): deleting 250k rows from it one by one, each from nine prefix indexes, takes
        longer than filling it."""
        with self._bulk():
            super().clear()
            with connection.cursor() as cur:
                cur.execute(f"DROP TABLE {FTS}")
                cur.execute(FTS_DDL)
                cur.execute(f"DROP TABLE {LABELS}")
                cur.execute(LABELS_DDL)

    def add_terms(self, terms: set[str]) -> None:
        with self._bulk(), connection.cursor() as cur:
            cur.executemany(
                "INSERT OR IGNORE INTO search_searchterm (term) VALUES (%s)", [(t,) for t in terms]
            )

    def term_candidates(self, term: str) -> list[str]:
        """Words of similar length starting with the same letter (or the second one, for swaps): one
        statement."""
        scans, params = [], []
        for first in dict.fromkeys(term[:2]):
            scans.append(
                "SELECT term FROM (SELECT term FROM search_searchterm WHERE term >= %s AND term < %s "
                "AND length(term) BETWEEN %s AND %s LIMIT 5000)"
            )
            params += [first, chr(ord(first) + 1), len(term) - 2, len(term) + 2]
        with connection.cursor() as cur:
            cur.execute(" UNION ALL ".join(scans), params)
            return [row[0] for row in cur.fetchall()]
