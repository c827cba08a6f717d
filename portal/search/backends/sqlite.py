"""SQLite FTS5: a separate `search_fts` table keyed by document id, a prefix index for partial
words, bm25 with column weights, and a range scan of the vocabulary for spelling corrections."""

# SQL is assembled from constant table/column names and backend-built fragments; every user value
# is a query parameter (%s). Hence S608 (string-built SQL) is a false positive throughout this module.
# ruff: noqa: S608

from __future__ import annotations

from django.db import connection

from .base import DOC, RESULT_COLUMNS, Backend, Spec

FTS = "search_fts"
# bm25 is computed for at most this many matches (in index order, which `index.rebuild` makes a
# static quality order: production first, short names first), plus every document whose name
# starts with the query (the name index). A broad word in a 250k catalog matches ~30k documents,
# and scoring all of them costs 40-70 ms; this bound keeps queries at a few ms.
RANK_SCAN = 1000
NAME_CANDIDATES = 200
# bm25 weights per FTS column: name, title, tags, owner, description, body.
WEIGHTS = {"all": "10.0, 5.0, 3.0, 2.0, 1.5, 1.0", "names": "10.0, 5.0, 3.0, 0.0, 0.0, 0.0"}
# The FTS5 table itself is created by migration 0002_fulltext.


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

    def search(self, spec: Spec) -> list[dict]:
        if not spec.query.has_text:
            return super().search(spec)
        frm, where, params, score, sparams = self._base(spec)
        doc_where, doc_params = self._where(spec)
        tier, tparams = self._tier(spec)
        boost, bparams = self._boost(spec)
        prefix = "-".join(spec.query.positive_words)
        cols = ", ".join(f"{DOC}.{c}" for c in RESULT_COLUMNS)
        outer = ", ".join(f"c.{c}" for c in RESULT_COLUMNS)
        # Documents whose name starts with the query's words match it by construction; they join
        # the scored candidates with the worst score (0) unless the scan scored them already.
        sql = (
            f"SELECT {outer}, {tier.replace(DOC + '.', 'c.')} AS tier, MIN(c.bm) * {boost.replace(DOC + '.', 'c.')} AS score "
            f"FROM (SELECT * FROM (SELECT {cols}, {score} AS bm FROM {frm} WHERE {where} LIMIT {RANK_SCAN}) "
            f"UNION ALL SELECT * FROM (SELECT {cols}, 0 AS bm FROM {DOC} WHERE {DOC}.name >= %s AND {DOC}.name < %s "
            f"AND {doc_where} LIMIT {NAME_CANDIDATES})) AS c "
            f"GROUP BY c.id ORDER BY tier, score, c.name, c.id LIMIT %s OFFSET %s"
        )
        with connection.cursor() as cur:
            cur.execute(
                sql,
                tparams
                + bparams
                + sparams
                + params
                + [prefix, prefix + "\U0010ffff"]
                + doc_params
                + [spec.limit, spec.offset],
            )
            names = [c[0] for c in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

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

    def before_delete(self, where: str, params: list) -> None:
        with connection.cursor() as cur:
            cur.execute(f"DELETE FROM {FTS} WHERE rowid IN (SELECT id FROM {DOC} WHERE {where})", params)

    def clear(self) -> None:
        super().clear()
        with connection.cursor() as cur:
            cur.execute(f"DELETE FROM {FTS}")

    def add_terms(self, terms: set[str]) -> None:
        with connection.cursor() as cur:
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
