"""What both backends share: the SQL around the full-text match (permissions, filters, ranking
tiers, facets) and bulk writes. Subclasses supply the match expression and its score."""

# SQL is assembled from constant table/column names and backend-built fragments; every user value
# is a query parameter (%s). Hence S608 (string-built SQL) is a false positive throughout this module.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from django.db import connection

from ..query import ParsedQuery

DOC = "search_searchdocument"
TAG = "search_searchdocumenttag"
RESULT_COLUMNS = (
    "id",
    "key",
    "kind",
    "kind_label",
    "name",
    "title",
    "description",
    "owner",
    "owner_team_id",
    "lifecycle",
    "type",
    "tags",
    "visibility",
    "url",
)
FACET_COLUMNS = {"kind": "kind", "type": "type", "owner": "owner", "lifecycle": "lifecycle"}
FACET_LIMIT = 30
# Facet counts and totals are exact up to this many matches; beyond it they count the first
# FACET_SCAN matches and the total reads "1,000+" (like most engines' capped hit counts).
FACET_SCAN = 1000
# Small multipliers on the text score: they reorder comparable results, they do not beat relevance.
BOOST_MINE, BOOST_STARRED, BOOST_PRODUCTION = 0.3, 0.3, 0.15


@dataclass
class Spec:
    """One search to run: the parsed query plus who is asking."""

    query: ParsedQuery
    scope_sql: str  # permission filter over DOC, compiled from portal.accounts.permissions
    scope_params: list
    my_team_ids: list[int] = field(default_factory=list)
    boosted_keys: list[str] = field(default_factory=list)
    limit: int = 20
    offset: int = 0
    fields: str = "all"  # "all" or "names" (typeahead: name, title and tags only)
    alternatives: dict[str, list[str]] = field(default_factory=dict)  # term → spelling corrections


def _in(column: str, values: Sequence) -> tuple[str, list]:
    return f"{column} IN ({', '.join(['%s'] * len(values))})", list(values)


class Backend:
    vendor = ""
    fixed_join = "JOIN"  # a join whose left side must drive (SQLite spells it CROSS JOIN)

    # -- the parts subclasses provide --------------------------------------------------------
    def match_sql(self, spec: Spec) -> tuple[str, str, list, str, list]:
        """(FROM/JOIN clause without params, match condition, its params, score expression where
        lower is better, its params)."""
        raise NotImplementedError

    def excluded_sql(self, spec: Spec) -> tuple[str, list]:
        raise NotImplementedError

    def after_insert(self, where: str, params: list) -> None:
        """Bring the full-text structures up to date for the documents just inserted."""

    def before_delete(self, where: str, params: list) -> None:
        """Remove full-text rows for the documents about to be deleted."""

    def merge_lazily(self, lazy: bool) -> None:
        """Inside a bulk write's transaction: let the full-text index merge its segments less often
        (True), then as usual again (False) before the commit."""

    def with_keys(self, keys: Sequence[str]) -> tuple[str, list]:
        """A condition on DOC: the document's key is one of `keys`. One parameter however many keys,
        so that an update of 250k keys deletes with one statement per table, not one per 500 keys."""
        raise NotImplementedError

    def clear(self) -> None:
        with connection.cursor() as cur:
            cur.execute(f"DELETE FROM {TAG}")
            cur.execute(f"DELETE FROM {DOC}")

    def term_candidates(self, term: str) -> list[str]:
        raise NotImplementedError

    def index_version(self) -> int | None:
        """A value that changes with every write to the index (None: not tracked, do not cache)."""
        return None

    def known_terms(self, terms: list[str]) -> set[str]:
        """The terms that occur in the vocabulary, exactly or as a prefix of a word."""
        raise NotImplementedError

    # -- shared SQL -----------------------------------------------------------------------------
    def _where(self, spec: Spec) -> tuple[str, list]:
        q = spec.query
        clauses, params = [f"({spec.scope_sql})" if spec.scope_sql else "1=1"], list(spec.scope_params)
        for name, values in q.filters.items():
            if name == "tag":
                sql, p = _in("t.tag", values)
                clauses.append(f"EXISTS (SELECT 1 FROM {TAG} t WHERE t.document_id = {DOC}.id AND {sql})")
            else:
                sql, p = _in(f"{DOC}.{FACET_COLUMNS[name]}", values)
                clauses.append(sql)
            params += p
        for name, values in q.excluded_filters.items():
            if name == "tag":
                sql, p = _in("t.tag", values)
                clauses.append(f"NOT EXISTS (SELECT 1 FROM {TAG} t WHERE t.document_id = {DOC}.id AND {sql})")
            else:
                sql, p = _in(f"{DOC}.{FACET_COLUMNS[name]}", values)
                clauses.append(f"NOT {sql}")
            params += p
        if q.excluded:
            sql, p = self.excluded_sql(spec)
            clauses.append(sql)
            params += p
        return " AND ".join(clauses), params

    def _boost(self, spec: Spec) -> tuple[str, list]:
        parts, params = [f"(CASE WHEN {DOC}.lifecycle = 'production' THEN {BOOST_PRODUCTION} ELSE 0 END)"], []
        if spec.my_team_ids:
            sql, p = _in(f"{DOC}.owner_team_id", spec.my_team_ids)
            parts.append(f"(CASE WHEN {sql} THEN {BOOST_MINE} ELSE 0 END)")
            params += p
        if spec.boosted_keys:
            sql, p = _in(f"{DOC}.key", spec.boosted_keys)
            parts.append(f"(CASE WHEN {sql} THEN {BOOST_STARRED} ELSE 0 END)")
            params += p
        return "(1 + " + " + ".join(parts) + ")", params

    def _tier(self, spec: Spec) -> tuple[str, list]:
        """0: the name (or title) is the query; 1: the name starts with the query's whole words;
        2: the name starts with it (last word partial); 3: anything else."""
        words = spec.query.positive_words
        if not words:
            return "3", []
        dashed, spaced = "-".join(words), " ".join(words)
        like = dashed.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return (
            f"(CASE WHEN {DOC}.name = %s OR {DOC}.name = %s OR LOWER({DOC}.title) = %s THEN 0 "
            f"WHEN {DOC}.name LIKE %s ESCAPE '\\' THEN 1 "
            f"WHEN {DOC}.name LIKE %s ESCAPE '\\' THEN 2 ELSE 3 END)",
            [dashed, spaced, spaced, like + "-%", like + "%"],
        )

    def _base(self, spec: Spec) -> tuple[str, str, list, str, list]:
        """FROM clause, WHERE, params, score expression, score params."""
        where, params = self._where(spec)
        if spec.query.has_text:
            frm, cond, mparams, score, sparams = self.match_sql(spec)
            return frm, f"{cond} AND {where}", mparams + params, score, sparams
        return DOC, where, params, "-1", []

    def search(self, spec: Spec) -> list[dict]:
        frm, where, params, score, sparams = self._base(spec)
        tier, tparams = self._tier(spec)
        boost, bparams = self._boost(spec)
        cols = ", ".join(f"{DOC}.{c}" for c in RESULT_COLUMNS)
        sql = (
            f"SELECT {cols}, {tier} AS tier, ({score}) * {boost} AS score FROM {frm} "
            f"WHERE {where} ORDER BY tier, score, {DOC}.name, {DOC}.id LIMIT %s OFFSET %s"
        )
        with connection.cursor() as cur:
            cur.execute(sql, tparams + sparams + bparams + params + [spec.limit, spec.offset])
            names = [c[0] for c in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def run(self, spec: Spec, with_facets: bool) -> tuple[list[dict], tuple[dict, int] | None]:
        """The page of hits and, with `with_facets`, (facet counts, number of matches); the facets
        are None without `with_facets`, and empty when nothing matched."""
        rows = self.search(spec)
        if not with_facets:
            return rows, None
        return rows, (self.facets(spec) if rows or spec.offset else self.group_facets([]))

    def bare_search(self, spec: Spec) -> list:
        """The full-text match alone, ordered by its own score: the yardstick for our overhead."""
        frm, cond, mparams, score, sparams = self.match_sql(spec)
        sql = f"SELECT {DOC}.id FROM {frm} WHERE {cond} ORDER BY {score} LIMIT %s"
        with connection.cursor() as cur:
            cur.execute(sql, mparams + sparams + [spec.limit])
            return cur.fetchall()

    def facets(self, spec: Spec) -> tuple[dict[str, list[dict]], int]:
        """Counts per value over what the query matches and the user may see, in one statement; and
        the number of matches (every document has a kind), FACET_SCAN + 1 meaning "more than FACET_SCAN"."""
        frm, where, params, _, _ = self._base(spec)
        parts = [
            f"SELECT '{name}' AS facet, {col} AS value, COUNT(*) AS n FROM m WHERE {col} <> '' GROUP BY {col}"
            for name, col in FACET_COLUMNS.items()
        ]
        parts.append(
            f"SELECT 'tag' AS facet, t.tag AS value, COUNT(*) AS n FROM m {self.fixed_join} {TAG} t "
            "ON t.document_id = m.id "
            "GROUP BY t.tag"
        )
        cols = ", ".join(f"{DOC}.{c}" for c in ("id", *FACET_COLUMNS.values()))
        sql = (
            f"WITH m AS MATERIALIZED (SELECT {cols} FROM {frm} WHERE {where} LIMIT {FACET_SCAN + 1}) "
            + " UNION ALL ".join(parts)
        )
        with connection.cursor() as cur:
            cur.execute(sql, params)
            return self.group_facets(cur.fetchall())

    @staticmethod
    def group_facets(counts: list[tuple]) -> tuple[dict[str, list[dict]], int]:
        """(facet, value, count) rows → the facets, most frequent values first, and the number of
        matches (every document has a kind)."""
        result: dict[str, list[dict]] = {name: [] for name in (*FACET_COLUMNS, "tag")}
        for facet, value, n in counts:
            result[facet].append({"value": value, "count": n})
        total = sum(item["count"] for item in result["kind"])
        for values in result.values():
            values.sort(key=lambda item: (-item["count"], item["value"]))
            del values[FACET_LIMIT:]
        return result, total

    def count(self, spec: Spec) -> int:
        frm, where, params, _, _ = self._base(spec)
        with connection.cursor() as cur:
            cur.execute(f"SELECT COUNT(*) FROM {frm} WHERE {where}", params)
            return cur.fetchone()[0]

    # -- writes ---------------------------------------------------------------------------------
    def insert(self, rows: list[tuple], tag_rows: list[tuple]) -> None:
        """rows: (id, source, key, kind, kind_label, name, title, description, body, owner, lifecycle,
        type, tags, visibility, owner_team_id, url); tag_rows: (document_id, tag)."""
        with connection.cursor() as cur:
            cur.executemany(
                f"INSERT INTO {DOC} (id, source, key, kind, kind_label, name, title, description, body, owner, "
                "lifecycle, type, tags, visibility, owner_team_id, url) VALUES "
                "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                rows,
            )
            if tag_rows:
                cur.executemany(f"INSERT INTO {TAG} (document_id, tag) VALUES (%s, %s)", tag_rows)

    def next_id(self) -> int:
        with connection.cursor() as cur:
            cur.execute(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {DOC}")
            return cur.fetchone()[0]

    def finish_ids(self) -> None:
        """After inserting explicit ids (PostgreSQL moves its sequence on)."""

    def delete(self, where: str, params: list) -> None:
        self.before_delete(where, params)
        with connection.cursor() as cur:
            cur.execute(
                f"DELETE FROM {TAG} WHERE document_id IN (SELECT id FROM {DOC} WHERE {where})", params
            )
            cur.execute(f"DELETE FROM {DOC} WHERE {where}", params)

    def add_terms(self, terms: set[str]) -> None:
        raise NotImplementedError
