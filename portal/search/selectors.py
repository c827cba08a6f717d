"""The one query path: parse → permission scope → backend → spelling retry → highlighted hits.
Pages, typeahead and the API all call `search()`."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field, replace

from django.db import connection
from django.utils.safestring import SafeString, mark_safe

from portal.accounts import permissions

from . import registry
from .backends import get_backend
from .backends.base import COMPONENTS, FACET_SCAN, Spec
from .models import SearchDocument
from .query import FIELDS, ParsedQuery, filter_value, parse, stem
from .snippets import Matcher, highlight, matcher, snippet

TYPEAHEAD_LIMIT = 8
# Spelling: the vocabulary's words within reach of an unknown word, nearest first, that are tried.
MAX_SPELLING_OPTIONS = 25


@dataclass
class Hit:
    key: str
    kind: str
    kind_label: str
    name: str
    title: str
    owner: str
    lifecycle: str
    type: str
    tags: list[str]
    visibility: str
    url: str
    position: int
    title_html: SafeString
    snippet: SafeString
    # The description, short, when the snippet comes from the body text instead (a docs page's
    # description names its entity: "Fraud API docs"). See snippets.py.
    context: SafeString = mark_safe("")
    score: float = 0.0
    components: dict = field(default_factory=dict)  # the score's parts (see scoring.py), for explain

    @property
    def display_name(self) -> str:
        return self.title or self.name

    @property
    def subtitle(self) -> str:
        """The name shown beside the title, unless it only repeats it (a docs page's name is its title,
        lowercased by the index; a hit without a title shows its name as the title)."""
        if not self.title or self.name.casefold() == self.title.casefold():
            return ""
        return self.name

    @property
    def meta(self) -> list[str]:
        """The typeahead's line under the title: name (unless it repeats the title), owner, lifecycle."""
        return [part for part in (self.subtitle, self.owner, self.lifecycle) if part]


@dataclass
class Results:
    query: ParsedQuery
    hits: list[Hit]
    total: int | None
    total_capped: bool = False  # more than FACET_SCAN matches: `total` and facet counts are lower bounds
    facets: dict[str, list[dict]] = field(default_factory=dict)
    corrected: str = ""  # the query as spelling-corrected, when the original found nothing
    # How many matches were ranked (None: all of them). Beyond FACET_SCAN matches only the candidates
    # are (Backend.run), and no page goes past them.
    ranked: int | None = None
    notes: list[str] = field(default_factory=list)
    elapsed_ms: float = 0.0
    offset: int = 0
    limit: int = 20
    # How the page was ranked (explain). Nothing searched (empty query, no scope) is trivially exact.
    ranking: dict = field(default_factory=lambda: {"exact": True, "provenHits": 0, "candidates": 0, "bound": None})

    @property
    def reachable(self) -> int:
        """How many hits the pages can show: the total, or the ranked candidates when fewer."""
        total = self.total or 0
        return total if self.ranked is None else min(total, self.ranked)

    @property
    def has_more(self) -> bool:
        return bool(self.hits) and self.offset + len(self.hits) < self.reachable


def scope(user) -> tuple[str, list] | None:
    """The permission module's rule, compiled to SQL over the document table (None: sees nothing;
    "": no restriction)."""
    return permissions.visible_sql(SearchDocument, user)


def damerau_levenshtein(a: str, b: str) -> int:
    """Edit distance counting a swap of two neighbours as one edit (optimal string alignment)."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[-1]


def corrections(backend, spec: Spec) -> dict[str, str]:
    """For a query that found nothing: each word the searcher's documents do not know (not even as a
    prefix) → the nearest vocabulary word that, put in its place, finds something they may see.

    The vocabulary is global, so every decision is taken on the searcher's documents only: which
    words are unknown, and which of the nearby words a correction may use (the nearest that occurs in
    a visible match of the corrected query). A word only hidden documents hold is never offered, and
    its existence changes nothing: not whether a word counts as unknown, nor which word replaces it.
    Two statements besides the vocabulary look-ups; {} when some unknown word has no such option."""
    words = [t for t in spec.query.terms if len(t) >= 4 and not t.isdigit()]
    alone = [replace(spec, query=ParsedQuery(terms=[t]), alternatives={}, expansions={}, fields="all")
             for t in words]
    unknown = [t for t, known in zip(words, backend.any_match(alone), strict=True) if not known]
    options: dict[str, list[str]] = {}
    for term in unknown:
        allowed = 1 if len(term) <= 5 else 2
        near = sorted((damerau_levenshtein(term, c), c) for c in set(backend.term_candidates(term)))
        options[term] = [c for d, c in near if 0 < d <= allowed][:MAX_SPELLING_OPTIONS]
        if not options[term]:  # the word stays, and matches nothing the searcher may see
            return {}
    if not options:
        return {}
    # Each option in place of its word, the other unknown words standing for any of their options (an
    # unknown word's own prefix matches no visible document, so the option decides).
    tries = [(term, word) for term, near_words in options.items() for word in near_words]
    found = backend.any_match([replace(spec, alternatives={**options, term: [word]}) for term, word in tries])
    chosen: dict[str, str] = {}
    for (term, word), ok in zip(tries, found, strict=True):
        if ok:
            chosen.setdefault(term, word)
    return chosen if len(chosen) == len(options) else {}


def _hits(rows: list[dict], words: Matcher | None, offset: int, query_words: int | None = None) -> list[Hit]:
    hits = []
    for i, row in enumerate(rows):
        text, context = snippet(row["description"], row["excerpt"], row["excerpt_at"], words,
                                query_words=query_words)
        hits.append(
            Hit(
                key=row["key"],
                kind=row["kind"],
                kind_label=row["kind_label"],
                name=row["name"],
                title=row["title"],
                owner=row["owner"],
                lifecycle=row["lifecycle"],
                type=row["type"],
                tags=(row["tags"] or "").split(),
                visibility=row["visibility"],
                url=row["url"],
                position=offset + i + 1,
                title_html=highlight(row["title"] or row["name"], words),
                snippet=text,
                context=context,
                score=round(float(row["score"]), 4),
                components={name: round(float(row[name] or 0), 4) for name in COMPONENTS},
            )
        )
    return hits


def merge_filters(query: ParsedQuery, filters: dict[str, str | list[str]] | None) -> ParsedQuery:
    """Add filters given as parameters (facet links, API `kind=`) to those typed in the query."""
    for name, values in (filters or {}).items():
        key = FIELDS.get(name)
        for value in [values] if isinstance(values, str) else values:
            for part in str(value).split(","):
                clean = filter_value(key, part) if key else ""
                if clean:
                    query.add_filter(key, clean)
    return query


def _boosts(user) -> tuple[list[int], list[str]]:
    keys: set[str] = set()
    for source in registry.sources():
        keys |= source.boosted_keys(user)
    return permissions.team_ids(user), sorted(keys)


def search(
    user,
    text: str | None,
    *,
    filters: dict | None = None,
    limit: int = 20,
    offset: int = 0,
    with_facets: bool = True,
    fields: str = "all",
) -> Results:
    started = time.perf_counter()
    query = merge_filters(parse(text), filters)
    results = Results(query=query, hits=[], total=0, notes=list(query.notes), offset=offset, limit=limit)
    allowed = scope(user)
    if allowed is None or query.is_empty:
        results.elapsed_ms = round((time.perf_counter() - started) * 1000, 2)
        return results
    my_teams, boosted = _boosts(user)
    spec = Spec(
        query=query,
        scope_sql=allowed[0],
        scope_params=allowed[1],
        my_team_ids=my_teams,
        boosted_keys=boosted,
        limit=limit,
        offset=offset,
        fields=fields,
    )
    backend = get_backend()
    version = backend.index_version() if CACHE_SIZE else None
    key = None if version is None else _cache_key(version, spec, with_facets)
    cached = _cache_get(key)
    if cached is None:
        cached = _run(backend, spec, with_facets)
        _cache_put(key, cached)
    results.hits = list(cached.hits)
    results.total, results.total_capped, results.corrected, results.ranked = (
        cached.total,
        cached.total_capped,
        cached.corrected,
        cached.ranked,
    )
    results.facets = {name: [dict(item) for item in values] for name, values in cached.facets.items()}
    results.ranking = dict(cached.ranking)
    results.elapsed_ms = round((time.perf_counter() - started) * 1000, 2)
    return results


@dataclass(frozen=True)
class _Outcome:
    """What a search found, independent of the request: what the cache keeps."""

    hits: tuple[Hit, ...]
    total: int | None
    total_capped: bool
    corrected: str
    facets: dict[str, list[dict]]
    ranking: dict
    ranked: int | None


def _matched(outcome) -> bool:
    """The query matched something (on any page): a text query counts its first matches."""
    return bool(outcome.rows) or outcome.counts.get("a", 0) > 0


def _run(backend, spec: Spec, with_facets: bool) -> _Outcome:
    query, offset = spec.query, spec.offset
    outcome = backend.run(spec, with_facets)
    corrected = ""
    # Decided the same way on every page, so that the pages of a corrected query follow each other.
    if query.terms and not _matched(outcome):
        chosen = corrections(backend, spec)
        if chosen:
            spec.alternatives = {term: [word] for term, word in chosen.items()}
            outcome = backend.run(spec, with_facets)
            if _matched(outcome):
                corrected = " ".join(chosen.get(t, t) for t in query.terms)
    rows, facets = outcome.rows, outcome.facets
    ranking = {
        "exact": outcome.exact,
        "provenHits": outcome.proven,
        "candidates": outcome.candidates,
        "bound": None if outcome.bound is None else round(outcome.bound, 4),
    }
    total, capped, facet_values = None, False, {}
    if with_facets:
        facet_values, total = facets if rows or offset else ({}, 0)
        capped, total = total > FACET_SCAN, min(total, FACET_SCAN)
    highlight_words = query.positive_words + [w for alts in spec.alternatives.values() for w in alts]
    highlight_words += [stem(t) for t in query.terms]
    hits = _hits(rows, matcher(highlight_words), offset, len({stem(w) for w in query.positive_words}))
    ranked = outcome.counts.get("u")  # the candidates of a text query; a filter query ranks every match
    return _Outcome(tuple(hits), total, capped, corrected, facet_values, ranking, ranked)


# -- results cache ------------------------------------------------------------------------------
# Recent outcomes per process, keyed by the index version (which the database changes on every
# write to the index, see SearchIndexVersion) and by everything the outcome depends on: the compiled
# permission rule and its team ids, the searcher's teams and starred keys (boosts), the parsed query,
# page and mode. Users with the same teams and stars share entries; nobody else's ever match.
CACHE_SIZE = 512
_CACHE: OrderedDict = OrderedDict()
_CACHE_LOCK = threading.Lock()


def _cache_key(version: int, spec: Spec, with_facets: bool) -> tuple:
    q = spec.query
    return (
        connection.alias,
        str(connection.settings_dict.get("NAME")),
        version,
        spec.scope_sql,
        tuple(spec.scope_params),
        tuple(spec.my_team_ids),
        tuple(spec.boosted_keys),
        tuple(q.terms),
        tuple(tuple(p) for p in q.phrases),
        tuple(q.excluded),
        tuple((k, tuple(v)) for k, v in q.filters.items()),
        tuple((k, tuple(v)) for k, v in q.excluded_filters.items()),
        spec.fields,
        spec.limit,
        spec.offset,
        with_facets,
    )


def _cache_get(key: tuple | None) -> _Outcome | None:
    if key is None:
        return None
    with _CACHE_LOCK:
        found = _CACHE.get(key)
        if found is not None:
            _CACHE.move_to_end(key)
        return found


def _cache_put(key: tuple | None, outcome: _Outcome) -> None:
    if key is None:
        return
    with _CACHE_LOCK:
        _CACHE[key] = outcome
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)


def clear_cache() -> None:
    with _CACHE_LOCK:
        _CACHE.clear()


def typeahead(
    user, text: str | None, limit: int = TYPEAHEAD_LIMIT
) -> tuple[Results, list[tuple[str, list[Hit]]]]:
    """The top matches on names, titles and tags, grouped by kind in rank order of each group's best."""
    results = search(user, text, limit=limit, with_facets=False, fields="names")
    groups: dict[str, list[Hit]] = {}
    for hit in results.hits:
        groups.setdefault(hit.kind_label, []).append(hit)
    return results, list(groups.items())


def visible_document(user, key: str) -> SearchDocument | None:
    allowed = scope(user)
    if allowed is None:
        return None
    return (
        SearchDocument.objects.filter(permissions.visible_q(user)).filter(key=key).only("key", "url").first()
    )
