"""Unsafe link targets in Markdown that someone else renders.

Redoc (marked) and Swagger UI (remarkable) render the descriptions of an API definition themselves, in
the browser. nh3 has already removed raw HTML from those texts, but Markdown's own links survive it:
`[docs](javascript:...)`, `![x](data:...)`, `[x][ref]` with `[ref]: vbscript:...`. `strip_unsafe_links`
replaces each such link by its text and drops such reference definitions, leaving safe links alone.

Targets are judged the paranoid way: HTML entities and percent escapes are decoded (repeatedly),
backslashes, whitespace and control characters removed, and then only `http`, `https`, `mailto` and
scheme-less (relative) targets pass; images pass only when relative (same origin), like the docs
pages' external-image rule. Should a construct slip past the scanner — whatever a renderer's quirks —
a final check finds the unsafe target after a `]` and turns every bracket in the text into an HTML
entity, so that no link at all can form.
"""

from __future__ import annotations

import html
import re
from urllib.parse import unquote

SAFE_LINK_SCHEMES = frozenset({"http", "https", "mailto"})
_SCHEME = re.compile(r"([a-z][a-z0-9+.\-]*):")
_INVISIBLE = re.compile(r"[\x00-\x20\x7f-\x9f\u00ad\u200b-\u200f\u2028\u2029\u2060\ufeff]+")
_LABEL = r"(?:[^\[\]\\]|\\.){0,999}"
# A definition starts a line, possibly inside block quotes and list items ("> - [x]: target").
_REFERENCE_DEFINITION = re.compile(
    r"^([ \t>*+\-0-9.)]*)\[(" + _LABEL + r")\]:[ \t]*(?:\r?\n[ \t]*)?(<[^>\n]*>?|\S+)", re.M)
_FULL_REFERENCE = re.compile(r"(?<!\\)(!?)\[(" + _LABEL + r")\]\[(" + _LABEL + r")\]", re.S)
_SHORTCUT_REFERENCE = re.compile(r"(?<!\\)(!?)\[(" + _LABEL + r")\](?![(\[:])", re.S)
_DEFINITION_START = re.compile(r"[ \t>*+\-0-9.)]*\[")
_MAX_PASSES = 100  # links removed one by one; past that the final check escapes the brackets
_MAX_CONSTRUCTS = 2_000  # more `](` / `]:` than this in one text: no links at all, without analysis
_MAX_LINK_TEXT = 10_000  # how far back a link's '[' is looked for, how far a title is followed
# A destination this long is judged unsafe without reading on: the scheme is at its start, but tabs
# (which browsers drop from URLs) could push it arbitrarily far, and rescanning is what made it costly.
_MAX_TARGET = 8_192


def normalise_target(value: str) -> str:
    """What a browser or a lenient renderer could end up reading as the URL (lower case)."""
    text = value
    for _ in range(5):
        decoded = unquote(html.unescape(text))
        if decoded == text:
            break
        text = decoded
    return _INVISIBLE.sub("", text.replace("\\", "")).lower().lstrip("<")


def target_scheme(value: str) -> str | None:
    match = _SCHEME.match(normalise_target(value))
    return match.group(1) if match else None


def unsafe_target(value: str, *, image: bool = False) -> bool:
    if len(value) >= _MAX_TARGET:
        return True
    normal = normalise_target(value)
    scheme = _SCHEME.match(normal)
    if image:
        return scheme is not None or normal.startswith("//")
    return scheme is not None and scheme.group(1) not in SAFE_LINK_SCHEMES


class Budget:
    """How many `](` / `]:` constructs may still be analysed across the texts of one document; past it,
    texts lose their links without analysis (bounded work for hostile input; the text itself stays)."""

    def __init__(self, constructs: int = 5 * _MAX_CONSTRUCTS) -> None:
        self.left = constructs


def strip_unsafe_links(text: str, budget: Budget | None = None) -> str:
    if "]" not in text:
        return text  # every Markdown link or definition has one (autolinks need '<', which nh3 escaped)
    constructs = text.count("](") + text.count("]:")
    if constructs > _MAX_CONSTRUCTS or (budget is not None and budget.left < constructs):
        return _escape_brackets(text)
    if budget is not None:
        budget.left -= constructs
    text = _strip_inline(text)
    text = _strip_references(text)
    if _any_unsafe_after_bracket(text):
        text = _escape_brackets(text)
    return text


def _escape_brackets(text: str) -> str:
    """Entities, not backslashes: `\\[` would stay an escaped backslash before a live bracket.
    Renderers show an entity as its character and never read it as link syntax."""
    return text.replace("[", "&#91;").replace("]", "&#93;")


def _strip_inline(text: str) -> str:
    """`[text](target "title")` and `![alt](target)` with an unsafe target become `text` / `alt`."""
    pos, passes = 0, 0
    while passes < _MAX_PASSES:
        close = text.find("](", pos)
        if close == -1:
            break
        target, stop = _destination(text, close + 2)
        if not unsafe_target(target, image=True):  # relative: safe for links and images alike
            # Whatever looks like a link inside this target is part of it (the final check still reads
            # it); skipping it keeps the scan linear.
            pos = max(stop, close + 2)
            continue
        opening = _matching_open(text, close)
        image = opening > 0 and text[opening - 1] == "!" and not _escaped(text, opening - 1)
        if not unsafe_target(target, image=image):
            pos = max(stop, close + 2)
            continue
        passes += 1
        end = _link_end(text, stop)  # only for links being removed: a title scan is not free
        if opening == -1:  # no '[' before it: not a link; drop the target anyway
            text = text[:close + 1] + text[end:]
            pos = close + 1
            continue
        start = opening - 1 if image else opening
        text = text[:start] + text[opening + 1:close] + text[max(end, close + 2):]
        pos = start  # the kept text may now close an outer link: look again from here
    return text


def _strip_references(text: str) -> str:
    """Unsafe `[label]: target` definitions go; `[text][label]`, `[label][]` and `[label]` become text."""
    removed: set[str] = set()

    def definition(match: re.Match) -> str:
        if unsafe_target(match.group(3)):
            removed.add(_label(match.group(2)))
            return match.group(1)
        return match.group(0)

    text = _REFERENCE_DEFINITION.sub(definition, text)
    if not removed:
        return text

    def full(match: re.Match) -> str:
        label = match.group(3) or match.group(2)
        return match.group(2) if _label(label) in removed else match.group(0)

    def shortcut(match: re.Match) -> str:
        return match.group(2) if _label(match.group(2)) in removed else match.group(0)

    return _SHORTCUT_REFERENCE.sub(shortcut, _FULL_REFERENCE.sub(full, text))


def _label(value: str) -> str:
    return re.sub(r"\s+", " ", value.strip()).casefold()


def _destination(text: str, start: int) -> tuple[str | None, int]:
    """The link destination that begins at `start` (just after '](') and the index just after it."""
    i, n = start, len(text)
    while i < n and text[i] in " \t\r\n":
        i += 1
    if i < n and text[i] == "<":
        close = text.find(">", i, i + _MAX_TARGET)
        stop = close + 1 if close != -1 else min(n, i + _MAX_TARGET)
        target = text[i:stop]
    else:
        depth, j, limit = 0, i, min(n, i + _MAX_TARGET)
        while j < limit and text[j] > " ":
            if text[j] == "\\":
                j += 2
                continue
            if text[j] == "(":
                depth += 1
            elif text[j] == ")":
                if depth == 0:
                    break
                depth -= 1
            j += 1
        stop = min(j, n)
        target = text[i:stop]
    return target, stop


def _link_end(text: str, i: int) -> int:
    """Past the optional title and the closing ')' — or `i` when the link is not closed properly."""
    n = len(text)
    j = i
    while j < n and text[j] in " \t\r\n":
        j += 1
    if j < n and text[j] in "\"'(":
        closing = ")" if text[j] == "(" else text[j]
        k, limit = j + 1, min(n, j + _MAX_LINK_TEXT)
        while k < limit and text[k] != closing:
            k += 2 if text[k] == "\\" else 1
        j = k + 1
        while j < n and text[j] in " \t\r\n":
            j += 1
    return j + 1 if j < n and text[j] == ")" else i


def _matching_open(text: str, close: int) -> int:
    depth = 0
    for k in range(close - 1, max(-1, close - _MAX_LINK_TEXT), -1):
        if _escaped(text, k):
            continue
        if text[k] == "]":
            depth += 1
        elif text[k] == "[":
            if depth == 0:
                return k
            depth -= 1
    return -1


def _escaped(text: str, k: int) -> bool:
    backslashes = 0
    while k - backslashes - 1 >= 0 and text[k - backslashes - 1] == "\\":
        backslashes += 1
    return backslashes % 2 == 1


def _any_unsafe_after_bracket(text: str) -> bool:
    """After the scan: a `](` or a line-starting `[...]:` followed by an unsafe target, read liberally
    (up to the next ')' or the end of the line, whitespace and all). A false alarm only costs that
    text its links: bracket entities render the same characters."""
    for match in re.finditer(r"\](?:[ \t]*\(|:)", text):
        if text[match.end() - 1] == ":":
            line_start = text.rfind("\n", 0, match.start()) + 1
            if not _DEFINITION_START.match(text, line_start, match.start()):
                continue
        rest = text[match.end():match.end() + 120]
        if unsafe_target(re.split(r"\)|\n\s*\n", rest, maxsplit=1)[0]):
            return True
    return False
