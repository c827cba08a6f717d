"""PostgreSQL full-text search: a generated, weighted `tsv` column with a GIN index (see the
migration), `to_tsquery('simple', …)` with `:*` prefixes, ts_rank with weights, and pg_trgm
similarity over the vocabulary for spelling corrections."""

# SQL is assembled from constant table/column names and backend-built fragments; every user value
# is a query parameter (%s). Hence S608 (string-built SQL) is a false positive throughout this module.
# ruff: noqa: S608

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from django.db import DatabaseError, connection, transaction

from portal.core.db import pg_array

from ..query import stem
from .base import DOC, INSERT_COLUMNS, TAG, Backend, Spec
from .score import Dialect, like_prefix

log = logging.getLogger("plinth.search")

# The index version (migration 0008): a sequence every index-writing statement advances, under a shared
# transaction-level advisory lock on this key that its writer holds until it has committed.
VERSION_SEQUENCE = "search_index_version"
LOCK_KEY = 7_236_850_337_395_542_318
# The version first (a materialised CTE is read before the outer select runs; 0 until the first write,
# as a new sequence's last_value is already 1), then whether any writer holds the lock: tried and
# released in the same statement, so a reader never waits and never blocks a writer for longer than
# this statement.
_VERSION_SQL = (
    f"WITH v AS MATERIALIZED (SELECT CASE WHEN is_called THEN last_value ELSE 0 END AS n FROM {VERSION_SEQUENCE}) "
    "SELECT v.n, CASE WHEN pg_try_advisory_lock(%s) THEN pg_advisory_unlock(%s) ELSE false END FROM v"
)

# Weights for D, C, B, A: A = name, B = title, C = tags and owner, D = description and body.
RANK_WEIGHTS = "'{0.1, 0.3, 0.6, 1.0}'"
# pg_trgm, the generated `tsv` column and the GIN indexes are created by migration 0002_fulltext.


def _term(term: str, prefix: bool) -> str:
    # Tokens are runs of \w (query.words()), so they carry no tsquery operators.
    return f"{term}:*" if prefix and len(term) >= 2 else term


# Prefixes searched as the index's own words (migration 0009, `search_lexeme`): a GIN prefix match
# gathers every matching entry into a bitmap first (12 ms for "customer churn" at 250k documents, 2.5 ms
# for the two words matched exactly). Up to MAX_EXPANSION words; a prefix of more stays a prefix.
MAX_EXPANSION = 8
LEXEME = "search_lexeme"
# Compound words (`risk-score-12`): the parser always emits their parts as well, so the table leaves
# them out (see the migration). Only words starting with an ASCII letter are kept: only such prefixes
# are expanded.
_COMPOUND = r"^[[:alpha:]][[:alnum:]]*(-[[:alnum:]]+)+$"
_EXPANDABLE = re.compile(r"[a-z][a-z0-9]+")  # a prefix, and each word it may stand for in a tsquery
# ts_stat: the distinct words of the documents its query reads, counted in C (0.75 s for 250k
# documents, against 1.6 s for the same by unnest and DISTINCT).
_LEXEMES_SQL = (
    f"INSERT INTO {LEXEME} (word) SELECT word FROM ts_stat(%s) WHERE ascii(word) BETWEEN 97 AND 122 "
    f"AND (strpos(word, '-') = 0 OR word !~ '{_COMPOUND}') ORDER BY 1 ON CONFLICT DO NOTHING"
)
_EXPAND_SQL = (
    "SELECT p.i, l.word FROM unnest(%s::text[], %s::text[]) WITH ORDINALITY AS p(lo, hi, i) "
    f'LEFT JOIN LATERAL (SELECT word FROM {LEXEME} WHERE word >= p.lo COLLATE "C" AND word < p.hi COLLATE "C" '
    f"ORDER BY word LIMIT {MAX_EXPANSION + 1}) AS l ON true"
)


def _prefixed(spec: Spec, word: str) -> list[str]:
    """`word` as a prefix in a tsquery, or the index's words it stands for (`PostgresBackend.expand`);
    none at all: the word alone, which then matches nothing, as the prefix does."""
    words = spec.expansions.get(word)
    return [_term(word, True)] if words is None else (words or [word])


def _label_words(spec: Spec) -> list[str]:
    """The words a title or tag is matched with (each as a prefix, as the evidence reads it, so that
    a document outside the labels list has no title or tags evidence; `simple` keeps accents, so the
    words as typed too)."""
    q = spec.query
    typed = [stem(t) for t in q.terms] + [a for alts in spec.alternatives.values() for a in alts]
    folded = [w for group in spec.scored_words() for w in group]
    return list(dict.fromkeys(folded + typed + [w for p in q.phrases for w in p]))


class PostgresBackend(Backend):
    vendor = "postgresql"
    binary = ' COLLATE "C"'  # names sort by code point, as on SQLite, whatever the database's collation
    dialect = Dialect(instr="strpos", greatest="GREATEST", float_cast="::float8")

    def _group(self, spec: Spec, term: str, weights: str = "") -> str:
        first = _prefixed(spec, stem(term))
        alts = list(dict.fromkeys(first + [_term(a, False) for a in spec.alternatives.get(term, [])]))
        if weights:
            alts = [a + weights if a.endswith("*") else f"{a}:{weights}" for a in alts]
        return alts[0] if len(alts) == 1 else "(" + " | ".join(alts) + ")"

    def run(self, spec: Spec, with_facets: bool):
        if spec.query.has_text:
            spec.expansions = self.expand(_label_words(spec))  # the query's stemmed terms among them
        return super().run(spec, with_facets)

    def expand(self, prefixes: list[str]) -> dict[str, list[str]]:
        """Each prefix that stands for at most MAX_EXPANSION of the index's words → those words (none:
        no document has a word with that prefix). Then `word:*` and `(w1 | w2 …)` find the same
        documents, the second without the prefix bitmap. Left out, and so searched as prefixes: what is
        not ASCII letters and digits starting with a letter, and prefixes that stand for more words or
        for a word that is not plain letters and digits (`bob@example.com`), which a tsquery would parse.

        One statement for all the prefixes, read in its own snapshot: a registration that commits
        between it and the search may have a new word that the search then does not look for, which
        leaves that registration's new documents out of this one search as if it had come a moment
        later."""
        wanted = sorted({p for p in prefixes if _EXPANDABLE.fullmatch(p)})
        if not wanted:
            return {}
        upper = [p[:-1] + chr(ord(p[-1]) + 1) for p in wanted]  # every word with prefix p is in [p, upper)
        found: dict[str, list[str]] = {p: [] for p in wanted}
        with connection.cursor() as cur:
            cur.execute(_EXPAND_SQL, [pg_array(wanted, text=True), pg_array(upper, text=True)])
            for i, word in cur.fetchall():
                if word is not None:
                    found[wanted[i - 1]].append(word)
        return {p: words for p, words in found.items()
                if len(words) <= MAX_EXPANSION and all(_EXPANDABLE.fullmatch(w) for w in words)}

    def index_version(self) -> int | None:
        """The sequence's value, when results read now may be cached under it: None while any
        transaction that wrote to the index is still open (its rows are not visible yet, but the
        version has moved: the results read now would be cached under the new version and served
        stale after the commit), and inside a transaction of our own (which may itself have written
        rows that a rollback takes back). Read first, then the lock tried: a writer that starts in
        between moves the version past the one these results are cached under."""
        if connection.in_atomic_block:
            return None
        with connection.cursor() as cur:
            cur.execute(_VERSION_SQL, [LOCK_KEY, LOCK_KEY])
            version, no_writer = cur.fetchone()
        return version if no_writer else None

    def tsquery(self, spec: Spec) -> str:
        q = spec.query
        weights = "ABC" if spec.fields == "names" else ""
        parts = [self._group(spec, term, weights) for term in q.terms]
        parts += ["(" + " <-> ".join(p) + ")" for p in q.phrases]
        return " & ".join(parts)

    def match_sql(self, spec: Spec) -> tuple[str, str, list, str, list]:
        tsq = self.tsquery(spec)
        return (
            DOC,
            f"{DOC}.tsv @@ to_tsquery('simple', %s)",
            [tsq],
            f"-ts_rank({RANK_WEIGHTS}, {DOC}.tsv, to_tsquery('simple', %s))",
            [tsq],
        )

    def candidates_sql(self, spec: Spec, kind: str) -> tuple[str, str, list]:
        """The lists in the heap's order, which a rebuild leaves in the static quality order."""
        match, params = self.matches_sql(spec)
        if kind == "labels":  # the `labels` column (title and tags) has a GIN index of its own
            # Each word as a prefix, as the evidence reads it, so that a document outside this list has
            # no title or tags evidence; `simple` keeps accents, so the words as typed too.
            any_word = " | ".join(dict.fromkeys(t for w in _label_words(spec) for t in _prefixed(spec, w)))
            # With the query's own condition, even for one word (whose label match is a match): alone,
            # the labels condition is guessed to find thousands of rows, and with a LIMIT the planner
            # walks the whole table for them, 130 ms at 250k when there are none; with both, it ANDs the
            # two GIN indexes.
            return DOC, f"{DOC}.labels @@ to_tsquery('simple', %s) AND {match}", [any_word, *params]
        if kind == "name_start":
            # A name that starts with the query's words matches it: no second GIN scan of `tsv`.
            dashed = "-".join(spec.name_words())
            return DOC, f"{DOC}.name LIKE %s ESCAPE '\\'", [like_prefix(dashed)]
        return DOC, match, params

    def matches_sql(self, spec: Spec) -> tuple[str, list]:
        return f"{DOC}.tsv @@ to_tsquery('simple', %s)", [self.tsquery(spec)]

    def excluded_sql(self, spec: Spec) -> tuple[str, list]:
        return f"NOT ({DOC}.tsv @@ to_tsquery('simple', %s))", [" | ".join(spec.query.excluded)]

    def with_keys(self, keys: Sequence[str]) -> tuple[str, list]:
        return f"{DOC}.key = ANY(%s::text[])", [pg_array(keys, text=True)]

    def with_ids(self, ids: Sequence[int]) -> tuple[str, list]:
        return f"{DOC}.id = ANY(%s::bigint[])", [pg_array(ids)]

    def after_insert(self, where: str, params: list) -> None:
        """The new documents' words into `search_lexeme` (see `expand`), in the writer's transaction:
        a search never sees a document whose words the table lacks. In word order, so that concurrent
        writers adding the same new words wait for each other instead of deadlocking. Words stay when
        their documents go (a prefix with stale words is expanded less often, never wrongly); a
        rebuild starts the table afresh."""
        documents = connection.ops.compose_sql(f"SELECT tsv FROM {DOC} WHERE {where}", params)  # quoted by psycopg
        with connection.cursor() as cur:
            cur.execute(_LEXEMES_SQL, [documents])

    def insert(self, rows: list[tuple], tag_rows: list[tuple]) -> None:
        """COPY: one statement streams every row (an INSERT per row costs the server a parse, plan
        and round trip each, most of a large registration's index write). Errors come out as
        Django's, as an INSERT's would."""
        with connection.cursor() as cur, connection.wrap_database_errors:
            with cur.cursor.copy(f"COPY {DOC} ({INSERT_COLUMNS}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            if tag_rows:
                with cur.cursor.copy(f"COPY {TAG} (document_id, tag) FROM STDIN") as copy:
                    for row in tag_rows:
                        copy.write_row(row)

    def draw_ids(self, count: int) -> list[int]:
        """`count` document ids from the sequence, ascending: concurrent writers never collide, and
        no lock is held until commit."""
        with connection.cursor() as cur:
            cur.execute(f"SELECT nextval(pg_get_serial_sequence('{DOC}', 'id')) FROM generate_series(1, %s) "
                        "ORDER BY 1", [count])
            return [row[0] for row in cur.fetchall()]

    def finish_ids(self) -> None:
        with connection.cursor() as cur:
            cur.execute(
                f"SELECT setval(pg_get_serial_sequence('{DOC}', 'id'), "
                f"COALESCE((SELECT MAX(id) FROM {DOC}), 1))"
            )

    def analyze(self) -> None:
        """After a rebuild: fresh planner statistics. Left to autovacuum, the first searches after a
        rebuild ran on the emptied table's statistics (typeahead at 250k: 230 ms instead of 25)."""
        with connection.cursor() as cur:
            cur.execute(f"ANALYZE {DOC}, search_searchdocumenttag")

    def flush_pending(self) -> int:
        """Move the entries waiting in the GIN indexes' pending lists into the indexes proper; returns
        the pages flushed. A GIN index takes new rows into an unsorted pending list (`fastupdate`, up to
        `gin_pending_list_limit`, 4 MB) that every search scans in full until a vacuum or a later insert
        merges it: after a 250k rebuild typeahead took 87–99 ms instead of 6–12 ms until autovacuum came
        by. After a large write, whatever wrote it pays the merge (well under a second): a rebuild in
        its own transaction, a large registration or observed-entity batch right after it commits (so its
        locks are not held meanwhile; searches in those few milliseconds scan the pending entries).
        Only the indexes' owner (or a superuser)
        may merge: a database role that does not own them gets a warning and the write goes on (the
        pending entries then wait for autovacuum, as before)."""
        try:
            with transaction.atomic(), connection.cursor() as cur:
                cur.execute(
                    "SELECT COALESCE(SUM(gin_clean_pending_list(i.indexrelid)), 0) FROM pg_index i "
                    "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam "
                    "WHERE a.amname = 'gin' AND i.indrelid IN (%s::regclass, 'search_searchterm'::regclass)",
                    [DOC],
                )
                return int(cur.fetchone()[0])
        except DatabaseError as exc:
            log.warning("the search index's pending entries were not merged (%s); searches scan them until "
                        "autovacuum merges them", str(exc).strip().splitlines()[0])
            return 0

    def clear(self) -> None:
        with connection.cursor() as cur:
            # TRUNCATE refuses tables with deferred foreign-key checks pending in this transaction (rows
            # a registration's staged index write inserted just before): run those checks now.
            cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cur.execute(f"TRUNCATE {DOC}, search_searchdocumenttag, {LEXEME}")
            cur.execute("SET CONSTRAINTS ALL DEFERRED")

    def add_terms(self, terms: set[str]) -> None:
        if not terms:
            return
        with connection.cursor() as cur:  # one statement for the whole vocabulary of a write
            cur.execute(
                "INSERT INTO search_searchterm (term) SELECT unnest(%s::text[]) ORDER BY 1 ON CONFLICT DO NOTHING",
                [sorted(terms)],
            )

    def term_candidates(self, term: str) -> list[str]:
        """The vocabulary's nearest words by trigram similarity (pg_trgm), similar in length."""
        with connection.cursor() as cur:
            cur.execute(
                "SELECT term FROM search_searchterm WHERE abs(length(term) - %s) <= 2 "
                "AND (left(term, 1) = %s OR term %% %s) ORDER BY similarity(term, %s) DESC LIMIT 50",
                [len(term), term[:1], term, term],
            )
            return [row[0] for row in cur.fetchall()]
