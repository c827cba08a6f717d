"""What both backends share: the SQL around the full-text match (permissions, filters, ranking
tiers, facets) and bulk writes. Subclasses supply the match expression and its score."""

# SQL is assembled from constant table/column names and backend-built fragments; every user value
# is a query parameter (%s). Hence S608 (string-built SQL) is a false positive throughout this module.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from django.db import connection

from .. import scoring
from ..query import ParsedQuery, stem

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
# Score components, in the order `components` returns them (explain).
COMPONENTS = (*(f"evidence_{scoring.FIELD_NAMES[f]}" for f in scoring.WEIGHTS), "proximity", "name_signal",
              "quality", "popularity", "personal")


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


def _in(column: str, values: Sequence) -> tuple[str, list]:
    return f"{column} IN ({', '.join(['%s'] * len(values))})", list(values)


def like_prefix(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class Backend:
    vendor = ""
    fixed_join = "JOIN"  # a join whose left side must drive (SQLite spells it CROSS JOIN)
    instr = "instr"  # position of a substring (PostgreSQL: strpos)
    greatest = "max"  # the larger of its arguments (PostgreSQL: GREATEST)
    binary = ""  # makes an ORDER BY on names compare code points (PostgreSQL: COLLATE "C")

    @staticmethod
    def number(value: float) -> str:
        """A constant of the score (PostgreSQL reads `3.0` as numeric, whose arithmetic is slow)."""
        return repr(float(value))

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

    def name_forms(self, spec: Spec) -> tuple[str, str]:
        """The query as a name: its words dashed ("fraud-detector") and spaced ("fraud detector")."""
        words = spec.name_words()
        return "-".join(words), " ".join(words)

    def _field_sql(self, spec: Spec, t: str, letter: str) -> tuple[str, list]:
        """The evidence of one field: the sum over query words of the field's weight where the word
        occurs as a whole word (or its plural), PARTIAL of it where it only starts a longer one."""
        weight, partial = scoring.WEIGHTS[letter], round(scoring.WEIGHTS[letter] * scoring.PARTIAL, 4)
        col, zero = f"{t}.ev_{letter}", self.number(0)
        parts, params = [], []
        for group in spec.scored_words():
            checks = []
            for word in group:
                found = (
                    f"CASE WHEN {self.instr}({col}, %s) > 0 OR {self.instr}({col}, %s) > 0 "
                    f"THEN {self.number(weight)} ELSE {self.number(partial)} END"
                )
                params += [f" {word}", f" {word} ", f" {word}s "]  # present, whole word, plural
                if letter == "b":
                    # Beyond the body words kept ("~"), a matching word found in no field is in the body.
                    others = [f for f in scoring.WEIGHTS if f != "b"]
                    elsewhere = " AND ".join(f"{self.instr}({t}.ev_{f}, %s) = 0" for f in others)
                    checks.append(
                        f"CASE WHEN {self.instr}({col}, %s) > 0 THEN ({found}) "
                        f"WHEN {self.instr}({col}, '~') > 0 AND {elsewhere} THEN {self.number(weight)} ELSE {zero} END"
                    )
                    params += [f" {word}"] * len(others)
                else:
                    checks.append(f"CASE WHEN {self.instr}({col}, %s) = 0 THEN {zero} ELSE ({found}) END")
            parts.append(checks[0] if len(checks) == 1 else f"{self.greatest}({', '.join(checks)})")
        return ("(" + " + ".join(parts) + ")" if parts else zero), params

    def _proximity_sql(self, spec: Spec, t: str) -> tuple[str, list]:
        """ADJACENT per word after the first when all the words occur side by side, in order, in one
        field (the last one as a prefix, like every word)."""
        words = spec.name_words()
        if len(words) < 2:
            return self.number(0), []
        fields = self._fields(spec)
        checks = " OR ".join(f"{self.instr}({t}.ev_{letter}, %s) > 0" for letter in fields)
        params = [" " + " ".join(words)] * len(fields)
        bonus = self.number(scoring.ADJACENT * (len(words) - 1))
        return f"(CASE WHEN {checks} THEN {bonus} ELSE {self.number(0)} END)", params

    def _name_sql(self, spec: Spec, t: str) -> tuple[str, list]:
        words = spec.name_words()
        if not words:
            return "0", []
        dashed, spaced = self.name_forms(spec)
        like = like_prefix(dashed)
        return (
            f"(CASE WHEN {t}.name = %s OR {t}.name = %s OR LOWER({t}.title) = %s THEN {self.number(scoring.NAME_EXACT)} "
            f"WHEN {t}.name LIKE %s ESCAPE '\\' THEN {self.number(scoring.NAME_WORDS)} "
            f"WHEN {t}.name LIKE %s ESCAPE '\\' THEN {self.number(scoring.NAME_PREFIX)} ELSE {self.number(0)} END)",
            [dashed, spaced, spaced, like[:-1] + "-%", like],
        )

    def _personal_sql(self, spec: Spec, t: str) -> tuple[str, list]:
        mine, mparams = _in(f"{t}.owner_team_id", spec.my_team_ids) if spec.my_team_ids else ("1=0", [])
        star, sparams = _in(f"{t}.key", spec.boosted_keys) if spec.boosted_keys else ("1=0", [])
        both, one, other = (
            self.number(round(1 + scoring.MINE + scoring.STARRED, 4)),
            self.number(1 + scoring.MINE),
            self.number(1 + scoring.STARRED),
        )
        return (
            f"(CASE WHEN ({mine}) AND ({star}) THEN {both} WHEN {mine} THEN {one} WHEN {star} THEN {other} "
            f"ELSE {self.number(1)} END)",
            mparams + sparams + mparams + sparams,
        )

    def _fields(self, spec: Spec) -> tuple[str, ...]:
        return scoring.NAME_FIELDS if spec.fields == "names" else tuple(scoring.WEIGHTS)

    def components(self, spec: Spec, t: str) -> tuple[list[str], list]:
        """The score's parts over table alias `t`, in COMPONENTS order (fields the search does not
        score are 0), followed by the score itself."""
        exprs, params = [], []
        for letter in scoring.WEIGHTS:
            sql, p = self._field_sql(spec, t, letter) if letter in self._fields(spec) else ("0", [])
            exprs.append(sql)
            params += p
        proximity, xp = self._proximity_sql(spec, t)
        name, p = self._name_sql(spec, t)
        personal, pp = self._personal_sql(spec, t)
        exprs += [proximity, name, f"{t}.quality", f"{t}.popularity", personal]
        score, sp = self.score_sql(spec, t)
        return [*exprs, score], params + xp + p + pp + sp

    def score_sql(self, spec: Spec, t: str) -> tuple[str, list]:
        """(BASE + evidence + proximity + name signal) × (quality + popularity) × personal, over
        alias `t`."""
        parts, params = [self.number(scoring.BASE)], []
        for letter in self._fields(spec):
            sql, p = self._field_sql(spec, t, letter)
            parts.append(sql)
            params += p
        proximity, p = self._proximity_sql(spec, t)
        parts.append(proximity)
        params += p
        name, p = self._name_sql(spec, t)
        personal, pp = self._personal_sql(spec, t)
        return (
            f"(({' + '.join([*parts, name])}) * ({t}.quality + {t}.popularity) * {personal})",
            params + p + pp,
        )

    def tier_sql(self, spec: Spec, t: str) -> tuple[str, list]:
        """Typeahead's first sort key: 0 the name (or title) is the query; 1 the name starts with its
        whole words; 2 with its letters; 3 anything else."""
        words = spec.name_words()
        if not words:
            return "3", []
        dashed, spaced = self.name_forms(spec)
        like = like_prefix(dashed)
        return (
            f"(CASE WHEN {t}.name = %s OR {t}.name = %s OR LOWER({t}.title) = %s THEN 0 "
            f"WHEN {t}.name LIKE %s ESCAPE '\\' THEN 1 "
            f"WHEN {t}.name LIKE %s ESCAPE '\\' THEN 2 ELSE 3 END)",
            [dashed, spaced, spaced, like[:-1] + "-%", like],
        )

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
        where, wparams = self._where(spec)
        scan = max(SCAN[spec.fields], FACET_SCAN + 1) if with_facets else SCAN[spec.fields]
        facet_cols = "".join(f", {DOC}.{c}" for c in FACET_COLUMNS.values()) if with_facets else ""
        ctes, params = [], []
        limits = {"a": scan, "b": LABELS_SCAN[spec.fields], "c": NAME_START_SCAN[spec.fields]}
        lists = {"a": "all", "b": "labels", "c": "name_start"} if spec.scored_words() else {"a": "all"}
        for name, kind in lists.items():
            frm, cond, p = self.candidates_sql(spec, kind)
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
        params += [*self.name_forms(spec), *mparams, *wparams]
        sources = [*lists, "x"]
        if spec.boosted_keys:
            star, sparams = _in(f"{DOC}.key", spec.boosted_keys)
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
        sql, p = self._page(spec, ctes, f"u {self.fixed_join} {DOC} AS d ON d.id = u.id", "d")
        params += p
        counts = " UNION ALL ".join(f"SELECT '{n}' AS n, COUNT(*) AS c FROM {n}" for n in [*lists, "u"])
        sql += f" UNION ALL SELECT 'count', n, c{self._pad()} FROM ({counts}) AS k"
        if with_facets:
            sql += self._facet_union()
        outcome = self._collect(spec, sql, params, with_facets)
        self._prove(spec, outcome, limits)
        return outcome

    name_index_hint = ""  # how the exact-name lookup names the name index (SQLite: INDEXED BY)

    def _page(self, spec: Spec, ctes: list[str], source: str, u: str) -> tuple[str, list]:
        """The ranked page over the candidates (`source`, whose rank columns are `u`'s), joined back
        to DOC for the display columns and the score components. Typeahead sorts by the name tier
        first (see `tier_sql`)."""
        score, params = self.score_sql(spec, u)
        order = "r_score DESC"
        if spec.fields == "names" and spec.name_words():
            tier, tparams = self.tier_sql(spec, u)
            order, params = f"{tier}, r_score DESC", params + tparams
        ctes = [*ctes, (
            f"r AS (SELECT {u}.id, {score} AS r_score FROM {source} ORDER BY {order}, {u}.name{self.binary}, "
            f"{u}.key{self.binary} LIMIT %s OFFSET %s)"
        )]
        params += [spec.limit, spec.offset]
        wide = ", ".join(f"{DOC}.{c}" for c in RESULT_COLUMNS)
        comps, cparams = self.components(spec, DOC)
        sql = (
            "WITH " + ", ".join(ctes) + f" SELECT 'hit', NULL, NULL, {wide}, {', '.join(comps)} "
            f"FROM r {self.fixed_join} {DOC} ON {DOC}.id = r.id"
        )
        return sql, params + cparams

    @staticmethod
    def _pad() -> str:
        """NULLs that make a 3-column row (kind, name, count) as wide as a hit row."""
        return ", NULL" * (len(RESULT_COLUMNS) + len(COMPONENTS) + 1)

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

    def _collect(self, spec: Spec, sql: str, params: list, with_facets: bool) -> Outcome:
        names = [*RESULT_COLUMNS, *COMPONENTS, "score"]
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
        rows.sort(key=self._sort_key(spec))
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

    def _sort_key(self, spec: Spec):
        """The statement's order, again (its UNION ALL does not keep the page's order)."""
        if spec.fields != "names":
            return lambda row: (-row["score"], row["name"], row["key"])
        dashed, spaced = self.name_forms(spec)

        def tier(row: dict) -> int:
            name, title = row["name"], (row["title"] or "").lower()
            if name in (dashed, spaced) or title == spaced:
                return 0
            if name.startswith(dashed + "-"):
                return 1
            return 2 if name.startswith(dashed) else 3

        return lambda row: (tier(row), -row["score"], row["name"], row["key"])

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
        sql, p = self._page(spec, ctes, "u", "u")
        params += p
        if with_facets:
            sql += self._facet_union()
        outcome = self._collect(spec, sql, params, with_facets)
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
        type, tags, visibility, owner_team_id, url, ev_n … ev_b, quality, popularity); tag_rows:
        (document_id, tag)."""
        columns = ("id, source, key, kind, kind_label, name, title, description, body, owner, lifecycle, type, "
                   f"tags, visibility, owner_team_id, url, {', '.join(scoring.EV_COLUMNS)}, quality, popularity")
        with connection.cursor() as cur:
            cur.executemany(
                f"INSERT INTO {DOC} ({columns}) VALUES ({', '.join(['%s'] * (columns.count(',') + 1))})", rows
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
