"""The relevance model: what a document's score is made of, in one place.

    score = (BASE + evidence + proximity + name signal) × quality × personal

* **evidence**: for every query word, the weights of the fields it occurs in — name, title, tags,
  owner, description, body (kind-specific fields, docs text); the full weight as a whole word (or its
  plural), PARTIAL of it as the start of a longer word. A document that matches in several fields
  beats one that matches in one, however long its text is.
* **proximity**: with several words, they occur side by side, in order, in one field.
* **name signal**: the name (or title) *is* the query; the name starts with the query's whole words;
  the name starts with the query. Strong — what people type is usually the start of a name — but
  added to the evidence, not an absolute tier (typeahead sorts by it first).
* **quality** (static, stored per document): in production (or of a kind without a lifecycle), has a
  title, a description, docs;
  plus **popularity** from clicked search results, decayed with time (refreshed by
  `index.refresh_popularity`). Gentle: together at most ×1.45.
* **personal**: owned by one of the searcher's teams, starred by the searcher.

Both backends compute the score with the same SQL over the same stored columns (`ev_n` … `ev_b`,
`quality`, `popularity`, `name`, `title`), so a document scores the same on SQLite and PostgreSQL.
Each `ev_<letter>` column holds its field's words once each, in order, between spaces
(`" fraud detector "`); a query word `w` occurs in the field when the column contains `" w"`, as a
whole word when it contains `" w "` (or the plural `" ws "`): one `instr`/`strpos` over a short
string per field and word. Words are folded the way SQLite's FTS5 tokenizer folds them (lowercase,
NFKC, accents removed)."""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from .query import tokens
from .registry import Document

# A query word that only starts a longer word there ("store" in storefront) counts this much of it.
PARTIAL = 0.6
# Field letter → weight of a query word found there. Title and tags are what a person wrote to say what
# the thing is; the name is its identifier; descriptions and body text are longer and say more in passing.
WEIGHTS = {"n": 3.0, "t": 3.5, "g": 2.5, "o": 0.5, "d": 1.5, "b": 0.75}
FIELD_NAMES = {"n": "name", "t": "title", "g": "tags", "o": "owner", "d": "description", "b": "body"}
EV_COLUMNS = tuple(f"ev_{letter}" for letter in WEIGHTS)  # SearchDocument's evidence columns
# Typeahead suggests from names, titles and tags only.
NAME_FIELDS = ("n", "t", "g")
# The name (or title) is the query / the name starts with its whole words / with its letters.
NAME_EXACT, NAME_WORDS, NAME_PREFIX = 5.0, 1.0, 0.5
# Proximity, per query word after the first: the words occur next to each other, in order, in one
# field ("merchant risk score" in a feature named merchant_risk_score) — the cover-density idea.
ADJACENT = 2.0
# Every matching document has this much (filter-only queries rank by quality and personal boosts).
BASE = 1.0
# Static quality: one plus these; popularity adds up to POPULARITY_MAX. The lifecycle share goes to
# production and to the kinds that have no lifecycle (systems, domains, datasets…): it tells what is
# in use from what is experimental (EXPERIMENTAL of it) or deprecated (none).
PRODUCTION, EXPERIMENTAL, HAS_TITLE, HAS_DESCRIPTION, HAS_DOCS = 0.10, 0.03, 0.05, 0.05, 0.10
POPULARITY_MAX = 0.15
QUALITY_MAX = 1 + PRODUCTION + HAS_TITLE + HAS_DESCRIPTION + HAS_DOCS + POPULARITY_MAX
# Personal: one plus these.
MINE, STARRED = 0.10, 0.20
# Body words kept in `ev_b` (a docs page can hold thousands; a matching word found in none of the
# kept fields counts as a body match when "~" marks a cut column).
BODY_WORDS = 300
# Popularity: clicks on a result, each worth half as much every HALF_LIFE_DAYS; POPULARITY_SATURATION
# decayed clicks earn the whole POPULARITY_MAX (log scale below it).
HALF_LIFE_DAYS = 30.0
POPULARITY_WINDOW_DAYS = 180
POPULARITY_SATURATION = 50.0
# The most words a query contributes to the score (the parser keeps 10 words and 3 phrases).
MAX_SCORED_WORDS = 12


def fold(word: str) -> str:
    """A token as FTS5's `unicode61 remove_diacritics 2` compares it: accents removed."""
    if word.isascii():
        return word
    return "".join(c for c in unicodedata.normalize("NFKD", word) if not unicodedata.combining(c))


def _field_tokens(text: str) -> list[str]:
    """A field's distinct words, in order (index writes run this for every field of every document:
    ASCII text, the usual case, skips the accent folding)."""
    if not text:
        return []
    words = tokens(text)
    if not text.isascii():
        words = [fold(w) for w in words]
    return [w for w in dict.fromkeys(words) if len(w) <= 40]


def evidence(doc: Document) -> dict[str, str]:
    """The document's `ev_<letter>` columns (see the module docstring)."""
    columns = {
        "ev_n": _column(_field_tokens(doc.name)),
        "ev_t": _column(_field_tokens(doc.title)),
        "ev_g": _column(_field_tokens(" ".join(doc.tags))),
        "ev_o": _column(_field_tokens(doc.owner)),
        "ev_d": _column(_field_tokens(doc.description)),
    }
    body = _field_tokens(doc.body)
    # More body words than kept: "~" says a matching word missing everywhere may be in the cut part.
    columns["ev_b"] = _column(body[:BODY_WORDS]) + ("~ " if len(body) > BODY_WORDS else "")
    return columns


def _column(words: list[str]) -> str:
    return " " + " ".join(words) + " " if words else " "


def quality(doc: Document) -> float:
    """The static quality factor (without popularity)."""
    lifecycle = {"production": PRODUCTION, "": PRODUCTION, "experimental": EXPERIMENTAL}.get(doc.lifecycle, 0.0)
    return round(
        1
        + lifecycle
        + HAS_TITLE * bool(doc.title.strip())
        + HAS_DESCRIPTION * bool(doc.description.strip())
        + HAS_DOCS * bool(doc.has_docs),
        4,
    )


def popularity(decayed_clicks: float) -> float:
    """The popularity share of the quality factor for this many decayed clicks (0 … POPULARITY_MAX)."""
    if decayed_clicks <= 0:
        return 0.0
    share = math.log1p(decayed_clicks) / math.log1p(POPULARITY_SATURATION)
    return round(POPULARITY_MAX * min(1.0, share), 4)


def query_words(words: Iterable[str]) -> list[str]:
    """The query's positive words as the evidence columns spell them, once each."""
    return list(dict.fromkeys(fold(w) for w in words if w))[:MAX_SCORED_WORDS]


@dataclass(frozen=True)
class Unseen:
    """What is known about documents a bounded search did not read (see `upper_bound`)."""

    words: int  # scored query words
    names_only: bool  # typeahead: name, title and tags only
    labels_excluded: bool  # no query word in their title or tags
    name_start_excluded: bool  # their name does not start with the query
    mine_possible: bool  # the searcher has teams (their documents may be among the unseen)


def upper_bound(unseen: Unseen) -> float:
    """The highest score a document with these properties can have: a bounded search whose k-th
    best score exceeds it has found the true top k."""
    fields = [f for f in (NAME_FIELDS if unseen.names_only else WEIGHTS) if f]
    if unseen.labels_excluded:
        fields = [f for f in fields if f not in ("t", "g")]
    per_word = sum(WEIGHTS[f] for f in fields)
    # Exact names are always read; an exact title needs the query words in the title.
    name = 0.0
    if not unseen.labels_excluded:
        name = NAME_EXACT
    elif not unseen.name_start_excluded:
        name = NAME_WORDS
    personal = 1 + (MINE if unseen.mine_possible else 0)  # starred documents are always read
    proximity = ADJACENT * (unseen.words - 1)
    return (BASE + unseen.words * per_word + proximity + name) * QUALITY_MAX * personal
