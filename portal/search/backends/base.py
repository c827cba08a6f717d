"""What both backends share: the SQL of a search around the full-text match — permissions and
filters, the candidate lists, the score (backends/score.py), the page, the facets — and bulk writes.
Subclasses supply the full-text conditions."""

# SQL is assembled from constant table/column names and backend-built fragments; every user value
# is a query parameter (%s). Hence S608 (string-built SQL) is a false positive throughout this module.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from django.db import connection

from .. import scoring
from ..query import ParsedQuery, stem
from .score import COMPONENTS, Dialect, ScoreSql, in_list

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
# The columns of Backend.insert's rows, in their order.
INSERT_COLUMNS = ("id, source, key, kind, kind_label, name, title, description, body, owner, lifecycle, type, "
                  f"tags, visibility, owner_team_id, url, {', '.join(scoring.EV_COLUMNS)}, quality, popularity, indexed_at")
FACET_COLUMNS = {"kind": "kind", "type": "type", "owner": "owner", "lifecycle": "lifecycle"}
FACET_LIMIT = 30
# Facet counts and totals are exact up to this many matches; beyond it they count the first
# FACET_SCAN matches and the total reads "1,000+" (like most engines' capped hit counts).
FACET_SCAN = 1000
# What scoring needs of a document (the display columns are read for the page of hits only).
RANK_COLUMNS = ("id", "key", "name", "title", "owner_team_id", *scoring.EV_COLUMNS, "quality", "popularity")
# Candidates of a search (see Backend.run): the first matches in index order, the matches with a query
# word in their title or tags, the matches whose name starts with the query, plus exact names and
# starred documents. A list that comes back shorter than its limit holds every document of its kind.
# Per list: (search, typeahead). Typeahead shows 8 suggestions, sorted by the name tier first.
SCAN = {"all": 1000, "names": 100}  # the first matches (typeahead: of names, titles and tags)
LABELS_SCAN = {"all": 500, "names": 100}
NAME_START_SCAN = {"all": 200, "names": 200}
A_RANK = 300  # of a truncated `a` list (read up to FACET_SCAN + 1 rows for the facets), the rows scored
# The body text returned for each hit on the page (never for other candidates), for its snippet:
# EXCERPT_CHARS from EXCERPT_LEAD before the first place the query's words occur in the body's first
# EXCERPT_SCAN characters (see `Backend._excerpt`); the snippet (snippets.SNIPPET_CHARS, 180) is the best
# window within it. SQLite's instr() costs ~3 ns a character and needle (a memcmp per position): 20 docs
# pages of 160,000 characters took 35 ms for three needles that failed before the one that matched, so
# the scan and the needles are capped (at most 20 × 32,000 characters × 4 needles, ~8 ms; a few KB per
# page usually). A match beyond the scan leaves the description as the snippet.
# How much of a document's body is searched, on both backends: PostgreSQL's `tsv` indexes
# left(body, 100000) (migration 0002), and the index stores no more than that (index.py), so that SQLite's
# FTS5 table sees the same text. Docs pages are cut at 200,000 characters by their builder.
BODY_CHARS = 100_000
EXCERPT_LEAD = 180
EXCERPT_CHARS = 540
EXCERPT_SCAN = 32_000
EXCERPT_NEEDLES = 4


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
    # stemmed term → the index's words its prefix stands for, where the backend searches them instead
    # (PostgreSQL: `PostgresBackend.expand`, filled by its `run`)
    expansions: dict[str, list[str]] = field(default_factory=dict)

    def _groups(self, stemmed: bool) -> list[list[str]]:
        groups = [self.alternatives.get(t) or [stem(t) if stemmed else t] for t in self.query.terms]
        groups += [[w] for p in self.query.phrases for w in p]
        out, seen = [], set()
        for group in groups:
            folded = scoring.query_words(group)
            if folded and folded[0] not in seen:
                seen.add(folded[0])
                out.append(folded)
        return out[: scoring.MAX_SCORED_WORDS]

    def scored_words(self) -> list[list[str]]:
        """Each positive query word as it is matched (`query.stem`), or its spelling corrections, as
        the evidence column spells them."""
        return self._groups(stemmed=True)

    def excerpt_needles(self) -> list[str]:
        """What a hit's body is searched for to place its snippet, the most telling first: each phrase,
        the query's words side by side, then each word (or its spelling corrections) as it is matched,
        longest first. None for typeahead (it shows no snippet) or a query without words; at most
        EXCERPT_NEEDLES."""
        q = self.query
        if self.fields != "all" or not q.has_text:
            return []
        matched = [self.alternatives.get(t) or [stem(t)] for t in q.terms]
        needles = [" ".join(p) for p in q.phrases]
        if len(q.terms) > 1:
            needles.append(" ".join((self.alternatives.get(t) or [t])[0] for t in q.terms))
        words = {w for group in matched for w in group} | {w for p in q.phrases for w in p}
        needles += sorted(words, key=lambda w: (-len(w), w))
        return list(dict.fromkeys(n for n in needles if n))[:EXCERPT_NEEDLES]

    def name_words(self) -> list[str]:
        """The query's words as typed (or their first spelling correction): what a name is compared
        with, and what proximity looks for."""
        return [group[0] for group in self._groups(stemmed=False)]


@dataclass
class Outcome:
    """What `Backend.run` found: the page of hits (with their score components), and the facts behind
    the ranking's guarantee."""

    rows: list[dict]
    facets: tuple[dict, int] | None
    exact: bool = True  # every document that could rank on this page was scored
    proven: int = 0  # how many of the first hits provably hold their place (all of them when exact)
    candidates: int = 0  # documents scored
    bound: float | None = None  # the most a document outside the candidates can score
    counts: dict = field(default_factory=dict)  # rows per candidate list


class Backend:
    vendor = ""
    fixed_join = "JOIN"  # a join whose left side must drive (SQLite spells it CROSS JOIN)
    binary = ""  # makes an ORDER BY on names compare code points (PostgreSQL: COLLATE "C")
    name_index_hint = ""  # how the exact-name lookup names the name index (SQLite: INDEXED BY)
    dialect = Dialect()  # how the score's SQL is spelled here

    # -- the parts subclasses provide --------------------------------------------------------
    def match_sql(self, spec: Spec) -> tuple[str, str, list, str, list]:
        """(FROM/JOIN clause without params, match condition, its params, the engine's own text
        score where lower is better, its params): the bare full-text query (see `bare_search`)."""
        raise NotImplementedError

    def candidates_sql(self, spec: Spec, kind: str) -> tuple[str, str, list]:
        """(FROM clause over DOC, condition, params) of one candidate list: "all" (the query), "labels"
        (the query, and a query word in the title or tags), "name_start" (the query, and the name
        starts with the query's words, dashed)."""
        raise NotImplementedError

    def matches_sql(self, spec: Spec) -> tuple[str, list]:
        """A condition on one DOC row: it matches the query."""
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

    def with_ids(self, ids: Sequence[int]) -> tuple[str, list]:
        """A condition on DOC: the document's id is one of `ids` (one parameter)."""
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

    def any_match(self, specs: list[Spec]) -> list[bool]:
        """Whether each search matches some document within its scope and filters: one statement of
        an EXISTS each (spelling corrections ask this of the searcher's documents, never of the
        global vocabulary alone)."""
        if not specs:
            return []
        parts, params = [], []
        for i, spec in enumerate(specs):
            frm, cond, p = self.candidates_sql(spec, "all")
            where, wparams = self._where(spec)
            parts.append(f"SELECT {i} WHERE EXISTS (SELECT 1 FROM {frm} WHERE {cond} AND {where})")
            params += p + wparams
        with connection.cursor() as cur:
            cur.execute(" UNION ALL ".join(parts), params)
            found = {row[0] for row in cur.fetchall()}
        return [i in found for i in range(len(specs))]

    # -- shared SQL -----------------------------------------------------------------------------
    def _where(self, spec: Spec) -> tuple[str, list]:
        q = spec.query
        clauses, params = [f"({spec.scope_sql})" if spec.scope_sql else "1=1"], list(spec.scope_params)
        for name, values in q.filters.items():
            if name == "tag":
                sql, p = in_list("t.tag", values)
                clauses.append(f"EXISTS (SELECT 1 FROM {TAG} t WHERE t.document_id = {DOC}.id AND {sql})")
            else:
                sql, p = in_list(f"{DOC}.{FACET_COLUMNS[name]}", values)
                clauses.append(sql)
            params += p
        for name, values in q.excluded_filters.items():
            if name == "tag":
                sql, p = in_list("t.tag", values)
                clauses.append(f"NOT EXISTS (SELECT 1 FROM {TAG} t WHERE t.document_id = {DOC}.id AND {sql})")
            else:
                sql, p = in_list(f"{DOC}.{FACET_COLUMNS[name]}", values)
                clauses.append(f"NOT {sql}")
            params += p
        if q.excluded:
            sql, p = self.excluded_sql(spec)
            clauses.append(sql)
            params += p
        return " AND ".join(clauses), params

    def run(self, spec: Spec, with_facets: bool) -> Outcome:
        """The page of hits with their score components and, with `with_facets`, the facet counts
        and number of matches: one statement.

        The candidates are scored in the database and the page is the top of that order (ORDER BY
        score LIMIT): the first matches in index order (`a`, a static quality order: production
        first), the matches with a query word in their title or tags (`b`), those whose name starts
        with the query (`c`), exact names (`x`) and starred documents (`s`). A list shorter than its
        limit holds every document of its kind, which bounds what a document outside the candidates
        can score (`scoring.upper_bound`): hits above that bound provably hold their place, and when
        `a` holds every match all of them do. Facet counts come from `a`."""
        if not spec.query.has_text:
            return self._run_filters(spec, with_facets)
        score = ScoreSql(self.dialect, spec)
        ctes, params, limits = self._candidates(spec, score, with_facets)
        sql, p = self._page(spec, score, ctes, f"u {self.fixed_join} {DOC} AS d ON d.id = u.id", "d")
        params += p
        counts = " UNION ALL ".join(f"SELECT '{n}' AS n, COUNT(*) AS c FROM {n}" for n in [*limits, "u"])
        sql += f" UNION ALL SELECT 'count', n, c{self._pad()} FROM ({counts}) AS k"
        if with_facets:
            sql += self._facet_union()
        outcome = self._collect(sql, params, with_facets)
        self._prove(spec, outcome, limits)
        return outcome

    def _candidates(self, spec: Spec, score: ScoreSql, with_facets: bool) -> tuple[list[str], list, dict]:
        """The candidate lists as CTEs (ids; `a` also the facet columns) and `u`, their union; their
        parameters; and the limit of each bounded list."""
        where, wparams = self._where(spec)
        scan = max(SCAN[spec.fields], FACET_SCAN + 1) if with_facets else SCAN[spec.fields]
        facet_cols = "".join(f", {DOC}.{c}" for c in FACET_COLUMNS.values()) if with_facets else ""
        ctes, params = [], []
        limits = {"a": scan, "b": LABELS_SCAN[spec.fields], "c": NAME_START_SCAN[spec.fields]}
        kinds = {"a": "all", "b": "labels", "c": "name_start"}
        if not score.words:  # nothing for the labels or the name to match: the first matches only
            limits = {"a": scan}
        for name in limits:
            frm, cond, p = self.candidates_sql(spec, kinds[name])
            extra = facet_cols if name == "a" else ""
            ctes.append(
                f"{name} AS MATERIALIZED (SELECT {DOC}.id{extra} FROM {frm} WHERE {cond} AND {where} "
                f"LIMIT {limits[name]})"
            )
            params += p + wparams
        match, mparams = self.matches_sql(spec)
        ctes.append(
            f"x AS MATERIALIZED (SELECT {DOC}.id FROM {DOC}{self.name_index_hint} "
            f"WHERE {DOC}.name IN (%s, %s) AND {match} AND {where})"
        )
        params += [*score.name_forms(), *mparams, *wparams]
        sources = [*limits, "x"]
        if spec.boosted_keys:
            star, sparams = in_list(f"{DOC}.key", spec.boosted_keys)
            ctes.append(f"s AS MATERIALIZED (SELECT {DOC}.id FROM {DOC} WHERE {star} AND {match} AND {where})")
            params += sparams + mparams + wparams
            sources.append("s")
        # All of `a` when it holds every match (the ranking is then exact); else its first A_RANK rows:
        # the rest of a broad word's matches are covered by the bound like any other unread document.
        ranked = min(A_RANK, scan)
        a_rows = f"(SELECT id FROM a LIMIT CASE WHEN (SELECT COUNT(*) FROM a) < {scan} THEN {scan} ELSE {ranked} END) AS a"
        # The candidates' ids, once each; scoring reads their rows again (cheaper than carrying the
        # evidence columns through the lists and deduplicating whole rows).
        ctes.append("u AS (" + " UNION ".join(f"SELECT id FROM {a_rows if n == 'a' else n}" for n in sources) + ")")
        return ctes, params, limits

    def _page(self, spec: Spec, score: ScoreSql, ctes: list[str], source: str, u: str) -> tuple[str, list]:
        """The ranked page over the candidates (`source`, whose ranking columns are `u`'s), joined
        back to DOC for the display columns and the score components. Typeahead sorts by the name
        tier first."""
        total, params = score.score(u)
        tier, tparams = score.tier(u) if spec.fields == "names" else ("0", [])
        ctes = [*ctes, (
            f"r AS (SELECT {u}.id, {total} AS r_score, {tier} AS r_tier FROM {source} "
            f"ORDER BY r_tier, r_score DESC, {u}.name{self.binary}, {u}.key{self.binary} LIMIT %s OFFSET %s)"
        )]
        params += tparams + [spec.limit, spec.offset]
        excerpt_ctes, eparams, page, excerpt = self._excerpt(spec)
        params += eparams
        wide = ", ".join(f"{DOC}.{c}" for c in RESULT_COLUMNS)
        comps, cparams = score.components(DOC)
        sql = (
            "WITH " + ", ".join(ctes + excerpt_ctes) + f" SELECT 'hit', NULL, NULL, {wide}, {', '.join(comps)}, "
            f"{page}.r_score, {page}.r_tier, {excerpt} FROM {page} {self.fixed_join} {DOC} ON {DOC}.id = {page}.id"
        )
        return sql, params + cparams

    def _excerpt(self, spec: Spec) -> tuple[list[str], list, str, str]:
        """The page's hits (`r`) with where the query's words first occur in their body, for their
        snippets: (CTEs, their params, the page's name, the two columns: the 1-based position of the
        excerpt, NULL when no needle occurs, and EXCERPT_CHARS of the body from there). Only the page's
        rows are read; the first EXCERPT_SCAN characters of each body are lowercased once (`lw`), then
        searched for each needle in turn until one occurs (`ex`). Case-insensitive for ASCII on SQLite
        (its lower()), as far as the collation goes on PostgreSQL; an excerpt in which the snippet finds
        no match leaves the description as the snippet."""
        needles = spec.excerpt_needles()
        if not needles:
            return [], [], "r", "NULL, NULL"
        d = self.dialect
        found = ", ".join(f"NULLIF({d.instr}(lw.lb, %s), 0)" for _ in needles)
        ctes = [
            f"lw AS MATERIALIZED (SELECT r.id, r.r_score, r.r_tier, LOWER(SUBSTR({DOC}.body, 1, {EXCERPT_SCAN})) "
            f"AS lb FROM r {self.fixed_join} {DOC} ON {DOC}.id = r.id)",
            f"ex AS MATERIALIZED (SELECT lw.id, lw.r_score, lw.r_tier, COALESCE({found}, NULL) AS e_at FROM lw)",
        ]
        start = f"{d.greatest}(1, ex.e_at - {EXCERPT_LEAD})"
        columns = f"ex.e_at, CASE WHEN ex.e_at IS NULL THEN NULL ELSE SUBSTR({DOC}.body, {start}, {EXCERPT_CHARS}) END"
        return ctes, needles, "ex", columns

    @staticmethod
    def _pad() -> str:
        """NULLs that make a 3-column row (kind, name, count) as wide as a hit row."""
        return ", NULL" * (len(RESULT_COLUMNS) + len(COMPONENTS) + 4)

    def _facet_union(self) -> str:
        pad = self._pad()
        sql = "".join(
            f" UNION ALL SELECT '{name}', {col}, COUNT(*){pad} FROM a WHERE {col} <> '' GROUP BY {col}"
            for name, col in FACET_COLUMNS.items()
        )
        return sql + (
            f" UNION ALL SELECT 'tag', t.tag, COUNT(*){pad} FROM a {self.fixed_join} {TAG} t "
            "ON t.document_id = a.id GROUP BY t.tag"
        )

    def _collect(self, sql: str, params: list, with_facets: bool) -> Outcome:
        names = [*RESULT_COLUMNS, *COMPONENTS, "score", "tier", "excerpt_at", "excerpt"]
        rows, facet_counts, counts = [], [], {}
        with connection.cursor() as cur:
            cur.execute(sql, params)
            for row in cur.fetchall():
                if row[0] == "hit":
                    rows.append(dict(zip(names, row[3:], strict=True)))
                elif row[0] == "count":
                    counts[row[1]] = row[2]
                else:
                    facet_counts.append(row[:3])
        # The statement's UNION ALL does not keep the page's order: sort again by its keys.
        rows.sort(key=lambda row: (row["tier"], -row["score"], row["name"], row["key"]))
        outcome = Outcome(rows, self.group_facets(facet_counts) if with_facets else None)
        outcome.candidates = counts.get("u", counts.get("a", 0))
        outcome.counts = counts
        return outcome

    def _prove(self, spec: Spec, outcome: Outcome, limits: dict[str, int]) -> None:
        """How many of the first hits provably hold their place (see `run`)."""
        counts = outcome.counts
        if counts.get("a", 0) < limits["a"]:  # every match was a candidate
            outcome.exact, outcome.proven = True, len(outcome.rows)
            return
        outcome.exact, outcome.proven = False, 0
        if "b" not in counts or spec.offset:
            return
        bound = scoring.upper_bound(
            scoring.Unseen(
                words=len(spec.scored_words()),
                names_only=spec.fields == "names",
                labels_excluded=counts["b"] < limits["b"],
                name_start_excluded=counts["c"] < limits["c"],
                mine_possible=bool(spec.my_team_ids),
            )
        )
        outcome.bound = bound
        if spec.fields == "names":  # typeahead orders by tier first: no score bound applies
            return
        for row in outcome.rows:
            if row["score"] <= bound:
                break
            outcome.proven += 1
        outcome.exact = outcome.proven == len(outcome.rows)

    def _run_filters(self, spec: Spec, with_facets: bool) -> Outcome:
        """A query of filters only: every document that passes them, ranked by quality and personal
        boosts (there is no text to score); facet counts from the first FACET_SCAN + 1."""
        where, wparams = self._where(spec)
        rank_cols = ", ".join(f"{DOC}.{c}" for c in RANK_COLUMNS)
        facet_cols = ", ".join(f"{DOC}.{c}" for c in ("id", *FACET_COLUMNS.values()))
        ctes = [f"u AS (SELECT {rank_cols} FROM {DOC} WHERE {where})"]
        params = list(wparams)
        if with_facets:
            ctes.append(f"a AS MATERIALIZED (SELECT {facet_cols} FROM {DOC} WHERE {where} LIMIT {FACET_SCAN + 1})")
            params += wparams
        sql, p = self._page(spec, ScoreSql(self.dialect, spec), ctes, "u", "u")
        params += p
        if with_facets:
            sql += self._facet_union()
        outcome = self._collect(sql, params, with_facets)
        outcome.exact, outcome.proven = True, len(outcome.rows)
        return outcome

    def bare_search(self, spec: Spec) -> list:
        """The full-text match alone, ordered by its own score: the yardstick for our overhead."""
        frm, cond, mparams, score, sparams = self.match_sql(spec)
        sql = f"SELECT {DOC}.id FROM {frm} WHERE {cond} ORDER BY {score} LIMIT %s"
        with connection.cursor() as cur:
            cur.execute(sql, mparams + sparams + [spec.limit])
            return cur.fetchall()

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

    # -- writes ---------------------------------------------------------------------------------
    def insert(self, rows: list[tuple], tag_rows: list[tuple]) -> None:
        """rows: (id, source, key, kind, kind_label, name, title, description, body, owner, lifecycle,
        type, tags, visibility, owner_team_id, url, ev_n … ev_b, quality, popularity, indexed_at); tag_rows:
        (document_id, tag)."""
        with connection.cursor() as cur:
            cur.executemany(
                f"INSERT INTO {DOC} ({INSERT_COLUMNS}) VALUES ({', '.join(['%s'] * (INSERT_COLUMNS.count(',') + 1))})",
                rows,
            )
            if tag_rows:
                cur.executemany(f"INSERT INTO {TAG} (document_id, tag) VALUES (%s, %s)", tag_rows)

    def next_id(self) -> int:
        with connection.cursor() as cur:
            cur.execute(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {DOC}")
            return cur.fetchone()[0]

    def draw_ids(self, count: int) -> list[int]:
        """`count` new document ids, ascending, safe beside concurrent writers (PostgreSQL only)."""
        raise NotImplementedError

    def finish_ids(self) -> None:
        """After inserting explicit ids (PostgreSQL moves its sequence on)."""

    def analyze(self) -> None:
        """After a rebuild: refresh the planner's statistics where it needs them."""

    def flush_pending(self) -> int:
        """After a large write: merge what the full-text indexes hold aside for later (PostgreSQL's GIN
        pending lists), so that searches do not scan it. Returns the pages merged."""
        return 0

    def delete(self, where: str, params: list) -> None:
        self.before_delete(where, params)
        with connection.cursor() as cur:
            cur.execute(
                f"DELETE FROM {TAG} WHERE document_id IN (SELECT id FROM {DOC} WHERE {where})", params
            )
            cur.execute(f"DELETE FROM {DOC} WHERE {where}", params)

    def add_terms(self, terms: set[str]) -> None:
        raise NotImplementedError
