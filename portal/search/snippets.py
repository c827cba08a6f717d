"""What a hit shows of its text: the matched words marked in its title, and its snippet — the best window
of its description or of its body text (docs/search.md, "Snippets"). Everything is escaped; only the
`<mark>` elements added here are HTML."""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import escape

from django.utils.safestring import SafeString, mark_safe

from .backends.base import EXCERPT_CHARS
from .query import stem

SNIPPET_CHARS = 180
CONTEXT_CHARS = 80  # of the description, beside a snippet from the body text
LEAD_CHARS = 40  # of a snippet, the context shown before its first match, at most
MAX_MATCHES = 50  # matches of a text considered for its snippet's window
_SPACE = re.compile(r"\s")
_SPACES = " \n\t\r"  # what a snippet's end is cut at (rfind: a regex collecting spaces cost more)

Match = tuple[int, int, str]  # start, end, the query word it matched (stemmed)


class Matcher:
    """The words of a text that start with a query word, as the index tokenizes text (runs of letters
    and digits: `total_amount` holds the word `amount`), whatever their case.

    A lowercased text is searched case-sensitively and word starts are checked here: 3-4 times faster
    than one case-insensitive pattern with a look-behind (~35 µs for a 540-character excerpt), which
    cost ~0.75 ms per page of 20 docs hits. A text whose lowercase has another length (a few non-ASCII
    letters) takes that slower pattern."""

    def __init__(self, words: list[str]):
        alternatives = "|".join(re.escape(w) for w in sorted({w.lower() for w in words}, key=len, reverse=True))
        self._lowered = re.compile(rf"({alternatives})[^\W_]*")
        self._any_case = re.compile(rf"(?<![^\W_])({alternatives})[^\W_]*", re.IGNORECASE)

    def find(self, text: str, limit: int | None = None) -> list[Match]:
        found: list[Match] = []
        lowered = text.lower()
        if len(lowered) == len(text):
            for m in self._lowered.finditer(lowered):
                if m.start() and lowered[m.start() - 1].isalnum():
                    continue  # inside a word (its rest is consumed: no word starts there)
                found.append((m.start(), m.end(), stem(m.group(1))))
                if len(found) == limit:
                    break
            return found
        for m in self._any_case.finditer(text):
            found.append((m.start(), m.end(), stem(m.group(1).lower())))
            if len(found) == limit:
                break
        return found


def matcher(words: list[str]) -> Matcher | None:
    words = [w for w in words if w]
    return Matcher(words) if words else None


@dataclass(frozen=True)
class _Cut:
    """Where a snippet of a text starts and ends, and how many distinct query words it holds."""

    start: int
    end: int
    words: int
    before: bool  # text was left out before `start` (an ellipsis)
    after: bool


def _best_window(found: list[Match], size: int) -> tuple[int, int, int] | None:
    """(start of its first match, end of its last, distinct query words) of the span of at most `size`
    characters holding the most distinct query words, then the most matches, then the earliest; None
    when nothing matches."""
    best, best_key = None, (0, 0)
    for i, (first, _, word) in enumerate(found):
        words, j = {word}, i
        while j + 1 < len(found) and found[j + 1][1] - first <= size:
            j += 1
            words.add(found[j][2])
        if (len(words), j - i + 1) > best_key:
            best, best_key = (first, found[j][1], len(words)), (len(words), j - i + 1)
    return best


def _cut(text: str, found: list[Match], size: int, clipped_before: bool = False, clipped_after: bool = False) -> _Cut:
    """A window of about `size` characters of `text` around its best matches (its start when none),
    with LEAD_CHARS of context before them at most, cut at word boundaries. `clipped_*`: `text` is
    itself an excerpt of a longer text, cut there (mid-word maybe)."""
    best = _best_window(found, size)
    first, last, words = best or (0, 0, 0)
    start = max(0, first - min(LEAD_CHARS, max(0, size - (last - first))))
    end = min(len(text), start + size)
    start = max(0, min(start, end - size))  # near the end of the text: more context before
    # A partial word at either end goes (never a match: the search stops at the matches).
    if (start == 0 and clipped_before) or (start > 0 and not text[start - 1].isspace()):
        space = _SPACE.search(text, start, first if best else end)
        start = space.end() if space else (first if best else start)
    if (end == len(text) and clipped_after) or (end < len(text) and not text[end].isspace()):
        last_space = max(text.rfind(c, last if best else start, end) for c in _SPACES)
        end = last_space if last_space >= 0 else (last if best else end)
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return _Cut(start, end, words, clipped_before or bool(text[:start].strip()),
                clipped_after or bool(text[end:].strip()))


def _marked(text: str, found: list[Match], start: int = 0, end: int | None = None) -> str:
    """text[start:end] escaped, with <mark> around each of `found` in it."""
    end = len(text) if end is None else end
    out, last = [], start
    for m_start, m_end, _ in found:
        if m_start < start or m_end > end:
            continue
        out.append(escape(text[last:m_start]))
        out.append(f"<mark>{escape(text[m_start:m_end])}</mark>")
        last = m_end
    out.append(escape(text[last:end]))
    return "".join(out)


def _render(text: str, found: list[Match], cut: _Cut, words: Matcher | None) -> SafeString:
    if words and len(found) >= MAX_MATCHES:  # matches of the window may be missing: find them again
        found = [(s + cut.start, e + cut.start, w) for s, e, w in words.find(text[cut.start : cut.end])]
    html = _marked(text, found, cut.start, cut.end)
    return mark_safe(("…" if cut.before else "") + html + ("…" if cut.after else ""))  # noqa: S308 (_marked escapes)


def highlight(text: str, words: Matcher | None, window: int | None = None) -> SafeString:
    """Escape everything; wrap matched words in <mark>. With `window`, a text longer than that shows its
    best window (`_cut`) with an ellipsis where it was cut."""
    text = text or ""
    long = bool(window) and len(text) > (window or 0)
    found = words.find(text, MAX_MATCHES if long else None) if words else []
    if window and long:
        return _render(text, found, _cut(text, found, window), words)
    return mark_safe(_marked(text, found))  # noqa: S308 (escaped by _marked)


def snippet(description: str, excerpt: str | None, excerpt_at: int | None, words: Matcher | None,
            window: int = SNIPPET_CHARS, query_words: int | None = None) -> tuple[SafeString, SafeString]:
    """A hit's (snippet, context). The snippet: the best window of its body text (`excerpt`, read from
    1-based position `excerpt_at` of the body, see Backend._excerpt) when it holds more distinct query
    words than the description, else the description's. A docs page's description only names its
    entity ("Fraud API docs"), an entity's body holds its columns, features and metrics: a match there
    is what the searcher wants to see. The context: the description, short, when the snippet is the
    body's ("" otherwise). `query_words`: how many distinct words the query has (a description holding
    them all wins without a look at the body)."""
    description = description or ""
    found = words.find(description, MAX_MATCHES if len(description) > window else None) if words else []
    if len(description) > window:
        cut = _cut(description, found, window)
        shown, in_description = _render(description, found, cut, words), cut.words
    else:
        shown, in_description = mark_safe(_marked(description, found)), len({w for _, _, w in found})  # noqa: S308
    if words and excerpt and excerpt_at and (query_words is None or in_description < query_words):
        from_body = _from_body(excerpt, excerpt_at, words, window, in_description)
        if from_body is not None:
            return from_body, highlight(description, words, CONTEXT_CHARS)
    return shown, mark_safe("")


def _from_body(excerpt: str, excerpt_at: int, words: Matcher, window: int, beat: int) -> SafeString | None:
    """The body's snippet, when it holds more than `beat` distinct query words."""
    found = words.find(excerpt, MAX_MATCHES)  # an excerpt is EXCERPT_CHARS long at most
    clipped_before, clipped_after = excerpt_at > 1, len(excerpt) >= EXCERPT_CHARS
    if len(excerpt) <= window and not (clipped_before or clipped_after):  # a whole short body
        return mark_safe(_marked(excerpt, found)) if len({w for _, _, w in found}) > beat else None  # noqa: S308
    cut = _cut(excerpt, found, window, clipped_before, clipped_after)
    return _render(excerpt, found, cut, words) if cut.words > beat else None
