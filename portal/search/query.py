"""The query language: words, "quoted phrases", field filters and -exclusions.

    fraud detec  "card transactions"  kind:model owner:fraud-ml tag:pii -deprecated -kind:dataset

Parsing never fails: any input becomes a `ParsedQuery` (possibly empty) plus notes explaining
what was ignored. Backends build their own match expressions from the normalised tokens, so no
user text ever reaches FTS syntax."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

MAX_QUERY_CHARS = 300
MAX_TERMS = 10
MAX_TERM_CHARS = 40
FIELDS = {
    "kind": "kind",
    "owner": "owner",
    "tag": "tag",
    "lifecycle": "lifecycle",
    "type": "type",
    "tags": "tag",
    "is": "kind",
}

# A clause: optional "-", optional field:, then a "quoted value" or a bare run of non-spaces.
_CLAUSE = re.compile(r'(-)?(?:([A-Za-z]+):)?(?:"([^"]*)"?|(\S+))')
_WORD = re.compile(r"\w+", re.UNICODE)
# In ASCII, \w is [A-Za-z0-9_] and NFKC changes nothing: a lowercased ASCII text's words are its runs of
# [a-z0-9], found by translate + split about three times faster than the regex (index writes
# tokenize every document's text): one byte table that lowercases letters and digits and turns the
# rest into spaces (bytes.translate: ~4x faster than str.lower + str.translate with a dict table).
_ASCII_WORDS = bytes(ord(chr(c).lower()) if chr(c).isalnum() else 32 for c in range(128)) + bytes(range(128, 256))
_VALUE = re.compile(r"[^a-z0-9:+#._/-]")


def words(text: str) -> list[str]:
    """The tokens a text is searched by: lowercased runs of letters and digits (so "fraud-detector"
    is "fraud" and "detector"; emoji and punctuation vanish). Accents are kept: both backends'
    tokenizers decide how to fold them (FTS5 `remove_diacritics`)."""
    return [w for w in tokens(text) if len(w) <= MAX_TERM_CHARS]


def tokens(text: str) -> list[str]:
    """`words` without the length cap (for callers that filter what they keep anyway)."""
    if text.isascii():
        return text.encode().translate(_ASCII_WORDS).decode().split()
    return _WORD.findall(unicodedata.normalize("NFKC", text).lower().replace("_", " "))


def stem(word: str) -> str:
    """A query word as it is matched: without a plural's final "s" ("transactions" finds transaction and
    transactions: every word is a prefix anyway). Short words and "ss" endings are kept."""
    return word[:-1] if len(word) >= 5 and word.endswith("s") and not word.endswith("ss") else word


def normalize(text: str) -> str:
    return " ".join(text.lower().split())[:500]


@dataclass
class ParsedQuery:
    text: str = ""
    terms: list[str] = field(default_factory=list)  # single words, matched as prefixes
    phrases: list[list[str]] = field(default_factory=list)  # each matched as an exact phrase
    excluded: list[str] = field(default_factory=list)  # words that must not occur
    filters: dict[str, list[str]] = field(default_factory=dict)  # field → values (OR within a field)
    excluded_filters: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def has_text(self) -> bool:
        return bool(self.terms or self.phrases)

    @property
    def is_empty(self) -> bool:
        return not (self.terms or self.phrases or self.excluded or self.filters or self.excluded_filters)

    @property
    def positive_words(self) -> list[str]:
        return self.terms + [w for p in self.phrases for w in p]

    def add_filter(self, name: str, value: str, negate: bool = False) -> None:
        target = self.excluded_filters if negate else self.filters
        values = target.setdefault(name, [])
        if value not in values:
            values.append(value)

    def with_terms(self, terms: list[str]) -> ParsedQuery:
        return ParsedQuery(
            self.text,
            terms,
            self.phrases,
            self.excluded,
            self.filters,
            self.excluded_filters,
            list(self.notes),
        )


def filter_value(name: str, raw: str) -> str:
    """A filter's value as it is compared: lowercase, only the characters values use (anything else
    is dropped, quotes included), an owner without its `group:` prefix and namespace."""
    value = _VALUE.sub("", raw.strip().lower())[:100]
    if name == "owner":
        value = value.removeprefix("group:").split("/")[-1]
    return value


def parse(text: str | None) -> ParsedQuery:
    text = (text or "").replace("\x00", " ")
    query = ParsedQuery(text=text.strip())
    if len(text) > MAX_QUERY_CHARS:
        text = text[:MAX_QUERY_CHARS]
        query.notes.append(f"Your query was cut to its first {MAX_QUERY_CHARS} characters.")
    dropped = False
    for match in _CLAUSE.finditer(text):
        negate, fname, quoted, bare = match.groups()
        raw = quoted if quoted is not None else (bare or "")
        key = FIELDS.get((fname or "").lower())
        if key:
            value = filter_value(key, raw)
            if value:
                query.add_filter(key, value, negate=bool(negate))
            continue
        if fname:  # an unknown "field:" is just words ("NEAR:", "http:")
            raw = f"{fname} {raw}"
        tokens = words(raw)
        if not tokens:
            continue
        if negate:
            query.excluded.extend(t for t in tokens if t not in query.excluded)
        elif quoted is not None and len(tokens) > 1:
            query.phrases.append(tokens[:MAX_TERMS])
        else:
            for token in tokens:
                if len(query.terms) >= MAX_TERMS:
                    dropped = True
                elif token not in query.terms:
                    query.terms.append(token)
    if dropped:
        query.notes.append(f"Only the first {MAX_TERMS} words were used.")
    query.phrases = query.phrases[:3]
    query.excluded = query.excluded[:MAX_TERMS]
    return query
